import CofferCore
import Foundation

/// Applies a batch of ledger requests inside one store transaction: every request gets its own outcome; a refused request
/// leaves no trace and does not disturb its neighbours (TigerBeetle's model).
struct LedgerBatchApplier {
    let tx: any StoreTransaction
    let clock: any Clock
    let ids: IdGenerator
    let reserveMinor: Int64

    private var wallets: [String: WalletBalances] = [:]
    private var freezes: [String: FreezeRecord] = [:]
    private var newFreezeKeys: Set<String> = []
    private var dirtyFreezeKeys: Set<String> = []
    private var charges: [String: ChargeRecord] = [:]
    private var dirtyChargeKeys: Set<String> = []
    private var newChargeKeys: Set<String> = []
    private var recharges: [String: RechargeRecord] = [:]
    private var codes: [String: RechargeCodeRecord] = [:]
    private var remittances: [String: RemittanceRecord] = [:]
    private var lines: [String: StatementLineRecord] = [:]
    private var creditedSerials: Set<String> = []
    private var payersByAccount: [String: Set<String>] = [:]
    private var seenKeys: [String: (hash: String, json: String)] = [:]
    private var storedKeys: [IdempotencyKeyPair: StoredIdempotency] = [:]
    private var touchedWallets: Set<String> = []
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
        // Lock every wallet of the batch up front, in one statement ordered by id, so that concurrent batches cannot deadlock.
        var t = monotonicMicros()
        func lap() -> Int64 { let now = monotonicMicros(); defer { t = now }; return now - t }
        wallets = try await tx.lockWallets(Array(Set(requests.map(\.command.accountId))).sorted())
        try await lockSources(requests)
        profile.lockMicros = lap()
        // Every key of the batch in one round trip, after the wallet locks: a concurrent writer that stored one of them
        // for these accounts has committed by now.
        storedKeys = try await tx.idempotency(requests.map { IdempotencyKeyPair(scope: $0.command.accountId, key: $0.idempotencyKey) })
        profile.idempotencyMicros = lap()
        var outcomes: [LedgerOutcome] = []
        outcomes.reserveCapacity(requests.count)
        for request in requests {
            outcomes.append(try await runOne(request))
        }
        // The materialized wallets of the batch are written once each, after all operations.
        for accountId in touchedWallets { write.wallets[accountId] = wallets[accountId] }
        write.newFreezes = newFreezeKeys.compactMap { freezes[$0] }
        write.updatedFreezes = dirtyFreezeKeys.subtracting(newFreezeKeys).compactMap { freezes[$0] }
        write.newCharges = newChargeKeys.compactMap { charges[$0] }
        write.updatedCharges = dirtyChargeKeys.subtracting(newChargeKeys).compactMap { charges[$0] }
        profile.evaluateMicros = lap()
        if !write.isEmpty { try await tx.apply(write) }
        profile.writeMicros = lap()
        profile.batches = 1
        profile.operations = requests.count
        return outcomes
    }

    /// The code, remittance and statement-line rows the batch will move, locked in id order after the wallets.
    private mutating func lockSources(_ requests: [LedgerRequest]) async throws {
        var codeIds: Set<String> = [], remittanceIds: Set<String> = [], lineIds: Set<String> = []
        for request in requests {
            switch request.command {
            case let .redeemCode(_, id): codeIds.insert(id)
            case let .creditRemittance(_, id, _): remittanceIds.insert(id)
            case let .creditStatementLine(_, id, _): lineIds.insert(id)
            default: break
            }
        }
        if !codeIds.isEmpty { codes = try await tx.lockCodes(codeIds.sorted()) }
        if !remittanceIds.isEmpty { remittances = try await tx.lockRemittances(remittanceIds.sorted()) }
        if !lineIds.isEmpty { lines = try await tx.lockStatementLines(lineIds.sorted()) }
    }

    private mutating func runOne(_ request: LedgerRequest) async throws -> LedgerOutcome {
        let command = request.command
        let accountId = command.accountId
        let hash = Secrets.sha256Hex(command.fingerprint)
        let keyId = accountId + "\u{1}" + request.idempotencyKey
        // W10: a replay returns the first result; a different request under the same key is refused.
        let earlier: (hash: String, json: String)?
        if let seen = seenKeys[keyId] {
            earlier = seen
        } else if let stored = storedKeys[IdempotencyKeyPair(scope: accountId, key: request.idempotencyKey)] {
            earlier = (stored.requestHash, stored.responseJSON)
        } else {
            earlier = nil
        }
        if let earlier {
            guard earlier.hash == hash else { return LedgerOutcome(result: .failure(.idempotencyConflict), replayed: false) }
            let receipt = try JSONDecoder().decode(LedgerReceipt.self, from: Data(earlier.json.utf8))
            return LedgerOutcome(result: .success(receipt), replayed: true)
        }
        do { try command.validate() } catch { return LedgerOutcome(result: .failure(error), replayed: false) }
        guard let wallet = wallets[accountId] else {
            return LedgerOutcome(result: .failure(.notFound(.accountNotFound, accountId)), replayed: false)
        }
        do {
            let receipt = try await evaluate(request, wallet: wallet)
            let json = String(decoding: try Self.encoder.encode(receipt), as: UTF8.self)
            seenKeys[keyId] = (hash, json)
            write.idempotency.append((accountId, request.idempotencyKey, StoredIdempotency(requestHash: hash, responseJSON: json)))
            return LedgerOutcome(result: .success(receipt), replayed: false)
        } catch let error as CofferError {
            return LedgerOutcome(result: .failure(error), replayed: false)
        }
    }

    /// Checks the rule, and on success records the entry and the changed objects in the batch.
    private mutating func evaluate(_ request: LedgerRequest, wallet: WalletBalances) async throws -> LedgerReceipt {
        let now = clock.nowMicros()
        let accountId = request.command.accountId
        var related: (type: String, id: String)?
        var tradeNo: String?
        var memo: String?
        var receiptFreeze: FreezeRecord?
        var receiptCharge: ChargeRecord?
        var receiptRefund: RefundInfo?
        var receiptRecharge: RechargeRecord?
        let effect: LedgerEffect

        switch request.command {
        case let .grantGift(_, amount, m):
            effect = try LedgerRules.grantGift(wallet, amountMinor: amount)
            memo = m
        case let .adjust(_, bucket, delta, reason):
            effect = try LedgerRules.adjust(wallet, bucket: bucket, deltaMinor: delta)
            memo = reason
        case let .advance(_, amount, m):
            effect = try LedgerRules.recordAdvance(wallet, amountMinor: amount)
            memo = m
        case let .freeze(_, freezeId, amount, expiresIn, reference):
            if let seconds = expiresIn, !(1...31_536_000).contains(seconds) {
                throw CofferError.invalidField("expiresInSeconds", "must be between 1 and 31536000 (one year)")
            }
            try requireNew(freezes[accountId + "/" + freezeId] == nil, "freeze", freezeId)
            effect = try LedgerRules.freeze(wallet, amountMinor: amount, reserveMinor: reserveMinor)
            let f = FreezeRecord(id: freezeId, accountId: accountId, amountMinor: amount, capturedMinor: 0, state: .active,
                                 expiresAtMicros: expiresIn.map { now + $0 * 1_000_000 }, reference: reference, createdAtMicros: now, resolvedAtMicros: nil)
            freezes[accountId + "/" + freezeId] = f
            newFreezeKeys.insert(accountId + "/" + freezeId)
            receiptFreeze = f
            related = ("freeze", freezeId)
            memo = reference
        case let .capture(_, freezeId, amount):
            var f = try await activeFreeze(accountId, freezeId)
            let captured = amount ?? f.amountMinor
            (effect, _) = try LedgerRules.capture(wallet, frozenMinor: f.amountMinor, captureMinor: captured)
            f.state = .captured
            f.capturedMinor = captured
            f.resolvedAtMicros = now
            freezes[accountId + "/" + freezeId] = f
            dirtyFreezeKeys.insert(accountId + "/" + freezeId)
            receiptFreeze = f
            related = ("freeze", freezeId)
        case let .release(_, freezeId), let .expireFreeze(_, freezeId):
            var f = try await activeFreeze(accountId, freezeId)
            if case .expireFreeze = request.command {
                guard let deadline = f.expiresAtMicros, deadline <= now else {
                    throw CofferError(.freezeNotDue, "Freeze \(freezeId) has not reached its deadline.")
                }
                f.state = .expired
            } else {
                f.state = .released
            }
            effect = try LedgerRules.release(wallet, frozenMinor: f.amountMinor)
            f.resolvedAtMicros = now
            freezes[accountId + "/" + freezeId] = f
            dirtyFreezeKeys.insert(accountId + "/" + freezeId)
            receiptFreeze = f
            related = ("freeze", freezeId)
        case let .charge(_, chargeId, amount, mode, reference):
            try requireNew(charges[accountId + "/" + chargeId] == nil, "charge", chargeId)
            let split: SpendSplit
            (effect, split) = try LedgerRules.charge(wallet, amountMinor: amount, mode: mode, reserveMinor: reserveMinor)
            let c = ChargeRecord(id: chargeId, accountId: accountId, mode: mode, amountMinor: amount,
                                 cashMinor: split.cashMinor, giftMinor: split.giftMinor, refundedCashMinor: 0,
                                 refundedGiftMinor: 0, reference: reference, createdAtMicros: now)
            charges[accountId + "/" + chargeId] = c
            newChargeKeys.insert(accountId + "/" + chargeId)
            receiptCharge = c
            related = ("charge", chargeId)
            memo = reference
        case let .refund(_, chargeId, refundId, amount, reason):
            var c = try await existingCharge(accountId, chargeId)
            let split: SpendSplit
            (effect, split) = try LedgerRules.refund(
                wallet, charge: SpendSplit(cashMinor: c.cashMinor, giftMinor: c.giftMinor),
                refunded: SpendSplit(cashMinor: c.refundedCashMinor, giftMinor: c.refundedGiftMinor), amountMinor: amount)
            c.refundedCashMinor += split.cashMinor
            c.refundedGiftMinor += split.giftMinor
            charges[accountId + "/" + chargeId] = c
            dirtyChargeKeys.insert(accountId + "/" + chargeId)
            receiptCharge = c
            receiptRefund = RefundInfo(id: refundId, chargeId: chargeId, amountMinor: amount,
                                       cashMinor: split.cashMinor, giftMinor: split.giftMinor)
            related = ("charge", chargeId)
            memo = reason
        case let .creditRecharge(_, rechargeId, trade, amount, payer):
            var r = try await pendingRecharge(accountId, rechargeId)
            // The channel collected the order's total (amount + R4 fee); the wallet gets the amount only.
            guard r.totalMinor == amount else { throw CofferError.amountMismatch(amount, expected: r.totalMinor) }
            effect = try LedgerRules.creditIncoming(wallet, amountMinor: r.amountMinor, type: .recharge, feeMinor: r.feeMinor ?? 0)
            // Last check of the case, so that a payer is only counted for a credit that happens.
            if let payer { try await admitPayer(accountId, payer, channel: r.channel, now: now) }
            r.payerId = payer?.payerId
            r.state = .paid
            r.channelTradeNo = trade
            r.paidAtMicros = now
            recharges[rechargeId] = r
            write.paidRecharges.append(r)
            receiptRecharge = r
            related = ("recharge", rechargeId)
            tradeNo = trade
            message(accountId, "recharge_credited", "充值到账 Recharge credited",
                    "充值 \(MoneyFormat.format(r.amountMinor)) 元已到账（\(r.channel)，订单 \(rechargeId)）。", now)
        case let .redeemCode(_, codeId):
            guard var c = codes[codeId] else { throw CofferError.notFound(.codeNotFound, codeId) }
            switch c.state {
            case .unused: break
            case .redeemed: throw CofferError.codeAlreadyRedeemed(byThisAccount: c.redeemedBy == accountId)
            case .voided: throw CofferError.codeVoided
            }
            guard now < c.validUntilMicros else { throw CofferError.codeExpired }
            effect = c.bucket == .cash
                ? try LedgerRules.creditIncoming(wallet, amountMinor: c.amountMinor, type: .codeRedemption)
                : try LedgerRules.grantGift(wallet, amountMinor: c.amountMinor, type: .codeRedemption)
            c.state = .redeemed
            c.redeemedBy = accountId
            c.redeemedAtMicros = now
            codes[codeId] = c
            write.redeemedCodes.append(c)
            related = ("recharge_code", codeId)
        case let .creditRemittance(_, remittanceId, amount):
            guard var r = remittances[remittanceId], r.accountId == accountId else {
                throw CofferError.notFound(.remittanceNotFound, remittanceId)
            }
            guard r.state == .pendingReview else {
                throw CofferError(.remittanceAlreadyReviewed, "Remittance \(remittanceId) is already \(r.state.rawValue).")
            }
            guard r.amountMinor == amount else { throw CofferError.amountMismatch(amount, expected: r.amountMinor) }
            if let serial = r.bankSerial { try await requireSerialNotCredited(serial) }
            effect = try LedgerRules.creditIncoming(wallet, amountMinor: amount, type: .remittance)
            r.state = .approved
            r.reviewedBy = request.actor
            r.reviewedAtMicros = now
            remittances[remittanceId] = r
            write.approvedRemittances.append(r)
            related = ("remittance", remittanceId)
            tradeNo = r.bankSerial
            message(accountId, "remittance_credited", "汇款已入账 Remittance credited",
                    "您于 \(r.remittedOn) 的汇款 \(MoneyFormat.format(amount)) 元已审核通过并入账。", now)
        case let .creditStatementLine(_, lineId, amount):
            guard var l = lines[lineId] else { throw CofferError.notFound(.statementLineNotFound, lineId) }
            guard StatementLineState.creditable.contains(l.state), l.accountId == nil || l.accountId == accountId else {
                throw CofferError(.statementLineNotCreditable, "Statement line \(l.bankSerial) is \(l.state.rawValue) and cannot be credited to \(accountId).")
            }
            guard l.amountMinor == amount else { throw CofferError.amountMismatch(amount, expected: l.amountMinor) }
            try await requireSerialNotCredited(l.bankSerial)
            effect = try LedgerRules.creditIncoming(wallet, amountMinor: amount, type: .remittance)
            l.state = .credited
            l.accountId = accountId
            l.resolvedAtMicros = now
            l.resolvedBy = request.actor
            lines[lineId] = l
            write.creditedLines.append(l)
            related = ("statement_line", lineId)
            tradeNo = l.bankSerial
            message(accountId, "remittance_credited", "汇款已入账 Remittance credited",
                    "\(l.payerName) 汇入的 \(MoneyFormat.format(amount)) 元（银行流水 \(l.bankSerial)）已入账。", now)
        }

        // TIGER_STYLE: the wallet we write must still be the wallet we read plus exactly these postings.
        for book in Book.walletBooks {
            let delta = effect.postings.filter { $0.book == book }.reduce(Int64(0)) { $0 + $1.amountMinor }
            precondition(effect.wallet.value(of: book)! == wallet.value(of: book)! + delta, "wallet drift on \(book)")
        }

        let entryId = ids.make("ent")
        write.entries.append(JournalEntryRecord(id: entryId, accountId: accountId, kind: request.command.kind,
                                                idempotencyKey: request.idempotencyKey, actor: request.actor, memo: memo,
                                                createdAtMicros: now, postings: effect.postings))
        for movement in effect.movements {
            write.transactions.append(TransactionRecord(id: ids.make("txn"), accountId: accountId, entryId: entryId,
                                                        movement: movement, relatedType: related?.type,
                                                        relatedId: related?.id, channelTradeNo: tradeNo, memo: memo,
                                                        createdAtMicros: now))
        }
        // Z3: operator money actions (and every bank credit) are audited with the balances before and after.
        switch request.command {
        case .adjust, .grantGift, .advance, .creditRemittance, .creditStatementLine:
            let before = wallet, after = effect.wallet
            write.audits.append(AuditRecord(
                id: ids.make("aud"), accountId: accountId, actor: request.actor, action: "wallet.\(request.command.kind)",
                detail: "entry \(entryId); cash \(MoneyFormat.format(before.cashMinor)) → \(MoneyFormat.format(after.cashMinor)), "
                    + "gift \(MoneyFormat.format(before.giftMinor)) → \(MoneyFormat.format(after.giftMinor)), "
                    + "advance \(MoneyFormat.format(before.advanceOutstandingMinor)) → \(MoneyFormat.format(after.advanceOutstandingMinor)); \(memo ?? "")",
                createdAtMicros: now))
        default:
            break
        }
        wallets[accountId] = effect.wallet
        touchedWallets.insert(accountId)
        return LedgerReceipt(entryId: entryId, accountId: accountId, kind: request.command.kind, createdAtMicros: now,
                             wallet: effect.wallet, freeze: receiptFreeze, charge: receiptCharge, refund: receiptRefund,
                             recharge: receiptRecharge)
    }

    /// Ids are made by the server, so a repeat inside one batch is a bug upstream; the primary keys catch repeats across
    /// batches, this catches them before two entries would share one row.
    private func requireNew(_ isNew: Bool, _ what: String, _ id: String) throws {
        guard isNew else { throw CofferError(.duplicateId, "A \(what) with id \(id) is already in this batch.") }
    }

    /// One bank transfer is credited once, whether it was reported as a remittance or arrived on a statement.
    private mutating func requireSerialNotCredited(_ serial: String) async throws {
        guard !creditedSerials.contains(serial), !(try await tx.bankSerialCredited(serial)) else {
            throw CofferError(.bankSerialAlreadyCredited, "A transfer with bank serial number \(serial) has already been credited; it cannot be credited again.")
        }
        creditedSerials.insert(serial)
    }

    private mutating func message(_ accountId: String, _ kind: String, _ title: String, _ body: String, _ now: Int64) {
        write.messages.append(SiteMessageRecord(id: ids.make("msg"), accountId: accountId, kind: kind, title: title, body: body,
                                                createdAtMicros: now))
    }

    private mutating func activeFreeze(_ accountId: String, _ id: String) async throws -> FreezeRecord {
        let key = accountId + "/" + id
        let found: FreezeRecord?
        if let cached = freezes[key] { found = cached } else { found = try await tx.lockFreeze(accountId: accountId, id: id) }
        guard let f = found else { throw CofferError.notFound(.freezeNotFound, id) }
        freezes[key] = f
        guard f.state == .active else { throw CofferError.freezeAlreadyResolved(id, state: f.state.rawValue) }
        return f
    }

    private mutating func existingCharge(_ accountId: String, _ id: String) async throws -> ChargeRecord {
        let key = accountId + "/" + id
        if let cached = charges[key] { return cached }
        guard let c = try await tx.lockCharge(accountId: accountId, id: id) else { throw CofferError.notFound(.chargeNotFound, id) }
        charges[key] = c
        return c
    }

    /// R7 under the wallet lock: a payer already seen in the window always passes; a new one only below the limit.
    private mutating func admitPayer(_ accountId: String, _ payer: PayerCheck, channel: String, now: Int64) async throws {
        let key = RechargeRecord.payerKey(channel: channel, payerId: payer.payerId)
        var known: Set<String>
        if let cached = payersByAccount[accountId] {
            known = cached
        } else {
            known = try await tx.recentPayers(accountId: accountId, sinceMicros: now - payer.windowSeconds * 1_000_000)
        }
        if !known.contains(key) {
            guard known.count < payer.maxDistinct else { throw CofferError.payerLimitReached }
            known.insert(key)
        }
        payersByAccount[accountId] = known
    }

    private mutating func pendingRecharge(_ accountId: String, _ id: String) async throws -> RechargeRecord {
        let found: RechargeRecord?
        if let cached = recharges[id] { found = cached } else { found = try await tx.lockRecharge(id: id) }
        guard let r = found, r.accountId == accountId else { throw CofferError.notFound(.rechargeNotFound, id) }
        recharges[id] = r
        // A payment that arrives after the order expired is still money the customer paid: it is credited, not lost.
        switch r.state {
        case .pending, .expired: return r
        case .paid: throw CofferError(.rechargeAlreadyPaid, "Recharge \(id) is already paid.")
        case .refused: throw CofferError(.rechargeRefused, "Recharge \(id) was refused and its payment returned.")
        }
    }
}
