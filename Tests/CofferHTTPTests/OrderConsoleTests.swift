import CofferCore
import CofferServices
import CofferTestSupport
import Foundation
import Testing

/// The console's 订单 / Orders and 优惠券 / Coupons pages and the desk's order, coupon and webhook pages on both databases.
@Suite("Console: orders, coupons, webhooks")
struct OrderConsoleTests {
    static func seed(_ f: ConsoleFixture) async throws -> (OrderRecord, OrderRecord, CouponRecord) {
        let engine = f.env.engine
        _ = try await engine.products.put(id: "cvm", ProductInput(nameZh: "云服务器", nameEn: "Cloud server", settlementCycle: "hourly",
                                                                taxCategory: "cloud_service", plans: [(specification: "2c4g", monthlyPrice: "100.00")]),
                                          actor: "test")
        _ = try await f.env.submit(.adjust(accountId: f.accountId, bucket: .cash, deltaMinor: 100_000, reason: "funding"))
        func order(_ key: String) async throws -> OrderRecord {
            try await engine.orders.create(accountId: f.accountId, OrderInput(type: "new", productId: "cvm", specification: "2c4g", durationMonths: 1),
                                           idempotencyKey: key).0
        }
        let coupon = try await engine.coupons.grant(CouponInput(kind: "cash", value: "50.00", threshold: "150.00",
                                                                validUntilMicros: f.env.clock.nowMicros() + 86_400_000_000 * 30),
                                                    accountIds: [f.accountId], codeCount: nil, idempotencyKey: "g", actor: "test").0.coupons[0]
        return (try await order("o-1"), try await order("o-2"), coupon)
    }

    @Test("O1 C6 C8 the customer ticks two orders, sees the coupon's threshold met by their sum in the preview, pays, and cancels another",
          arguments: Backend.available)
    func payFromConsole(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let (a, b, coupon) = try await Self.seed(f)
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            let list = try await web.request(.get, "/orders?state=unpaid")
            #expect(list.status == 200 && list.text.contains("pick-\(a.id)") && list.text.contains("云服务器"), "\(list.text.prefix(400))")
            // One order alone does not reach the 150.00 threshold: the coupon says why.
            let single = try await web.request(.get, "/orders/checkout?order_\(a.id)=on")
            #expect(single.status == 200 && single.text.contains("未达到使用门槛"), "\(single.text.suffix(1500))")
            let both = try await web.request(.get, "/orders/checkout?order_\(a.id)=on&order_\(b.id)=on&coupon_\(coupon.id)=on")
            #expect(both.text.contains("id=\"sum-coupon\">¥50.00") && both.text.contains("id=\"sum-wallet\">¥150.00"), "\(both.text.suffix(1500))")
            let paid = try await web.request(.post, "/orders/pay", form: ["csrf": web.csrf, "idem": web.field("idem"), "order_\(a.id)": "on",
                                                                          "order_\(b.id)": "on", "coupon_\(coupon.id)": "on"])
            #expect(paid.headers[.location] == "/orders?notice=notice_orders_paid", "\(paid.text.prefix(400))")
            #expect(try await f.env.wallet(f.accountId).frozenMinor == 15_000)
            #expect(try await web.request(.get, "/orders?state=paid").text.contains("已支付，交付中"))
            #expect(try await web.request(.get, "/coupons?state=used").text.contains("现金券"))

            let c = try await f.env.engine.orders.create(accountId: f.accountId, OrderInput(type: "new", productId: "cvm", specification: "2c4g",
                                                                                           durationMonths: 1), idempotencyKey: "o-3").0
            let page = try await web.request(.get, "/orders")
            let cancelled = try await web.request(.post, "/orders/\(c.id)/cancel", form: ["csrf": web.csrf, "idem": web.field("idem")])
            #expect(page.status == 200 && cancelled.headers[.location] == "/orders?notice=notice_order_cancelled")
            #expect(try await f.env.engine.orders.order(accountId: f.accountId, id: c.id).state == .cancelled)
            #expect(try await web.request(.post, "/orders/\(c.id)/cancel", form: ["csrf": "forged"]).status == 403)

            let member = WebSession(f.client)
            _ = try await member.signIn(try await f.user(.member), "correct horse battery")
            for path in ["/orders", "/coupons", "/renewals", "/orders/checkout?order_\(a.id)=on"] { #expect(try await member.request(.get, path).status == 403, "\(path)") }
        }
    }

    @Test("O8 a refund made by the provider shows in 退订记录; without self-service the console's refund is refused", arguments: Backend.available)
    func refundRecords(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let (a, _, _) = try await Self.seed(f)
            _ = try await f.env.engine.orders.pay(accountId: f.accountId, orderIds: [a.id], couponIds: [], idempotencyKey: "p", actor: "test")
            _ = try await f.env.engine.orders.resolve(accountId: f.accountId, orderId: a.id, delivered: true, idempotencyKey: "d", actor: "test",
                                                      resourceId: "vm-9")
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            let renewals = try await web.request(.get, "/renewals")
            #expect(renewals.text.contains("vm-9") && !renewals.text.contains("refund-vm-9"))
            #expect(try await web.request(.post, "/renewals/vm-9/refund", form: ["csrf": web.csrf, "idem": "x"]).status == 403)
            // O3: a manual renewal submitted twice with the page's key makes one renewal order, then the checkout.
            for _ in 0..<2 {
                let renew = try await web.request(.post, "/renewals/vm-9/renew", form: ["csrf": web.csrf, "idem": "renew-once", "months": "3"])
                #expect(renew.headers[.location]?.hasPrefix("/orders/checkout?order_") == true, "\(renew.text.prefix(300))")
            }
            let renewalOrders = try await f.env.store.orders(OrderQuery(accountId: f.accountId)).filter { $0.type == .renewal }
            #expect(renewalOrders.count == 1 && renewalOrders[0].durationMonths == 3 && renewalOrders[0].dueMinor == 30_000)
            f.env.clock.advance(seconds: 86_400)
            _ = try await f.env.engine.orders.refundResource(accountId: f.accountId, resourceId: "vm-9", reason: "退订测试", idempotencyKey: "r", actor: "test")
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")  // the day moved: a new session
            let page = try await web.request(.get, "/refund-records")
            #expect(page.status == 200 && page.text.contains("vm-9") && page.text.contains("退订测试"), "\(page.text.suffix(1200))")
        }
    }

    @Test("C6 a code is redeemed on the coupons page; a wrong one says what to check", arguments: Backend.available)
    func redeemFromConsole(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let codes = try await f.env.engine.coupons.grant(CouponInput(kind: "voucher", value: "8.00", validUntilMicros: f.env.clock.nowMicros() + 86_400_000_000),
                                                             accountIds: [], codeCount: 1, idempotencyKey: "b", actor: "test").0.codes
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            try await web.request(.get, "/coupons")
            let wrong = try await web.request(.post, "/coupons/redeem", form: ["csrf": web.csrf, "idem": web.field("idem"), "code": "ZZZZZZZZ"])
            #expect(wrong.status == 404 && wrong.text.contains("没有匹配的优惠券兑换码"))
            try await web.request(.get, "/coupons")
            let ok = try await web.request(.post, "/coupons/redeem", form: ["csrf": web.csrf, "idem": web.field("idem"), "code": codes[0].lowercased()])
            #expect(ok.headers[.location] == "/coupons?notice=notice_coupon_redeemed")
            #expect(try await web.request(.get, "/coupons").text.contains("¥8.00"))
        }
    }

    @Test("C6 N2 the desk grants a coupon from the account's orders page and registers a webhook endpoint (secret shown once)",
          arguments: Backend.available)
    func desk(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            _ = try await Self.seed(f)
            let op = try await f.env.engine.console.createOperator(email: "op@example.com", name: "Op", password: "operator password", actor: "test")
            let desk = WebSession(f.client)
            _ = try await desk.signIn(op.email, "operator password", desk: true)
            let page = try await desk.request(.get, "/desk/accounts/\(f.accountId)/orders")
            #expect(page.status == 200 && page.text.contains("id=\"desk-orders\""))
            let granted = try await desk.request(.post, "/desk/accounts/\(f.accountId)/coupons",
                                                 form: ["csrf": desk.csrf, "idem": desk.field("idem"), "kind": "voucher", "value": "12.00",
                                                        "validUntil": "2030-01-31", "singleUse": "on", "products": "cvm"])
            #expect(granted.headers[.location] == "/desk/accounts/\(f.accountId)/orders?notice=notice_coupon_granted", "\(granted.text.prefix(600))")
            #expect(try await f.env.engine.coupons.coupons(accountId: f.accountId).contains { $0.valueMinor == 1_200 && $0.conditions.productsIncluded == ["cvm"] })
            try await desk.request(.get, "/desk/webhooks")
            let registered = try await desk.request(.post, "/desk/webhooks", form: ["csrf": desk.csrf, "idem": desk.field("idem"),
                                                                                    "url": "https://provider.example/hook", "event_order_paid": "on"])
            #expect(registered.status == 201 && registered.text.contains("id=\"webhook-secret\">whsec_"), "\(registered.text.prefix(600))")
            let again = try await desk.request(.get, "/desk/webhooks")
            #expect(again.text.contains("provider.example") && !again.text.contains("whsec_"))
            let customer = WebSession(f.client)
            _ = try await customer.signIn(f.ownerEmail, "correct horse battery")
            #expect(try await customer.request(.get, "/desk/webhooks").status == 403)
        }
    }
}
