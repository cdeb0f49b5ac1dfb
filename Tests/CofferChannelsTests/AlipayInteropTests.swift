import CofferChannels
import CofferCore
import CofferServices
import CofferTestSupport
import Foundation
import Testing

@Suite("Alipay RSA2 against python-alipay-sdk (PyPI)", .enabled(if: Interop.python != nil))
struct AlipayInteropTests {
    static let appId = "2021000000000001"
    static let sellerId = "2088102177846880"
    static let now: Int64 = 1_795_000_000_000_000

    struct Fixture {
        let keys: [String: Any]
        let api: AlipayOpenAPI

        init() throws {
            keys = try Interop.run("alipay_tool.py", "keys")
            api = try AlipayOpenAPI(settings: AlipaySettings(
                appId: AlipayInteropTests.appId, appPrivateKeyPEM: keys["app_private_pem"] as! String,
                alipayPublicKeyPEM: keys["alipay_public_pem"] as! String, sellerId: AlipayInteropTests.sellerId))
        }

        func notification(amount: String = "100.00", micros: Int64 = AlipayInteropTests.now, status: String = "TRADE_SUCCESS",
                          appId: String = AlipayInteropTests.appId) throws -> [UInt8] {
            var request = keys
            request.merge(["app_id": AlipayInteropTests.appId, "seller_id": AlipayInteropTests.sellerId,
                           "out_trade_no": "rch_0000000000001", "total_amount": amount, "trade_no": "2026112322001400001",
                           "micros": micros, "trade_status": status, "notify_app_id": appId]) { $1 }
            return Array((try Interop.run("alipay_tool.py", "notify", request)["body"] as! String).utf8)
        }
    }

    @Test("R5 Coffer's RSA2 request signature equals python-alipay-sdk's over the same parameters")
    func requestSignature() throws {
        let f = try Fixture()
        let params = try f.api.signedRequest(
            method: "alipay.trade.precreate",
            bizContent: #"{"out_trade_no":"rch_0000000000001","subject":"账户充值 rch_0000000000001","total_amount":"100.00"}"#,
            nowMicros: Self.now, notifyURL: "https://coffer.example.com/v1/channels/alipay/notifications")
        #expect(params["timestamp"] == "2026-11-18 19:06:40")
        #expect(params["sign_type"] == "RSA2" && params["charset"] == "utf-8" && params["app_id"] == Self.appId)
        var request = f.keys
        request["app_id"] = Self.appId
        request["params"] = params
        let answer = try Interop.run("alipay_tool.py", "sign-request", request)
        #expect(answer["sign"] as? String == params["sign"])
    }

    @Test("R5 R7 a notification signed with python-alipay-sdk verifies to the recharge, Alipay's trade number, fen and the buyer")
    func notificationAccepted() throws {
        let f = try Fixture()
        let verified = try f.api.verifyPaymentNotification(body: try f.notification(amount: "1234.56"), nowMicros: Self.now)
        #expect(verified == VerifiedNotification(rechargeId: "rch_0000000000001", channelTradeNo: "2026112322001400001",
                                                 amountMinor: 123_456, payerId: "2088102177846875"))
    }

    enum Tamper: String, CaseIterable, Sendable {
        case amountChanged, signatureGarbled, signTypeRSA1, otherAppSigned, stale, future, tradeClosed, waitBuyerPay, otherApp, notAForm
    }

    @Test("R5 refused Alipay notifications: tampered, stale, unpaid, for another app", arguments: Tamper.allCases)
    func refused(_ tamper: Tamper) throws {
        let f = try Fixture()
        var body = try f.notification()
        var text: String { String(decoding: body, as: UTF8.self) }
        let expected: String
        switch tamper {
        case .amountChanged:
            body = Array(text.replacingOccurrences(of: "total_amount=100.00", with: "total_amount=1.00").utf8)
            expected = "notification_signature_invalid"
        case .signatureGarbled:
            body = Array(text.replacingOccurrences(of: "sign=", with: "sign=AAAA").utf8)
            expected = "notification_signature_invalid"
        case .signTypeRSA1:
            body = Array(text.replacingOccurrences(of: "sign_type=RSA2", with: "sign_type=RSA").utf8)
            expected = "notification_signature_invalid"
        case .otherAppSigned:
            let other = try Fixture()
            body = try other.notification()
            expected = "notification_signature_invalid"
        case .stale:
            body = try f.notification(micros: Self.now - (AlipayOpenAPI.maxNotificationAgeSeconds + 60) * 1_000_000)
            expected = "notification_stale"
        case .future:
            body = try f.notification(micros: Self.now + 3_600_000_000)
            expected = "notification_stale"
        case .tradeClosed:
            body = try f.notification(status: "TRADE_CLOSED")
            expected = "notification_not_success"
        case .waitBuyerPay:
            body = try f.notification(status: "WAIT_BUYER_PAY")
            expected = "notification_not_success"
        case .otherApp:
            body = try f.notification(appId: "2021000000009999")
            expected = "notification_malformed"
        case .notAForm:
            body = Array("%zz=1".utf8)
            expected = "notification_malformed"
        }
        let error = #expect(throws: CofferError.self) { try f.api.verifyPaymentNotification(body: body, nowMicros: Self.now) }
        #expect(error?.code.rawValue == expected)
    }

    @Test("Alipay keys are accepted as PEM or as the bare base64 Alipay's key tool prints; a bad key is named")
    func keyFormats() throws {
        let f = try Fixture()
        func bare(_ pem: String) -> String {
            pem.split(separator: "\n").filter { !$0.hasPrefix("-----") }.joined()
        }
        _ = try AlipayOpenAPI(settings: AlipaySettings(appId: Self.appId, appPrivateKeyPEM: bare(f.keys["app_private_pem"] as! String),
                                                       alipayPublicKeyPEM: bare(f.keys["alipay_public_pem"] as! String)))
        #expect(throws: AlipayOpenAPI.SettingsError.appKey) {
            try AlipayOpenAPI(settings: AlipaySettings(appId: Self.appId, appPrivateKeyPEM: "not a key",
                                                       alipayPublicKeyPEM: f.keys["alipay_public_pem"] as! String))
        }
        #expect(!AlipaySettings(appId: Self.appId, appPrivateKeyPEM: f.keys["app_private_pem"] as! String,
                                alipayPublicKeyPEM: "x").description.contains("PRIVATE"))
    }

    @Test("Alipay's signed response text is located exactly, even with braces inside strings")
    func rawResponseObject() {
        let body = Array(#"{"alipay_trade_query_response":{"code":"10000","msg":"{odd}","n":{"a":1}},"sign":"x"}"#.utf8)
        let raw = AlipayOpenAPI.rawObject(named: "alipay_trade_query_response", in: body)
        #expect(raw.map { String(decoding: $0, as: UTF8.self) } == #"{"code":"10000","msg":"{odd}","n":{"a":1}}"#)
    }
}
