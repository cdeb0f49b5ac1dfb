import CofferCore
import Testing

/// C1–C8 and W7 as pure decisions: which condition a coupon fails, how coupons stack and pay merged orders, and what a
/// failed delivery gives back. No database.
@Suite("Coupons and orders: the rules alone")
struct CouponRulesTests {
    static let now: Int64 = 1_800_000_000_000_000
    static let day: Int64 = 86_400_000_000

    static func order(_ id: String, product: String = "cvm", type: OrderType = .new, months: Int = 1, dueMinor: Int64 = 10_000,
                      couponsAllowed: Bool = true, account: String = "acc_1") -> OrderRecord {
        OrderRecord(id: id, accountId: account, type: type, productId: product, productVersion: 1, specification: "2c4g",
                    durationMonths: months, resourceId: nil, listPriceMinor: dueMinor, discountMinor: 0, couponsAllowed: couponsAllowed,
                    expiresAtMicros: now + 15 * day, createdAtMicros: now - day, reference: nil)
    }

    static func coupon(_ id: String, _ kind: CouponKind = .voucher, valueMinor: Int64? = 3_000, percentOff: Int? = nil,
                       singleUse: Bool = false, _ conditions: CouponConditions = CouponConditions(),
                       validFrom: Int64 = now - day, validUntil: Int64 = now + 30 * day) -> CouponRecord {
        CouponRecord(id: id, accountId: "acc_1", kind: kind, valueMinor: valueMinor, percentOff: percentOff, singleUse: singleUse,
                     conditions: conditions, validFromMicros: validFrom, validUntilMicros: validUntil, source: "test", createdAtMicros: now - day)
    }

    static func coupon(_ id: String, _ conditions: CouponConditions) -> CouponRecord { coupon(id, .voucher, conditions) }

    static var usedCoupon: CouponRecord {
        var c = coupon("used")
        c.storedState = .used
        return c
    }

    /// C2, C3, C5, C6: each condition, and the one a failing coupon names.
    static let conditionCases: [(String, CouponRecord, [OrderRecord], Bool, CouponCondition?)] = [
        ("no conditions", coupon("c"), [order("o1")], false, nil),
        ("C3 used", usedCoupon, [order("o1")], false, .used),
        ("C3 expired", coupon("c", validUntil: now), [order("o1")], false, .expired),
        ("C2 validity window not begun", coupon("c", validFrom: now + 1), [order("o1")], false, .notYetValid),
        ("C2 postpaid coupon on a prepaid order", coupon("c", CouponConditions(paymentType: .postpaid)), [order("o1")], false, .paymentType),
        ("C5 account in arrears", coupon("c"), [order("o1")], true, .arrears),
        ("O2 campaign order forbids coupons", coupon("c"), [order("o1", couponsAllowed: false)], false, .orderForbidsCoupons),
        ("C2 products included", coupon("c", CouponConditions(productsIncluded: ["cdb"])), [order("o1")], false, .product),
        ("C2 products included: match", coupon("c", CouponConditions(productsIncluded: ["cvm"])), [order("o1")], false, nil),
        ("C2 products excluded", coupon("c", CouponConditions(productsExcluded: ["cvm"])), [order("o1")], false, .product),
        ("C2 scenario renewal only", coupon("c", CouponConditions(scenarios: [.renewal])), [order("o1")], false, .scenario),
        ("C2 scenario matches", coupon("c", CouponConditions(scenarios: [.renewal])), [order("o1", type: .renewal)], false, nil),
        ("C2 duration above max", coupon("c", CouponConditions(maxMonths: 3)), [order("o1", months: 6)], false, .duration),
        ("C2 duration below min", coupon("c", CouponConditions(minMonths: 12)), [order("o1", months: 6)], false, .duration),
        ("C2 duration within", coupon("c", CouponConditions(minMonths: 1, maxMonths: 3)), [order("o1", months: 3)], false, nil),
        ("C2 threshold not reached", coupon("c", CouponConditions(thresholdMinor: 10_001)), [order("o1")], false, .threshold),
        ("C2 threshold reached exactly", coupon("c", CouponConditions(thresholdMinor: 10_000)), [order("o1")], false, nil),
        ("C8 threshold on the merged sum", coupon("c", CouponConditions(thresholdMinor: 15_000)), [order("o1"), order("o2", dueMinor: 5_000)], false, nil),
        ("C8 threshold counts the applicable part only",
         coupon("c", CouponConditions(productsIncluded: ["cvm"], thresholdMinor: 15_000)),
         [order("o1"), order("o2", product: "cdb", dueMinor: 5_000)], false, .threshold),
    ]

    @Test("C2 C3 C5 C6 each condition, and the condition a failing coupon names", arguments: 0..<conditionCases.count)
    func conditions(index: Int) {
        let (name, c, orders, arrears, expected) = Self.conditionCases[index]
        let result = CouponRules.applicableOrders(c, orders: orders, inArrears: arrears, now: Self.now)
        switch result {
        case .success: #expect(expected == nil, "\(name)")
        case .failure(let f): #expect(f.condition == expected, "\(name)")
        }
    }

    /// C4: stacking.
    static let stackingCases: [(String, [CouponRecord], Bool)] = [
        ("voucher + cash coupon combine", [coupon("v"), coupon("k", .cash)], true),
        ("two vouchers combine", [coupon("v1"), coupon("v2")], true),
        ("discount alone", [coupon("d", .discount, valueMinor: nil, percentOff: 20)], true),
        ("discount + voucher never", [coupon("d", .discount, valueMinor: nil, percentOff: 20), coupon("v")], false),
        ("discount + cash coupon never", [coupon("k", .cash), coupon("d", .discount, valueMinor: nil, percentOff: 20)], false),
    ]

    @Test("C4 discount coupons never combine with vouchers or cash coupons; vouchers and cash coupons do", arguments: 0..<stackingCases.count)
    func stacking(index: Int) {
        let (name, coupons, allowed) = Self.stackingCases[index]
        do {
            _ = try CouponRules.plan(orders: [Self.order("o1", dueMinor: 100_000)], coupons: coupons, paymentId: "p", inArrears: false, now: Self.now)
            #expect(allowed, "\(name)")
        } catch {
            #expect(!allowed && error.code == .couponsNotCombinable, "\(name)")
        }
    }

    @Test("C4 otherwise equal, the cash coupon is used first; C2 a single-use coupon forfeits its rest, a multi-use one keeps it")
    func cashFirstAndForfeit() throws {
        // 50.00 due; a voucher and a cash coupon of 30.00 each: the cash coupon pays 30.00, the voucher 20.00.
        let voucher = Self.coupon("a-voucher", valueMinor: 3_000, singleUse: true)
        let cash = Self.coupon("z-cash", .cash, valueMinor: 3_000)
        let plan = try CouponRules.plan(orders: [Self.order("o1", dueMinor: 5_000)], coupons: [voucher, cash], paymentId: "p",
                                        inArrears: false, now: Self.now)
        #expect(plan.uses.map(\.couponId) == ["z-cash", "a-voucher"])
        #expect(plan.uses.map(\.amountMinor) == [3_000, 2_000])
        #expect(plan.walletMinor == 0 && plan.couponMinor == 5_000)
        let after = Dictionary(uniqueKeysWithValues: plan.coupons.map { ($0.id, $0) })
        #expect(after["z-cash"]?.storedState == .used && after["z-cash"]?.remainingMinor == 0)
        // The single-use voucher is used up though 10.00 of it was not needed.
        #expect(after["a-voucher"]?.storedState == .used && after["a-voucher"]?.remainingMinor == 1_000)
        // A multi-use voucher keeps its rest for the next payment.
        let multi = try CouponRules.plan(orders: [Self.order("o1", dueMinor: 1_000)], coupons: [Self.coupon("m", valueMinor: 3_000)],
                                         paymentId: "p", inArrears: false, now: Self.now)
        #expect(multi.coupons[0].storedState == .unused && multi.coupons[0].remainingMinor == 2_000)
    }

    @Test("C1 a discount coupon takes its percentage of the applicable part, rounded down to the fen, at most its cap")
    func discount() throws {
        let d = Self.coupon("d", .discount, valueMinor: nil, percentOff: 15)
        // 15 % of 333.33 = 49.9995 → 49.99.
        let plan = try CouponRules.plan(orders: [Self.order("o1", dueMinor: 33_333)], coupons: [d], paymentId: "p", inArrears: false, now: Self.now)
        #expect(plan.couponMinor == 4_999 && plan.walletMinor == 28_334)
        let capped = Self.coupon("d", .discount, valueMinor: 1_000, percentOff: 50)
        let plan2 = try CouponRules.plan(orders: [Self.order("o1", dueMinor: 33_333)], coupons: [capped], paymentId: "p", inArrears: false, now: Self.now)
        #expect(plan2.couponMinor == 1_000)
        // Only the applicable order is discounted in a merged payment.
        let cvmOnly = Self.coupon("d", .discount, valueMinor: nil, percentOff: 10, CouponConditions(productsIncluded: ["cvm"]))
        let plan3 = try CouponRules.plan(orders: [Self.order("o1", dueMinor: 10_000), Self.order("o2", product: "cdb", dueMinor: 10_000)],
                                         coupons: [cvmOnly], paymentId: "p", inArrears: false, now: Self.now)
        #expect(plan3.lines.map(\.couponMinor) == [1_000, 0] && plan3.walletMinor == 19_000)
    }

    @Test("C2 a coupon never pays more than an order owes: no amount due is ever negative, and a coupon with nothing left to pay is refused")
    func neverNegative() throws {
        let big = Self.coupon("big", valueMinor: 1_000_000)
        let plan = try CouponRules.plan(orders: [Self.order("o1", dueMinor: 100), Self.order("o2", dueMinor: 1)], coupons: [big],
                                        paymentId: "p", inArrears: false, now: Self.now)
        #expect(plan.lines.allSatisfy { $0.walletMinor == 0 } && plan.couponMinor == 101)
        #expect(plan.coupons[0].remainingMinor == 1_000_000 - 101)
        do {
            _ = try CouponRules.plan(orders: [Self.order("o1", dueMinor: 100)], coupons: [Self.coupon("a", .cash), Self.coupon("b")],
                                     paymentId: "p", inArrears: false, now: Self.now)
            Issue.record("a second coupon with nothing left to pay was accepted")
        } catch {
            #expect(error.code == .couponNotApplicable && error.parameters["condition"] == "nothing_left" && error.parameters["coupon"] == "b")
        }
    }

    @Test("C2 C8 seeded property: for random orders and coupons, coupons + wallet = due on every order, nothing negative, no coupon past its value")
    func conservation() {
        let seed = UInt64.random(in: 1...UInt64.max)
        var rng = SeededRandom(seed: seed)
        for round in 0..<500 {
            let orders = (0..<Int(rng.next() % 4 + 1)).map {
                Self.order("o\($0)", product: ["cvm", "cdb"][Int(rng.next() % 2)], dueMinor: Int64(rng.next() % 100_000 + 1))
            }
            let coupons = (0..<Int(rng.next() % 3)).map { i in
                Self.coupon("c\(i)", rng.next() % 2 == 0 ? .cash : .voucher, valueMinor: Int64(rng.next() % 50_000 + 1),
                            singleUse: rng.next() % 2 == 0)
            }
            guard let plan = try? CouponRules.plan(orders: orders, coupons: coupons, paymentId: "p", inArrears: false, now: Self.now) else { continue }
            for (o, line) in zip(orders, plan.lines) {
                #expect(line.couponMinor + line.walletMinor == o.dueMinor && line.couponMinor >= 0 && line.walletMinor >= 0,
                        "seed \(seed) round \(round)")
            }
            for c in plan.coupons {
                let spent = plan.uses.filter { $0.couponId == c.id }.reduce(0) { $0 + $1.amountMinor }
                let before = coupons.first { $0.id == c.id }!
                #expect(spent <= before.remainingMinor && c.remainingMinor == before.remainingMinor - spent, "seed \(seed) round \(round)")
            }
        }
    }

    @Test("W7 C8 paying freezes what the wallet pays, one freeze per order; the coupon part is promotion expense paying revenue")
    func payDecision() throws {
        var s = LedgerSnapshot()
        s.wallets["acc_1"] = WalletBalances(cashMinor: 20_000, giftMinor: 1_000)
        s.orders[ObjectKey("acc_1", "o1")] = Self.order("o1", dueMinor: 10_000)
        s.orders[ObjectKey("acc_1", "o2")] = Self.order("o2", dueMinor: 5_000)
        s.coupons[ObjectKey("acc_1", "c")] = Self.coupon("c", .cash, valueMinor: 3_000)
        let d = try LedgerDecisions.decide(.payOrders(accountId: "acc_1", paymentId: "pay_1", orderIds: ["o1", "o2"], couponIds: ["c"]),
                                           actor: "test", in: s, nowMicros: Self.now)
        #expect(d.effect.movements.map(\.type) == [.couponUse, .freeze, .freeze])
        #expect(d.walletAfter.frozenMinor == 12_000 && d.walletAfter.balanceMinor == 21_000)
        #expect(d.effect.movements[0].books.revenue == 3_000 && d.effect.movements[0].books.giftExpense == -3_000)
        // Paying again, in the same batch or later: the orders are paid.
        var after = s
        after.apply(d)
        #expect(throws: CofferError.self) {
            try LedgerDecisions.decide(.payOrders(accountId: "acc_1", paymentId: "pay_2", orderIds: ["o1"], couponIds: []),
                                       actor: "test", in: after, nowMicros: Self.now)
        }
        // Delivery captures o1's freeze (gift first); failure of o2 releases its freeze.
        let delivered = try LedgerDecisions.decide(.deliverOrder(accountId: "acc_1", orderId: "o1"), actor: "test", in: after, nowMicros: Self.now)
        #expect(delivered.effect.movements.map(\.type) == [.unfreeze, .deduction])
        guard case let .orderChanged(o1, from: .paid)? = delivered.changes.last else { Issue.record("no order change"); return }
        #expect(o1.state == .delivered && o1.giftMinor == 1_000 && o1.cashMinor == 6_000 && o1.couponMinor == 3_000)
    }

    @Test("W7 C7 a failed delivery gives back what each coupon paid for that order; a single-use coupon is whole again once no order uses it")
    func giveBack() {
        let single = Self.coupon("s", valueMinor: 5_000, singleUse: true)
        var spent = single
        (spent.storedState, spent.remainingMinor) = (.used, 2_000)
        let whole = CouponRules.giveBack(spent, returning: 3_000, stillUsed: false)
        #expect(whole.storedState == .unused && whole.remainingMinor == 5_000)
        let stillUsed = CouponRules.giveBack(spent, returning: 1_000, stillUsed: true)
        #expect(stillUsed == spent)
        var multi = Self.coupon("m", valueMinor: 5_000)
        (multi.storedState, multi.remainingMinor) = (.used, 0)
        let back = CouponRules.giveBack(multi, returning: 2_000, stillUsed: true)
        #expect(back.storedState == .unused && back.remainingMinor == 2_000)
    }

    static let postpaid = CouponConditions(paymentType: .postpaid)

    /// C2, C4 for settlements: (name, coupons, deduction, in arrears, expected coupon → amount). Product "cvm" throughout.
    static let settlementCases: [(String, [CouponRecord], Int64, Bool, [String: Int64])] = [
        ("C2 a prepaid coupon never pays a settlement", [coupon("pre", valueMinor: 500)], 1_000, false, [:]),
        ("C2 a postpaid voucher pays up to its value", [coupon("v", valueMinor: 300, postpaid)], 1_000, false, ["v": 300]),
        ("C2 never more than the deduction (no negative amount due)", [coupon("v", valueMinor: 3_000, postpaid)], 1_000, false, ["v": 1_000]),
        ("C5 not for an account in arrears", [coupon("v", valueMinor: 300, postpaid)], 1_000, true, [:]),
        ("C2 products excluded", [coupon("v", valueMinor: 300, CouponConditions(productsExcluded: ["cvm"], paymentType: .postpaid))], 1_000, false, [:]),
        ("C2 products included", [coupon("v", valueMinor: 300, CouponConditions(productsIncluded: ["cvm"], paymentType: .postpaid))], 1_000, false, ["v": 300]),
        ("C2 threshold on the cycle's deduction", [coupon("v", valueMinor: 300, CouponConditions(paymentType: .postpaid, thresholdMinor: 1_001))], 1_000, false, [:]),
        ("C3 expired", [coupon("v", valueMinor: 300, postpaid, validUntil: now)], 1_000, false, [:]),
        ("C4 cash coupon before voucher, then soonest expiry",
         [coupon("v", valueMinor: 600, postpaid, validUntil: now + day), coupon("c", .cash, valueMinor: 600, postpaid),
          coupon("v2", valueMinor: 600, postpaid, validUntil: now + 2 * day)], 1_000, false, ["c": 600, "v": 400]),
        ("C4 discount alone when it takes off more than the amount coupons together",
         [coupon("d", .discount, valueMinor: nil, percentOff: 50, postpaid), coupon("v", valueMinor: 300, postpaid)], 1_000, false, ["d": 500]),
        ("C4 amount coupons when they take off at least as much as the best discount",
         [coupon("d", .discount, valueMinor: nil, percentOff: 30, postpaid), coupon("v", valueMinor: 300, postpaid)], 1_000, false, ["v": 300]),
        ("C2 a discount coupon's cap", [coupon("d", .discount, valueMinor: 100, percentOff: 50, postpaid)], 1_000, false, ["d": 100]),
        ("C2 a discount rounds down to the fen", [coupon("d", .discount, valueMinor: nil, percentOff: 33, postpaid)], 1, false, [:]),
    ]

    @Test("C2 C4 C5 which postpaid coupons pay a settled cycle, and how much each", arguments: 0..<settlementCases.count)
    func settlementPlan(index: Int) {
        let (name, coupons, deduction, arrears, expected) = Self.settlementCases[index]
        let (uses, after) = CouponRules.settlementPlan(deductionMinor: deduction, productId: "cvm", settlementId: "stl_1", chargeId: "chg_1",
                                                       coupons: coupons, inArrears: arrears, now: Self.now)
        #expect(Dictionary(uniqueKeysWithValues: uses.map { ($0.couponId, $0.amountMinor) }) == expected, "\(name)")
        #expect(uses.allSatisfy { $0.paymentId == "chg_1" && $0.orderId == "stl_1" })
        for c in after where c.kind != .discount {
            let before = coupons.first { $0.id == c.id }!
            #expect(c.remainingMinor == before.remainingMinor - expected[c.id]!, "\(name)")
        }
    }

    @Test("C2 W4 a settlement's deduction: coupons first (promotion expense → revenue), the rest charged even into arrears; coupons alone may pay it all")
    func settleChargeDecision() throws {
        var s = LedgerSnapshot()
        s.wallets["acc_1"] = WalletBalances(cashMinor: 200, giftMinor: 100)
        let v = Self.coupon("v", valueMinor: 400, singleUse: false, Self.postpaid)
        s.coupons[ObjectKey("acc_1", "v")] = v
        let d = try LedgerDecisions.decide(.settleCharge(accountId: "acc_1", chargeId: "chg_1", amountMinor: 1_000, productId: "cvm", settlementId: "stl_1"),
                                           actor: "system:settlement", in: s, nowMicros: Self.now)
        #expect(d.effect.movements.map(\.type) == [.couponUse, .deduction])
        #expect(d.walletAfter == WalletBalances(cashMinor: -300, giftMinor: 0))
        guard case let .chargeCreated(charge)? = d.changes.first else { Issue.record("no charge"); return }
        #expect(charge.couponMinor == 400 && charge.giftMinor == 100 && charge.cashMinor == 500 && charge.amountMinor == 1_000)
        #expect(d.events.map(\.kind) == [.accountInArrears])
        // The coupon is spent; the next cycle finds the account in arrears and pays everything from the wallet (C5).
        var after = s
        after.apply(d)
        #expect(after.coupons[ObjectKey("acc_1", "v")]?.storedState == .used)
        var broke = s
        broke.wallets["acc_1"] = WalletBalances(cashMinor: 0, giftMinor: 0)
        let all = try LedgerDecisions.decide(.settleCharge(accountId: "acc_1", chargeId: "chg_2", amountMinor: 250, productId: "cvm", settlementId: "stl_2"),
                                             actor: "system:settlement", in: broke, nowMicros: Self.now)
        #expect(all.effect.movements.map(\.type) == [.couponUse] && all.walletAfter == broke.wallets["acc_1"])
        guard case let .chargeCreated(free)? = all.changes.first else { Issue.record("no charge"); return }
        #expect(free.couponMinor == 250 && free.cashMinor == 0 && free.giftMinor == 0)
    }
}
