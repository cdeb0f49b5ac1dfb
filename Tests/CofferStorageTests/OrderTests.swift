import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

/// Orders, merged payments and coupons on both databases (O1, O2, W7, C1–C8): through the services and the ledger
/// writer, with `coffer verify` clean after every test.
@Suite("Orders and coupons on SQLite and PostgreSQL")
struct OrderTests {
    static let day: Int64 = 86_400_000_000

    /// A catalog product with two plans and a funded account.
    static func setUp(_ env: TestEnvironment, cashMinor: Int64 = 100_000, giftMinor: Int64 = 0) async throws -> String {
        _ = try await env.engine.products.put(id: "cvm", ProductInput(
            nameZh: "云服务器", nameEn: "Cloud server", settlementCycle: "hourly", taxCategory: "cloud_service",
            plans: [(specification: "2c4g", monthlyPrice: "100.00"), (specification: "4c8g", monthlyPrice: "180.00")]), actor: "test")
        _ = try await env.engine.products.put(id: "cdb", ProductInput(
            nameZh: "云数据库", nameEn: "Cloud database", settlementCycle: "monthly", taxCategory: "cloud_service",
            plans: [(specification: "basic", monthlyPrice: "50.00")]), actor: "test")
        return try await env.fundedAccount(cashMinor: cashMinor, giftMinor: giftMinor)
    }

    static func order(_ env: TestEnvironment, _ account: String, product: String = "cvm", spec: String = "2c4g", months: Int = 1,
                      type: String = "new", couponsAllowed: Bool = true) async throws -> OrderRecord {
        try await env.engine.orders.create(accountId: account, OrderInput(type: type, productId: product, specification: spec,
                                                                          durationMonths: months, couponsAllowed: couponsAllowed),
                                           idempotencyKey: UUID().uuidString).0
    }

    static func grant(_ env: TestEnvironment, _ accounts: [String], _ input: CouponInput) async throws -> [CouponRecord] {
        try await env.engine.coupons.grant(input, accountIds: accounts, codeCount: nil, idempotencyKey: UUID().uuidString, actor: "test").0.coupons
    }

    static func voucher(_ env: TestEnvironment, value: String, kind: String = "voucher", singleUse: Bool = true,
                        threshold: String? = nil) -> CouponInput {
        CouponInput(kind: kind, value: value, singleUse: singleUse, threshold: threshold, validUntilMicros: env.clock.nowMicros() + 30 * day)
    }

    static func refusal(_ body: () async throws -> Any) async -> ErrorCode? { await refusalCode(body) }

    static func pay(_ env: TestEnvironment, _ account: String, _ orders: [String], _ coupons: [String] = [],
                    key: String = UUID().uuidString) async throws -> PaymentResult {
        try await env.engine.orders.pay(accountId: account, orderIds: orders, couponIds: coupons, idempotencyKey: key, actor: "test").0
    }

    @Test("O1 W7 an order priced from the catalog is paid with a coupon (the rest frozen), delivered (captured gift first), and shows how it was paid",
          arguments: Backend.available)
    func orderToDelivery(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let account = try await Self.setUp(env, cashMinor: 100_000, giftMinor: 5_000)
            let o = try await Self.order(env, account, spec: "4c8g", months: 3)
            #expect(o.listPriceMinor == 54_000 && o.dueMinor == 54_000 && o.state == .unpaid)
            #expect(o.expiresAtMicros == env.clock.nowMicros() + OrderRecord.defaultExpirySeconds * 1_000_000)
            let coupon = try await Self.grant(env, [account], Self.voucher(env, value: "40.00"))[0]
            let key = UUID().uuidString
            let paid = try await Self.pay(env, account, [o.id], [coupon.id], key: key)
            #expect(paid.payment.couponMinor == 4_000 && paid.payment.frozenMinor == 50_000)
            #expect(paid.wallet.frozenMinor == 50_000 && paid.wallet.balanceMinor == 105_000)
            // W10: the same key replays the payment.
            let (again, replayed) = try await env.engine.orders.pay(accountId: account, orderIds: [o.id], couponIds: [coupon.id],
                                                                    idempotencyKey: key, actor: "test")
            #expect(replayed && again.payment == paid.payment)
            let (delivered, _) = try await env.engine.orders.resolve(accountId: account, orderId: o.id, delivered: true,
                                                                     idempotencyKey: UUID().uuidString, actor: "test")
            #expect(delivered.state == .delivered && delivered.giftMinor == 5_000 && delivered.cashMinor == 45_000 && delivered.couponMinor == 4_000)
            let w = try await env.wallet(account)
            #expect(w == WalletBalances(cashMinor: 55_000, giftMinor: 0))
            #expect(try await env.store.coupon(accountId: account, id: coupon.id)?.storedState == .used)
            // W11: the coupon's part is on record (moving no wallet money), then the freeze, then the capture.
            let types = try await env.store.transactions(TransactionQuery(accountId: account)).map(\.movement.type)
            #expect(types.prefix(4) == [.deduction, .unfreeze, .freeze, .couponUse])
            // Delivering again is refused with the order's state.
            #expect(await Self.refusal { try await env.engine.orders.resolve(accountId: account, orderId: o.id, delivered: false,
                                                                            idempotencyKey: UUID().uuidString, actor: "test") } == .orderStateConflict)
        }
    }

    @Test("O1 O2 W3 bad input is refused with its code and writes nothing: unknown product or plan, another account's coupon, a cancelled or paid order, a shortfall",
          arguments: Backend.available)
    func badInput(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let account = try await Self.setUp(env, cashMinor: 20_000)
            let other = try await Self.setUp(env, cashMinor: 0)
            func create(_ product: String, _ spec: String, type: String = "new") async -> ErrorCode? {
                await Self.refusal { try await env.engine.orders.create(accountId: account, OrderInput(
                    type: type, productId: product, specification: spec, durationMonths: 1), idempotencyKey: UUID().uuidString) }
            }
            #expect(await create("nosuch", "2c4g") == .productNotFound)
            #expect(await create("cvm", "64c") == .planNotFound)
            #expect(await create("cvm", "2c4g", type: "renewal") == .invalidField)
            #expect(await Self.refusal { try await env.engine.orders.create(accountId: account, OrderInput(
                type: "new", productId: "cvm", specification: "2c4g", durationMonths: 61), idempotencyKey: UUID().uuidString) } == .invalidField)
            #expect(try await env.store.orders(OrderQuery(accountId: account)).isEmpty)

            let o = try await Self.order(env, account)
            let theirs = try await Self.grant(env, [other], Self.voucher(env, value: "10.00"))[0]
            let before = try await env.wallet(account)
            #expect(await Self.refusal { try await Self.pay(env, account, [o.id], [theirs.id]) } == .couponNotFound)
            #expect(await Self.refusal { try await Self.pay(env, account, ["ord_nosuch"]) } == .orderNotFound)
            #expect(await Self.refusal { try await Self.pay(env, account, [o.id, o.id]) } == .invalidField)
            #expect(try await env.wallet(account) == before)
            #expect(try await env.store.coupon(accountId: other, id: theirs.id)?.storedState == .unused)

            _ = try await env.engine.orders.cancel(accountId: account, orderId: o.id, idempotencyKey: UUID().uuidString)
            #expect(await Self.refusal { try await Self.pay(env, account, [o.id]) } == .orderStateConflict)
            #expect(await Self.refusal { try await env.engine.orders.cancel(accountId: account, orderId: o.id, idempotencyKey: UUID().uuidString) } == .orderStateConflict)

            let twice = try await Self.order(env, account)
            _ = try await Self.pay(env, account, [twice.id])
            #expect(await Self.refusal { try await Self.pay(env, account, [twice.id]) } == .orderStateConflict)

            // W3: more than available.
            let dear = try await Self.order(env, account, spec: "4c8g", months: 12)
            #expect(await Self.refusal { try await Self.pay(env, account, [dear.id]) } == .insufficientBalance)
            #expect(try await env.wallet(account).frozenMinor == 10_000)
        }
    }

    @Test("O2 an unpaid order expires after 15 days (the jobs loop), and cannot be paid from the moment it expires", arguments: Backend.available)
    func expiry(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let account = try await Self.setUp(env)
            let o = try await Self.order(env, account)
            let campaign = try await env.engine.orders.create(accountId: account, OrderInput(
                type: "new", productId: "cvm", specification: "2c4g", durationMonths: 1, campaignExpiresInSeconds: 3_600,
                campaignDiscountPercent: 20, couponsAllowed: false), idempotencyKey: UUID().uuidString).0
            #expect(campaign.discountMinor == 2_000 && campaign.dueMinor == 8_000)
            env.clock.advance(seconds: 3_600)
            #expect(await Self.refusal { try await Self.pay(env, account, [campaign.id]) } == .orderStateConflict)
            env.clock.advance(seconds: 15 * 86_400 - 3_600)
            let report = try await env.engine.jobs.runOnce()
            #expect(report.ordersExpired == 2)
            #expect(try await env.engine.orders.order(accountId: account, id: o.id).state == .expired)
            #expect(await Self.refusal { try await Self.pay(env, account, [o.id]) } == .orderStateConflict)
        }
    }

    @Test("C8 merged payment: a threshold is met by the sum of the orders, and the coupon is spread over them", arguments: Backend.available)
    func mergedThreshold(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let account = try await Self.setUp(env)
            let a = try await Self.order(env, account)                                  // 100.00
            let b = try await Self.order(env, account, product: "cdb", spec: "basic")   // 50.00
            let coupon = try await Self.grant(env, [account], Self.voucher(env, value: "120.00", threshold: "150.00"))[0]
            // Alone, neither order reaches 150.00.
            let preview = try await env.engine.orders.preview(accountId: account, orderIds: [a.id], couponIds: [coupon.id])
            #expect(preview.refusal?.code == .couponNotApplicable && preview.refusal?.parameters["condition"] == "threshold")
            #expect(preview.offers.first { $0.coupon.id == coupon.id }?.failure?.condition == .threshold)
            #expect(await Self.refusal { try await Self.pay(env, account, [a.id], [coupon.id]) } == .couponNotApplicable)
            let merged = try await env.engine.orders.preview(accountId: account, orderIds: [a.id, b.id], couponIds: [coupon.id])
            #expect(merged.refusal == nil && merged.plan?.couponMinor == 12_000 && merged.plan?.walletMinor == 3_000)
            let paid = try await Self.pay(env, account, [a.id, b.id], [coupon.id])
            #expect(paid.orders.map(\.couponMinor).reduce(0, +) == 12_000)
            #expect(paid.orders.map(\.frozenMinor).reduce(0, +) == 3_000)
            // W7 delivery fails for one order: its freeze is released, and the single-use coupon stays used by the other.
            let failing = paid.orders.first { $0.frozenMinor > 0 }!
            let (failed, _) = try await env.engine.orders.resolve(accountId: account, orderId: failing.id, delivered: false,
                                                                  idempotencyKey: UUID().uuidString, actor: "test")
            #expect(failed.state == .deliveryFailed)
            #expect(try await env.wallet(account).frozenMinor == 3_000 - failing.frozenMinor)
            #expect(try await env.store.coupon(accountId: account, id: coupon.id)?.storedState == .used)
            let other = paid.orders.first { $0.id != failing.id }!
            _ = try await env.engine.orders.resolve(accountId: account, orderId: other.id, delivered: false,
                                                    idempotencyKey: UUID().uuidString, actor: "test")
            // Neither order stands: the coupon is whole again, and the money all back.
            let back = try await env.store.coupon(accountId: account, id: coupon.id)
            #expect(back?.storedState == .unused && back?.remainingMinor == 12_000)
            #expect(try await env.wallet(account) == WalletBalances(cashMinor: 100_000))
        }
    }

    @Test("C2 C3 50 concurrent payments with one single-use coupon use it exactly once; a multi-use coupon is never spent past its value",
          arguments: Backend.available)
    func couponRaces(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let account = try await Self.setUp(env, cashMinor: 1_000_000)
            var orders: [String] = []
            for _ in 0..<100 { orders.append(try await Self.order(env, account).id) }
            let single = try await Self.grant(env, [account], Self.voucher(env, value: "30.00"))[0]
            let multi = try await Self.grant(env, [account], Self.voucher(env, value: "1000.00", kind: "cash", singleUse: false))[0]
            let results = await withTaskGroup(of: (Bool, ErrorCode?).self) { group in
                for (i, order) in orders.enumerated() {
                    group.addTask {
                        let coupon = i < 50 ? single.id : multi.id
                        do {
                            _ = try await Self.pay(env, account, [order], [coupon])
                            return (i < 50, nil)
                        } catch {
                            return (i < 50, (error as? CofferError)?.code)
                        }
                    }
                }
                var out: [(Bool, ErrorCode?)] = []
                for await r in group { out.append(r) }
                return out
            }
            let singleResults = results.filter(\.0)
            #expect(singleResults.filter { $0.1 == nil }.count == 1)
            #expect(singleResults.filter { $0.1 == .couponNotApplicable }.count == 49)
            // 1000.00 of cash coupon against 50 orders of 100.00: ten paid by it in full, the rest refused (used up).
            let multiResults = results.filter { !$0.0 }
            #expect(multiResults.filter { $0.1 == nil }.count == 10)
            let uses = try await withThrowingTaskGroup(of: [CouponUseRecord].self) { group in
                for o in orders { group.addTask { try await env.store.couponUses(accountId: account, orderId: o) } }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(uses.filter { $0.couponId == single.id }.map(\.amountMinor) == [3_000])
            #expect(uses.filter { $0.couponId == multi.id }.reduce(0) { $0 + $1.amountMinor } == 100_000)
            let m = try await env.store.coupon(accountId: account, id: multi.id)
            #expect(m?.remainingMinor == 0 && m?.storedState == .used)
        }
    }

    @Test("C6 a coupon code is redeemed once into one account; wrong codes count like recharge codes", arguments: Backend.available)
    func codes(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let account = try await Self.setUp(env)
            let other = try await Self.setUp(env)
            let (batch, _) = try await env.engine.coupons.grant(Self.voucher(env, value: "15.00"), accountIds: [], codeCount: 3,
                                                                idempotencyKey: UUID().uuidString, actor: "test")
            #expect(batch.codes.count == 3 && batch.codes.allSatisfy { $0.count == 8 } && batch.coupons.isEmpty)
            let code = batch.codes[0]
            let (coupon, replayed) = try await env.engine.coupons.redeem(accountId: account, typed: code.lowercased(), idempotencyKey: UUID().uuidString)
            #expect(!replayed && coupon.valueMinor == 1_500 && coupon.accountId == account)
            let (again, replayedAgain) = try await env.engine.coupons.redeem(accountId: account, typed: code, idempotencyKey: UUID().uuidString)
            #expect(replayedAgain && again.id == coupon.id)
            #expect(await Self.refusal { try await env.engine.coupons.redeem(accountId: other, typed: code, idempotencyKey: UUID().uuidString) } == .couponCodeRedeemed)
            for _ in 0..<4 {
                #expect(await Self.refusal { try await env.engine.coupons.redeem(accountId: other, typed: "ABCDEFGH", idempotencyKey: UUID().uuidString) } == .couponCodeNotFound)
            }
            #expect(await Self.refusal { try await env.engine.coupons.redeem(accountId: other, typed: batch.codes[1], idempotencyKey: UUID().uuidString) } == .codeAttemptsExceeded)
            #expect(try await env.store.coupons(accountId: other).isEmpty)
        }
    }
}
