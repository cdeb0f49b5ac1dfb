import CofferChannels
import CofferCore
import CofferServices
import CofferTestSupport
import Foundation
import Testing

/// An Alipay recharge end to end: Coffer creates the QR trade at a loopback Alipay gateway written with the PyPI package
/// `python-alipay-sdk`, the gateway's signed notification comes back through Coffer's notification route, is credited once
/// and answered `success` (R5); a lost notification is recovered by asking Alipay; arrears are repaid first (R9).
@Suite("Alipay recharge end to end against a python-alipay-sdk gateway", .serialized, .enabled(if: Interop.python != nil))
struct AlipayEndToEndTests {
    static let appId = "2021000000000001"
    static let sellerId = "2088102177846880"

    static func withGateway(_ backend: Backend, settings: CofferEngine.Settings = .init(),
                            _ test: @escaping @Sendable (APIFixture, String) async throws -> Void) async throws {
        let keys = try Interop.run("alipay_tool.py", "keys")
        let alipay = AlipaySettings(appId: appId, appPrivateKeyPEM: keys["app_private_pem"] as! String,
                                      alipayPublicKeyPEM: keys["alipay_public_pem"] as! String, sellerId: sellerId)
        var fake = keys
        fake["app_id"] = appId
        fake["seller_id"] = sellerId
        try await Interop.withFakeServer("alipay_fake.py", settings: fake) { gateway in
            try await APIFixture.run(backend, settings: settings, channels: { clock in
                [AlipayChannel(api: try AlipayOpenAPI(settings: alipay), gatewayURL: gateway + "/gateway.do",
                               notifyURL: "https://coffer.example.com/v1/channels/alipay/notifications", clock: clock)]
            }) { api in try await test(api, gateway) }
        }
    }

    /// Pays the trade at the gateway and returns the notification form Alipay would post.
    static func pay(_ api: APIFixture, gateway: String, rechargeId: String, amount: String? = nil,
                    buyer: String? = nil) async throws -> String {
        var request: [String: Any] = ["out_trade_no": rechargeId, "micros": api.env.clock.nowMicros()]
        if let amount { request["amount"] = amount }
        if let buyer { request["buyer_id"] = buyer }
        return try #require(try await Interop.post(gateway + "/fake/pay", request)["body"] as? String)
    }

    static func deliver(_ api: APIFixture, _ form: String) async throws -> APIResponse {
        try await api.call(.post, "/v1/channels/alipay/notifications", key: nil, body: form,
                           headers: ["Content-Type": "application/x-www-form-urlencoded; charset=utf-8"])
    }

    @Test("R5 an Alipay recharge: QR trade, notification credited once and answered success, replays change nothing",
          arguments: Backend.available)
    func recharge(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            let order = #"{"amount":"88.80","channel":"alipay"}"#
            let created = try await api.call(.post, "/v1/accounts/\(a)/recharges", key: api.ownerKey, idempotencyKey: "ali-1", body: order)
            #expect(created.status == 201, "\(created.text)")
            #expect(created.json["testChannel"] as? Bool == false)
            #expect(created.string("payment", "kind") == "qr")
            #expect(created.string("payment", "url")?.hasPrefix("https://qr.alipay.com/") == true)
            let rechargeId = try #require(created.string("id"))
            let replay = try await api.call(.post, "/v1/accounts/\(a)/recharges", key: api.ownerKey, idempotencyKey: "ali-1", body: order)
            #expect(replay.string("id") == rechargeId)
            #expect(try await Interop.post(gateway + "/fake/stats", [:])["precreate_calls"] as? Int == 1)

            let form = try await Self.pay(api, gateway: gateway, rechargeId: rechargeId)
            let first = try await Self.deliver(api, form)
            #expect(first.status == 200)
            #expect(first.text == "success")
            // Alipay posts again until it reads "success"; every repeat is a replay.
            let again = try await Self.deliver(api, form)
            #expect(again.status == 200 && again.text == "success")
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("balance") == "88.80")
            let credits = try await api.call(.get, "/v1/accounts/\(a)/transactions?type=recharge", key: api.financeKey)
            #expect((credits.json["items"] as? [Any])?.count == 1)
        }
    }

    @Test("R5 a tampered or wrong-amount Alipay notification is refused, never answered success, and credits nothing",
          arguments: Backend.available)
    func refusals(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            let created = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"50.00","channel":"alipay"}"#)
            let rechargeId = try #require(created.string("id"))
            let tampered = try await Self.pay(api, gateway: gateway, rechargeId: rechargeId)
                .replacingOccurrences(of: "total_amount=50.00", with: "total_amount=5000.00")
            let refused = try await Self.deliver(api, tampered)
            #expect(refused.status == 401 && refused.code == "notification_signature_invalid" && refused.text != "success")
            let wrongAmount = try await Self.deliver(api, try await Self.pay(api, gateway: gateway, rechargeId: rechargeId, amount: "0.01"))
            #expect(wrongAmount.status == 422 && wrongAmount.code == "amount_mismatch")
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("balance") == "0.00")
            let recharge = try await api.call(.get, "/v1/accounts/\(a)/recharges/\(rechargeId)", key: api.ownerKey)
            #expect(recharge.string("state") == "pending")
        }
    }

    @Test("R5 a lost Alipay notification: \"I have paid\" asks Alipay and credits once; the late notification is a replay",
          arguments: Backend.available)
    func lostNotification(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            let created = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"20.00","channel":"alipay"}"#)
            let rechargeId = try #require(created.string("id"))
            let unpaid = try await api.post("/v1/accounts/\(a)/recharges/\(rechargeId)/sync", key: api.ownerKey)
            #expect(unpaid.status == 200 && unpaid.string("state") == "pending")
            let late = try await Self.pay(api, gateway: gateway, rechargeId: rechargeId)
            let synced = try await api.post("/v1/accounts/\(a)/recharges/\(rechargeId)/sync", key: api.ownerKey)
            #expect(synced.status == 200 && synced.string("state") == "paid", "\(synced.text)")
            #expect(try await Self.deliver(api, late).text == "success")
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("balance") == "20.00")
        }
    }

    @Test("R5 expiry asks Alipay first: a paid order whose notification never came is credited, an unpaid one expires",
          arguments: Backend.available)
    func expiryQueriesFirst(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            let paid = try #require(try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey,
                                                       #"{"amount":"30.00","channel":"alipay"}"#).string("id"))
            let unpaid = try #require(try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey,
                                                         #"{"amount":"40.00","channel":"alipay"}"#).string("id"))
            _ = try await Self.pay(api, gateway: gateway, rechargeId: paid)
            api.env.clock.advance(seconds: 7_201)
            #expect(try await api.env.engine.recharges.expireDue() == 1)
            #expect(try await api.env.engine.store.recharge(id: paid)?.state == .paid)
            #expect(try await api.env.engine.store.recharge(id: unpaid)?.state == .expired)
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("balance") == "30.00")
        }
    }

    @Test("R9 an Alipay recharge with advance outstanding and arrears: arrears first, then the advance", arguments: Backend.available)
    func r9(backend: Backend) async throws {
        try await Self.withGateway(backend) { api, gateway in
            let a = api.accountId
            #expect(try await api.post("/v1/accounts/\(a)/advances", key: api.platformKey, #"{"amount":"500.00"}"#).status == 201)
            #expect(try await api.post("/v1/accounts/\(a)/charges", key: api.platformKey, #"{"amount":"600.00","mode":"postpaid"}"#).status == 201)
            let created = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"800.00","channel":"alipay"}"#)
            let rechargeId = try #require(created.string("id"))
            #expect(try await Self.deliver(api, try await Self.pay(api, gateway: gateway, rechargeId: rechargeId)).text == "success")
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            // −100.00 + 800.00 = 700.00, then 500.00 repays the advance → 200.00.
            #expect(wallet.string("balance") == "200.00")
            #expect(wallet.string("advanceOutstanding") == "0.00")
        }
    }

    @Test("R7 R4 a sixth Alipay buyer is refused and the whole payment, fee included, goes back through alipay.trade.refund; a failed try is retried with the same out_request_no",
          arguments: Backend.available)
    func r7SixthBuyerRefunded(backend: Backend) async throws {
        var settings = CofferEngine.Settings()
        settings.recharge.feeRules["alipay"] = FeeRule(rateBasisPoints: 60)
        try await Self.withGateway(backend, settings: settings) { api, gateway in
            let a = api.accountId
            for i in 0..<5 {
                let id = try #require(try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey,
                                                         #"{"amount":"10.00","channel":"alipay"}"#).string("id"))
                let form = try await Self.pay(api, gateway: gateway, rechargeId: id, buyer: "20881000000000\(i)")
                #expect(try await Self.deliver(api, form).text == "success")
            }
            // 100.00 with a 0.6 % fee: Alipay collects 100.60.
            let sixth = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"100.00","channel":"alipay"}"#)
            #expect(sixth.string("total") == "100.60")
            let sixthId = try #require(sixth.string("id"))
            _ = try await Interop.post(gateway + "/fake/refund-mode", ["fail_next": 1])
            let form = try await Self.pay(api, gateway: gateway, rechargeId: sixthId, buyer: "2088100000000099")
            // Handled for good: Alipay reads "success" and stops posting.
            #expect(try await Self.deliver(api, form).text == "success")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey).string("balance") == "50.00")
            #expect(try await api.env.engine.recharges.refunds.processDue() == 0)
            var refund = try #require(try await api.env.store.channelRefunds(accountId: a, states: [], limit: 10).first)
            #expect(refund.state == .pending && refund.amountMinor == 10_060 && refund.lastError?.contains("ACQ.SYSTEM_ERROR") == true)
            api.env.clock.advance(seconds: ChannelRefundService.firstBackoffSeconds)
            #expect(try await api.env.engine.jobs.runOnce().refundsFinished == 1)
            refund = try #require(try await api.env.store.channelRefund(id: refund.id))
            #expect(refund.state == .succeeded && refund.channelRefundNo == refund.id)
            // Asking again (a lost answer) is answered fund_change N and confirmed by the refund query: still one refund.
            let again = try await api.env.engine.recharges.refunds.process(
                ChannelRefundRecord(id: refund.id, accountId: a, rechargeId: sixthId, channel: "alipay",
                                    channelTradeNo: refund.channelTradeNo, purpose: .payerLimit, amountMinor: 10_060,
                                    orderTotalMinor: 10_060, nextAttemptAtMicros: 0, createdAtMicros: 0))
            #expect(again.state == .succeeded)
            let stats = try await Interop.post(gateway + "/fake/stats", [:])
            #expect(stats["refund_calls"] as? Int == 3)
            #expect(stats["refund_queries"] as? Int == 1)
            #expect(try await Self.deliver(api, form).text == "success")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/recharges/\(sixthId)", key: api.ownerKey).string("state") == "refused")
        }
    }
}
