import CofferChannels
import CofferCore
import CofferServices
import CofferTestSupport
import Foundation
import Testing

@Suite("Interoperability set-up")
struct InteropSetupTests {
    @Test("The interop tools are configured whenever the test command requires them")
    func toolsPresentWhenRequired() {
        if Interop.required { #expect(Interop.python != nil, "COFFER_TEST_PYTHON missing") }
    }
}

@Suite("WeChat Pay API v3 against wechatpayv3 (PyPI)", .enabled(if: Interop.python != nil))
struct WeChatPayInteropTests {
    static let apiV3Key = "0123456789abcdefghijklmnopqrstuv"
    static let now: Int64 = 1_795_000_000_000_000

    struct Fixture {
        let keys: [String: Any]
        let channel: WeChatPayV3Protocol

        init() throws {
            keys = try Interop.run("wechatpay_tool.py", "keys")
            channel = try WeChatPayV3Protocol(settings: WeChatPayV3Settings(
                merchantId: "1900000001", appId: "wxd678efh567hg6787", merchantSerialNo: "MERCHANT-SERIAL-1",
                merchantPrivateKeyPEM: keys["merchant_private_pem"] as! String, apiV3Key: WeChatPayInteropTests.apiV3Key,
                platformSerialNo: "PLATFORM-SERIAL-1", platformPublicKeyPEM: keys["platform_public_pem"] as! String))
        }

        func transaction(amountFen: Int = 10_000, state: String = "SUCCESS", mchid: String = "1900000001") -> [String: Any] {
            ["appid": "wxd678efh567hg6787", "mchid": mchid, "out_trade_no": "rch_0000000000001", "transaction_id": "4200000001202611230000000001",
             "trade_type": "NATIVE", "trade_state": state, "success_time": "2026-11-23T10:00:00+08:00",
             "amount": ["total": amountFen, "payer_total": amountFen, "currency": "CNY", "payer_currency": "CNY"]]
        }

        func notification(transaction: [String: Any]? = nil, timestampSeconds: Int64 = WeChatPayInteropTests.now / 1_000_000,
                          serial: String = "PLATFORM-SERIAL-1", apiV3Key: String = WeChatPayInteropTests.apiV3Key,
                          eventType: String = "TRANSACTION.SUCCESS") throws -> (headers: [String: String], body: [UInt8]) {
            let answer = try Interop.run("wechatpay_tool.py", "notify", [
                "platform_private_pem": keys["platform_private_pem"]!, "platform_public_pem": keys["platform_public_pem"]!,
                "apiv3_key": apiV3Key, "serial": serial, "timestamp": timestampSeconds, "event_type": eventType,
                "transaction": transaction ?? self.transaction(),
            ])
            return (answer["headers"] as! [String: String], Array((answer["body"] as! String).utf8))
        }
    }

    @Test("R5 Coffer's request signature verifies with the merchant key and equals wechatpayv3's own signer")
    func requestSignature() throws {
        let f = try Fixture()
        let body = #"{"appid":"wxd678efh567hg6787","mchid":"1900000001","description":"Coffer 充值","out_trade_no":"rch_0000000000001","amount":{"total":10000,"currency":"CNY"}}"#
        let header = try f.channel.authorization(method: "POST", pathAndQuery: "/v3/pay/transactions/native", body: Array(body.utf8),
                                                 timestamp: 1_795_000_000, nonce: "593BEC0C930BF1AFEB40B4A08C8FB242")
        let answer = try Interop.run("wechatpay_tool.py", "verify-request", [
            "authorization": header, "method": "POST", "path": "/v3/pay/transactions/native", "body": body,
            "merchant_public_pem": f.keys["merchant_public_pem"]!, "merchant_private_pem": f.keys["merchant_private_pem"]!,
        ])
        #expect(answer["schema"] as? String == "WECHATPAY2-SHA256-RSA2048")
        #expect(answer["valid"] as? Bool == true)
        #expect(answer["same_as_wechatpayv3"] as? Bool == true)
        let fields = answer["fields"] as! [String: String]
        #expect(fields["mchid"] == "1900000001" && fields["serial_no"] == "MERCHANT-SERIAL-1" && fields["timestamp"] == "1795000000")
        // A different body under the same header must not verify.
        let tampered = try Interop.run("wechatpay_tool.py", "verify-request", [
            "authorization": header, "method": "POST", "path": "/v3/pay/transactions/native",
            "body": body.replacingOccurrences(of: "10000", with: "1"), "merchant_public_pem": f.keys["merchant_public_pem"]!,
        ])
        #expect(tampered["valid"] as? Bool == false)
    }

    @Test("R5 a payment notification made with wechatpayv3 verifies and decrypts to the recharge, the trade number and fen")
    func notificationAccepted() throws {
        let f = try Fixture()
        let (headers, body) = try f.notification()
        let verified = try f.channel.verifyPaymentNotification(headers: headers, body: body, nowMicros: Self.now)
        #expect(verified == VerifiedNotification(rechargeId: "rch_0000000000001", channelTradeNo: "4200000001202611230000000001",
                                                 amountMinor: 10_000))
        // Header names arrive in any case over HTTP.
        let lower = Dictionary(uniqueKeysWithValues: headers.map { ($0.key.lowercased(), $0.value) })
        #expect(try f.channel.verifyPaymentNotification(headers: lower, body: body, nowMicros: Self.now).amountMinor == 10_000)
    }

    enum Tamper: String, CaseIterable, Sendable {
        case bodyChanged, stale, future, unknownSerial, otherAPIv3Key, notSuccessEvent, notPaidState, otherMerchant, signatureGarbled
    }

    @Test("R5 refused notifications: tampered, stale, unknown key, undecryptable, not a success, another merchant",
          arguments: Tamper.allCases)
    func notificationRefused(tamper: Tamper) throws {
        let f = try Fixture()
        let expected: String
        var headers: [String: String]
        var body: [UInt8]
        switch tamper {
        case .bodyChanged:
            (headers, body) = try f.notification()
            body = Array(String(decoding: body, as: UTF8.self).replacingOccurrences(of: "EV-2026-0001", with: "EV-2026-0002").utf8)
            expected = "notification_signature_invalid"
        case .stale:
            (headers, body) = try f.notification(timestampSeconds: Self.now / 1_000_000 - 301)
            expected = "notification_stale"
        case .future:
            (headers, body) = try f.notification(timestampSeconds: Self.now / 1_000_000 + 301)
            expected = "notification_stale"
        case .unknownSerial:
            (headers, body) = try f.notification(serial: "SOMEONE-ELSE")
            expected = "notification_signature_invalid"
        case .otherAPIv3Key:
            (headers, body) = try f.notification(apiV3Key: "vutsrqponmlkjihgfedcba9876543210")
            expected = "notification_malformed"
        case .notSuccessEvent:
            (headers, body) = try f.notification(eventType: "REFUND.SUCCESS")
            expected = "notification_not_success"
        case .notPaidState:
            (headers, body) = try f.notification(transaction: f.transaction(state: "NOTPAY"))
            expected = "notification_not_success"
        case .otherMerchant:
            (headers, body) = try f.notification(transaction: f.transaction(mchid: "1900000002"))
            expected = "notification_malformed"
        case .signatureGarbled:
            (headers, body) = try f.notification()
            headers["Wechatpay-Signature"] = String(headers["Wechatpay-Signature"]!.reversed())
            expected = "notification_signature_invalid"
        }
        #expect(throws: CofferError.self) { try f.channel.verifyPaymentNotification(headers: headers, body: body, nowMicros: Self.now) }
        do {
            _ = try f.channel.verifyPaymentNotification(headers: headers, body: body, nowMicros: Self.now)
        } catch {
            #expect(error.code.rawValue == expected)
        }
    }

    @Test("Settings never show their keys, and bad keys are refused at start")
    func settings() throws {
        let f = try Fixture()
        #expect(!f.channel.settings.description.contains("PRIVATE"))
        #expect(!f.channel.settings.description.contains(Self.apiV3Key))
        var bad = f.channel.settings
        bad.apiV3Key = "short"
        #expect(throws: WeChatPayV3Protocol.SettingsError.self) { try WeChatPayV3Protocol(settings: bad) }
        bad = f.channel.settings
        bad.merchantPrivateKeyPEM = "-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----"
        #expect(throws: WeChatPayV3Protocol.SettingsError.self) { try WeChatPayV3Protocol(settings: bad) }
    }
}
