/// An account-owned object named by its account and its id (ids are unique per account, as the schema keys them).
public struct ObjectKey: Hashable, Sendable, Comparable {
    public var accountId: String
    public var id: String
    public init(_ accountId: String, _ id: String) {
        self.accountId = accountId
        self.id = id
    }
    public static func < (a: ObjectKey, b: ObjectKey) -> Bool { (a.accountId, a.id) < (b.accountId, b.id) }
}

/// Everything the ledger's decisions may read for one batch: the storage side loads it once, in one ordered pass under
/// the batch's locks, before the first decision; each accepted decision is applied to it so that the next operation of
/// the batch sees the effect of the previous ones.
public struct LedgerSnapshot: Sendable, Equatable {
    public var wallets: [String: WalletBalances] = [:]
    /// The freezes and charges the batch resolves or refunds (new ones appear as decisions create them).
    public var freezes: [ObjectKey: FreezeRecord] = [:]
    public var charges: [ObjectKey: ChargeRecord] = [:]
    public var recharges: [String: RechargeRecord] = [:]
    public var codes: [String: RechargeCodeRecord] = [:]
    public var remittances: [String: RemittanceRecord] = [:]
    public var statementLines: [String: StatementLineRecord] = [:]
    /// Of the bank serial numbers the batch names, those whose money was already credited (T1, T2: once per transfer).
    public var creditedBankSerials: Set<String> = []
    /// R7: per account whose credits name a payer, the payers ("channel:payer") of the rule's window.
    public var recentPayers: [String: Set<String>] = [:]
    /// Orders a payment or a delivery resolves, the coupons it spends or gives back, and every use of those coupons.
    public var orders: [ObjectKey: OrderRecord] = [:]
    public var coupons: [ObjectKey: CouponRecord] = [:]
    public var couponUses: [ObjectKey: [CouponUseRecord]] = [:]
    /// Prepaid terms (O3) a delivery or an auto-renewal changes, by (account, resource).
    public var prepaidTerms: [ObjectKey: PrepaidTermRecord] = [:]
    /// W3's operable reserve.
    public var reserveMinor: Int64 = 0

    public init() {}
}

/// A state change of an object that the storage side writes with the entry (state-guarded, so a lost race fails the batch).
public enum ObjectChange: Sendable, Equatable {
    case freezeCreated(FreezeRecord)
    case freezeResolved(FreezeRecord)
    case chargeCreated(ChargeRecord)
    case chargeRefunded(ChargeRecord)
    case rechargePaid(RechargeRecord)
    case codeRedeemed(RechargeCodeRecord)
    case remittanceApproved(RemittanceRecord)
    case statementLineCredited(StatementLineRecord)
    /// State-guarded by `from`: a lost race (paid twice, cancelled meanwhile) fails the batch.
    case orderChanged(OrderRecord, from: OrderState)
    /// Guarded by the coupon's remaining value and state before the change.
    case couponChanged(CouponRecord, before: CouponRecord)
    case couponUsed(CouponUseRecord)
    case couponUseReturned(CouponUseRecord)
    case paymentCreated(OrderPaymentRecord)
    /// An order made inside the entry (an auto-renewal's).
    case orderCreated(OrderRecord)
    case resourceRefunded(ResourceRefundRecord)
    /// Guarded by the term as it was (nil: made by this change).
    case termChanged(PrepaidTermRecord, before: PrepaidTermRecord?)
}

/// Something a person should be told, as data: the services turn it into text from the catalogs.
public struct LedgerEvent: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case rechargeCredited = "recharge_credited"
        case remittanceCredited = "remittance_credited"
        case statementLineCredited = "statement_line_credited"
        /// N1: a postpaid deduction took the balance below zero (W2): the account is in arrears from now on.
        case accountInArrears = "account_in_arrears"
        /// W7: for the provider (webhooks, N2), not a site message.
        case orderPaid = "order_paid"
        case orderDelivered = "order_delivered"
        case orderDeliveryFailed = "order_delivery_failed"
        /// O3, O4: a prepaid resource was made or its term extended (by a delivery or an auto-renewal).
        case resourceRenewed = "resource_renewed"
        case resourceCreated = "resource_created"
        /// O8: a prepaid resource was refunded (退订) and its term ended.
        case resourceRefunded = "resource_refunded"

        /// The kinds a customer is told of by a site message (and e-mail); every kind goes to the provider's webhooks.
        public var isSiteMessage: Bool {
            switch self {
            case .rechargeCredited, .remittanceCredited, .statementLineCredited, .accountInArrears: true
            case .orderPaid, .orderDelivered, .orderDeliveryFailed, .resourceRenewed, .resourceCreated, .resourceRefunded: false
            }
        }
    }
    public var kind: Kind
    public var accountId: String
    /// Amounts as decimal strings, ids, dates; never prose.
    public var parameters: [String: String]
    public init(_ kind: Kind, accountId: String, _ parameters: [String: String]) {
        self.kind = kind
        self.accountId = accountId
        self.parameters = parameters
    }
}

/// The related object a W11 record points at.
public struct RelatedObject: Sendable, Equatable {
    public var type: String
    public var id: String
    public init(_ type: String, _ id: String) {
        self.type = type
        self.id = id
    }
}

/// What one accepted command does: the movement on each book (with the W11 lines and the wallet after), the objects it
/// changes, what the records point at, and what people are told. No I/O happened to make it.
public struct LedgerDecision: Sendable, Equatable {
    public var accountId: String
    public var walletBefore: WalletBalances
    public var effect: LedgerEffect
    public var changes: [ObjectChange] = []
    public var related: RelatedObject?
    public var channelTradeNo: String?
    public var memo: String?
    public var events: [LedgerEvent] = []
    public var refund: RefundInfo?
    /// Z3: an operator's money action, or a bank credit, is audited with the balances before and after.
    public var audited = false
    /// R7: a payer counted by this credit.
    public var admittedPayer: String?
    /// A bank transfer credited by this command.
    public var creditedBankSerial: String?

    public var walletAfter: WalletBalances { effect.wallet }
}

public enum LedgerDecisions {
    /// The ledger's rules for one command, as one function of the command, what it touches and the time. A refusal is the
    /// error it throws; nothing else can fail.
    public static func decide(_ command: LedgerCommand, actor: String, in snapshot: LedgerSnapshot,
                              nowMicros now: Int64) throws(CofferError) -> LedgerDecision {
        try command.validate()
        let accountId = command.accountId
        guard let wallet = snapshot.wallets[accountId] else { throw .notFound(.accountNotFound, accountId) }
        func decision(_ effect: LedgerEffect) -> LedgerDecision {
            LedgerDecision(accountId: accountId, walletBefore: wallet, effect: effect)
        }
        var d: LedgerDecision
        switch command {
        case let .grantGift(_, amount, memo):
            d = decision(try LedgerRules.grantGift(wallet, amountMinor: amount))
            d.memo = memo
            d.audited = true
        case let .adjust(_, bucket, delta, reason):
            d = decision(try LedgerRules.adjust(wallet, bucket: bucket, deltaMinor: delta))
            d.memo = reason
            d.audited = true
        case let .advance(_, amount, memo):
            d = decision(try LedgerRules.recordAdvance(wallet, amountMinor: amount))
            d.memo = memo
            d.audited = true
        case let .freeze(_, freezeId, amount, expiresIn, reference):
            if let seconds = expiresIn, !(1...31_536_000).contains(seconds) {
                throw .invalidField("expiresInSeconds", "must be between 1 and 31536000 (one year)")
            }
            try requireNew(snapshot.freezes[ObjectKey(accountId, freezeId)] == nil, "freeze", freezeId)
            d = decision(try LedgerRules.freeze(wallet, amountMinor: amount, reserveMinor: snapshot.reserveMinor))
            d.changes = [.freezeCreated(FreezeRecord(
                id: freezeId, accountId: accountId, amountMinor: amount, capturedMinor: 0, state: .active,
                expiresAtMicros: expiresIn.map { now + $0 * 1_000_000 }, reference: reference, createdAtMicros: now))]
            d.related = RelatedObject("freeze", freezeId)
            d.memo = reference
        case let .capture(_, freezeId, amount):
            var f = try activeFreeze(snapshot, accountId, freezeId)
            let captured = amount ?? f.amountMinor
            d = decision(try LedgerRules.capture(wallet, frozenMinor: f.amountMinor, captureMinor: captured).0)
            f.state = .captured
            f.capturedMinor = captured
            f.resolvedAtMicros = now
            d.changes = [.freezeResolved(f)]
            d.related = RelatedObject("freeze", freezeId)
        case let .release(_, freezeId), let .expireFreeze(_, freezeId):
            var f = try activeFreeze(snapshot, accountId, freezeId)
            if case .expireFreeze = command {
                guard let deadline = f.expiresAtMicros, deadline <= now else {
                    throw CofferError(.freezeNotDue, "Freeze \(freezeId) has not reached its deadline.")
                }
                f.state = .expired
            } else {
                f.state = .released
            }
            d = decision(try LedgerRules.release(wallet, frozenMinor: f.amountMinor))
            f.resolvedAtMicros = now
            d.changes = [.freezeResolved(f)]
            d.related = RelatedObject("freeze", freezeId)
        case let .charge(_, chargeId, amount, mode, reference):
            try requireNew(snapshot.charges[ObjectKey(accountId, chargeId)] == nil, "charge", chargeId)
            let (effect, split) = try LedgerRules.charge(wallet, amountMinor: amount, mode: mode,
                                                         reserveMinor: snapshot.reserveMinor)
            d = decision(effect)
            d.changes = [.chargeCreated(ChargeRecord(
                id: chargeId, accountId: accountId, mode: mode, amountMinor: amount, cashMinor: split.cashMinor,
                giftMinor: split.giftMinor, refundedCashMinor: 0, refundedGiftMinor: 0, reference: reference,
                createdAtMicros: now))]
            d.related = RelatedObject("charge", chargeId)
            d.memo = reference
            if !wallet.inArrears, d.walletAfter.inArrears { d.events = [arrearsEvent(accountId, d.walletAfter)] }
        case let .settleCharge(_, chargeId, amount, productId, settlementId):
            try requireNew(snapshot.charges[ObjectKey(accountId, chargeId)] == nil, "charge", chargeId)
            let mine = snapshot.coupons.filter { $0.key.accountId == accountId }.sorted { $0.key < $1.key }.map(\.value)
            let (uses, coupons) = CouponRules.settlementPlan(deductionMinor: amount, productId: productId, settlementId: settlementId,
                                                            chargeId: chargeId, coupons: mine, inArrears: wallet.inArrears, now: now)
            let (effect, split) = try LedgerRules.settleCharge(wallet, amountMinor: amount, uses: uses)
            d = decision(effect)
            d.changes = [.chargeCreated(ChargeRecord(
                id: chargeId, accountId: accountId, mode: .postpaid, amountMinor: amount, cashMinor: split.cashMinor,
                giftMinor: split.giftMinor, couponMinor: amount - split.cashMinor - split.giftMinor, refundedCashMinor: 0,
                refundedGiftMinor: 0, reference: settlementId, createdAtMicros: now))]
            for c in coupons { d.changes.append(.couponChanged(c, before: snapshot.coupons[ObjectKey(accountId, c.id)]!)) }
            d.changes += uses.map { .couponUsed($0) }
            d.related = RelatedObject("charge", chargeId)
            d.memo = settlementId
            if !wallet.inArrears, d.walletAfter.inArrears { d.events = [arrearsEvent(accountId, d.walletAfter)] }
        case let .refund(_, chargeId, refundId, amount, reason):
            guard var c = snapshot.charges[ObjectKey(accountId, chargeId)] else { throw .notFound(.chargeNotFound, chargeId) }
            let (effect, split) = try LedgerRules.refund(
                wallet, charge: SpendSplit(cashMinor: c.cashMinor, giftMinor: c.giftMinor),
                refunded: SpendSplit(cashMinor: c.refundedCashMinor, giftMinor: c.refundedGiftMinor), amountMinor: amount)
            d = decision(effect)
            c.refundedCashMinor += split.cashMinor
            c.refundedGiftMinor += split.giftMinor
            d.changes = [.chargeRefunded(c)]
            d.refund = RefundInfo(id: refundId, chargeId: chargeId, amountMinor: amount, cashMinor: split.cashMinor,
                                  giftMinor: split.giftMinor)
            d.related = RelatedObject("charge", chargeId)
            d.memo = reason
        case let .creditRecharge(_, rechargeId, trade, amount, payer):
            var r = try creditableRecharge(snapshot, accountId, rechargeId)
            // The channel collected the order's total (amount + R4 fee); the wallet gets the amount only.
            guard r.totalMinor == amount else { throw .amountMismatch(amount, expected: r.totalMinor) }
            d = decision(try LedgerRules.creditIncoming(wallet, amountMinor: r.amountMinor, type: .recharge,
                                                        feeMinor: r.feeMinor ?? 0))
            // Last check of the case, so that a payer is only counted for a credit that happens.
            if let payer {
                let key = RechargeRecord.payerKey(channel: r.channel, payerId: payer.payerId)
                let known = snapshot.recentPayers[accountId] ?? []
                guard known.contains(key) || known.count < payer.maxDistinct else { throw .payerLimitReached }
                d.admittedPayer = key
            }
            r.payerId = payer?.payerId
            r.state = .paid
            r.channelTradeNo = trade
            r.paidAtMicros = now
            d.changes = [.rechargePaid(r)]
            d.related = RelatedObject("recharge", rechargeId)
            d.channelTradeNo = trade
            d.events = [LedgerEvent(.rechargeCredited, accountId: accountId, [
                "amount": MoneyFormat.format(r.amountMinor), "channel": r.channel, "recharge": rechargeId])]
        case let .redeemCode(_, codeId):
            guard var c = snapshot.codes[codeId] else { throw .notFound(.codeNotFound, codeId) }
            switch c.state {
            case .unused: break
            case .redeemed: throw .codeAlreadyRedeemed(byThisAccount: c.redeemedBy == accountId)
            case .voided: throw .codeVoided
            }
            guard now < c.validUntilMicros else { throw .codeExpired }
            d = decision(c.bucket == .cash
                ? try LedgerRules.creditIncoming(wallet, amountMinor: c.amountMinor, type: .codeRedemption)
                : try LedgerRules.grantGift(wallet, amountMinor: c.amountMinor, type: .codeRedemption))
            c.state = .redeemed
            c.redeemedBy = accountId
            c.redeemedAtMicros = now
            d.changes = [.codeRedeemed(c)]
            d.related = RelatedObject("recharge_code", codeId)
        case let .creditRemittance(_, remittanceId, amount):
            guard var r = snapshot.remittances[remittanceId], r.accountId == accountId else {
                throw .notFound(.remittanceNotFound, remittanceId)
            }
            guard r.state == .pendingReview else {
                throw CofferError(.remittanceAlreadyReviewed, "Remittance \(remittanceId) is already \(r.state.rawValue).")
            }
            guard r.amountMinor == amount else { throw .amountMismatch(amount, expected: r.amountMinor) }
            if let serial = r.bankSerial { try requireSerialNotCredited(snapshot, serial) }
            d = decision(try LedgerRules.creditIncoming(wallet, amountMinor: amount, type: .remittance))
            r.state = .approved
            r.reviewedBy = actor
            r.reviewedAtMicros = now
            d.changes = [.remittanceApproved(r)]
            d.related = RelatedObject("remittance", remittanceId)
            d.channelTradeNo = r.bankSerial
            d.creditedBankSerial = r.bankSerial
            d.audited = true
            d.events = [LedgerEvent(.remittanceCredited, accountId: accountId, [
                "amount": MoneyFormat.format(amount), "date": r.remittedOn, "remittance": remittanceId])]
        case .payOrders, .deliverOrder, .failOrderDelivery, .autoRenew, .refundResource:
            d = try decideOrder(command, actor: actor, wallet: wallet, in: snapshot, nowMicros: now)
        case let .creditStatementLine(_, lineId, amount):
            guard var l = snapshot.statementLines[lineId] else { throw .notFound(.statementLineNotFound, lineId) }
            guard StatementLineState.creditable.contains(l.state), l.accountId == nil || l.accountId == accountId else {
                throw CofferError(.statementLineNotCreditable,
                                  "Statement line \(l.bankSerial) is \(l.state.rawValue) and cannot be credited to \(accountId).")
            }
            guard l.amountMinor == amount else { throw .amountMismatch(amount, expected: l.amountMinor) }
            try requireSerialNotCredited(snapshot, l.bankSerial)
            d = decision(try LedgerRules.creditIncoming(wallet, amountMinor: amount, type: .remittance))
            l.state = .credited
            l.accountId = accountId
            l.resolvedAtMicros = now
            l.resolvedBy = actor
            d.changes = [.statementLineCredited(l)]
            d.related = RelatedObject("statement_line", lineId)
            d.channelTradeNo = l.bankSerial
            d.creditedBankSerial = l.bankSerial
            d.audited = true
            d.events = [LedgerEvent(.statementLineCredited, accountId: accountId, [
                "amount": MoneyFormat.format(amount), "payer": l.payerName, "serial": l.bankSerial])]
        }
        // TIGER_STYLE: the wallet after must be the wallet before plus exactly these postings.
        for book in Book.walletBooks {
            let delta = d.effect.postings.filter { $0.book == book }.reduce(Int64(0)) { $0 + $1.amountMinor }
            precondition(d.walletAfter.value(of: book)! == wallet.value(of: book)! + delta, "wallet drift on \(book)")
        }
        return d
    }

    /// Told once, when it happens: a charge that finds the account already in arrears says nothing new.
    private static func arrearsEvent(_ accountId: String, _ after: WalletBalances) -> LedgerEvent {
        LedgerEvent(.accountInArrears, accountId: accountId,
                    ["balance": MoneyFormat.format(after.balanceMinor), "shortfall": MoneyFormat.format(-after.balanceMinor)])
    }

    /// Ids are made by the server, so a repeat inside one batch is a bug upstream; the primary keys catch repeats across
    /// batches, this catches them before two entries would share one row.
    private static func requireNew(_ isNew: Bool, _ what: String, _ id: String) throws(CofferError) {
        guard isNew else { throw CofferError(.duplicateId, "A \(what) with id \(id) is already in this batch.") }
    }

    /// One bank transfer is credited once, whether it was reported as a remittance or arrived on a statement.
    private static func requireSerialNotCredited(_ s: LedgerSnapshot, _ serial: String) throws(CofferError) {
        guard !s.creditedBankSerials.contains(serial) else {
            throw CofferError(.bankSerialAlreadyCredited,
                              "A transfer with bank serial number \(serial) has already been credited; it cannot be credited again.")
        }
    }

    private static func activeFreeze(_ s: LedgerSnapshot, _ accountId: String, _ id: String) throws(CofferError) -> FreezeRecord {
        guard let f = s.freezes[ObjectKey(accountId, id)] else { throw .notFound(.freezeNotFound, id) }
        guard f.state == .active else { throw .freezeAlreadyResolved(id, state: f.state.rawValue) }
        return f
    }

    private static func creditableRecharge(_ s: LedgerSnapshot, _ accountId: String, _ id: String) throws(CofferError) -> RechargeRecord {
        guard let r = s.recharges[id], r.accountId == accountId else { throw .notFound(.rechargeNotFound, id) }
        // A payment that arrives after the order expired is still money the customer paid: it is credited, not lost.
        switch r.state {
        case .pending, .expired: return r
        case .paid: throw CofferError(.rechargeAlreadyPaid, "Recharge \(id) is already paid.")
        case .refused: throw CofferError(.rechargeRefused, "Recharge \(id) was refused and its payment returned.")
        }
    }
}

extension LedgerSnapshot {
    /// The snapshot after an accepted decision, for the next operation of the same batch.
    public mutating func apply(_ d: LedgerDecision) {
        wallets[d.accountId] = d.walletAfter
        for change in d.changes {
            switch change {
            case .freezeCreated(let f), .freezeResolved(let f): freezes[ObjectKey(f.accountId, f.id)] = f
            case .chargeCreated(let c), .chargeRefunded(let c): charges[ObjectKey(c.accountId, c.id)] = c
            case .rechargePaid(let r): recharges[r.id] = r
            case .codeRedeemed(let c): codes[c.id] = c
            case .remittanceApproved(let r): remittances[r.id] = r
            case .statementLineCredited(let l): statementLines[l.id] = l
            case .orderChanged(let o, _): orders[ObjectKey(o.accountId, o.id)] = o
            case .couponChanged(let c, _): coupons[ObjectKey(c.accountId, c.id)] = c
            case .couponUsed(let u): couponUses[ObjectKey(u.accountId, u.couponId), default: []].append(u)
            case .couponUseReturned(let u):
                let key = ObjectKey(u.accountId, u.couponId)
                couponUses[key] = (couponUses[key] ?? []).map { ($0.paymentId, $0.orderId) == (u.paymentId, u.orderId) ? u : $0 }
            case .paymentCreated: break
            case .orderCreated(let o): orders[ObjectKey(o.accountId, o.id)] = o
            case .resourceRefunded: break
            case .termChanged(let t, _): prepaidTerms[ObjectKey(t.accountId, t.resourceId)] = t
            }
        }
        if let payer = d.admittedPayer { recentPayers[d.accountId, default: []].insert(payer) }
        if let serial = d.creditedBankSerial { creditedBankSerials.insert(serial) }
    }
}
