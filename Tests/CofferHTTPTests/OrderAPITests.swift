import CofferCore
import CofferServices
import CofferTestSupport
import Foundation
import HTTPTypes
import Testing

/// The prepaid purchase flow through the API: the provider creates an order, the customer previews and pays it with a
/// coupon, the provider delivers; bad input is refused with its code; the sandbox clock expires an unpaid order.
@Suite("Orders API on SQLite and PostgreSQL")
struct OrderAPITests {
    static let product = #"{"name":{"zh":"云服务器","en":"Cloud server"},"settlementCycle":"hourly","taxCategory":"cloud_service","plans":{"2c4g":"100.00"}}"#

    static func setUp(_ api: APIFixture) async throws {
        #expect(try await api.call(.put, "/v1/operator/products/cvm", key: api.platformKey, body: product).status == 201)
        _ = try await api.post("/v1/accounts/\(api.accountId)/adjustments", key: api.platformKey, #"{"amount":"500.00","bucket":"cash","reason":"funding"}"#)
    }

    @Test("O1 W7 C6 C8 order → preview → pay with a coupon → deliver, through the API", arguments: Backend.available)
    func flow(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId, p = api.platformKey, f = api.financeKey
            try await Self.setUp(api)
            let until = RFC3339.format(micros: api.env.clock.nowMicros() + 86_400_000_000 * 30)
            let granted = try await api.post("/v1/operator/coupons", key: p,
                                             #"{"kind":"cash","value":"30.00","conditions":{"threshold":"200.00","productsIncluded":["cvm"]},"validUntil":"\#(until)","accountIds":["\#(a)"]}"#)
            #expect(granted.status == 201, "\(granted.text)")
            let couponId = try #require((granted.json["coupons"] as? [[String: Any]])?.first?["id"] as? String)
            let created = try await api.post("/v1/accounts/\(a)/orders", key: p,
                                             #"{"type":"new","productId":"cvm","specification":"2c4g","durationMonths":3,"reference":"PO-1"}"#)
            #expect(created.status == 201 && created.string("listPrice") == "300.00" && created.string("state") == "unpaid", "\(created.text)")
            let orderId = try #require(created.string("id"))
            #expect(try await api.post("/v1/accounts/\(a)/orders", key: api.ownerKey, #"{"type":"new","productId":"cvm","specification":"2c4g","durationMonths":1}"#).status == 403)

            let preview = try await api.post("/v1/accounts/\(a)/order-payments/preview", key: f, #"{"orderIds":["\#(orderId)"],"couponIds":["\#(couponId)"]}"#)
            #expect(preview.status == 200 && preview.json["payable"] as? Bool == true, "\(preview.text)")
            #expect(preview.string("byCoupon") == "30.00" && preview.string("byWallet") == "270.00" && preview.string("byCash") == "270.00")
            let offers = try #require(preview.json["coupons"] as? [[String: Any]])
            #expect(offers.count == 1 && offers[0]["applies"] as? Bool == true)

            let paid = try await api.call(.post, "/v1/accounts/\(a)/order-payments", key: f, idempotencyKey: "pay-1",
                                          body: #"{"orderIds":["\#(orderId)"],"couponIds":["\#(couponId)"]}"#)
            #expect(paid.status == 201 && paid.string("frozen") == "270.00" && paid.string("wallet", "frozen") == "270.00", "\(paid.text)")
            let replay = try await api.call(.post, "/v1/accounts/\(a)/order-payments", key: f, idempotencyKey: "pay-1",
                                            body: #"{"orderIds":["\#(orderId)"],"couponIds":["\#(couponId)"]}"#)
            #expect(replay.status == 200 && replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true" && replay.string("id") == paid.string("id"))
            let twice = try await api.call(.post, "/v1/accounts/\(a)/order-payments", key: f, idempotencyKey: "pay-2",
                                           body: #"{"orderIds":["\#(orderId)"]}"#)
            #expect(twice.status == 409 && twice.code == "order_state_conflict")

            #expect(try await api.call(.post, "/v1/accounts/\(a)/orders/\(orderId)/deliver", key: f, idempotencyKey: "d1").status == 403)
            let delivered = try await api.call(.post, "/v1/accounts/\(a)/orders/\(orderId)/deliver", key: p, idempotencyKey: "d1")
            #expect(delivered.status == 200 && delivered.string("state") == "delivered" && delivered.string("paidByCash") == "270.00")
            let shown = try await api.call(.get, "/v1/accounts/\(a)/orders/\(orderId)", key: f)
            let uses = try #require(shown.json["couponUses"] as? [[String: Any]])
            #expect(uses.count == 1 && uses[0]["amount"] as? String == "30.00" && shown.string("paidByCoupon") == "30.00")
            let list = try await api.call(.get, "/v1/accounts/\(a)/orders?state=delivered&productId=cvm", key: f)
            #expect((list.json["items"] as? [[String: Any]])?.count == 1)
            let used = try await api.call(.get, "/v1/accounts/\(a)/coupons?state=used", key: f)
            #expect((used.json["items"] as? [[String: Any]])?.first?["remaining"] as? String == "0.00")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: f).string("cash") == "230.00")
        }
    }

    @Test("O1 C6 bad input gets a 4xx with its code and writes nothing", arguments: Backend.available)
    func badInput(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId, p = api.platformKey, f = api.financeKey
            try await Self.setUp(api)
            func order(_ body: String) async throws -> (Int, String?) {
                let r = try await api.post("/v1/accounts/\(a)/orders", key: p, body)
                return (r.status, r.code)
            }
            let cases: [(String, Int, String)] = [
                (#"{"type":"new","productId":"nope","specification":"2c4g","durationMonths":1}"#, 404, "product_not_found"),
                (#"{"type":"new","productId":"cvm","specification":"64c","durationMonths":1}"#, 404, "plan_not_found"),
                (#"{"type":"new","productId":"cvm","specification":"2c4g","durationMonths":1.5}"#, 400, "invalid_field"),
                (#"{"type":"new","productId":"cvm","specification":"2c4g","durationMonths":0}"#, 400, "invalid_field"),
                (#"{"type":"gift","productId":"cvm","specification":"2c4g","durationMonths":1}"#, 400, "invalid_field"),
                (#"{"type":"refund","productId":"cvm","specification":"2c4g","durationMonths":1,"resourceId":"vm-1"}"#, 400, "invalid_field"),
                (#"{"type":"renewal","productId":"cvm","specification":"2c4g","durationMonths":1}"#, 400, "invalid_field"),
                (#"{"type":"new","productId":"cvm""#, 400, "malformed_json"),
            ]
            for (body, status, code) in cases {
                let (s, c) = try await order(body)
                #expect(s == status && c == code, "\(body) → \(s) \(c ?? "")")
            }
            let list = try await api.call(.get, "/v1/accounts/\(a)/orders", key: f)
            #expect((list.json["items"] as? [[String: Any]])?.isEmpty == true)
            let other = try await api.env.createAccount().accountId
            let stranger = try await api.post("/v1/accounts/\(other)/order-payments", key: api.ownerKey, #"{"orderIds":["ord_x"]}"#)
            #expect(stranger.status == 404 && stranger.code == "account_not_found")
            let tooMany = try await api.post("/v1/accounts/\(a)/order-payments", key: f, #"{"orderIds":[]}"#)
            #expect(tooMany.status == 400 && tooMany.code == "invalid_field")
            let until = RFC3339.format(micros: api.env.clock.nowMicros() + 86_400_000_000)
            for body in [#"{"kind":"voucher","validUntil":"\#(until)","accountIds":["\#(a)"]}"#,
                         #"{"kind":"voucher","value":"10.001","validUntil":"\#(until)","accountIds":["\#(a)"]}"#,
                         #"{"kind":"discount","percentOff":100,"validUntil":"\#(until)","accountIds":["\#(a)"]}"#,
                         #"{"kind":"voucher","value":"10.00","validUntil":"2020-01-01T00:00:00Z","accountIds":["\#(a)"]}"#,
                         #"{"kind":"voucher","value":"10.00","validUntil":"\#(until)"}"#,
                         #"{"kind":"voucher","value":"10.00","conditions":{"paymentType":"postpaid","scenarios":["new"]},"validUntil":"\#(until)","accountIds":["\#(a)"]}"#,
                         #"{"kind":"voucher","value":"10.00","conditions":{"paymentType":"postpaid","maxMonths":3},"validUntil":"\#(until)","accountIds":["\#(a)"]}"#] {
                let r = try await api.post("/v1/operator/coupons", key: p, body)
                #expect(r.status == 400, "\(body) → \(r.text)")
            }
            #expect((try await api.call(.get, "/v1/accounts/\(a)/coupons", key: f).json["items"] as? [[String: Any]])?.isEmpty == true)
        }
    }

    @Test("O2 the sandbox clock moves an unpaid order past its 15 days: the jobs loop expires it and paying is refused", arguments: Backend.available)
    func sandboxExpiry(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId, p = api.platformKey
            try await Self.setUp(api)
            let orderId = try #require(try await api.post("/v1/accounts/\(a)/orders", key: p,
                                                          #"{"type":"new","productId":"cvm","specification":"2c4g","durationMonths":1}"#).string("id"))
            let moved = try await api.call(.post, "/v1/sandbox/clock", key: p, idempotencyKey: "c1", body: #"{"advanceSeconds":1296000}"#)
            #expect(moved.status == 200)
            #expect(try await api.env.engine.jobs.runOnce().ordersExpired == 1)
            #expect(try await api.call(.get, "/v1/accounts/\(a)/orders/\(orderId)", key: api.financeKey).string("state") == "expired")
            let pay = try await api.post("/v1/accounts/\(a)/order-payments", key: api.financeKey, #"{"orderIds":["\#(orderId)"]}"#)
            #expect(pay.status == 409 && pay.code == "order_state_conflict")
        }
    }
}
