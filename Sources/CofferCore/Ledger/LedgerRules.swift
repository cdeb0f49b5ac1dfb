/// The money rules of SPEC section 2 as pure functions: given a wallet and an operation, the postings, the W11 records and
/// the wallet after — or the refusal. No I/O; the ledger writer persists what these return.
public struct LedgerEffect: Equatable, Sendable {
    public private(set) var postings: [Posting] = []
    public private(set) var movements: [Movement] = []
    public private(set) var wallet: WalletBalances

    init(_ wallet: WalletBalances) { self.wallet = wallet }

    /// Applies one movement: wallet-book changes plus the counter-book that balances them.
    mutating func move(_ type: TransactionType, cash: Int64 = 0, gift: Int64 = 0, frozen: Int64 = 0,
                       advanceOutstanding: Int64 = 0, counter: Book?, detail: String? = nil) throws(CofferError) {
        var w = wallet
        w.cashMinor = try Checked.add(w.cashMinor, cash)
        w.giftMinor = try Checked.add(w.giftMinor, gift)
        w.frozenMinor = try Checked.add(w.frozenMinor, frozen)
        w.advanceOutstandingMinor = try Checked.add(w.advanceOutstandingMinor, advanceOutstanding)
        var lines: [Posting] = []
        if cash != 0 { lines.append(Posting(.cash, cash)) }
        if gift != 0 { lines.append(Posting(.gift, gift)) }
        if frozen != 0 { lines.append(Posting(.frozen, frozen)) }
        // The advance book carries what the customer owes as a debit: owing more is a negative posting.
        if advanceOutstanding != 0 { lines.append(Posting(.advance, -advanceOutstanding)) }
        let net = lines.reduce(Int64(0)) { $0 + $1.amountMinor }
        if net != 0 {
            guard let counter else { preconditionFailure("movement \(type) is unbalanced without a counter-book") }
            lines.append(Posting(counter, -net))
        }
        postings += lines
        let availableDelta = (w.balanceMinor - w.frozenMinor) - wallet.availableMinor
        movements.append(Movement(type: type, amountMinor: availableDelta, cashDeltaMinor: cash, giftDeltaMinor: gift,
                                  frozenDeltaMinor: frozen, balanceAfterMinor: w.balanceMinor,
                                  availableAfterMinor: w.availableMinor, books: BookAmounts(lines)))
        movements[movements.count - 1].detail = detail
        wallet = w
    }

    /// A movement between the platform's books only (a coupon's part of a price: promotion expense → revenue); the
    /// wallet does not move, and the row says which object it was for.
    mutating func platformMove(_ type: TransactionType, _ amountMinor: Int64, from: Book, to: Book, detail: String) {
        precondition(amountMinor > 0)
        let lines = [Posting(from, -amountMinor), Posting(to, amountMinor)]
        postings += lines
        var m = Movement(type: type, amountMinor: 0, cashDeltaMinor: 0, giftDeltaMinor: 0, frozenDeltaMinor: 0,
                         balanceAfterMinor: wallet.balanceMinor, availableAfterMinor: wallet.availableMinor, books: BookAmounts(lines))
        m.detail = detail
        movements.append(m)
    }

    /// A movement between two platform books that leaves the wallet as it is (a recharge fee: collected by the channel,
    /// earned by the platform).
    /// It travels on the movement it belongs to (the recharge credit), which still sums to zero.
    mutating func book(_ amountMinor: Int64, from: Book, to: Book) {
        precondition(amountMinor > 0 && !movements.isEmpty)
        postings += [Posting(from, -amountMinor), Posting(to, amountMinor)]
        movements[movements.count - 1].books[from] -= amountMinor
        movements[movements.count - 1].books[to] += amountMinor
    }

    /// Appends a later effect computed from this one's wallet (one entry made of two rules' movements).
    mutating func append(_ next: LedgerEffect) {
        precondition(next.movements.first.map { _ in true } ?? false)
        postings += next.postings
        movements += next.movements
        wallet = next.wallet
    }

    /// Double entry: the postings of one entry sum to zero, each movement on its own too (one row per movement carries its
    /// own balanced books), and the wallet still satisfies its invariants.
    func checked() -> LedgerEffect {
        precondition(postings.reduce(Int64(0)) { $0 + $1.amountMinor } == 0, "unbalanced entry")
        precondition(movements.allSatisfy { $0.books.sum == 0 }, "unbalanced movement")
        precondition(wallet.invariantViolation == nil, "wallet invariant: \(wallet.invariantViolation!)")
        return self
    }
}

public enum ChargeMode: String, Codable, Sendable, CaseIterable {
    case prepaid, postpaid
}

public enum FreezeState: String, Codable, Sendable {
    case active, captured, released, expired
}

public enum WalletBucket: String, Codable, Sendable, CaseIterable {
    case cash, gift
}

/// How a deduction was paid (W4).
public struct SpendSplit: Codable, Equatable, Sendable {
    public var cashMinor: Int64
    public var giftMinor: Int64
    public init(cashMinor: Int64, giftMinor: Int64) {
        self.cashMinor = cashMinor
        self.giftMinor = giftMinor
    }
}

public enum LedgerRules {
    /// W3: a new purchase needs no arrears and available ≥ amount + operable reserve.
    public static func checkNewPurchase(_ w: WalletBalances, amountMinor: Int64, reserveMinor: Int64) throws(CofferError) {
        if w.inArrears { throw .accountInArrears(balanceMinor: w.balanceMinor) }
        let needed = try Checked.add(amountMinor, reserveMinor)
        if w.availableMinor < needed { throw .insufficientBalance(shortfallMinor: needed - w.availableMinor) }
    }

    /// W4: gift first, then cash. The caller has already decided whether cash may go negative.
    public static func split(_ w: WalletBalances, amountMinor: Int64) -> SpendSplit {
        let fromGift = min(max(w.giftMinor, 0), amountMinor)
        return SpendSplit(cashMinor: amountMinor - fromGift, giftMinor: fromGift)
    }

    /// Gift money is the platform's expense (a grant, or a gift recharge code). It is not cash, so it does not repay
    /// arrears or advances (R9 speaks of incoming money).
    public static func grantGift(_ w: WalletBalances, amountMinor: Int64,
                                 type: TransactionType = .giftGrant) throws(CofferError) -> LedgerEffect {
        precondition(amountMinor > 0)
        var e = LedgerEffect(w)
        try e.move(type, gift: amountMinor, counter: .giftExpense)
        return e.checked()
    }

    /// Operator correction with a reason (Z4). A bucket never goes below zero through an adjustment.
    public static func adjust(_ w: WalletBalances, bucket: WalletBucket, deltaMinor: Int64) throws(CofferError) -> LedgerEffect {
        precondition(deltaMinor != 0)
        var e = LedgerEffect(w)
        switch bucket {
        case .cash:
            if deltaMinor < 0 && w.cashMinor + deltaMinor < 0 { throw .adjustmentBelowZero(bucket: "cash") }
            try e.move(.adjustment, cash: deltaMinor, counter: .adjustment)
        case .gift:
            if deltaMinor < 0 && w.giftMinor + deltaMinor < 0 { throw .adjustmentBelowZero(bucket: "gift") }
            try e.move(.adjustment, gift: deltaMinor, counter: .adjustment)
        }
        return e.checked()
    }

    /// The platform advances money (垫付): it becomes cash now and is owed back as advance outstanding.
    public static func recordAdvance(_ w: WalletBalances, amountMinor: Int64) throws(CofferError) -> LedgerEffect {
        precondition(amountMinor > 0)
        var e = LedgerEffect(w)
        // Cash is credited and the advance book debited by the same amount: balanced, and the customer owes it back.
        try e.move(.advance, cash: amountMinor, advanceOutstanding: amountMinor, counter: nil)
        return e.checked()
    }

    /// R9: incoming money first makes good a negative balance (automatic: it is added to cash), then repays advance
    /// outstanding with what is left of it.
    /// R4: a fee the customer paid on top goes from channel clearing to revenue and never reaches the wallet.
    public static func creditIncoming(_ w: WalletBalances, amountMinor: Int64, type: TransactionType,
                                      feeMinor: Int64 = 0) throws(CofferError) -> LedgerEffect {
        precondition(amountMinor > 0 && feeMinor >= 0)
        var e = LedgerEffect(w)
        try e.move(type, cash: amountMinor, counter: .channelClearing)
        if feeMinor > 0 { e.book(feeMinor, from: .channelClearing, to: .revenue) }
        let coversArrears = min(amountMinor, max(0, -w.balanceMinor))
        let repay = min(amountMinor - coversArrears, w.advanceOutstandingMinor)
        if repay > 0 {
            try e.move(.advanceRepayment, cash: -repay, advanceOutstanding: -repay, counter: nil)
        }
        return e.checked()
    }

    /// W5, W3: reserve part of available for a new resource or an order.
    public static func freeze(_ w: WalletBalances, amountMinor: Int64, reserveMinor: Int64) throws(CofferError) -> LedgerEffect {
        precondition(amountMinor > 0)
        try checkNewPurchase(w, amountMinor: amountMinor, reserveMinor: reserveMinor)
        var e = LedgerEffect(w)
        try e.move(.freeze, frozen: amountMinor, counter: .holdControl)
        return e.checked()
    }

    /// W7, C8: a merged payment — each coupon's part booked as promotion expense paying revenue, then one freeze per
    /// order for what the wallet pays (W3 on the total: no arrears, available ≥ total + reserve).
    public static func payOrders(_ w: WalletBalances, plan: PaymentPlan, reserveMinor: Int64) throws(CofferError) -> LedgerEffect {
        try checkNewPurchase(w, amountMinor: plan.walletMinor, reserveMinor: reserveMinor)
        var e = LedgerEffect(w)
        var byCoupon: [(String, Int64)] = []
        for u in plan.uses {
            if let i = byCoupon.firstIndex(where: { $0.0 == u.couponId }) { byCoupon[i].1 += u.amountMinor } else { byCoupon.append((u.couponId, u.amountMinor)) }
        }
        for (coupon, amount) in byCoupon { e.platformMove(.couponUse, amount, from: .giftExpense, to: .revenue, detail: coupon) }
        for line in plan.lines where line.walletMinor > 0 {
            try e.move(.freeze, frozen: line.walletMinor, counter: .holdControl, detail: line.orderId)
        }
        precondition(!e.movements.isEmpty, "a payment moves something")
        return e.checked()
    }

    /// W7: delivery of a paid order: its freeze captured in full (W4 split), or — paid by coupons alone — a record that
    /// moves nothing.
    public static func deliverOrder(_ w: WalletBalances, frozenMinor: Int64, orderId: String) throws(CofferError) -> (LedgerEffect, SpendSplit) {
        guard frozenMinor > 0 else {
            var e = LedgerEffect(w)
            try e.move(.orderDelivery, counter: nil, detail: orderId)
            return (e.checked(), SpendSplit(cashMinor: 0, giftMinor: 0))
        }
        return try capture(w, frozenMinor: frozenMinor, captureMinor: frozenMinor)
    }

    /// W7, O2: failed delivery: the freeze released, each coupon's part given back (revenue → promotion expense).
    public static func failOrderDelivery(_ w: WalletBalances, frozenMinor: Int64, returns: [CouponUseRecord]) throws(CofferError) -> LedgerEffect {
        var e = LedgerEffect(w)
        for u in returns { e.platformMove(.couponReturn, u.amountMinor, from: .revenue, to: .giftExpense, detail: u.couponId) }
        if frozenMinor > 0 { try e.move(.unfreeze, frozen: -frozenMinor, counter: .holdControl) }
        precondition(!e.movements.isEmpty, "a paid order has a freeze or a coupon")
        return e.checked()
    }

    /// W5: release the whole freeze (released or expired).
    public static func release(_ w: WalletBalances, frozenMinor: Int64) throws(CofferError) -> LedgerEffect {
        var e = LedgerEffect(w)
        try e.move(.unfreeze, frozen: -frozenMinor, counter: .holdControl)
        return e.checked()
    }

    /// W5, W7: capture part or all of a freeze. The freeze is released in full and the captured amount deducted by W4.
    /// The money was reserved, so the deduction is made even if postpaid charges have since pushed the balance down.
    public static func capture(_ w: WalletBalances, frozenMinor: Int64, captureMinor: Int64) throws(CofferError) -> (LedgerEffect, SpendSplit) {
        guard captureMinor <= frozenMinor else { throw .captureExceedsFreeze(frozenMinor: frozenMinor) }
        precondition(captureMinor > 0)
        var e = LedgerEffect(w)
        try e.move(.unfreeze, frozen: -frozenMinor, counter: .holdControl)
        let s = split(e.wallet, amountMinor: captureMinor)
        try e.move(.deduction, cash: -s.cashMinor, gift: -s.giftMinor, counter: .revenue)
        return (e.checked(), s)
    }

    /// W4: prepaid never below zero (and W3 applies); postpaid may push cash negative (arrears).
    public static func charge(_ w: WalletBalances, amountMinor: Int64, mode: ChargeMode,
                              reserveMinor: Int64) throws(CofferError) -> (LedgerEffect, SpendSplit) {
        precondition(amountMinor > 0)
        if mode == .prepaid { try checkNewPurchase(w, amountMinor: amountMinor, reserveMinor: reserveMinor) }
        let s = split(w, amountMinor: amountMinor)
        var e = LedgerEffect(w)
        try e.move(.deduction, cash: -s.cashMinor, gift: -s.giftMinor, counter: .revenue)
        return (e.checked(), s)
    }

    /// B2, C2: a settled cycle's deduction: each postpaid coupon's part (promotion expense → revenue), then the rest as a
    /// postpaid charge (W4: cash may go negative). Coupons alone may pay it all.
    public static func settleCharge(_ w: WalletBalances, amountMinor: Int64, uses: [CouponUseRecord]) throws(CofferError) -> (LedgerEffect, SpendSplit) {
        let couponMinor = uses.reduce(Int64(0)) { $0 + $1.amountMinor }
        precondition(amountMinor > 0 && (0...amountMinor).contains(couponMinor), "coupons pay within the deduction")
        var e = LedgerEffect(w)
        for u in uses { e.platformMove(.couponUse, u.amountMinor, from: .giftExpense, to: .revenue, detail: u.couponId) }
        guard amountMinor > couponMinor else { return (e.checked(), SpendSplit(cashMinor: 0, giftMinor: 0)) }
        let (charged, split) = try charge(w, amountMinor: amountMinor - couponMinor, mode: .postpaid, reserveMinor: 0)
        e.append(charged)
        return (e.checked(), split)
    }

    /// Refund to wallet of (part of) an earlier charge, in the charge's own cash/gift proportion. The split is computed on
    /// the running total so that many partial refunds add up to the original split exactly, with no drift.
    public static func refund(_ w: WalletBalances, charge: SpendSplit, refunded: SpendSplit,
                              amountMinor: Int64) throws(CofferError) -> (LedgerEffect, SpendSplit) {
        precondition(amountMinor > 0)
        let total = charge.cashMinor + charge.giftMinor
        let done = refunded.cashMinor + refunded.giftMinor
        guard amountMinor <= total - done else { throw .refundExceedsCharge(refundableMinor: total - done) }
        let after = Int128(done + amountMinor)
        // cash share of the running total, rounded half-up; the gift share is the rest.
        let cashTarget = Int64((after * Int128(charge.cashMinor) * 2 + Int128(total)) / (Int128(total) * 2))
        let cashPart = cashTarget - refunded.cashMinor
        let s = SpendSplit(cashMinor: cashPart, giftMinor: amountMinor - cashPart)
        var e = LedgerEffect(w)
        try e.move(.refund, cash: s.cashMinor, gift: s.giftMinor, counter: .revenue)
        return (e.checked(), s)
    }
}
