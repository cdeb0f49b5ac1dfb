import CofferCore
import CofferChannels
import CofferServices
import Foundation

/// Payment channel settings, read from a JSON file (`--channels-file` or `COFFER_CHANNELS_FILE`) so that credentials live
/// in configuration, never in code. Secrets are named by file path, so the settings file itself can be shared:
///
///     {"wechatpay": {"merchantId": "1900000001", "appId": "wx…", "merchantSerialNo": "…",
///                    "merchantPrivateKeyFile": "/etc/coffer/wechatpay/apiclient_key.pem",
///                    "apiV3KeyFile": "/etc/coffer/wechatpay/apiv3.key",
///                    "platformSerialNo": "…", "platformPublicKeyFile": "/etc/coffer/wechatpay/platform_pub.pem",
///                    "additionalPlatformKeyFiles": {"SERIAL": "/etc/coffer/wechatpay/next_platform_pub.pem"},
///                    "baseURL": "https://api.mch.weixin.qq.com",
///                    "notifyURL": "https://billing.example.com/v1/channels/wechatpay/notifications"},
///      "alipay": {"appId": "2021…", "sellerId": "2088…", "appPrivateKeyFile": "/etc/coffer/alipay/app_private.pem",
///                 "alipayPublicKeyFile": "/etc/coffer/alipay/alipay_public.pem",
///                 "gatewayURL": "https://openapi.alipay.com/gateway.do",
///                 "notifyURL": "https://billing.example.com/v1/channels/alipay/notifications"}}
struct ChannelsFile: Decodable {
    struct WeChatPay: Decodable {
        var merchantId: String
        var appId: String
        var merchantSerialNo: String
        var merchantPrivateKeyFile: String
        var apiV3KeyFile: String
        var platformSerialNo: String
        var platformPublicKeyFile: String
        /// More platform keys by serial (a rotation announced ahead); downloaded certificates are added while running.
        var additionalPlatformKeyFiles: [String: String]?
        var baseURL: String?
        var notifyURL: String
    }
    var wechatpay: WeChatPay?
    struct Alipay: Decodable {
        var appId: String
        var sellerId: String?
        var appPrivateKeyFile: String
        var alipayPublicKeyFile: String
        var gatewayURL: String?
        var notifyURL: String
    }
    var alipay: Alipay?
    /// T1/T2: the platform's collection account and statement rules.
    struct Bank: Decodable {
        var payeeName: String
        var bankName: String
        var collectionAccount: String
        var memoFormat: String?
        var blockedKeywords: [String]?
    }
    var bank: Bank?
    /// R3: per-channel limits in yuan, e.g. {"wechatpay": {"perPayment": "50000.00", "perDay": "50000.00"}}; a channel
    /// named here replaces its defaults, a field left out means no platform limit.
    struct Limits: Decodable {
        var perPayment: String?
        var perDay: String?
        var perMonth: String?
    }
    var limits: [String: Limits]?
    /// R4: per-channel fee rules, e.g. {"wechatpay": {"above": "200.00", "rateBasisPoints": 60}}: 0.6 % on amounts above
    /// 200.00, rounded half up to the cent; optional "fixed", "min", "max" in yuan. No rule: no fee.
    struct Fee: Decodable {
        var above: String?
        var rateBasisPoints: Int64?
        var fixed: String?
        var min: String?
        var max: String?
    }
    var fees: [String: Fee]?

    struct Problem: Error, CustomStringConvertible {
        let description: String
    }

    static func load(path: String) throws -> (channels: [any PaymentChannel], bank: Bank?, limits: [String: ChannelLimits],
                                              fees: [String: FeeRule]) {
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw Problem(description: "cannot read the channels file \(path)")
        }
        let file: ChannelsFile
        do { file = try JSONDecoder().decode(ChannelsFile.self, from: data) } catch {
            throw Problem(description: "the channels file \(path) is not valid: \(error)")
        }
        var channels: [any PaymentChannel] = []
        func secretFile(_ p: String, _ channel: String) throws -> String {
            do { return try String(contentsOfFile: p, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) } catch {
                throw Problem(description: "\(channel): cannot read \(p)")
            }
        }
        func checkNotifyURL(_ url: String, _ channel: String) throws {
            guard url.hasPrefix("https://") || url.hasPrefix("http://127.0.0.1") else {
                throw Problem(description: "\(channel): notifyURL must be https")
            }
        }
        if let w = file.wechatpay {
            try checkNotifyURL(w.notifyURL, "wechatpay")
            let settings = WeChatPayV3Settings(
                merchantId: w.merchantId, appId: w.appId, merchantSerialNo: w.merchantSerialNo,
                merchantPrivateKeyPEM: try secretFile(w.merchantPrivateKeyFile, "wechatpay"),
                apiV3Key: try secretFile(w.apiV3KeyFile, "wechatpay"),
                platformSerialNo: w.platformSerialNo, platformPublicKeyPEM: try secretFile(w.platformPublicKeyFile, "wechatpay"),
                additionalPlatformKeys: try (w.additionalPlatformKeyFiles ?? [:]).mapValues { try secretFile($0, "wechatpay") })
            let wire: WeChatPayV3Protocol
            do { wire = try WeChatPayV3Protocol(settings: settings) } catch {
                throw Problem(description: "wechatpay: \(error)")
            }
            channels.append(WeChatPayChannel(wire: wire, baseURL: w.baseURL ?? "https://api.mch.weixin.qq.com",
                                             notifyURL: w.notifyURL))
        }
        if let a = file.alipay {
            try checkNotifyURL(a.notifyURL, "alipay")
            let settings = AlipaySettings(appId: a.appId, appPrivateKeyPEM: try secretFile(a.appPrivateKeyFile, "alipay"),
                                          alipayPublicKeyPEM: try secretFile(a.alipayPublicKeyFile, "alipay"), sellerId: a.sellerId)
            let api: AlipayOpenAPI
            do { api = try AlipayOpenAPI(settings: settings) } catch { throw Problem(description: "alipay: \(error)") }
            channels.append(AlipayChannel(api: api, gatewayURL: a.gatewayURL ?? "https://openapi.alipay.com/gateway.do",
                                          notifyURL: a.notifyURL))
        }
        if let b = file.bank {
            guard b.collectionAccount.count == 15, b.collectionAccount.allSatisfy(\.isNumber) else {
                throw Problem(description: "bank: collectionAccount must be the 15-digit account number (the dedicated-account prefix)")
            }
        }
        var limits: [String: ChannelLimits] = [:]
        for (channel, l) in file.limits ?? [:] {
            func minor(_ text: String?, _ field: String) throws -> Int64? {
                guard let text else { return nil }
                do { return try MoneyFormat.parsePositive(text, field: "limits.\(channel).\(field)") } catch {
                    throw Problem(description: "\(error)")
                }
            }
            limits[channel] = ChannelLimits(perPaymentMinor: try minor(l.perPayment, "perPayment"),
                                            perDayMinor: try minor(l.perDay, "perDay"), perMonthMinor: try minor(l.perMonth, "perMonth"))
        }
        var fees: [String: FeeRule] = [:]
        for (channel, f) in file.fees ?? [:] {
            func minor(_ text: String?, _ field: String) throws -> Int64? {
                guard let text else { return nil }
                do { return try MoneyFormat.parse(text, field: "fees.\(channel).\(field)") } catch { throw Problem(description: "\(error)") }
            }
            let rule = FeeRule(aboveMinor: try minor(f.above, "above") ?? 0, rateBasisPoints: f.rateBasisPoints ?? 0,
                               fixedMinor: try minor(f.fixed, "fixed") ?? 0, minMinor: try minor(f.min, "min") ?? 0,
                               maxMinor: try minor(f.max, "max"))
            do { fees[channel] = try rule.validated(channel: channel) } catch { throw Problem(description: error.detail) }
        }
        return (channels, file.bank, limits, fees)
    }
}
