import CofferCore
import Foundation
import Synchronization

/// Money of a group of bill lines: what was deducted (fen) and how it was paid, and the exact rated total (1e-8).
public struct BillAmounts: Sendable, Equatable {
    public var deductionMinor: Int64 = 0
    public var cashMinor: Int64 = 0
    public var giftMinor: Int64 = 0
    public var couponMinor: Int64 = 0
    public var ratedUnits: Int128 = 0
    public var remainderUnits: Int128 = 0
    public var cycles: Int = 0
    /// Paid back by compensations (negative lines): already taken off `deductionMinor`, `cashMinor` and `giftMinor`.
    public var compensationMinor: Int64 = 0
    public init() {}

    mutating func add(_ c: CompensationRecord) throws(CofferError) {
        deductionMinor = try Checked.sub(deductionMinor, c.amountMinor)
        cashMinor = try Checked.sub(cashMinor, c.cashMinor)
        giftMinor = try Checked.sub(giftMinor, c.giftMinor)
        compensationMinor = try Checked.add(compensationMinor, c.amountMinor)
    }

    mutating func add(_ b: BilledSettlement) throws(CofferError) {
        deductionMinor = try Checked.add(deductionMinor, b.settlement.deductionMinor)
        cashMinor = try Checked.add(cashMinor, b.cashMinor)
        giftMinor = try Checked.add(giftMinor, b.giftMinor)
        couponMinor = try Checked.add(couponMinor, b.couponMinor)
        ratedUnits = try Rating.sum([ratedUnits, b.settlement.totalUnits])
        remainderUnits = try Rating.sum([remainderUnits, Int128(b.settlement.remainderUnits)])
        cycles += 1
    }
}

/// L0 (B3): a month at a glance.
public struct BillOverview: Sendable {
    public var accountId: String
    public var month: String
    public var period: StatisticPeriod
    public var postpaid: BillAmounts
    public var byProduct: [(productId: String, amounts: BillAmounts)]
}

/// L1 (B3): one group of a summary.
public struct BillSummaryRow: Sendable {
    public var key: String
    public var amounts: BillAmounts
}

/// L2 (B3): one resource's month.
public struct BillResourceRow: Sendable {
    public var resourceId: String
    public var resourceName: String
    public var productId: String
    public var projectId: String?
    public var region: String?
    public var amounts: BillAmounts
}

public enum BillSummaryDimension: Sendable, Equatable {
    case product, project, region
    /// By the value of one tag key; lines without it are summed under "".
    case tag(String)
}

/// B6: next month's cost estimate.
public struct CostEstimate: Sendable, Equatable {
    public var month: String
    public var daysInMonth: Int
    public var sampleDays: Int
    public var sampleDeductionMinor: Int64
    public var postpaidMinor: Int64
    public var prepaidRenewalsMinor: Int64
    public var totalMinor: Int64
}

/// B3–B6: bills at four levels, the statistic period and the cost estimate. Reads only: money moved at settlement.
public struct BillService: Sendable {
    let store: any CofferStore
    let clock: any Clock
    let ids: IdGenerator

    public init(store: any CofferStore, clock: any Clock, ids: IdGenerator) {
        (self.store, self.clock, self.ids) = (store, clock, ids)
    }

    public func settings(accountId: String) async throws -> BillSettings {
        try await store.billSettings(accountId: accountId) ?? .standard
    }

    /// B4: from deduction to billing period, once, effective from the current month (in the account's zone). Asking again
    /// for billing period changes nothing; going back is refused.
    public func setPeriod(accountId: String, _ period: StatisticPeriod, actor: String) async throws -> BillSettings {
        guard let account = try await store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        let current = try await settings(accountId: accountId)
        if current.period == period { return current }
        guard period == .billing else {
            throw CofferError(.statisticPeriodLocked, "The statistic period was switched to billing period in \(current.switchMonth ?? "?"); it cannot be switched back.")
        }
        let now = clock.nowMicros()
        let month = SettlementCalendar.month(of: now, timeZone: account.timeZone)
        let audit = AuditRecord(id: ids.make("aud"), accountId: accountId, actor: actor, action: "bill_settings.statistic_period",
                                detail: "deduction → billing from \(month)", createdAtMicros: now,
                                before: ["statisticPeriod": StatisticPeriod.deduction.rawValue],
                                after: ["statisticPeriod": StatisticPeriod.billing.rawValue, "from": month])
        guard try await store.switchToBillingPeriod(accountId: accountId, month: month, audit: audit) else {
            return try await settings(accountId: accountId)
        }
        return BillSettings(period: .billing, switchMonth: month)
    }

    public func checkMonth(_ month: String) throws(CofferError) {
        guard StatisticPeriod.parseMonth(month) != nil else { throw .invalidField("month", "must be a month like 2026-11") }
    }

    /// Most compensations one month's bill reads (a limit on everything).
    public static let maxCompensationsPerMonth = 10_000

    /// Every line of a month: its settlements, then its compensations (each with the settlement it compensates).
    private func each(_ accountId: String, _ month: String, _ body: @escaping @Sendable (BilledSettlement) throws -> Void,
                      compensation: @escaping @Sendable (BilledCompensation) throws -> Void) async throws -> BillSettings {
        try checkMonth(month)
        guard try await store.account(id: accountId) != nil else { throw CofferError.notFound(.accountNotFound, accountId) }
        let settings = try await settings(accountId: accountId)
        try await store.forEachBilledSettlement(accountId: accountId, selector: BillMonthSelector(month: month, settings: settings), body)
        for c in try await store.compensations(accountId: accountId, month: month, limit: Self.maxCompensationsPerMonth) { try compensation(c) }
        return settings
    }

    public func overview(accountId: String, month: String) async throws -> BillOverview {
        let acc = Mutex((total: BillAmounts(), byProduct: [String: BillAmounts]()))
        let settings = try await each(accountId, month, { b in
            try acc.withLock { a in
                try a.total.add(b)
                try a.byProduct[b.settlement.productId, default: BillAmounts()].add(b)
            }
        }, compensation: { c in
            try acc.withLock { a in
                try a.total.add(c.compensation)
                try a.byProduct[c.settlement.productId, default: BillAmounts()].add(c.compensation)
            }
        })
        let a = acc.withLock { $0 }
        return BillOverview(accountId: accountId, month: month, period: effectivePeriod(month, settings), postpaid: a.total,
                            byProduct: a.byProduct.sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
    }

    /// The period a month's bill was made by: billing period from the switch month on.
    func effectivePeriod(_ month: String, _ settings: BillSettings) -> StatisticPeriod {
        guard let sw = settings.switchMonth, month >= sw else { return .deduction }
        return .billing
    }

    public func summary(accountId: String, month: String, by dimension: BillSummaryDimension) async throws -> [BillSummaryRow] {
        let acc = Mutex([String: BillAmounts]())
        let key: @Sendable (SettlementRecord) -> String = { s in
            switch dimension {
            case .product: s.productId
            case .project: s.projectId ?? ""
            case .region: s.region ?? ""
            case .tag(let k): ResourceService.tags(fromJSON: s.tagsJSON)[k] ?? ""
            }
        }
        _ = try await each(accountId, month, { b in
            try acc.withLock { try $0[key(b.settlement), default: BillAmounts()].add(b) }
        }, compensation: { c in
            try acc.withLock { try $0[key(c.settlement), default: BillAmounts()].add(c.compensation) }
        })
        return acc.withLock { $0 }.sorted { $0.key < $1.key }.map { BillSummaryRow(key: $0.key, amounts: $0.value) }
    }

    public func resources(accountId: String, month: String) async throws -> [BillResourceRow] {
        let acc = Mutex([String: BillResourceRow]())
        @Sendable func row(_ rows: [String: BillResourceRow], _ s: SettlementRecord) -> BillResourceRow {
            rows[s.resourceId] ?? BillResourceRow(resourceId: s.resourceId, resourceName: s.resourceName, productId: s.productId,
                                                  projectId: s.projectId, region: s.region, amounts: BillAmounts())
        }
        _ = try await each(accountId, month, { b in
            let s = b.settlement
            try acc.withLock { rows in
                var r = row(rows, s)
                try r.amounts.add(b)
                // The newest settlement names the resource as it is now.
                (r.resourceName, r.projectId, r.region) = (s.resourceName, s.projectId, s.region)
                rows[s.resourceId] = r
            }
        }, compensation: { c in
            try acc.withLock { rows in
                var r = row(rows, c.settlement)
                try r.amounts.add(c.compensation)
                rows[c.settlement.resourceId] = r
            }
        })
        return acc.withLock { $0 }.values.sorted { $0.resourceId < $1.resourceId }
    }

    public func lines(accountId: String, month: String, cursor: String?, limit: Int,
                      filter: BillLineFilter = .init()) async throws -> (rows: [BillLineRow], next: String?) {
        try checkMonth(month)
        guard try await store.account(id: accountId) != nil else { throw CofferError.notFound(.accountNotFound, accountId) }
        let settings = try await settings(accountId: accountId)
        let after = try cursor.map { c throws(CofferError) in try Self.parseCursor(c) }
        let rows = try await store.billLines(BillLineQuery(accountId: accountId, selector: BillMonthSelector(month: month, settings: settings),
                                                           after: after, limit: limit, filter: filter))
        let next = rows.count == limit ? rows.last.map { Self.cursor(BillLineCursor(settlementId: $0.billed.settlement.id,
                                                                                    component: $0.line.component, unit: $0.line.unit)) } : nil
        return (rows, next)
    }

    /// The month's compensations (negative L3 lines), oldest first.
    public func compensations(accountId: String, month: String) async throws -> [BilledCompensation] {
        try checkMonth(month)
        return try await store.compensations(accountId: accountId, month: month, limit: Self.maxCompensationsPerMonth)
    }

    /// B3: an operator compensates a settled cycle — `amount` back to the customer as a refund of the cycle's charge (cash
    /// and gift in the proportion they paid, never more than is left of it), and a negative line in this month's bill.
    /// Audited. The Idempotency-Key is the refund's: a retry after a crash replays the refund and records the line once.
    public func compensate(accountId: String, settlementId: String, amountText: String, reason: String, idempotencyKey: String,
                           actor: String, wallets: WalletService) async throws -> (CompensationRecord, replayed: Bool) {
        let amount = try MoneyFormat.parsePositive(amountText, field: "amount")
        let reason = try TextRules.required(reason, field: "reason", max: 200)
        guard let account = try await store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        guard let settlement = try await store.settlement(accountId: accountId, id: settlementId) else {
            throw CofferError.notFound(.settlementNotFound, settlementId)
        }
        guard let chargeId = settlement.chargeId else { throw CofferError.refundExceedsCharge(refundableMinor: 0) }
        let outcome = try await wallets.submit(.refund(accountId: accountId, chargeId: chargeId, refundId: ids.make("rfd"), amountMinor: amount,
                                                       reason: reason), idempotencyKey: idempotencyKey, actor: actor)
        let receipt = try outcome.get()
        guard let refund = receipt.refund, refund.chargeId == chargeId else { throw CofferError.idempotencyConflict }
        if let stored = try await store.compensation(accountId: accountId, refundId: refund.id) { return (stored, true) }
        let record = CompensationRecord(accountId: accountId, id: "cmp_" + refund.id.dropFirst(4), settlementId: settlementId, refundId: refund.id,
                                        amountMinor: refund.amountMinor, cashMinor: refund.cashMinor, giftMinor: refund.giftMinor,
                                        reason: reason, actor: actor, month: SettlementCalendar.month(of: receipt.createdAtMicros, timeZone: account.timeZone),
                                        createdAtMicros: receipt.createdAtMicros)
        let audit = AuditRecord(id: ids.make("aud"), accountId: accountId, actor: actor, action: "bill.compensation",
                                detail: "\(settlementId): \(MoneyFormat.format(amount)) — \(reason)", createdAtMicros: clock.nowMicros())
        let inserted = try await store.insertCompensation(record, audit: audit)
        return (inserted ? record : try await store.compensation(accountId: accountId, refundId: refund.id) ?? record, outcome.replayed || !inserted)
    }

    /// An opaque cursor: the last line's settlement id, component and unit, hex-encoded.
    static func cursor(_ c: BillLineCursor) -> String {
        Array([c.settlementId, c.component, c.unit].joined(separator: "\u{1F}").utf8).map { String(format: "%02x", $0) }.joined()
    }

    static func parseCursor(_ text: String) throws(CofferError) -> BillLineCursor {
        let invalid = CofferError.invalidField("cursor", "is not a cursor this API returned")
        let bytes = Array(text.utf8)
        guard bytes.count % 2 == 0, bytes.count <= 600 else { throw invalid }
        var raw: [UInt8] = []
        var i = 0
        while i < bytes.count {
            guard let b = UInt8(String(decoding: bytes[i..<(i + 2)], as: UTF8.self), radix: 16) else { throw invalid }
            raw.append(b)
            i += 2
        }
        let parts = String(decoding: raw, as: UTF8.self).split(separator: "\u{1F}", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].hasPrefix("stl_") else { throw invalid }
        return BillLineCursor(settlementId: String(parts[0]), component: String(parts[1]), unit: String(parts[2]))
    }

    /// B6: the postpaid run rate of the last complete days (up to 7, in the account's zone) × next month's days, plus the
    /// prepaid renewals that fall due next month — none exist until orders are built (the orders issue). Days before the
    /// account's first settled usage do not count, so a new account's rate is not diluted by days it used nothing.
    public func costEstimate(accountId: String) async throws -> CostEstimate {
        guard let account = try await store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        let now = clock.nowMicros()
        let today = try SettlementCalendar.window(containing: now, cycle: .daily, timeZone: account.timeZone)
        var start = today.startMicros
        var days = 0
        if let first = try await store.firstSettledCycleStart(accountId: accountId) {
            while days < 7 {
                let previous = try SettlementCalendar.window(containing: start - 1, cycle: .daily, timeZone: account.timeZone)
                guard previous.endMicros > first else { break }
                start = previous.startMicros
                days += 1
            }
        }
        let thisMonth = try SettlementCalendar.window(containing: now, cycle: .monthly, timeZone: account.timeZone)
        let nextMonth = try SettlementCalendar.next(after: thisMonth, cycle: .monthly, timeZone: account.timeZone)
        let monthDays = Int((nextMonth.endMicros - nextMonth.startMicros + 43_200_000_000) / 86_400_000_000)
        let sample = days == 0 ? 0 : try await store.settledDeductions(accountId: accountId, cycleStartFromMicros: start, toMicros: today.startMicros)
        // Σ × days-in-month ÷ sample days, half-up, in 128 bits.
        let postpaid: Int64
        if days == 0 {
            postpaid = 0
        } else {
            let scaled = Int128(sample) * Int128(monthDays)
            let rounded = (scaled * 2 + Int128(days)) / (Int128(days) * 2)
            guard rounded <= Int128(MoneyFormat.maxAbsMinor) else { throw CofferError.arithmeticOverflow }
            postpaid = Int64(rounded)
        }
        let renewals = try await prepaidRenewals(accountId: accountId, in: nextMonth, timeZone: account.timeZone)
        return CostEstimate(month: SettlementCalendar.month(of: nextMonth.startMicros, timeZone: account.timeZone), daysInMonth: monthDays,
                            sampleDays: days, sampleDeductionMinor: sample, postpaidMinor: postpaid, prepaidRenewalsMinor: renewals,
                            totalMinor: try Checked.add(postpaid, renewals))
    }

    /// B6, O4: the auto-renewals that fall due in a month — each active auto-renewing resource renews one month at a
    /// time from its expiry, at today's catalog price (a resource whose plan left the catalog cannot renew: 0).
    func prepaidRenewals(accountId: String, in month: CycleWindow, timeZone: String) async throws -> Int64 {
        var total: Int64 = 0
        var prices: [String: Int64?] = [:]
        for t in try await store.prepaidTerms(accountId: accountId) where t.autoRenew && t.state == .active {
            let key = t.productId + "\u{1}" + t.specification
            if prices[key] == nil {
                prices[key] = .some(try await store.product(id: t.productId)?.plans.first { $0.specification == t.specification }?.monthlyPriceMinor)
            }
            guard let monthly = prices[key] ?? nil else { continue }
            var due = t.expiresAtMicros
            // An active term is at most a grace period overdue, so this ends within a few steps; 62 bounds it regardless.
            for _ in 0..<62 where due < month.endMicros {
                if due >= month.startMicros { total = try Checked.add(total, monthly) }
                due = SettlementCalendar.addMonths(due, 1, timeZone: timeZone)
            }
        }
        return total
    }
}
