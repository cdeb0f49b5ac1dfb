import CofferCore
import Foundation

/// Applies a batch of ledger requests inside one store transaction: every request gets its own outcome; a refused request
/// leaves no trace and does not disturb its neighbours (TigerBeetle's model). The rules are `LedgerDecisions.decide` in
/// CofferCore; this shell loads what they read in one ordered pass, calls them, and writes what they decided.
struct LedgerBatchApplier {
    let tx: any StoreTransaction
    let clock: any Clock
    let ids: IdGenerator
    let reserveMinor: Int64

    private var snapshot = LedgerSnapshot()
    private var seenKeys: [IdempotencyKeyPair: (hash: String, receipt: LedgerReceipt)] = [:]
    private var storedKeys: [IdempotencyKeyPair: StoredKey] = [:]
    private var touchedWallets: Set<String> = []
    private var newFreezes: [ObjectKey: FreezeRecord] = [:]
    private var resolvedFreezes: [ObjectKey: FreezeRecord] = [:]
    private var newCharges: [ObjectKey: ChargeRecord] = [:]
    private var refundedCharges: [ObjectKey: ChargeRecord] = [:]
    private(set) var write = LedgerBatchWrite()
    private(set) var profile = LedgerProfile()

    init(tx: any StoreTransaction, clock: any Clock, ids: IdGenerator, reserveMinor: Int64) {
        self.tx = tx
        self.clock = clock
        self.ids = ids
        self.reserveMinor = reserveMinor
    }

    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }()

    mutating func run(_ requests: [LedgerRequest]) async throws -> [LedgerOutcome] {
        var t = monotonicMicros()
        func lap() -> Int64 { let now = monotonicMicros(); defer { t = now }; return now - t }
        let now = clock.nowMicros()
        try await loadSnapshot(requests, now: now)
        profile.lockMicros = lap()
        // Every key of the batch in one round trip, after the wallet locks: a concurrent writer that stored one of them
        // for these accounts has committed by now.
        storedKeys = try await tx.storedKeys(requests.map { IdempotencyKeyPair(scope: $0.command.accountId, key: $0.idempotencyKey) })
        profile.idempotencyMicros = lap()
        var outcomes: [LedgerOutcome] = []
        outcomes.reserveCapacity(requests.count)
        for request in requests {
            outcomes.append(try runOne(request, now: now))
        }
        // The materialized wallets and objects of the batch are written once each, after all operations.
        for accountId in touchedWallets { write.wallets[accountId] = snapshot.wallets[accountId] }
        write.newFreezes = Array(newFreezes.values)
        write.updatedFreezes = Array(resolvedFreezes.values)
        write.newCharges = Array(newCharges.values)
        write.updatedCharges = Array(refundedCharges.values)
        profile.evaluateMicros = lap()
        if !write.isEmpty { try await tx.apply(write) }
        profile.writeMicros = lap()
        profile.batches = 1
        profile.operations = requests.count
        return outcomes
    }

    /// Everything the decisions read, locked and loaded before the first of them: the wallets first (in account order, in
    /// one statement, so that concurrent batches cannot deadlock), then every object the batch names, each kind in key
    /// order; then the bank serials and R7 payers those objects lead to. No read happens inside the loop.
    private mutating func loadSnapshot(_ requests: [LedgerRequest], now: Int64) async throws {
        snapshot.reserveMinor = reserveMinor
        snapshot.wallets = try await tx.lockWallets(Array(Set(requests.map(\.command.accountId))).sorted())
        var codeIds: Set<String> = [], lineIds: Set<String> = []
        var remittanceKeys: Set<ObjectKey> = [], rechargeKeys: Set<ObjectKey> = []
        var freezeKeys: Set<ObjectKey> = [], chargeKeys: Set<ObjectKey> = []
        var payerWindows: [String: Int64] = [:]
        var orderKeys: Set<ObjectKey> = [], couponKeys: Set<ObjectKey> = [], ordersWithCouponUses: Set<ObjectKey> = []
        var termKeys: Set<ObjectKey> = [], refundedResources: Set<ObjectKey> = []
        var postpaidCouponAccounts: Set<String> = []
        for request in requests {
            switch request.command {
            case let .capture(a, id, _), let .release(a, id), let .expireFreeze(a, id): freezeKeys.insert(ObjectKey(a, id))
            case let .refund(a, id, _, _, _): chargeKeys.insert(ObjectKey(a, id))
            case let .creditRecharge(a, id, _, _, payer):
                rechargeKeys.insert(ObjectKey(a, id))
                if let payer { payerWindows[a] = max(payerWindows[a] ?? 0, payer.windowSeconds) }
            case let .redeemCode(_, id): codeIds.insert(id)
            case let .creditRemittance(a, id, _): remittanceKeys.insert(ObjectKey(a, id))
            case let .creditStatementLine(_, id, _): lineIds.insert(id)
            case let .payOrders(a, _, orders, coupons):
                orderKeys.formUnion(orders.map { ObjectKey(a, $0) })
                couponKeys.formUnion(coupons.map { ObjectKey(a, $0) })
            case let .deliverOrder(a, id, term):
                orderKeys.insert(ObjectKey(a, id))
                freezeKeys.insert(ObjectKey(a, OrderRecord.freezeId(orderId: id)))
                if let term { termKeys.insert(ObjectKey(a, term.resourceId)) }
            case let .autoRenew(a, order, _, term):
                orderKeys.insert(ObjectKey(a, order.id))
                termKeys.insert(ObjectKey(a, term.resourceId))
            case let .refundResource(a, _, resourceId, _):
                termKeys.insert(ObjectKey(a, resourceId))
                refundedResources.insert(ObjectKey(a, resourceId))
            case let .failOrderDelivery(a, id):
                orderKeys.insert(ObjectKey(a, id))
                ordersWithCouponUses.insert(ObjectKey(a, id))
                freezeKeys.insert(ObjectKey(a, OrderRecord.freezeId(orderId: id)))
            case let .settleCharge(a, _, _, _, _): postpaidCouponAccounts.insert(a)
            case .grantGift, .adjust, .advance, .freeze, .charge: break
            }
        }
        // Orders, then the coupons they name or used, each in key order (after the wallets: no deadlock).
        if !orderKeys.isEmpty {
            snapshot.orders = try await tx.lockOrders(orderKeys.sorted())
            // O4: paying a renewal needs its resource's term (reclaimed ones are refused).
            for o in snapshot.orders.values where o.type == .renewal && o.state == .unpaid {
                if let r = o.resourceId { termKeys.insert(ObjectKey(o.accountId, r)) }
            }
        }
        if !termKeys.isEmpty { snapshot.prepaidTerms = try await tx.lockPrepaidTerms(termKeys.sorted()) }
        // O8: a refunded resource's delivered orders, and the coupons they used (for the cash coupons' part).
        for key in refundedResources.sorted() {
            let orders = try await tx.lockDeliveredOrders(ofResource: key)
            snapshot.orders.merge(orders) { $1 }
            ordersWithCouponUses.formUnion(orders.keys)
        }
        // C2: a settlement's charge may be paid by any of the account's usable postpaid coupons.
        for accountId in postpaidCouponAccounts.sorted() {
            couponKeys.formUnion(try await tx.usableCouponKeys(accountId: accountId, paymentType: .postpaid, atMicros: now,
                                                               limit: CouponRules.maxCouponsLoadedPerSettlement))
        }
        if !ordersWithCouponUses.isEmpty { couponKeys.formUnion(try await tx.couponKeys(usedByOrders: ordersWithCouponUses.sorted())) }
        if !couponKeys.isEmpty {
            snapshot.coupons = try await tx.lockCoupons(couponKeys.sorted())
            if !ordersWithCouponUses.isEmpty { snapshot.couponUses = try await tx.couponUses(couponKeys: couponKeys.sorted()) }
        }
        if !codeIds.isEmpty { snapshot.codes = try await tx.lockCodes(codeIds.sorted()) }
        if !remittanceKeys.isEmpty { snapshot.remittances = try await tx.lockRemittances(remittanceKeys.sorted()) }
        if !lineIds.isEmpty { snapshot.statementLines = try await tx.lockStatementLines(lineIds.sorted()) }
        if !freezeKeys.isEmpty { snapshot.freezes = try await tx.lockFreezes(freezeKeys.sorted()) }
        if !chargeKeys.isEmpty { snapshot.charges = try await tx.lockCharges(chargeKeys.sorted()) }
        if !rechargeKeys.isEmpty { snapshot.recharges = try await tx.lockRecharges(rechargeKeys.sorted()) }
        let serials = snapshot.remittances.values.compactMap(\.bankSerial) + snapshot.statementLines.values.map(\.bankSerial)
        if !serials.isEmpty { snapshot.creditedBankSerials = try await tx.creditedBankSerials(serials) }
        for (accountId, window) in payerWindows.sorted(by: { $0.key < $1.key }) {
            snapshot.recentPayers[accountId] = try await tx.recentPayers(accountId: accountId, sinceMicros: now - window * 1_000_000)
        }
    }

    private mutating func runOne(_ request: LedgerRequest, now: Int64) throws -> LedgerOutcome {
        let command = request.command
        let keyPair = IdempotencyKeyPair(scope: command.accountId, key: request.idempotencyKey)
        let hash = Secrets.sha256Hex(command.fingerprint)
        // W10: a replay returns the first result; a different request under the same key is refused.
        if let earlier = seenKeys[keyPair] {
            guard earlier.hash == hash else { return LedgerOutcome(result: .failure(.idempotencyConflict), replayed: false) }
            return LedgerOutcome(result: .success(earlier.receipt), replayed: true)
        }
        switch storedKeys[keyPair] {
        case let .ledger(head, freeze, charge, recharge):
            guard head.head?.requestHash == hash else { return LedgerOutcome(result: .failure(.idempotencyConflict), replayed: false) }
            return LedgerOutcome(result: .success(LedgerReceipt(replaying: head, freeze: freeze, charge: charge, recharge: recharge)),
                                 replayed: true)
        case .other:
            return LedgerOutcome(result: .failure(.idempotencyConflict), replayed: false)
        case nil:
            break
        }
        let decision: LedgerDecision
        do {
            decision = try LedgerDecisions.decide(command, actor: request.actor, in: snapshot, nowMicros: now)
        } catch {
            return LedgerOutcome(result: .failure(error), replayed: false)
        }
        snapshot.apply(decision)
        let receipt = record(decision, request, requestHash: hash, now: now)
        seenKeys[keyPair] = (hash, receipt)
        return LedgerOutcome(result: .success(receipt), replayed: false)
    }

    /// Turns an accepted decision into the rows of the batch: the journal entry, its W11 lines, the changed objects, site
    /// messages for its events and, for operator actions and bank credits, an audit record. Returns the receipt.
    private mutating func record(_ d: LedgerDecision, _ request: LedgerRequest, requestHash: String, now: Int64) -> LedgerReceipt {
        let accountId = d.accountId
        let entryId = ids.make("ent")
        for (seq, movement) in d.effect.movements.enumerated() {
            let head = seq == 0 ? LedgerRowRecord.Head(idempotencyKey: request.idempotencyKey, requestHash: requestHash,
                                                       walletAfter: d.walletAfter) : nil
            write.rows.append(LedgerRowRecord(
                accountId: accountId, id: LedgerRowRecord.rowId(entryId: entryId, seq: seq), entryId: entryId, seq: seq,
                kind: request.command.kind, actor: request.actor, movement: movement, relatedType: d.related?.type,
                relatedId: d.related?.id, detailId: movement.detail ?? d.refund?.id, channelTradeNo: d.channelTradeNo, memo: d.memo,
                createdAtMicros: now, head: head))
        }
        var receipt = LedgerReceipt(entryId: entryId, accountId: accountId, kind: request.command.kind, createdAtMicros: now,
                                    wallet: d.walletAfter, refund: d.refund)
        receipt.relatedId = LedgerReceipt.answersWithRelated(d.related?.type) ? d.related?.id : nil
        for change in d.changes {
            switch change {
            case .freezeCreated(let f):
                newFreezes[ObjectKey(accountId, f.id)] = f
                receipt.freeze = f
            case .freezeResolved(let f):
                // Made and resolved in one batch: inserted once, as it ends.
                if newFreezes[ObjectKey(accountId, f.id)] != nil { newFreezes[ObjectKey(accountId, f.id)] = f } else {
                    resolvedFreezes[ObjectKey(accountId, f.id)] = f
                }
                receipt.freeze = f
            case .chargeCreated(let c):
                newCharges[ObjectKey(accountId, c.id)] = c
                receipt.charge = c
            case .chargeRefunded(let c):
                if newCharges[ObjectKey(accountId, c.id)] != nil { newCharges[ObjectKey(accountId, c.id)] = c } else {
                    refundedCharges[ObjectKey(accountId, c.id)] = c
                }
                receipt.charge = c
            case .rechargePaid(let r):
                write.paidRecharges.append(r)
                receipt.recharge = r
            case .codeRedeemed(let c): write.redeemedCodes.append(c)
            case let .orderChanged(o, from):
                write.orderChanges.append((o, from))
                receipt.orders = (receipt.orders ?? []) + [o]
            case let .couponChanged(c, before): write.couponChanges.append((c, before))
            case .couponUsed(let u): write.newCouponUses.append(u)
            case .couponUseReturned(let u): write.returnedCouponUses.append(u)
            case .paymentCreated(let p):
                write.newPayments.append(p)
                receipt.payment = p
            case .orderCreated(let o): write.newOrders.append(o)
            case .resourceRefunded(let r): write.newResourceRefunds.append(r)
            case let .termChanged(t, before): write.termChanges.append((t, before))
            case .remittanceApproved(let r): write.approvedRemittances.append(r)
            case .statementLineCredited(let l): write.creditedLines.append(l)
            }
        }
        for event in d.events {
            // N2: every event is the provider's too, in the outbox of the same transaction.
            write.webhookEvents.append(WebhookEventRecord(id: ids.make("evt"), accountId: event.accountId, type: event.kind.rawValue,
                                                          data: event.parameters, createdAtMicros: now))
            guard let text = LedgerMessages.text(event) else { continue }
            write.messages.append(SiteMessageRecord(id: ids.make("msg"), accountId: event.accountId, kind: event.kind.rawValue,
                                                    title: text.title, body: text.body, createdAtMicros: now,
                                                    parameters: event.parameters))
        }
        if d.audited {
            let before = d.walletBefore, after = d.walletAfter
            write.audits.append(AuditRecord(
                id: ids.make("aud"), accountId: accountId, actor: request.actor, action: "wallet.\(request.command.kind)",
                detail: "entry \(entryId); cash \(MoneyFormat.format(before.cashMinor)) → \(MoneyFormat.format(after.cashMinor)), "
                    + "gift \(MoneyFormat.format(before.giftMinor)) → \(MoneyFormat.format(after.giftMinor)), "
                    + "advance \(MoneyFormat.format(before.advanceOutstandingMinor)) → \(MoneyFormat.format(after.advanceOutstandingMinor)); \(d.memo ?? "")",
                createdAtMicros: now, before: Self.auditState(before), after: Self.auditState(after), origin: request.origin))
        }
        touchedWallets.insert(accountId)
        return receipt
    }
}

extension LedgerBatchApplier {
    /// A wallet as an audit record's before or after.
    static func auditState(_ w: WalletBalances) -> [String: String] {
        ["cash": MoneyFormat.format(w.cashMinor), "gift": MoneyFormat.format(w.giftMinor), "frozen": MoneyFormat.format(w.frozenMinor),
         "advanceOutstanding": MoneyFormat.format(w.advanceOutstandingMinor)]
    }
}

extension LedgerRowRecord {
    /// A W11 record id: the entry's own suffix, and `.<seq>` after the first movement, so that the rows of one entry sit
    /// together in the primary key and sort in the order they happened.
    static func rowId(entryId: String, seq: Int) -> String {
        "txn_" + entryId.dropFirst(4) + (seq == 0 ? "" : ".\(seq)")
    }
}

extension LedgerReceipt {
    /// Order entries are answered with the payment or order they made (read by id); older kinds carry their object in
    /// the receipt itself, and their stored answers have no related id.
    static func answersWithRelated(_ type: String?) -> Bool { type == "order_payment" || type == "order" || type == "resource_refund" }

    /// The first answer of an entry, rebuilt from its first row and the object it touched (no stored JSON). Objects are
    /// shown as the entry left them: a freeze or charge the entry made as it was made; a freeze it resolved, a recharge it
    /// paid as they are (those states are final); a refunded charge as it is now (later refunds included).
    public init(replaying row: LedgerRowRecord, freeze: FreezeRecord?, charge: ChargeRecord?, recharge: RechargeRecord?) {
        var freezeShown = freeze, chargeShown = charge
        if row.kind == "freeze", var f = freeze {
            (f.state, f.capturedMinor, f.resolvedAtMicros) = (.active, 0, nil)
            freezeShown = f
        }
        if row.kind == "charge", var c = charge {
            (c.refundedCashMinor, c.refundedGiftMinor) = (0, 0)
            chargeShown = c
        }
        let refund = row.detailId.map { id in
            RefundInfo(id: id, chargeId: row.relatedId ?? "", amountMinor: row.movement.books.cash + row.movement.books.gift,
                       cashMinor: row.movement.books.cash, giftMinor: row.movement.books.gift)
        }
        self.init(entryId: row.entryId, accountId: row.accountId, kind: row.kind, createdAtMicros: row.createdAtMicros,
                  wallet: row.head?.walletAfter ?? .zero, freeze: freezeShown, charge: chargeShown, refund: refund,
                  recharge: recharge)
        self.relatedId = Self.answersWithRelated(row.relatedType) ? row.relatedId : nil
    }
}

/// The stored text of a ledger event's site message, bilingual, for e-mail and the API (the console renders the message
/// from its catalogs with the event's parameters instead).
enum LedgerMessages {
    static func text(_ event: LedgerEvent) -> (title: String, body: String)? {
        let p = event.parameters
        switch event.kind {
        case .rechargeCredited:
            return ("充值到账 Recharge credited",
                    "充值 \(p["amount"] ?? "") 元已到账（\(p["channel"] ?? "")，订单 \(p["recharge"] ?? "")）。")
        case .statementLineCredited:
            return ("汇款已入账 Remittance credited",
                    "\(p["payer"] ?? "") 汇入的 \(p["amount"] ?? "") 元（银行流水 \(p["serial"] ?? "")）已入账。")
        case .remittanceCredited:
            return ("汇款已入账 Remittance credited", "您于 \(p["date"] ?? "") 的汇款 \(p["amount"] ?? "") 元已审核通过并入账。")
        case .accountInArrears:
            return ("账户已欠费 Account in arrears",
                    "账户余额为 \(p["balance"] ?? "") 元，已欠费；请至少充值 \(p["shortfall"] ?? "") 元。欠费期间新购将被拒绝。")
        case .orderPaid, .orderDelivered, .orderDeliveryFailed, .resourceRenewed, .resourceCreated, .resourceRefunded:
            return nil
        }
    }
}
