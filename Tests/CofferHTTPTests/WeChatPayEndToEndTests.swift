import CofferChannels
import CofferCore
import CofferServices
import CofferTestSupport
import Foundation
import Testing

/// A WeChat Pay recharge end to end: Coffer creates the Native order at a loopback WeChat Pay gateway written with the
/// PyPI package `wechatpayv3`, the gateway's payment notification comes back through Coffer's notification route and is
/// credited exactly once (R5), and money first repays arrears (R9).
@Suite("WeChat Pay recharge end to end against a wechatpayv3 gateway", .serialized, .enabled(if: Interop.python != nil))
struct WeChatPayEndToEndTests {
    static let apiV3Key = "0123456789abcdefghijklmnopqrstuv"

    /// Fresh merchant and platform keys, the loopback gateway running with them, and a channel factory pointed at it.
    static func withFakeGateway(_ body: (_ channel: @escaping (ManualClock) throws -> [any PaymentChannel], _ gateway: String) async throws -> Void) async throws {
        let keys = try Interop.run("wechatpay_tool.py", "keys")
        let settings = WeChatPayV3Settings(
            merchantId: "1900000001", appId: "wxd678efh567hg6787", merchantSerialNo: "MERCHANT-SERIAL-1",
            merchantPrivateKeyPEM: keys["merchant_private_pem"] as! String, apiV3Key: apiV3Key,
            platformSerialNo: "PLATFORM-SERIAL-1", platformPublicKeyPEM: keys["platform_public_pem"] as! String)
        try await Interop.withFakeServer("wechatpay_fake.py", settings: [
            "merchant_id": "1900000001", "app_id": "wxd678efh567hg6787", "merchant_public_pem": keys["merchant_public_pem"]!,
            "platform_private_pem": keys["platform_private_pem"]!, "platform_serial": "PLATFORM-SERIAL-1", "apiv3_key": apiV3Key,
        ]) { gateway in
            try await body({ clock in
                [WeChatPayChannel(wire: try WeChatPayV3Protocol(settings: settings), baseURL: gateway,
                                  notifyURL: "https://coffer.example.com/v1/channels/wechatpay/notifications", clock: clock)]
            }, gateway)
        }
    }

    static func withGateway(_ backend: Backend, _ test: @escaping @Sendable (APIFixture, String) async throws -> Void) async throws {
        try await withFakeGateway { channels, gateway in
            try await APIFixture.run(backend, channels: channels) { api in try await test(api, gateway) }
        }
    }

    /// The gateway's notification for an order, delivered to Coffer's route as WeChat Pay would.
    static func deliver(_ api: APIFixture, gateway: String, rechargeId: String, amountFen: Int? = nil) async throws -> APIResponse {
        var request: [String: Any] = ["out_trade_no": rechargeId, "timestamp": api.env.clock.nowMicros() / 1_000_000]
        if let amountFen { request["amount"] = amountFen }
        let notification = try await Interop.post(gateway + "/fake/pay", request)
        let headers = try #require(notification["headers"] as? [String: String])
        let body = try #require(notification["body"] as? String)
        return try await api.call(.post, "/v1/channels/wechatpay/notifications", key: nil, body: body, headers: headers)
    }

    @Test("R5 a WeChat Pay recharge: Native order with a QR code, notification credited once, replays change nothing",
          arguments: Backend.available)
    func recharge(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            let order = #"{"amount":"100.00","channel":"wechatpay"}"#
            let created = try await api.call(.post, "/v1/accounts/\(a)/recharges", key: api.ownerKey, idempotencyKey: "wx-order-1", body: order)
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["testChannel"] as? Bool == false)
            #expect(created.string("payment", "kind") == "qr")
            #expect(created.string("payment", "url")?.hasPrefix("weixin://wxpay/bizpayurl?pr=") == true)
            let rechargeId = try #require(created.string("id"))
            // A replayed create and a read of the pending order answer the stored order; WeChat Pay is asked once.
            let replay = try await api.call(.post, "/v1/accounts/\(a)/recharges", key: api.ownerKey, idempotencyKey: "wx-order-1", body: order)
            #expect(replay.string("id") == rechargeId)
            #expect(replay.headers[.init("Idempotent-Replayed")!] == "true")
            let pending = try await api.call(.get, "/v1/accounts/\(a)/recharges/\(rechargeId)", key: api.ownerKey)
            #expect(pending.string("payment", "url") == created.string("payment", "url"))
            #expect(try await Interop.post(gateway + "/fake/stats", [:])["native_calls"] as? Int == 1)

            let first = try await Self.deliver(api, gateway: gateway, rechargeId: rechargeId)
            #expect(first.status == 200, "\(first.text)")
            #expect(first.string("status") == "credited")
            // WeChat Pay retries until it sees success; every retry is a replay.
            let again = try await Self.deliver(api, gateway: gateway, rechargeId: rechargeId)
            #expect(again.status == 200)
            #expect(again.string("status") == "already_credited")

            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("balance") == "100.00")
            let recharge = try await api.call(.get, "/v1/accounts/\(a)/recharges/\(rechargeId)", key: api.ownerKey)
            #expect(recharge.string("state") == "paid")
        }
    }

    @Test("R5 a notification whose amount differs from the order is refused and credits nothing", arguments: Backend.available)
    func amountMismatch(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            let created = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"100.00","channel":"wechatpay"}"#)
            let rechargeId = try #require(created.string("id"))
            let wrong = try await Self.deliver(api, gateway: gateway, rechargeId: rechargeId, amountFen: 1)
            #expect(wrong.status == 422)
            #expect(wrong.code == "amount_mismatch")
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("balance") == "0.00")
        }
    }

    @Test("R9 a WeChat Pay recharge into arrears repays them first", arguments: Backend.available)
    func r9ArrearsFirst(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            let charge = try await api.post("/v1/accounts/\(a)/charges", key: api.platformKey, #"{"amount":"30.00","mode":"postpaid"}"#)
            #expect(charge.status == 201)
            let created = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"100.00","channel":"wechatpay"}"#)
            let rechargeId = try #require(created.string("id"))
            #expect(try await Self.deliver(api, gateway: gateway, rechargeId: rechargeId).status == 200)
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("balance") == "70.00")
        }
    }

    @Test("R5 a lost WeChat Pay notification: \"I have paid\" queries the order (signed GET) and credits once",
          arguments: Backend.available)
    func lostNotification(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            let created = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"12.34","channel":"wechatpay"}"#)
            let rechargeId = try #require(created.string("id"))
            let unpaid = try await api.post("/v1/accounts/\(a)/recharges/\(rechargeId)/sync", key: api.ownerKey)
            #expect(unpaid.status == 200 && unpaid.string("state") == "pending", "\(unpaid.text)")
            _ = try await Interop.post(gateway + "/fake/pay", ["out_trade_no": rechargeId, "timestamp": api.env.clock.nowMicros() / 1_000_000])
            let synced = try await api.post("/v1/accounts/\(a)/recharges/\(rechargeId)/sync", key: api.ownerKey)
            #expect(synced.string("state") == "paid", "\(synced.text)")
            #expect(try await Self.deliver(api, gateway: gateway, rechargeId: rechargeId).string("status") == "already_credited")
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("balance") == "12.34")
            #expect(try await Interop.post(gateway + "/fake/stats", [:])["query_calls"] as? Int == 2)
        }
    }
}
