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
    static func deliver(_ api: APIFixture, gateway: String, rechargeId: String, amountFen: Int? = nil,
                        payer: String? = nil) async throws -> APIResponse {
        var request: [String: Any] = ["out_trade_no": rechargeId, "timestamp": api.env.clock.nowMicros() / 1_000_000]
        if let amountFen { request["amount"] = amountFen }
        if let payer { request["payer"] = payer }
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

    /// Orders `count` recharges of `amount` and pays each from its own payer (openids `payer-0` …); returns the order ids.
    static func payFromDistinctPayers(_ api: APIFixture, gateway: String, count: Int, amount: String,
                                      firstPayer: Int = 0) async throws -> [String] {
        var ids: [String] = []
        for i in 0..<count {
            let created = try await api.post("/v1/accounts/\(api.accountId)/recharges", key: api.ownerKey,
                                             #"{"amount":"\#(amount)","channel":"wechatpay"}"#)
            let id = try #require(created.string("id"), "\(created.text)")
            let paid = try await deliver(api, gateway: gateway, rechargeId: id, payer: "payer-\(firstPayer + i)")
            #expect(paid.string("status") == "credited", "\(paid.text)")
            ids.append(id)
        }
        return ids
    }

    @Test("R7 a sixth payer in 24 h is refused: nothing credited, the whole payment returned through WeChat Pay's refund API once; a known payer still pays",
          arguments: Backend.available)
    func r7SixthPayerRefunded(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            _ = try await Self.payFromDistinctPayers(api, gateway: gateway, count: 5, amount: "10.00")
            let sixth = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"20.00","channel":"wechatpay"}"#)
            let sixthId = try #require(sixth.string("id"))
            let refused = try await Self.deliver(api, gateway: gateway, rechargeId: sixthId, payer: "payer-new")
            // Handled for good: WeChat Pay gets a 200 and stops notifying.
            #expect(refused.status == 200, "\(refused.text)")
            #expect(refused.string("status") == "refused")
            #expect(try await api.env.engine.recharges.refunds.processDue() == 1)
            #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey).string("balance") == "50.00")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/recharges/\(sixthId)", key: api.ownerKey).string("state") == "refused")

            let refunds = try await api.call(.get, "/v1/accounts/\(a)/channel-refunds", key: api.financeKey)
            let items = try #require(refunds.json["items"] as? [[String: Any]])
            #expect(items.count == 1)
            #expect(items.first?["rechargeId"] as? String == sixthId)
            #expect(items.first?["amount"] as? String == "20.00")
            #expect(items.first?["state"] as? String == "succeeded")
            #expect((items.first?["channelRefundNo"] as? String)?.hasPrefix("5030") == true)
            #expect(items.first?["purpose"] as? String == "payer_limit")

            // WeChat Pay repeats the notification: still refused, no second refund asked for.
            #expect(try await Self.deliver(api, gateway: gateway, rechargeId: sixthId, payer: "payer-new").string("status") == "refused")
            #expect(try await Interop.post(gateway + "/fake/stats", [:])["refund_calls"] as? Int == 1)

            // A payer already seen in the window is not a new one.
            let known = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"1.00","channel":"wechatpay"}"#)
            let knownId = try #require(known.string("id"))
            #expect(try await Self.deliver(api, gateway: gateway, rechargeId: knownId, payer: "payer-3").string("status") == "credited")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey).string("balance") == "51.00")
            let messages = try await api.call(.get, "/v1/accounts/\(a)/messages", key: api.financeKey).text
            #expect(messages.contains("recharge_refused") && messages.contains("channel_refund_succeeded"))
            #expect(try await api.env.store.verify().isEmpty)

            // A day later the window has moved on: a new payer is welcome again.
            api.env.clock.advance(seconds: 86_401)
            _ = try await Self.payFromDistinctPayers(api, gateway: gateway, count: 1, amount: "2.00", firstPayer: 100)
        }
    }

    @Test("R7 a refund WeChat Pay cannot take at once is retried with the same number, then followed while PROCESSING until SUCCESS",
          arguments: Backend.available)
    func r7RefundRetriedAndFollowed(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            _ = try await Self.payFromDistinctPayers(api, gateway: gateway, count: 5, amount: "1.00")
            _ = try await Interop.post(gateway + "/fake/refund-mode", ["status": "PROCESSING", "fail_next": 1])
            let sixth = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"7.00","channel":"wechatpay"}"#)
            let sixthId = try #require(sixth.string("id"))
            #expect(try await Self.deliver(api, gateway: gateway, rechargeId: sixthId, payer: "payer-x").string("status") == "refused")
            var refund = try #require(try await api.env.store.channelRefunds(accountId: a, states: [], limit: 10).first)
            #expect(refund.state == .pending && refund.attempts == 0)
            #expect(try await api.env.engine.recharges.refunds.processDue() == 0)
            refund = try #require(try await api.env.store.channelRefund(id: refund.id))
            #expect(refund.state == .pending)
            #expect(refund.lastError?.contains("SYSTEM_ERROR") == true)
            #expect(refund.attempts == 1)

            // Not due yet: the jobs loop leaves it alone.
            #expect(try await api.env.engine.jobs.runOnce().refundsFinished == 0)
            #expect(try await Interop.post(gateway + "/fake/stats", [:])["refund_calls"] as? Int == 1)
            api.env.clock.advance(seconds: ChannelRefundService.firstBackoffSeconds)
            #expect(try await api.env.engine.jobs.runOnce().refundsFinished == 0)
            refund = try #require(try await api.env.store.channelRefund(id: refund.id))
            #expect(refund.state == .processing)
            api.env.clock.advance(seconds: 2 * ChannelRefundService.firstBackoffSeconds)
            #expect(try await api.env.engine.jobs.runOnce().refundsFinished == 1)
            refund = try #require(try await api.env.store.channelRefund(id: refund.id))
            #expect(refund.state == .succeeded)
            #expect(refund.resolvedAtMicros != nil)
            let stats = try await Interop.post(gateway + "/fake/stats", [:])
            #expect(stats["refund_calls"] as? Int == 2)
            #expect(stats["refund_queries"] as? Int == 1)
            #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey).string("balance") == "5.00")
            // Finance's list of refunds in flight or failed is empty again.
            let open = try await api.call(.get, "/v1/operator/channel-refunds", key: api.platformKey)
            #expect((open.json["items"] as? [Any])?.isEmpty == true, "\(open.text)")
        }
    }

    @Test("R7 a refund WeChat Pay closes for good ends as failed, with the reason, for finance to handle", arguments: Backend.available)
    func r7RefundClosed(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            _ = try await Self.payFromDistinctPayers(api, gateway: gateway, count: 5, amount: "1.00")
            _ = try await Interop.post(gateway + "/fake/refund-mode", ["status": "CLOSED"])
            let sixth = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"3.00","channel":"wechatpay"}"#)
            let sixthId = try #require(sixth.string("id"))
            #expect(try await Self.deliver(api, gateway: gateway, rechargeId: sixthId, payer: "payer-y").string("status") == "refused")
            #expect(try await api.env.engine.recharges.refunds.processDue() == 1)
            let failed = try await api.call(.get, "/v1/operator/channel-refunds?state=failed", key: api.platformKey)
            let items = try #require(failed.json["items"] as? [[String: Any]])
            #expect(items.count == 1)
            #expect((items.first?["lastError"] as? String)?.contains("CLOSED") == true)
            // A customer key cannot read finance's list.
            #expect(try await api.call(.get, "/v1/operator/channel-refunds", key: api.ownerKey).status == 403)
            #expect(try await api.call(.get, "/v1/operator/channel-refunds?state=nope", key: api.platformKey).status == 400)
        }
    }

    @Test("WeChat Pay platform certificates: a notification signed with a rotated key is refused until the certificates are downloaded, then credited; a certificate not sealed with the APIv3 key is never trusted",
          arguments: Backend.available)
    func platformCertificateRotation(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            let created = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"6.00","channel":"wechatpay"}"#)
            let rechargeId = try #require(created.string("id"))
            let rotated = try #require(try await Interop.post(gateway + "/fake/rotate", [:])["serial"] as? String)
            let before = try await Self.deliver(api, gateway: gateway, rechargeId: rechargeId)
            #expect(before.status == 401 && before.code == "notification_signature_invalid")

            let lines = await api.env.engine.recharges.refreshChannelCredentials(force: true)
            #expect(lines.contains { $0.contains(rotated) && $0.contains("PLATFORM-SERIAL-1") }, "\(lines)")
            #expect(try await Interop.post(gateway + "/fake/stats", [:])["certificate_calls"] as? Int == 1)
            // Not due again for twelve hours.
            #expect(await api.env.engine.recharges.refreshChannelCredentials().isEmpty)
            let after = try await Self.deliver(api, gateway: gateway, rechargeId: rechargeId)
            #expect(after.status == 200 && after.string("status") == "credited", "\(after.text)")

            // A certificate encrypted with another key than the merchant's APIv3 key is a forgery: nothing is installed.
            let second = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"1.00","channel":"wechatpay"}"#)
            let secondId = try #require(second.string("id"), "\(second.text)")
            let forged = try #require(try await Interop.post(gateway + "/fake/rotate",
                                                             ["encrypt_with": "ffffffffffffffffffffffffffffffff"])["serial"] as? String)
            let refused = await api.env.engine.recharges.refreshChannelCredentials(force: true)
            #expect(!refused.contains { $0.contains(forged) })
            // A failed download is tried again after 15 minutes, not at every turn of the jobs loop.
            #expect(await api.env.engine.recharges.refreshChannelCredentials().isEmpty)
            #expect(try await Interop.post(gateway + "/fake/stats", [:])["certificate_calls"] as? Int == 2)
            api.env.clock.advance(seconds: RechargeService.credentialRetrySeconds)
            _ = await api.env.engine.recharges.refreshChannelCredentials()
            #expect(try await Interop.post(gateway + "/fake/stats", [:])["certificate_calls"] as? Int == 3)
            let forgedPay = try await Self.deliver(api, gateway: gateway, rechargeId: secondId)
            #expect(forgedPay.status == 401)
            // Answers signed with the forged key are not believed either: a new order cannot be opened through it.
            let third = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"1.00","channel":"wechatpay"}"#)
            #expect(third.status == 502, "\(third.text)")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey).string("balance") == "6.00")
        }
    }
}
