import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

/// O8 and C7 on both databases: a refund (退订) gives back the unused share of what was paid, cash and gift in their own
/// shares, cash coupons but not vouchers or discounts, once.
@Suite("Refunds of prepaid resources")
struct RefundTests {
    static let day: Int64 = 86_400_000_000

    /// A one-month resource paid by `coupons` and the wallet, delivered; answers the account, the order and the term.
    static func bought(_ env: TestEnvironment, cash: Int64, gift: Int64, coupon: CouponInput?) async throws -> (String, OrderRecord, PrepaidTermRecord, CouponRecord?) {
        let account = try await OrderTests.setUp(env, cashMinor: cash, giftMinor: gift)
        var c: CouponRecord?
        if let coupon { c = try await OrderTests.grant(env, [account], coupon)[0] }
        let o = try await OrderTests.order(env, account)  // 100.00
        _ = try await OrderTests.pay(env, account, [o.id], c.map { [$0.id] } ?? [])
        let (delivered, _) = try await env.engine.orders.resolve(accountId: account, orderId: o.id, delivered: true, idempotencyKey: "d",
                                                                 actor: "test", resourceId: "vm-1")
        let term = try #require(try await env.store.prepaidTerm(accountId: account, resourceId: "vm-1"))
        return (account, delivered, term, c)
    }

    static func refund(_ env: TestEnvironment, _ account: String, key: String = UUID().uuidString) async throws -> ResourceRefundRecord {
        try await env.engine.orders.refundResource(accountId: account, resourceId: "vm-1", reason: "no longer needed", idempotencyKey: key, actor: "test").0
    }

    /// Moves the clock to `fraction` of the term used.
    static func use(_ env: TestEnvironment, _ term: PrepaidTermRecord, numerator: Int64, denominator: Int64) {
        let target = term.startsAtMicros + (term.expiresAtMicros - term.startsAtMicros) * numerator / denominator
        env.clock.advance(seconds: (target - env.clock.nowMicros()) / 1_000_000)
    }

    @Test("O8 the unused share comes back in the cash/gift shares that paid, rounded down; refunding twice is refused; the record is listed",
          arguments: Backend.available)
    func cashAndGift(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, order, term, _) = try await Self.bought(env, cash: 100_000, gift: 3_000, coupon: nil)
            #expect(order.giftMinor == 3_000 && order.cashMinor == 7_000)
            Self.use(env, term, numerator: 1, denominator: 4)
            let before = try await env.wallet(account)
            let key = UUID().uuidString
            let r = try await Self.refund(env, account, key: key)
            let unused = term.expiresAtMicros - env.clock.nowMicros(), length = term.expiresAtMicros - term.startsAtMicros
            #expect(r.cashMinor == Int64(Int128(7_000) * Int128(unused) / Int128(length)))
            #expect(r.giftMinor == Int64(Int128(3_000) * Int128(unused) / Int128(length)))
            #expect(r.cashMinor + r.giftMinor <= 7_500 && r.cashMinor + r.giftMinor >= 7_498)
            let after = try await env.wallet(account)
            #expect(after.cashMinor == before.cashMinor + r.cashMinor && after.giftMinor == before.giftMinor + r.giftMinor)
            #expect(try await env.store.prepaidTerm(accountId: account, resourceId: "vm-1")?.state == .reclaimed)
            // The same key replays; a second refund is refused and moves nothing.
            #expect(try await Self.refund(env, account, key: key) == r)
            #expect(await OrderTests.refusal { try await Self.refund(env, account) } == .resourceTermChanged)
            #expect(try await env.wallet(account) == after)
            #expect(try await env.store.resourceRefunds(accountId: account).map(\.id) == [r.id])
            // O8: the refund is also an order in the list: type refund, state refunded, carrying what went back.
            let refundOrders = try await env.store.orders(OrderQuery(accountId: account)).filter { $0.type == .refund }
            #expect(refundOrders.count == 1)
            let ro = try #require(refundOrders.first)
            #expect(ro.id == OrderRecord.refundOrderId(refundId: r.id) && ro.state == .refunded && ro.reference == r.id && ro.resourceId == "vm-1")
            #expect(ro.dueMinor == r.cashMinor + r.giftMinor && ro.cashMinor == r.cashMinor && ro.giftMinor == r.giftMinor && ro.couponMinor == 0)
            #expect(ro.termFromMicros == env.clock.nowMicros() && ro.termToMicros == term.expiresAtMicros && ro.durationMonths == 0)
            // It cannot be paid, cancelled or delivered.
            #expect(await OrderTests.refusal { try await OrderTests.pay(env, account, [ro.id]) } == .orderStateConflict)
            #expect(await OrderTests.refusal { try await env.engine.orders.resolve(accountId: account, orderId: ro.id, delivered: true,
                                                                                  idempotencyKey: UUID().uuidString, actor: "test") } == .orderStateConflict)
        }
    }

    @Test("C7 a cash coupon gets back its unused share; a voucher or a discount coupon does not", arguments: Backend.available)
    func coupons(backend: Backend) async throws {
        for kind in ["cash", "voucher", "discount"] {
            try await TestEnvironment.with(backend) { env in
                let input = kind == "discount"
                    ? CouponInput(kind: kind, percentOff: 40, validUntilMicros: env.clock.nowMicros() + 90 * Self.day)
                    : CouponInput(kind: kind, value: "40.00", singleUse: true, validUntilMicros: env.clock.nowMicros() + 90 * Self.day)
                let (account, order, term, coupon) = try await Self.bought(env, cash: 100_000, gift: 0, coupon: input)
                #expect(order.couponMinor == 4_000 && order.cashMinor == 6_000)
                Self.use(env, term, numerator: 1, denominator: 2)
                let r = try await Self.refund(env, account)
                let c = try #require(try await env.store.coupon(accountId: account, id: coupon!.id))
                if kind == "cash" {
                    #expect(r.cashCouponMinor >= 1_999 && r.cashCouponMinor <= 2_000)
                    #expect(c.storedState == .unused && c.remainingMinor == r.cashCouponMinor)
                } else {
                    #expect(r.cashCouponMinor == 0 && c.storedState == .used)
                }
                #expect(r.cashMinor >= 2_999 && r.cashMinor <= 3_000)
                let ro = try #require(try await env.store.order(accountId: account, id: OrderRecord.refundOrderId(refundId: r.id)))
                #expect(ro.couponMinor == r.cashCouponMinor && ro.dueMinor == r.cashMinor + r.giftMinor + r.cashCouponMinor)
            }
        }
    }

    @Test("O8 a term used up has nothing to refund; a resource without a term is not found", arguments: Backend.available)
    func nothing(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _, term, _) = try await Self.bought(env, cash: 100_000, gift: 0, coupon: nil)
            env.clock.advance(seconds: (term.expiresAtMicros - env.clock.nowMicros()) / 1_000_000 + 1)
            #expect(await OrderTests.refusal { try await Self.refund(env, account) } == .nothingToRefund)
            #expect(await OrderTests.refusal {
                try await env.engine.orders.refundResource(accountId: account, resourceId: "nope", reason: nil, idempotencyKey: "x", actor: "t")
            } == .resourceNotFound)
            #expect(try await env.store.resourceRefunds(accountId: account).isEmpty)
        }
    }
}
