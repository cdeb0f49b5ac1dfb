/// Coupons (SPEC C1–C8) as data and as pure rules: which orders a coupon applies to, which condition fails, how a set of
/// coupons pays a set of orders. The ledger's payment decision calls `CouponRules.plan` under the wallet lock, so a
/// coupon's value is spent in the same entry as the payment's freezes.

/// C1.
public enum CouponKind: String, Codable, Sendable, CaseIterable {
    /// 代金券: an amount off; not returned on refund.
    case voucher
    /// 现金券: an amount off; returned on refund (C7).
    case cash
    /// 折扣券: a percentage off; never combined with the others (C4).
    case discount
}

/// C2: what a coupon may pay.
public struct CouponConditions: Codable, Sendable, Equatable {
    /// Empty: every product.
    public var productsIncluded: [String]
    public var productsExcluded: [String]
    public var paymentType: ChargeMode
    /// Empty: every scenario.
    public var scenarios: [OrderType]
    /// The applicable part of one payment must reach this (0: none).
    public var thresholdMinor: Int64
    /// Purchase-duration limit of prepaid orders, in months (inclusive; nil: none).
    public var minMonths: Int?
    public var maxMonths: Int?

    public init(productsIncluded: [String] = [], productsExcluded: [String] = [], paymentType: ChargeMode = .prepaid,
                scenarios: [OrderType] = [], thresholdMinor: Int64 = 0, minMonths: Int? = nil, maxMonths: Int? = nil) {
        (self.productsIncluded, self.productsExcluded, self.paymentType) = (productsIncluded, productsExcluded, paymentType)
        (self.scenarios, self.thresholdMinor, self.minMonths, self.maxMonths) = (scenarios, thresholdMinor, minMonths, maxMonths)
    }
}

/// C3 as stored: `used` once spent (single use: after its one use). Expired is read from the validity window.
public enum CouponStoredState: String, Codable, Sendable { case unused, used }
public enum CouponState: String, Codable, Sendable, CaseIterable { case unused, used, expired }

public struct CouponRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var kind: CouponKind
    /// Voucher and cash coupon: the face value. Discount coupon: the most it takes off (nil: no cap).
    public var valueMinor: Int64?
    /// Discount coupon: 1–99 % off.
    public var percentOff: Int?
    /// Voucher and cash coupon: what is left to spend (multiple use). 0 for discount coupons.
    public var remainingMinor: Int64
    public var singleUse: Bool
    public var conditions: CouponConditions
    public var validFromMicros: Int64
    public var validUntilMicros: Int64
    public var storedState: CouponStoredState
    /// Who granted it ("operator:…", or the code it was redeemed from).
    public var source: String
    public var createdAtMicros: Int64
    public var usedAtMicros: Int64?

    public init(id: String, accountId: String, kind: CouponKind, valueMinor: Int64?, percentOff: Int?, singleUse: Bool,
                conditions: CouponConditions, validFromMicros: Int64, validUntilMicros: Int64, source: String, createdAtMicros: Int64) {
        (self.id, self.accountId, self.kind, self.valueMinor, self.percentOff) = (id, accountId, kind, valueMinor, percentOff)
        self.remainingMinor = kind == .discount ? 0 : (valueMinor ?? 0)
        (self.singleUse, self.conditions, self.validFromMicros, self.validUntilMicros) = (kind == .discount || singleUse, conditions, validFromMicros, validUntilMicros)
        (self.storedState, self.source, self.createdAtMicros) = (.unused, source, createdAtMicros)
    }

    /// C3.
    public func state(at now: Int64) -> CouponState {
        if storedState == .used { return .used }
        return now >= validUntilMicros ? .expired : .unused
    }
}

/// What a coupon spent on one order of a payment; a failed delivery gives it back (and a refund, for cash coupons: C7).
public struct CouponUseRecord: Codable, Sendable, Equatable {
    public var accountId: String
    public var paymentId: String
    public var orderId: String
    public var couponId: String
    public var amountMinor: Int64
    public var returnedAtMicros: Int64?
    public init(accountId: String, paymentId: String, orderId: String, couponId: String, amountMinor: Int64, returnedAtMicros: Int64? = nil) {
        (self.accountId, self.paymentId, self.orderId, self.couponId, self.amountMinor, self.returnedAtMicros) =
            (accountId, paymentId, orderId, couponId, amountMinor, returnedAtMicros)
    }
}

/// C6: the condition a coupon fails, named for the customer.
public enum CouponCondition: String, Codable, Sendable, CaseIterable {
    case used, expired
    case notYetValid = "not_yet_valid"
    case paymentType = "payment_type"
    /// C5: an account in arrears cannot use coupons.
    case arrears
    case orderForbidsCoupons = "order_forbids_coupons"
    case product, scenario, duration, threshold
    /// The orders it applies to are already paid in full by the coupons before it.
    case nothingLeft = "nothing_left"
}

/// One order as a payment will settle it.
public struct OrderPaymentLine: Sendable, Equatable {
    public var orderId: String
    public var couponMinor: Int64
    /// What the wallet pays (frozen now, captured on delivery: W7).
    public var walletMinor: Int64
}

public struct PaymentPlan: Sendable, Equatable {
    public var lines: [OrderPaymentLine]
    public var uses: [CouponUseRecord]
    /// Each coupon as the payment leaves it.
    public var coupons: [CouponRecord]
    public var dueMinor: Int64 { lines.reduce(0) { $0 + $1.couponMinor + $1.walletMinor } }
    public var couponMinor: Int64 { lines.reduce(0) { $0 + $1.couponMinor } }
    public var walletMinor: Int64 { lines.reduce(0) { $0 + $1.walletMinor } }
}

public enum CouponRules {
    public static let maxOrdersPerPayment = 50
    public static let maxCouponsPerPayment = 10
    /// A settlement looks at no more than this many of the account's postpaid coupons (the soonest to expire).
    public static let maxCouponsLoadedPerSettlement = 50

    /// C2, C5: the orders of a payment this coupon may pay, or the first condition it fails (in the order a customer
    /// would look: the coupon itself, the account, then the orders).
    public static func applicableOrders(_ c: CouponRecord, orders: [OrderRecord], inArrears: Bool,
                                        now: Int64) -> Result<[OrderRecord], CouponFailure> {
        // Orders are prepaid; a postpaid coupon is for the settlement.
        if let failure = usable(c, for: .prepaid, inArrears: inArrears, now: now) { return .failure(failure) }
        var remaining = orders
        let filters: [(CouponCondition, (OrderRecord) -> Bool)] = [
            (.orderForbidsCoupons, { $0.couponsAllowed }),
            (.product, { o in
                (c.conditions.productsIncluded.isEmpty || c.conditions.productsIncluded.contains(o.productId))
                    && !c.conditions.productsExcluded.contains(o.productId) }),
            (.scenario, { c.conditions.scenarios.isEmpty || c.conditions.scenarios.contains($0.type) }),
            (.duration, { o in
                (c.conditions.minMonths.map { o.durationMonths >= $0 } ?? true) && (c.conditions.maxMonths.map { o.durationMonths <= $0 } ?? true) }),
        ]
        for (condition, keep) in filters {
            remaining = remaining.filter(keep)
            if remaining.isEmpty { return .failure(CouponFailure(condition)) }
        }
        // C2, C8: the threshold is on the applicable part of the whole payment.
        let applicable = remaining.reduce(Int64(0)) { $0 + $1.dueMinor }
        if applicable < c.conditions.thresholdMinor {
            return .failure(CouponFailure(.threshold, ["threshold": MoneyFormat.format(c.conditions.thresholdMinor),
                                                       "applicable": MoneyFormat.format(applicable)]))
        }
        return .success(remaining)
    }

    /// C2, C3, C5: the coupon itself (state, validity, payment type) and the account.
    static func usable(_ c: CouponRecord, for paymentType: ChargeMode, inArrears: Bool, now: Int64) -> CouponFailure? {
        switch c.state(at: now) {
        case .used: return CouponFailure(.used)
        case .expired: return CouponFailure(.expired)
        case .unused: break
        }
        if now < c.validFromMicros { return CouponFailure(.notYetValid) }
        if c.conditions.paymentType != paymentType { return CouponFailure(.paymentType) }
        if inArrears { return CouponFailure(.arrears) }
        return nil
    }

    /// C2 for a settlement: a postpaid coupon pays a settled cycle of a product it covers when the cycle's deduction
    /// reaches its threshold. Scenarios and purchase durations are prepaid conditions (refused on postpaid grants).
    public static func applies(_ c: CouponRecord, toSettlementOf productId: String, deductionMinor: Int64, inArrears: Bool,
                               now: Int64) -> CouponFailure? {
        if let failure = usable(c, for: .postpaid, inArrears: inArrears, now: now) { return failure }
        let included = c.conditions.productsIncluded.isEmpty || c.conditions.productsIncluded.contains(productId)
        if !included || c.conditions.productsExcluded.contains(productId) { return CouponFailure(.product) }
        if deductionMinor < c.conditions.thresholdMinor { return CouponFailure(.threshold) }
        return nil
    }

    /// C2, C4: which of the account's postpaid coupons pay a settled cycle, chosen for the customer since nobody is there
    /// to choose: the vouchers and cash coupons that apply, in C4's order (cash first, soonest expiry first), or the one
    /// discount coupon that takes off most (soonest expiry, then id, on a tie) when it takes off more than they do
    /// together. At most `maxCouponsPerPayment` coupons; never more than the deduction, never past a coupon's value.
    /// `paymentId` of each use is the charge, `orderId` the settlement.
    public static func settlementPlan(deductionMinor: Int64, productId: String, settlementId: String, chargeId: String,
                                      coupons: [CouponRecord], inArrears: Bool, now: Int64) -> (uses: [CouponUseRecord], coupons: [CouponRecord]) {
        precondition(deductionMinor > 0)
        let applicable = coupons.filter {
            applies($0, toSettlementOf: productId, deductionMinor: deductionMinor, inArrears: inArrears, now: now) == nil
        }
        func take(_ c: CouponRecord, upTo owed: Int64) -> Int64 {
            switch c.kind {
            case .voucher, .cash: return min(c.remainingMinor, owed)
            case .discount:
                let off = Int64((Int128(deductionMinor) * Int128(c.percentOff ?? 0)) / 100)
                return min(off, c.valueMinor ?? off, owed)
            }
        }
        var amounts: [(CouponRecord, Int64)] = []
        var owed = deductionMinor
        let amountCoupons = applicable.filter { $0.kind != .discount }.sorted(by: spendsFirst)
        for c in amountCoupons where owed > 0 && amounts.count < maxCouponsPerPayment {
            let t = take(c, upTo: owed)
            guard t > 0 else { continue }
            amounts.append((c, t))
            owed -= t
        }
        let bestDiscount = applicable.filter { $0.kind == .discount }
            .map { ($0, take($0, upTo: deductionMinor)) }
            .filter { $0.1 > 0 }
            .min { a, b in
                if a.1 != b.1 { return a.1 > b.1 }
                if a.0.validUntilMicros != b.0.validUntilMicros { return a.0.validUntilMicros < b.0.validUntilMicros }
                return a.0.id < b.0.id
            }
        if let best = bestDiscount, best.1 > deductionMinor - owed { amounts = [best] }
        var uses: [CouponUseRecord] = []
        var after: [CouponRecord] = []
        for (coupon, amount) in amounts {
            var c = coupon
            uses.append(CouponUseRecord(accountId: c.accountId, paymentId: chargeId, orderId: settlementId, couponId: c.id, amountMinor: amount))
            if c.kind != .discount { c.remainingMinor -= amount }
            if c.singleUse || c.remainingMinor == 0 {
                c.storedState = .used
                c.usedAtMicros = now
            }
            after.append(c)
        }
        // TIGER_STYLE: coupons pay at most the deduction and never past their value.
        precondition(uses.reduce(0) { $0 + $1.amountMinor } <= deductionMinor, "coupons paid past the deduction")
        precondition(after.allSatisfy { $0.remainingMinor >= 0 }, "coupon spent past its value")
        return (uses, after)
    }

    /// C4: discount coupons alone; vouchers and cash coupons together, cash coupons first, then the one that expires
    /// first (so that the customer keeps the longer-lived one), then by id.
    public static func order(_ coupons: [CouponRecord]) throws(CofferError) -> [CouponRecord] {
        if coupons.contains(where: { $0.kind == .discount }) && coupons.count > 1 {
            throw CofferError(.couponsNotCombinable, "A discount coupon cannot be combined with other coupons; choose it alone or leave it out.")
        }
        return coupons.sorted(by: spendsFirst)
    }

    /// C4's order: cash coupons first, then the one that expires first, then by id.
    static func spendsFirst(_ a: CouponRecord, _ b: CouponRecord) -> Bool {
        if (a.kind == .cash) != (b.kind == .cash) { return a.kind == .cash }
        if a.validUntilMicros != b.validUntilMicros { return a.validUntilMicros < b.validUntilMicros }
        return a.id < b.id
    }

    /// C1–C8: how these coupons pay these unpaid orders. Each coupon pays its applicable orders in id order, never more
    /// than an order still owes, so no amount due goes below zero; a voucher or cash coupon never more than it has left.
    /// A coupon that would pay nothing is refused rather than used up for nothing.
    public static func plan(orders: [OrderRecord], coupons: [CouponRecord], paymentId: String, inArrears: Bool,
                            now: Int64) throws(CofferError) -> PaymentPlan {
        var owed: [String: Int64] = [:]
        for o in orders { owed[o.id] = o.dueMinor }
        var uses: [CouponUseRecord] = []
        var after: [CouponRecord] = []
        for var c in try order(coupons) {
            let applicable: [OrderRecord]
            switch applicableOrders(c, orders: orders, inArrears: inArrears, now: now) {
            case .failure(let f): throw CofferError.couponNotApplicable(c.id, f)
            case .success(let a): applicable = a.sorted { $0.id < $1.id }
            }
            var budget: Int64
            switch c.kind {
            case .voucher, .cash:
                budget = c.remainingMinor
            case .discount:
                // Percent of the applicable part, rounded down to the fen: the coupon never takes off more than it says.
                let base = applicable.reduce(Int64(0)) { $0 + $1.dueMinor }
                let off = Int64((Int128(base) * Int128(c.percentOff ?? 0)) / 100)
                budget = min(off, c.valueMinor ?? off)
            }
            var spent: Int64 = 0
            for o in applicable where budget > 0 {
                let take = min(budget, owed[o.id] ?? 0)
                guard take > 0 else { continue }
                owed[o.id]! -= take
                budget -= take
                spent += take
                uses.append(CouponUseRecord(accountId: o.accountId, paymentId: paymentId, orderId: o.id, couponId: c.id, amountMinor: take))
            }
            guard spent > 0 else { throw CofferError.couponNotApplicable(c.id, CouponFailure(.nothingLeft)) }
            if c.kind != .discount { c.remainingMinor -= spent }
            // Single use: the rest is forfeited (C2).
            if c.singleUse || c.remainingMinor == 0 {
                c.storedState = .used
                c.usedAtMicros = now
            }
            after.append(c)
        }
        let lines = orders.map { o in
            let wallet = owed[o.id] ?? 0
            return OrderPaymentLine(orderId: o.id, couponMinor: o.dueMinor - wallet, walletMinor: wallet)
        }
        // TIGER_STYLE: nothing negative, and coupons plus wallet pay exactly what is due.
        precondition(lines.allSatisfy { $0.couponMinor >= 0 && $0.walletMinor >= 0 }, "negative amount due")
        precondition(lines.reduce(0) { $0 + $1.couponMinor } == uses.reduce(0) { $0 + $1.amountMinor }, "coupon uses drift")
        precondition(after.allSatisfy { $0.remainingMinor >= 0 }, "coupon spent past its value")
        return PaymentPlan(lines: lines, uses: uses, coupons: after)
    }

    /// A failed delivery gives back what the coupon spent on that order; once none of its uses stands, a single-use or
    /// discount coupon is whole again (its forfeited rest included).
    public static func giveBack(_ c: CouponRecord, returning: Int64, stillUsed: Bool) -> CouponRecord {
        var c = c
        switch c.kind {
        case .discount:
            if !stillUsed { c.storedState = .unused; c.usedAtMicros = nil }
        case .voucher, .cash:
            if c.singleUse {
                guard !stillUsed else { break }
                c.remainingMinor = c.valueMinor ?? 0
            } else {
                c.remainingMinor = min(c.valueMinor ?? 0, c.remainingMinor + returning)
            }
            if c.remainingMinor > 0 { c.storedState = .unused; c.usedAtMicros = nil }
        }
        return c
    }
}

public struct CouponFailure: Sendable, Equatable, Error {
    public var condition: CouponCondition
    public var parameters: [String: String]
    public init(_ condition: CouponCondition, _ parameters: [String: String] = [:]) {
        self.condition = condition
        self.parameters = parameters
    }
}

extension CofferError {
    public static func couponNotApplicable(_ couponId: String, _ f: CouponFailure) -> CofferError {
        var p = f.parameters
        p["coupon"] = couponId
        p["condition"] = f.condition.rawValue
        return .init(.couponNotApplicable, "Coupon \(couponId) cannot be used for this payment: condition \(f.condition.rawValue) is not met.", p)
    }
}
