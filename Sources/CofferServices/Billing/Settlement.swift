import CofferCore
import Foundation
import Logging

public struct SettlementSettings: Sendable {
    /// B2: a cycle is settled this long after it ends, so that usage reported a little late joins its own cycle.
    public var graceSeconds: Int64 = 15 * 60
    /// Groups (resource × cycle) claimed in one transaction.
    public var chunkSize: Int = 200
    public init() {}
}

/// B2, M2: settlement runs. A run takes every cycle that ended by `until` and still has unsettled usage, and for each
/// (resource, cycle) claims the records and stores one settlement in one transaction — the records name the settlement,
/// so a record is settled once whatever runs race (a concurrent run's claim finds it taken). Then each settlement's
/// deduction goes through the ledger as a postpaid charge (postpaid coupons first: C2) whose idempotency key is the settlement's id (W4, cash may
/// go negative), so a crash between the two steps is finished by the next run and charges once. Records that arrive
/// after their cycle was settled are claimed by the next run into a further settlement of the same cycle.
public struct SettlementService: Sendable {
    let store: any CofferStore
    let writer: LedgerWriter
    let clock: any Clock
    let ids: IdGenerator
    public let settings: SettlementSettings
    let logger: Logger

    public init(store: any CofferStore, writer: LedgerWriter, clock: any Clock, ids: IdGenerator, settings: SettlementSettings,
                logger: Logger) {
        (self.store, self.writer, self.clock, self.ids, self.settings, self.logger) = (store, writer, clock, ids, settings, logger)
    }

    /// `POST /v1/operator/settlement-runs`: settles every cycle that ended by `untilMicros` (not in the future). The
    /// same key again answers the first run (W10); a run still going under the key is `settlement_run_in_progress`.
    public func run(untilMicros: Int64, idempotencyKey: String, actor: String) async throws -> (SettlementRunRecord, replayed: Bool) {
        let now = clock.nowMicros()
        guard untilMicros <= now else { throw CofferError.invalidField("until", "may not be in the future: a cycle is settled after it ends") }
        _ = try IdempotencyContext(scope: "platform", key: idempotencyKey, fingerprint: "")
        let hash = Secrets.sha256Hex("settlement-run|\(untilMicros)")
        let started = SettlementRunRecord(id: ids.make("srun"), idempotencyKey: idempotencyKey, requestHash: hash, untilMicros: untilMicros,
                                          state: .running, cycles: 0, records: 0, failed: 0, actor: actor, startedAtMicros: now,
                                          finishedAtMicros: nil)
        if let earlier = try await store.startSettlementRun(started) {
            guard earlier.requestHash == hash else { throw CofferError.idempotencyConflict }
            guard earlier.state == .finished else {
                throw CofferError(.settlementRunInProgress, "Settlement run \(earlier.id) under this key has not finished; wait, or use a new key.")
            }
            return (earlier, true)
        }
        let finished = try await settle(untilMicros: untilMicros, run: started)
        try await store.finishSettlementRun(finished)
        return (finished, false)
    }

    /// The jobs loop: settles what ended a grace period ago; a run that settled something is kept for the desk.
    public func runDue() async throws -> SettlementRunRecord? {
        let now = clock.nowMicros()
        let run = SettlementRunRecord(id: ids.make("srun"), idempotencyKey: nil, requestHash: "", untilMicros: now - settings.graceSeconds * 1_000_000,
                                      state: .running, cycles: 0, records: 0, failed: 0, actor: "system:settlement",
                                      startedAtMicros: now, finishedAtMicros: nil)
        let finished = try await settle(untilMicros: run.untilMicros, run: run)
        guard finished.cycles + finished.failed > 0 else { return nil }
        try await store.finishSettlementRun(finished)
        return finished
    }

    func settle(untilMicros: Int64, run: SettlementRunRecord) async throws -> SettlementRunRecord {
        var run = run
        // First what a crash left between claim and charge: those cycles are settled, their deduction is owed. Each is
        // tried once per run (one the ledger refuses stays owed for the next run, counted as failed once).
        var attempted = Set<String>()
        while true {
            let owed = try await store.unchargedSettlements(limit: settings.chunkSize).filter { !attempted.contains($0.id) }
            guard !owed.isEmpty else { break }
            attempted.formUnion(owed.map(\.id))
            run.failed += owed.count - (try await charge(owed))
        }
        var after: UsageGroup?
        while true {
            let groups = try await store.dueUsageGroups(endedByMicros: untilMicros, after: after, limit: settings.chunkSize)
            guard let last = groups.last else { break }
            after = last
            let claims = groups.map { UsageClaim(group: $0, settlementId: ids.make("stl"), chargeId: ids.make("chg")) }
            let now = clock.nowMicros()
            let runId = run.id
            let logger = self.logger
            let (settled, refused) = try await claimWithRetry(claims) { claim, resource, lines in
                Self.settlement(claim, resource, lines, runId: runId, nowMicros: now, logger: logger)
            }
            run.failed += refused
            let charged = try await charge(settled.filter { $0.chargeId != nil })
            run.failed += settled.filter { $0.chargeId != nil }.count - charged
            run.cycles += settled.count
            run.records += settled.reduce(0) { $0 + $1.recordCount }
        }
        run.state = .finished
        run.finishedAtMicros = clock.nowMicros()
        return run
    }

    /// A claim is one transaction; a deadlock or serialization failure between concurrent runs rolls it back whole, so
    /// it is simply tried again.
    private func claimWithRetry(_ claims: [UsageClaim],
                                make: @escaping @Sendable (UsageClaim, ResourceRecord, [UsageLineTotal]) -> SettlementRecord?) async throws -> (settled: [SettlementRecord], refused: Int) {
        var attempt = 0
        while true {
            do {
                return try await store.claimUsage(claims, make: make)
            } catch {
                attempt += 1
                guard attempt < 5 else { throw error }
                logger.warning("settlement claim retried (\(attempt)): \(String(describing: error))")
                try await Task.sleep(for: .milliseconds(20 * attempt))
            }
        }
    }

    /// One settled cycle from its line totals: the deduction and remainder (M2), the months it belongs to (B4) and the
    /// resource as it is now (B5). nil when the cycle's total is out of range: its usage stays unsettled and is logged.
    static func settlement(_ claim: UsageClaim, _ resource: ResourceRecord, _ lines: [UsageLineTotal], runId: String,
                           nowMicros: Int64, logger: Logger) -> SettlementRecord? {
        let settled: CycleSettlement
        do { settled = try CycleSettlement(lines: lines) } catch {
            logger.error("settlement of \(claim.group.accountId)/\(claim.group.resourceId) at \(claim.group.cycle.startMicros) left unsettled: \(error)")
            return nil
        }
        let zone = claim.group.timeZone
        return SettlementRecord(
            accountId: claim.group.accountId, id: claim.settlementId, runId: runId, resourceId: resource.id, resourceName: resource.name,
            productId: resource.productId, projectId: resource.projectId, region: resource.region,
            tagsJSON: ResourceService.tagsJSON(resource.tags), cycle: claim.group.cycle, deductionMinor: settled.deductionMinor,
            remainderUnits: settled.remainderUnits, chargeId: settled.deductionMinor > 0 ? claim.chargeId : nil,
            deductionMonth: SettlementCalendar.month(of: nowMicros, timeZone: zone),
            billingMonth: SettlementCalendar.month(of: claim.group.cycle.startMicros, timeZone: zone),
            recordCount: settled.lines.reduce(0) { $0 + $1.recordCount }, createdAtMicros: nowMicros,
            lines: settled.lines.map {
                SettlementLine(component: $0.component, unit: $0.unit, quantity: Rating.format($0.quantityUnits),
                               amountUnits: Int64($0.amountUnits), listAmountUnits: $0.listAmountUnits.map { Int64($0) },
                               recordCount: $0.recordCount)
            })
    }

    /// Each settlement's deduction as a postpaid charge keyed by the settlement (a replay after a crash charges once),
    /// paid first by the account's postpaid coupons that apply (C2).
    /// Answers how many are now charged.
    private func charge(_ settlements: [SettlementRecord]) async throws -> Int {
        // A settlement that rounded to 0.00 has no charge and was stored as charged; only the others reach here.
        let owed = settlements.compactMap { s in s.chargeId.map { (s, $0) } }
        guard !owed.isEmpty else { return 0 }
        let outcomes = try await writer.submitAll(owed.map { s, chargeId in
            LedgerRequest(.settleCharge(accountId: s.accountId, chargeId: chargeId, amountMinor: s.deductionMinor, productId: s.productId,
                                        settlementId: s.id),
                          idempotencyKey: "settlement:\(s.id)", actor: "system:settlement")
        })
        var done: [ObjectKey] = []
        for ((s, _), outcome) in zip(owed, outcomes) {
            switch outcome.result {
            case .success: done.append(ObjectKey(s.accountId, s.id))
            case .failure(let error): logger.error("deduction of settlement \(s.id) refused: \(error)")
            }
        }
        try await store.markSettlementsCharged(done)
        return done.count
    }
}

extension SettlementCalendar {
    /// "YYYY-MM" of an instant in a zone (B4's months).
    public static func month(of micros: Int64, timeZone: String) -> String {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "Asia/Shanghai")!
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let c = calendar.dateComponents([.year, .month], from: Date(timeIntervalSince1970: TimeInterval(seconds)))
        return String(format: "%04d-%02d", c.year!, c.month!)
    }
}

extension SettlementCalendar {
    static func calendar(_ timeZone: String) -> Calendar {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "Asia/Shanghai")!
        return calendar
    }

    /// O3: `months` calendar months after an instant, in the account's zone (31 January + 1 month = 28 or 29 February,
    /// the way a month's subscription ends), to the whole second.
    public static func addMonths(_ micros: Int64, _ months: Int, timeZone: String) -> Int64 {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let date = calendar(timeZone).date(byAdding: .month, value: months, to: Date(timeIntervalSince1970: TimeInterval(seconds)))!
        return Int64(date.timeIntervalSince1970.rounded()) * 1_000_000
    }

    /// O7: the first instant at or after `micros` whose local date is `day` of its month, at the local time of day of
    /// `micros` (day ≤ 28, so every month has it).
    public static func nextDay(_ day: Int, onOrAfter micros: Int64, timeZone: String) -> Int64 {
        let cal = calendar(timeZone)
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let date = Date(timeIntervalSince1970: TimeInterval(seconds))
        var c = cal.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        if c.day! > day { c.month! += 1 }
        c.day = day
        let target = cal.date(from: c)!
        return Int64(target.timeIntervalSince1970.rounded()) * 1_000_000
    }

    /// "YYYY-MM-DD" of an instant in a zone (once-a-day rules: O4's retries, O5's reminders).
    public static func day(of micros: Int64, timeZone: String) -> String {
        let seconds = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let c = calendar(timeZone).dateComponents([.year, .month, .day], from: Date(timeIntervalSince1970: TimeInterval(seconds)))
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }
}
