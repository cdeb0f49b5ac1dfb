import CofferCore

/// B5: a project of an account; resources belong to one (or to none: the default project).
public struct ProjectRecord: Codable, Sendable, Equatable {
    public var accountId: String
    public var id: String
    public var name: String
    public var createdAtMicros: Int64
    public var updatedAtMicros: Int64
    public init(accountId: String, id: String, name: String, createdAtMicros: Int64, updatedAtMicros: Int64) {
        (self.accountId, self.id, self.name, self.createdAtMicros, self.updatedAtMicros) = (accountId, id, name, createdAtMicros, updatedAtMicros)
    }
}

/// A resource the provider runs for an account (registered by the provider's services), billed by its product.
public struct ResourceRecord: Codable, Sendable, Equatable {
    public var accountId: String
    public var id: String
    public var productId: String
    public var name: String
    public var region: String?
    public var projectId: String?
    /// Sorted by key when stored, so that the same tags are the same text.
    public var tags: [String: String]
    public var createdAtMicros: Int64
    public var updatedAtMicros: Int64
    public init(accountId: String, id: String, productId: String, name: String, region: String?, projectId: String?,
                tags: [String: String], createdAtMicros: Int64, updatedAtMicros: Int64) {
        (self.accountId, self.id, self.productId, self.name, self.region) = (accountId, id, productId, name, region)
        (self.projectId, self.tags, self.createdAtMicros, self.updatedAtMicros) = (projectId, tags, createdAtMicros, updatedAtMicros)
    }
}

/// B1: one usage record as stored: rated at ingestion (M2) and placed in the cycle of its resource's product that holds
/// its period start, in the account's time zone.
public struct UsageRecord: Sendable, Equatable {
    public var accountId: String
    public var id: String
    public var resourceId: String
    public var productId: String
    public var component: String
    public var unit: String
    public var quantityUnits: Int64
    public var unitPriceUnits: Int64
    public var listUnitPriceUnits: Int64?
    public var amountUnits: Int64
    public var listAmountUnits: Int64?
    public var periodStartMicros: Int64
    public var periodEndMicros: Int64
    public var region: String?
    public var tagsJSON: String?
    public var cycle: CycleWindow
    /// SHA-256 of what the provider sent: the same id with the same content is a duplicate, with other content a conflict.
    public var contentHash: String
    public var receivedAtMicros: Int64
    public init(accountId: String, id: String, resourceId: String, productId: String, component: String, unit: String,
                quantityUnits: Int64, unitPriceUnits: Int64, listUnitPriceUnits: Int64?, amountUnits: Int64, listAmountUnits: Int64?,
                periodStartMicros: Int64, periodEndMicros: Int64, region: String?, tagsJSON: String?, cycle: CycleWindow,
                contentHash: String, receivedAtMicros: Int64) {
        (self.accountId, self.id, self.resourceId, self.productId, self.component, self.unit) = (accountId, id, resourceId, productId, component, unit)
        (self.quantityUnits, self.unitPriceUnits, self.listUnitPriceUnits) = (quantityUnits, unitPriceUnits, listUnitPriceUnits)
        (self.amountUnits, self.listAmountUnits, self.periodStartMicros, self.periodEndMicros) = (amountUnits, listAmountUnits, periodStartMicros, periodEndMicros)
        (self.region, self.tagsJSON, self.cycle, self.contentHash, self.receivedAtMicros) = (region, tagsJSON, cycle, contentHash, receivedAtMicros)
    }
}

/// What ingestion needs to know of a resource: the resource, its product's cycle and its account's time zone.
public struct UsageTarget: Sendable {
    public var resource: ResourceRecord
    public var cycle: SettlementCycle
    public var timeZone: String
    public init(resource: ResourceRecord, cycle: SettlementCycle, timeZone: String) {
        (self.resource, self.cycle, self.timeZone) = (resource, cycle, timeZone)
    }
}

/// Unsettled usage of one resource in one cycle that ended: one settlement's worth of work.
public struct UsageGroup: Sendable, Hashable, Comparable {
    public var accountId: String
    public var resourceId: String
    public var cycle: CycleWindow
    public var timeZone: String
    public init(accountId: String, resourceId: String, cycle: CycleWindow, timeZone: String) {
        (self.accountId, self.resourceId, self.cycle, self.timeZone) = (accountId, resourceId, cycle, timeZone)
    }
    public static func < (a: UsageGroup, b: UsageGroup) -> Bool {
        (a.accountId, a.resourceId, a.cycle.startMicros) < (b.accountId, b.resourceId, b.cycle.startMicros)
    }
}

/// A group and the ids its settlement will carry (chosen before the claim, so the records can name it).
public struct UsageClaim: Sendable {
    public var group: UsageGroup
    public var settlementId: String
    public var chargeId: String
    public init(group: UsageGroup, settlementId: String, chargeId: String) {
        (self.group, self.settlementId, self.chargeId) = (group, settlementId, chargeId)
    }
}

/// One component's line of a settlement (L3).
public struct SettlementLine: Sendable, Equatable {
    public var component: String
    public var unit: String
    /// Exact, as a decimal string of up to 8 decimals (a sum of quantities may pass 64 bits).
    public var quantity: String
    public var amountUnits: Int64
    public var listAmountUnits: Int64?
    public var recordCount: Int
    public init(component: String, unit: String, quantity: String, amountUnits: Int64, listAmountUnits: Int64?, recordCount: Int) {
        (self.component, self.unit, self.quantity, self.amountUnits, self.listAmountUnits, self.recordCount) = (component, unit, quantity, amountUnits, listAmountUnits, recordCount)
    }
}

/// B2: one settled cycle of one resource — one deduction through the ledger (a postpaid charge keyed by the settlement),
/// with the resource's product, project, region and tags as they were at deduction time (B5).
public struct SettlementRecord: Sendable, Equatable {
    public var accountId: String
    public var id: String
    public var runId: String
    public var resourceId: String
    public var resourceName: String
    public var productId: String
    public var projectId: String?
    public var region: String?
    public var tagsJSON: String?
    public var cycle: CycleWindow
    public var deductionMinor: Int64
    public var remainderUnits: Int64
    /// The ledger charge of the deduction; nil when the cycle rounds to 0.00 (nothing to charge).
    public var chargeId: String?
    public var deductionMonth: String
    public var billingMonth: String
    public var recordCount: Int
    public var createdAtMicros: Int64
    public var lines: [SettlementLine]
    public init(accountId: String, id: String, runId: String, resourceId: String, resourceName: String, productId: String,
                projectId: String?, region: String?, tagsJSON: String?, cycle: CycleWindow, deductionMinor: Int64,
                remainderUnits: Int64, chargeId: String?, deductionMonth: String, billingMonth: String, recordCount: Int,
                createdAtMicros: Int64, lines: [SettlementLine]) {
        (self.accountId, self.id, self.runId, self.resourceId, self.resourceName, self.productId) = (accountId, id, runId, resourceId, resourceName, productId)
        (self.projectId, self.region, self.tagsJSON, self.cycle) = (projectId, region, tagsJSON, cycle)
        (self.deductionMinor, self.remainderUnits, self.chargeId) = (deductionMinor, remainderUnits, chargeId)
        (self.deductionMonth, self.billingMonth, self.recordCount, self.createdAtMicros, self.lines) = (deductionMonth, billingMonth, recordCount, createdAtMicros, lines)
    }
    /// The exact rated total: deduction − remainder.
    public var totalUnits: Int128 { Int128(deductionMinor) * Rating.unitsPerMinor - Int128(remainderUnits) }
}

/// B3: a compensation an operator posted against a settled cycle — a negative bill line in the month it was posted, paid
/// back through the ledger as a refund of that cycle's charge (cash and gift in the proportion they paid).
public struct CompensationRecord: Codable, Sendable, Equatable {
    public var accountId: String
    public var id: String
    public var settlementId: String
    public var refundId: String
    public var amountMinor: Int64
    public var cashMinor: Int64
    public var giftMinor: Int64
    public var reason: String
    public var actor: String
    public var month: String
    public var createdAtMicros: Int64
    public init(accountId: String, id: String, settlementId: String, refundId: String, amountMinor: Int64, cashMinor: Int64,
                giftMinor: Int64, reason: String, actor: String, month: String, createdAtMicros: Int64) {
        (self.accountId, self.id, self.settlementId, self.refundId, self.amountMinor) = (accountId, id, settlementId, refundId, amountMinor)
        (self.cashMinor, self.giftMinor, self.reason, self.actor, self.month, self.createdAtMicros) = (cashMinor, giftMinor, reason, actor, month, createdAtMicros)
    }
}

/// A compensation as the bill levels read it: with the settlement it compensates (product, project, region, tags).
public struct BilledCompensation: Sendable, Equatable {
    public var compensation: CompensationRecord
    public var settlement: SettlementRecord
    public init(compensation: CompensationRecord, settlement: SettlementRecord) { (self.compensation, self.settlement) = (compensation, settlement) }
}

/// A settlement run (`POST /v1/operator/settlement-runs` or the jobs loop), kept for the desk and for replays of its key.
public struct SettlementRunRecord: Codable, Sendable, Equatable {
    public enum State: String, Codable, Sendable { case running, finished }
    public var id: String
    public var idempotencyKey: String?
    public var requestHash: String
    public var untilMicros: Int64
    public var state: State
    public var cycles: Int
    public var records: Int
    /// Cycles whose deduction could not be made (an account or a rated total out of range), left for a later run.
    public var failed: Int
    public var actor: String
    public var startedAtMicros: Int64
    public var finishedAtMicros: Int64?
    public init(id: String, idempotencyKey: String?, requestHash: String, untilMicros: Int64, state: State, cycles: Int,
                records: Int, failed: Int, actor: String, startedAtMicros: Int64, finishedAtMicros: Int64?) {
        (self.id, self.idempotencyKey, self.requestHash, self.untilMicros, self.state) = (id, idempotencyKey, requestHash, untilMicros, state)
        (self.cycles, self.records, self.failed, self.actor, self.startedAtMicros, self.finishedAtMicros) = (cycles, records, failed, actor, startedAtMicros, finishedAtMicros)
    }
}

/// B4: an account's statistic period; `switchMonth` is the month billing period took effect ("YYYY-MM").
public struct BillSettings: Codable, Sendable, Equatable {
    public var period: StatisticPeriod
    public var switchMonth: String?
    public init(period: StatisticPeriod, switchMonth: String?) { (self.period, self.switchMonth) = (period, switchMonth) }
    public static let standard = BillSettings(period: .deduction, switchMonth: nil)
}

/// A bill line as the bill levels read it: a settlement whose deduction committed (or that rounded to 0.00), with how it
/// was paid.
public struct BilledSettlement: Sendable, Equatable {
    public var settlement: SettlementRecord
    public var cashMinor: Int64
    public var giftMinor: Int64
    public var couponMinor: Int64
    public init(settlement: SettlementRecord, cashMinor: Int64, giftMinor: Int64, couponMinor: Int64) {
        (self.settlement, self.cashMinor, self.giftMinor, self.couponMinor) = (settlement, cashMinor, giftMinor, couponMinor)
    }
}

/// Which settlements make a month's bill (B4), as the store selects them.
public enum BillMonthSelector: Sendable, Equatable {
    /// Deducted in this month (deduction period, or a month before the switch).
    case deducted(String)
    /// The switch month: deducted in it or later, used in it or earlier.
    case switchMonth(String)
    /// A month after the switch: deducted in the switch month or later, used in this month.
    case billed(String, switchMonth: String)

    public init(month: String, settings: BillSettings) {
        guard let sw = settings.switchMonth, month >= sw else { self = .deducted(month); return }
        self = month == sw ? .switchMonth(sw) : .billed(month, switchMonth: sw)
    }
}

/// Where a page of L3 lines continues: after this (settlement id, component, unit).
public struct BillLineCursor: Sendable, Equatable {
    public var settlementId: String
    public var component: String
    public var unit: String
    public init(settlementId: String, component: String, unit: String) {
        (self.settlementId, self.component, self.unit) = (settlementId, component, unit)
    }
}

/// L3's filters (the drill-down from L1 and L2): nil filters nothing.
public struct BillLineFilter: Sendable, Equatable {
    public var resourceId: String?
    public var productId: String?
    public var projectId: String?
    public init(resourceId: String? = nil, productId: String? = nil, projectId: String? = nil) {
        (self.resourceId, self.productId, self.projectId) = (resourceId, productId, projectId)
    }
}

/// A page of L3 lines.
public struct BillLineQuery: Sendable {
    public var accountId: String
    public var selector: BillMonthSelector
    public var after: BillLineCursor?
    public var limit: Int
    public var filter: BillLineFilter
    public init(accountId: String, selector: BillMonthSelector, after: BillLineCursor?, limit: Int, filter: BillLineFilter = .init()) {
        (self.accountId, self.selector, self.after, self.limit, self.filter) = (accountId, selector, after, limit, filter)
    }
}

/// An L3 line: one component of one settled cycle, with its settlement.
public struct BillLineRow: Sendable, Equatable {
    public var billed: BilledSettlement
    public var line: SettlementLine
    public init(billed: BilledSettlement, line: SettlementLine) { (self.billed, self.line) = (billed, line) }
}

public protocol BillingReads: Sendable {
    func project(accountId: String, id: String) async throws -> ProjectRecord?
    func projects(accountId: String) async throws -> [ProjectRecord]
    func resource(accountId: String, id: String) async throws -> ResourceRecord?
    func resources(accountId: String) async throws -> [ResourceRecord]
    /// Resources of these keys with their product's cycle and account's zone; unknown keys are absent.
    func usageTargets(_ keys: [ObjectKey]) async throws -> [ObjectKey: UsageTarget]
    /// Stores the records that are new (one transaction, durable on return) and answers, for every record whose
    /// (account, id) was already stored, the stored content hash.
    func insertUsage(_ records: [UsageRecord]) async throws -> [ObjectKey: String]
    /// Unsettled usage of cycles that ended at or before `endedByMicros`, in key order.
    func dueUsageGroups(endedByMicros: Int64, after: UsageGroup?, limit: Int) async throws -> [UsageGroup]
    /// In one transaction: gives each group's unsettled records to a new settlement, and stores the settlement that
    /// `make` builds from the group's resource and line totals (nil: leave the group unsettled). A group that a concurrent
    /// run took already gets no settlement. Answers the stored settlements and how many groups `make` refused.
    func claimUsage(_ claims: [UsageClaim], make: @escaping @Sendable (UsageClaim, ResourceRecord, [UsageLineTotal]) -> SettlementRecord?) async throws -> (settled: [SettlementRecord], refused: Int)
    /// Settlements whose deduction has not been confirmed yet (a crash between claim and charge), oldest first.
    func unchargedSettlements(limit: Int) async throws -> [SettlementRecord]
    func markSettlementsCharged(_ keys: [ObjectKey]) async throws
    /// Starts a run under its key, or answers the run already under that key.
    func startSettlementRun(_ run: SettlementRunRecord) async throws -> SettlementRunRecord?
    func finishSettlementRun(_ run: SettlementRunRecord) async throws
    func settlementRuns(limit: Int) async throws -> [SettlementRunRecord]
    func billSettings(accountId: String) async throws -> BillSettings?
    /// Switches to billing period once; false when the account already switched.
    func switchToBillingPeriod(accountId: String, month: String, audit: AuditRecord) async throws -> Bool
    /// Every billed settlement of a month (streamed to `body`, lines included).
    func forEachBilledSettlement(accountId: String, selector: BillMonthSelector, _ body: @Sendable (BilledSettlement) throws -> Void) async throws
    func billLines(_ query: BillLineQuery) async throws -> [BillLineRow]
    func settlement(accountId: String, id: String) async throws -> SettlementRecord?
    /// Stores the compensation (once per refund) with its audit row; false when it was stored before.
    func insertCompensation(_ c: CompensationRecord, audit: AuditRecord) async throws -> Bool
    func compensation(accountId: String, refundId: String) async throws -> CompensationRecord?
    /// The month's compensations with their settlements, oldest first (at most `limit`).
    func compensations(accountId: String, month: String, limit: Int) async throws -> [BilledCompensation]
    /// The earliest cycle start of the account's settlements (nil: none yet), for the cost estimate.
    func firstSettledCycleStart(accountId: String) async throws -> Int64?
    /// Σ deductions of settlements whose cycle started in [from, to), for the cost estimate.
    func settledDeductions(accountId: String, cycleStartFromMicros: Int64, toMicros: Int64) async throws -> Int64
}

public protocol BillingWrites: Sendable {
    /// false when the name is taken in the account.
    func insertProject(_ project: ProjectRecord) async throws -> Bool
    func renameProject(accountId: String, id: String, name: String, nowMicros: Int64) async throws -> ProjectRecord?
    /// Inserts or replaces; answers whether it was created.
    func putResource(_ resource: ResourceRecord) async throws -> Bool
}
