import CofferCore
import CofferServices
import PostgresNIO
import SQLiteNIO
import SQLKit

/// Postpaid billing's tables (migration 11): projects, resources, usage records, settlements and their lines, runs and
/// the statistic period.
extension SQLStore {
    // MARK: projects and resources

    public func project(accountId: String, id: String) async throws -> ProjectRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM projects WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(BillingRows.project)
        }
    }

    public func projects(accountId: String) async throws -> [ProjectRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM projects WHERE account_id = \(bind: accountId) ORDER BY id LIMIT 1000").all().map(BillingRows.project)
        }
    }

    public func resource(accountId: String, id: String) async throws -> ResourceRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM resources WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(BillingRows.resource)
        }
    }

    public func resources(accountId: String) async throws -> [ResourceRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM resources WHERE account_id = \(bind: accountId) ORDER BY id LIMIT 10000").all().map(BillingRows.resource)
        }
    }

    // MARK: usage

    public func usageTargets(_ keys: [ObjectKey]) async throws -> [ObjectKey: UsageTarget] {
        try await read { db in
            var out: [ObjectKey: UsageTarget] = [:]
            for chunk in keys.sorted().chunked(500) {
                let sql: SQLQueryString = """
                    SELECT r.*, p.settlement_cycle, a.time_zone FROM resources r
                    JOIN products p ON p.id = r.product_id JOIN accounts a ON a.id = r.account_id
                    WHERE (r.account_id, r.id) IN (VALUES \(BillingRows.pairs(chunk.map { ($0.accountId, $0.id) })))
                    """
                for row in try await db.raw(sql).all() {
                    let resource = try BillingRows.resource(row)
                    out[ObjectKey(resource.accountId, resource.id)] = UsageTarget(
                        resource: resource, cycle: SettlementCycle(rawValue: try row.decode(column: "settlement_cycle", as: String.self))!,
                        timeZone: try row.decode(column: "time_zone", as: String.self))
                }
            }
            return out
        }
    }

    public func insertUsage(_ records: [UsageRecord]) async throws -> [ObjectKey: String] {
        try await connections.transaction { db, driver in
            var inserted = Set<ObjectKey>()
            for chunk in records.chunked(2_000) {
                inserted.formUnion(try await driver.insertReturningKeys(BillingRows.usageInsert(Array(chunk))))
            }
            let existing = records.map { ObjectKey($0.accountId, $0.id) }.filter { !inserted.contains($0) }
            var hashes: [ObjectKey: String] = [:]
            for chunk in existing.chunked(500) {
                let sql: SQLQueryString = """
                    SELECT account_id, id, content_hash FROM usage_records
                    WHERE (account_id, id) IN (VALUES \(BillingRows.pairs(chunk.map { ($0.accountId, $0.id) })))
                    """
                for row in try await db.raw(sql).all() {
                    hashes[ObjectKey(try row.decode(column: "account_id", as: String.self), try row.decode(column: "id", as: String.self))] =
                        try row.decode(column: "content_hash", as: String.self)
                }
            }
            return hashes
        }
    }

    // MARK: settlement

    public func dueUsageGroups(endedByMicros: Int64, after: UsageGroup?, limit: Int) async throws -> [UsageGroup] {
        try await read { db in
            var sql: SQLQueryString = """
                SELECT DISTINCT u.account_id, u.resource_id, u.cycle_start, u.cycle_end, a.time_zone FROM usage_records u
                JOIN accounts a ON a.id = u.account_id
                WHERE u.settlement_id IS NULL AND u.cycle_end <= \(bind: endedByMicros)
                """
            if let after {
                sql += " AND (u.account_id, u.resource_id, u.cycle_start) > (\(bind: after.accountId), \(bind: after.resourceId), \(bind: after.cycle.startMicros))"
            }
            sql += " ORDER BY u.account_id, u.resource_id, u.cycle_start LIMIT \(literal: limit)"
            return try await db.raw(sql).all().map { row in
                UsageGroup(accountId: try row.decode(column: "account_id", as: String.self),
                           resourceId: try row.decode(column: "resource_id", as: String.self),
                           cycle: CycleWindow(startMicros: try row.decode(column: "cycle_start", as: Int64.self),
                                              endMicros: try row.decode(column: "cycle_end", as: Int64.self)),
                           timeZone: try row.decode(column: "time_zone", as: String.self))
            }
        }
    }

    /// Claims each group with its own UPDATE, in key order, so that concurrent runs lock rows in the same order.
    public func claimUsage(_ claims: [UsageClaim],
                           make: @escaping @Sendable (UsageClaim, ResourceRecord, [UsageLineTotal]) -> SettlementRecord?) async throws -> (settled: [SettlementRecord], refused: Int) {
        let ordered = claims.sorted { $0.group < $1.group }
        return try await connections.transaction { db, driver in
            var claimed: [(UsageClaim, [UsageLineTotal])] = []
            for claim in ordered {
                let g = claim.group
                let rows = try await db.raw("""
                    UPDATE usage_records SET settlement_id = \(bind: claim.settlementId)
                    WHERE account_id = \(bind: g.accountId) AND resource_id = \(bind: g.resourceId)
                      AND cycle_start = \(bind: g.cycle.startMicros) AND settlement_id IS NULL
                    RETURNING component, unit, quantity_units, amount_units, list_amount_units
                    """).all()
                guard !rows.isEmpty else { continue }  // a concurrent run settled it
                var lines: [String: UsageLineTotal] = [:]
                for row in rows {
                    let component = try row.decode(column: "component", as: String.self), unit = try row.decode(column: "unit", as: String.self)
                    let key = component + "\u{1F}" + unit
                    var line = lines[key] ?? UsageLineTotal(component: component, unit: unit)
                    try line.add(quantityUnits: try row.decode(column: "quantity_units", as: Int64.self),
                                 amountUnits: try row.decode(column: "amount_units", as: Int64.self),
                                 listAmountUnits: try row.decode(column: "list_amount_units", as: Int64?.self))
                    lines[key] = line
                }
                claimed.append((claim, Array(lines.values)))
            }
            guard !claimed.isEmpty else { return ([], 0) }
            var resources: [ObjectKey: ResourceRecord] = [:]
            for chunk in claimed.map({ ObjectKey($0.0.group.accountId, $0.0.group.resourceId) }).chunked(500) {
                let sql: SQLQueryString = """
                    SELECT * FROM resources WHERE (account_id, id) IN (VALUES \(BillingRows.pairs(chunk.map { ($0.accountId, $0.id) })))
                    """
                for row in try await db.raw(sql).all() {
                    let r = try BillingRows.resource(row)
                    resources[ObjectKey(r.accountId, r.id)] = r
                }
            }
            var settled: [SettlementRecord] = []
            var refused = 0
            for (claim, lines) in claimed {
                guard let resource = resources[ObjectKey(claim.group.accountId, claim.group.resourceId)],
                      let settlement = make(claim, resource, lines) else {
                    // Left unsettled for a later run (and logged by `make`).
                    _ = try await db.raw("""
                        UPDATE usage_records SET settlement_id = NULL
                        WHERE account_id = \(bind: claim.group.accountId) AND settlement_id = \(bind: claim.settlementId)
                        """).all()
                    refused += 1
                    continue
                }
                settled.append(settlement)
            }
            try await driver.run(BillingRows.settlementInsert(settled))
            try await driver.run(BillingRows.lineInsert(settled))
            return (settled, refused)
        }
    }

    public func unchargedSettlements(limit: Int) async throws -> [SettlementRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM settlements WHERE state = 'claimed' ORDER BY created_at LIMIT \(literal: limit)").all()
                .map(BillingRows.settlement)
        }
    }

    public func markSettlementsCharged(_ keys: [ObjectKey]) async throws {
        guard !keys.isEmpty else { return }
        try await connections.transaction { db, _ in
            for chunk in keys.sorted().chunked(500) {
                _ = try await db.raw("""
                    UPDATE settlements SET state = 'charged'
                    WHERE state = 'claimed' AND (account_id, id) IN (VALUES \(BillingRows.pairs(chunk.map { ($0.accountId, $0.id) })))
                    """).all()
            }
        }
    }

    public func startSettlementRun(_ run: SettlementRunRecord) async throws -> SettlementRunRecord? {
        try await connections.transaction { db, _ in
            let rows = try await db.raw("""
                INSERT INTO settlement_runs (id, idempotency_key, request_hash, until_at, state, cycles, records, failed, actor, started_at)
                VALUES (\(bind: run.id), \(bind: run.idempotencyKey), \(bind: run.requestHash), \(bind: run.untilMicros), 'running', 0, 0, 0,
                        \(bind: run.actor), \(bind: run.startedAtMicros))
                ON CONFLICT (idempotency_key) DO NOTHING RETURNING id
                """).all()
            guard rows.isEmpty, let key = run.idempotencyKey else { return nil }
            return try await db.raw("SELECT * FROM settlement_runs WHERE idempotency_key = \(bind: key)").first().map(BillingRows.run)
        }
    }

    public func finishSettlementRun(_ run: SettlementRunRecord) async throws {
        try await connections.transaction { db, _ in
            _ = try await db.raw("""
                INSERT INTO settlement_runs (id, idempotency_key, request_hash, until_at, state, cycles, records, failed, actor, started_at, finished_at)
                VALUES (\(bind: run.id), \(bind: run.idempotencyKey), \(bind: run.requestHash), \(bind: run.untilMicros), 'finished',
                        \(bind: run.cycles), \(bind: run.records), \(bind: run.failed), \(bind: run.actor), \(bind: run.startedAtMicros),
                        \(bind: run.finishedAtMicros))
                ON CONFLICT (id) DO UPDATE SET state = 'finished', cycles = \(bind: run.cycles), records = \(bind: run.records),
                  failed = \(bind: run.failed), finished_at = \(bind: run.finishedAtMicros)
                """).all()
        }
    }

    public func settlementRuns(limit: Int) async throws -> [SettlementRunRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM settlement_runs ORDER BY started_at DESC, id DESC LIMIT \(literal: limit)").all().map(BillingRows.run)
        }
    }

    // MARK: bills

    public func billSettings(accountId: String) async throws -> BillSettings? {
        try await read { db in
            try await db.raw("SELECT * FROM bill_settings WHERE account_id = \(bind: accountId)").first().map { row in
                BillSettings(period: StatisticPeriod(rawValue: try row.decode(column: "statistic_period", as: String.self))!,
                             switchMonth: try row.decode(column: "switch_month", as: String?.self))
            }
        }
    }

    public func switchToBillingPeriod(accountId: String, month: String, audit: AuditRecord) async throws -> Bool {
        try await writeTransaction { tx in
            let rows = try await tx.db.raw("""
                INSERT INTO bill_settings (account_id, statistic_period, switch_month, updated_at)
                VALUES (\(bind: accountId), 'billing', \(bind: month), \(bind: audit.createdAtMicros))
                ON CONFLICT (account_id) DO NOTHING RETURNING account_id
                """).all()
            guard rows.count == 1 else { return false }
            try await tx.insertAudit(audit)
            return true
        }
    }

    public func forEachBilledSettlement(accountId: String, selector: BillMonthSelector,
                                        _ body: @Sendable (BilledSettlement) throws -> Void) async throws {
        var after = ""
        while true {
            let cursor = after
            let page: [BilledSettlement] = try await read { db in
                var sql: SQLQueryString = """
                    SELECT s.*, c.cash_minor AS paid_cash_minor, c.gift_minor AS paid_gift_minor, c.coupon_minor AS paid_coupon_minor FROM settlements s
                    LEFT JOIN charges c ON c.account_id = s.account_id AND c.id = s.charge_id
                    WHERE s.account_id = \(bind: accountId) AND (s.deduction_minor = 0 OR c.id IS NOT NULL) AND s.id > \(bind: cursor) AND
                    """
                sql += BillingRows.monthFilter(selector)
                sql += " ORDER BY s.id LIMIT 2000"
                return try await db.raw(sql).all().map(BillingRows.billed)
            }
            for b in page { try body(b) }
            guard page.count == 2000, let last = page.last else { return }
            after = last.settlement.id
        }
    }

    public func billLines(_ query: BillLineQuery) async throws -> [BillLineRow] {
        try await read { db in
            var sql: SQLQueryString = """
                SELECT s.*, c.cash_minor AS paid_cash_minor, c.gift_minor AS paid_gift_minor, c.coupon_minor AS paid_coupon_minor,
                       l.component AS line_component, l.unit AS line_unit, l.quantity AS line_quantity,
                       l.amount_units AS line_amount_units, l.list_amount_units AS line_list_amount_units,
                       l.record_count AS line_record_count
                FROM settlements s
                JOIN settlement_lines l ON l.account_id = s.account_id AND l.settlement_id = s.id
                LEFT JOIN charges c ON c.account_id = s.account_id AND c.id = s.charge_id
                WHERE s.account_id = \(bind: query.accountId) AND (s.deduction_minor = 0 OR c.id IS NOT NULL) AND
                """
            sql += BillingRows.monthFilter(query.selector)
            if let r = query.filter.resourceId { sql += " AND s.resource_id = \(bind: r)" }
            if let p = query.filter.productId { sql += " AND s.product_id = \(bind: p)" }
            if let p = query.filter.projectId { sql += p.isEmpty ? " AND s.project_id IS NULL" : " AND s.project_id = \(bind: p)" }
            if let after = query.after {
                sql += " AND (s.id, l.component, l.unit) > (\(bind: after.settlementId), \(bind: after.component), \(bind: after.unit))"
            }
            sql += " ORDER BY s.id, l.component, l.unit LIMIT \(literal: query.limit)"
            return try await db.raw(sql).all().map { row in
                let line = SettlementLine(component: try row.decode(column: "line_component", as: String.self),
                                          unit: try row.decode(column: "line_unit", as: String.self),
                                          quantity: try row.decode(column: "line_quantity", as: String.self),
                                          amountUnits: try row.decode(column: "line_amount_units", as: Int64.self),
                                          listAmountUnits: try row.decode(column: "line_list_amount_units", as: Int64?.self),
                                          recordCount: try row.decode(column: "line_record_count", as: Int.self))
                return BillLineRow(billed: try BillingRows.billed(row), line: line)
            }
        }
    }

    public func settlement(accountId: String, id: String) async throws -> SettlementRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM settlements WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(BillingRows.settlement)
        }
    }

    public func insertCompensation(_ c: CompensationRecord, audit: AuditRecord) async throws -> Bool {
        try await writeTransaction { tx in
            let rows = try await tx.db.raw("""
                INSERT INTO bill_compensations (account_id, id, settlement_id, refund_id, amount_minor, cash_minor, gift_minor, reason, actor,
                                                month, created_at)
                VALUES (\(bind: c.accountId), \(bind: c.id), \(bind: c.settlementId), \(bind: c.refundId), \(bind: c.amountMinor),
                        \(bind: c.cashMinor), \(bind: c.giftMinor), \(bind: c.reason), \(bind: c.actor), \(bind: c.month), \(bind: c.createdAtMicros))
                ON CONFLICT (account_id, refund_id) DO NOTHING RETURNING id
                """).all()
            guard rows.count == 1 else { return false }
            try await tx.insertAudit(audit)
            return true
        }
    }

    public func compensation(accountId: String, refundId: String) async throws -> CompensationRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM bill_compensations WHERE account_id = \(bind: accountId) AND refund_id = \(bind: refundId)")
                .first().map(BillingRows.compensation)
        }
    }

    public func compensations(accountId: String, month: String, limit: Int) async throws -> [BilledCompensation] {
        try await read { db in
            let rows = try await db.raw("""
                SELECT c.id AS c_id, c.settlement_id AS c_settlement_id, c.refund_id AS c_refund_id, c.amount_minor AS c_amount_minor,
                       c.cash_minor AS c_cash_minor, c.gift_minor AS c_gift_minor, c.reason AS c_reason, c.actor AS c_actor,
                       c.month AS c_month, c.created_at AS c_created_at, s.*
                FROM bill_compensations c JOIN settlements s ON s.account_id = c.account_id AND s.id = c.settlement_id
                WHERE c.account_id = \(bind: accountId) AND c.month = \(bind: month) ORDER BY c.id LIMIT \(literal: limit)
                """).all()
            return try rows.map { row in
                let r = Rows.Reader(row: row)
                let c = CompensationRecord(accountId: accountId, id: try r.text("c_id"), settlementId: try r.text("c_settlement_id"),
                                           refundId: try r.text("c_refund_id"), amountMinor: try r.int("c_amount_minor"),
                                           cashMinor: try r.int("c_cash_minor"), giftMinor: try r.int("c_gift_minor"), reason: try r.text("c_reason"),
                                           actor: try r.text("c_actor"), month: try r.text("c_month"), createdAtMicros: try r.int("c_created_at"))
                return BilledCompensation(compensation: c, settlement: try BillingRows.settlement(row))
            }
        }
    }

    public func firstSettledCycleStart(accountId: String) async throws -> Int64? {
        try await read { db in
            try await db.raw("SELECT MIN(cycle_start) AS first FROM settlements WHERE account_id = \(bind: accountId)").first()?
                .decode(column: "first", as: Int64?.self)
        }
    }

    public func settledDeductions(accountId: String, cycleStartFromMicros: Int64, toMicros: Int64) async throws -> Int64 {
        try await read { db in
            try await db.raw("""
                SELECT CAST(COALESCE(SUM(deduction_minor), 0) AS BIGINT) AS total FROM settlements
                WHERE account_id = \(bind: accountId) AND cycle_start >= \(bind: cycleStartFromMicros) AND cycle_start < \(bind: toMicros)
                """).first()!.decode(column: "total", as: Int64.self)
        }
    }
}

extension SQLTransaction {
    func insertProject(_ p: ProjectRecord) async throws -> Bool {
        try await db.raw("""
            INSERT INTO projects (account_id, id, name, created_at, updated_at)
            VALUES (\(bind: p.accountId), \(bind: p.id), \(bind: p.name), \(bind: p.createdAtMicros), \(bind: p.updatedAtMicros))
            ON CONFLICT (account_id, name) DO NOTHING RETURNING id
            """).all().count == 1
    }

    func renameProject(accountId: String, id: String, name: String, nowMicros: Int64) async throws -> ProjectRecord? {
        let taken = try await db.raw("""
            SELECT id FROM projects WHERE account_id = \(bind: accountId) AND name = \(bind: name) AND id <> \(bind: id)
            """).first()
        guard taken == nil else { return nil }
        return try await db.raw("""
            UPDATE projects SET name = \(bind: name), updated_at = \(bind: nowMicros)
            WHERE account_id = \(bind: accountId) AND id = \(bind: id) RETURNING *
            """).first().map(BillingRows.project)
    }

    func putResource(_ r: ResourceRecord) async throws -> Bool {
        let rows = try await db.raw("""
            INSERT INTO resources (account_id, id, product_id, name, region, project_id, tags, created_at, updated_at)
            VALUES (\(bind: r.accountId), \(bind: r.id), \(bind: r.productId), \(bind: r.name), \(bind: r.region), \(bind: r.projectId),
                    \(bind: ResourceService.tagsJSON(r.tags)), \(bind: r.createdAtMicros), \(bind: r.updatedAtMicros))
            ON CONFLICT (account_id, id) DO UPDATE SET product_id = excluded.product_id, name = excluded.name, region = excluded.region,
              project_id = excluded.project_id, tags = excluded.tags, updated_at = excluded.updated_at
            RETURNING created_at
            """).all()
        return try rows.first?.decode(column: "created_at", as: Int64.self) == r.updatedAtMicros
    }
}

enum BillingRows {
    /// `(?, ?), (?, ?)…` for a VALUES list of (account, id) pairs — row values that both databases compare with IN.
    static func pairs(_ pairs: [(String, String)]) -> SQLQueryString {
        var q: SQLQueryString = ""
        for (i, p) in pairs.enumerated() {
            if i > 0 { q += ", " }
            q += "(\(bind: p.0), \(bind: p.1))"
        }
        return q
    }

    /// B4: which settlements a month's bill holds (see BillMonthSelector); `s` is the settlements table.
    static func monthFilter(_ selector: BillMonthSelector) -> SQLQueryString {
        switch selector {
        case .deducted(let m): " s.deduction_month = \(bind: m)"
        case .switchMonth(let sw): " s.deduction_month >= \(bind: sw) AND s.billing_month <= \(bind: sw)"
        case .billed(let m, let sw): " s.deduction_month >= \(bind: sw) AND s.billing_month = \(bind: m)"
        }
    }

    static func project(_ row: any SQLRow) throws -> ProjectRecord {
        let r = Rows.Reader(row: row)
        return ProjectRecord(accountId: try r.text("account_id"), id: try r.text("id"), name: try r.text("name"),
                             createdAtMicros: try r.int("created_at"), updatedAtMicros: try r.int("updated_at"))
    }

    static func resource(_ row: any SQLRow) throws -> ResourceRecord {
        let r = Rows.Reader(row: row)
        return ResourceRecord(accountId: try r.text("account_id"), id: try r.text("id"), productId: try r.text("product_id"),
                              name: try r.text("name"), region: try r.optionalText("region"), projectId: try r.optionalText("project_id"),
                              tags: ResourceService.tags(fromJSON: try r.optionalText("tags")),
                              createdAtMicros: try r.int("created_at"), updatedAtMicros: try r.int("updated_at"))
    }

    static func settlement(_ row: any SQLRow) throws -> SettlementRecord {
        let r = Rows.Reader(row: row)
        return SettlementRecord(
            accountId: try r.text("account_id"), id: try r.text("id"), runId: try r.text("run_id"), resourceId: try r.text("resource_id"),
            resourceName: try r.text("resource_name"), productId: try r.text("product_id"), projectId: try r.optionalText("project_id"),
            region: try r.optionalText("region"), tagsJSON: try r.optionalText("tags"),
            cycle: CycleWindow(startMicros: try r.int("cycle_start"), endMicros: try r.int("cycle_end")),
            deductionMinor: try r.int("deduction_minor"), remainderUnits: try r.int("remainder_units"),
            chargeId: try r.optionalText("charge_id"), deductionMonth: try r.text("deduction_month"),
            billingMonth: try r.text("billing_month"), recordCount: Int(try r.int("record_count")),
            createdAtMicros: try r.int("created_at"), lines: [])
    }

    static func compensation(_ row: any SQLRow) throws -> CompensationRecord {
        let r = Rows.Reader(row: row)
        return CompensationRecord(accountId: try r.text("account_id"), id: try r.text("id"), settlementId: try r.text("settlement_id"),
                                  refundId: try r.text("refund_id"), amountMinor: try r.int("amount_minor"), cashMinor: try r.int("cash_minor"),
                                  giftMinor: try r.int("gift_minor"), reason: try r.text("reason"), actor: try r.text("actor"),
                                  month: try r.text("month"), createdAtMicros: try r.int("created_at"))
    }

    static func billed(_ row: any SQLRow) throws -> BilledSettlement {
        let r = Rows.Reader(row: row)
        return BilledSettlement(settlement: try settlement(row), cashMinor: try r.optionalInt("paid_cash_minor") ?? 0,
                                giftMinor: try r.optionalInt("paid_gift_minor") ?? 0, couponMinor: try r.optionalInt("paid_coupon_minor") ?? 0)
    }

    static func run(_ row: any SQLRow) throws -> SettlementRunRecord {
        let r = Rows.Reader(row: row)
        return SettlementRunRecord(
            id: try r.text("id"), idempotencyKey: try r.optionalText("idempotency_key"), requestHash: try r.text("request_hash"),
            untilMicros: try r.int("until_at"), state: SettlementRunRecord.State(rawValue: try r.text("state"))!,
            cycles: Int(try r.int("cycles")), records: Int(try r.int("records")), failed: Int(try r.int("failed")),
            actor: try r.text("actor"), startedAtMicros: try r.int("started_at"), finishedAtMicros: try r.optionalInt("finished_at"))
    }

    static func usageInsert(_ records: [UsageRecord]) -> BatchInsert {
        BatchInsert("usage_records", [
            ("account_id", .text(records.map(\.accountId))), ("id", .text(records.map(\.id))),
            ("resource_id", .text(records.map(\.resourceId))), ("product_id", .text(records.map(\.productId))),
            ("component", .text(records.map(\.component))), ("unit", .text(records.map(\.unit))),
            ("quantity_units", .bigint(records.map(\.quantityUnits))), ("unit_price_units", .bigint(records.map(\.unitPriceUnits))),
            ("list_unit_price_units", .optionalBigint(records.map(\.listUnitPriceUnits))),
            ("amount_units", .bigint(records.map(\.amountUnits))), ("list_amount_units", .optionalBigint(records.map(\.listAmountUnits))),
            ("period_start", .bigint(records.map(\.periodStartMicros))), ("period_end", .bigint(records.map(\.periodEndMicros))),
            ("region", .optionalText(records.map(\.region))), ("tags", .optionalText(records.map(\.tagsJSON))),
            ("cycle_start", .bigint(records.map(\.cycle.startMicros))), ("cycle_end", .bigint(records.map(\.cycle.endMicros))),
            ("content_hash", .text(records.map(\.contentHash))), ("received_at", .bigint(records.map(\.receivedAtMicros))),
        ])
    }

    static func settlementInsert(_ s: [SettlementRecord]) -> BatchInsert {
        BatchInsert("settlements", [
            ("account_id", .text(s.map(\.accountId))), ("id", .text(s.map(\.id))), ("run_id", .text(s.map(\.runId))),
            ("resource_id", .text(s.map(\.resourceId))), ("resource_name", .text(s.map(\.resourceName))),
            ("product_id", .text(s.map(\.productId))), ("project_id", .optionalText(s.map(\.projectId))),
            ("region", .optionalText(s.map(\.region))), ("tags", .optionalText(s.map(\.tagsJSON))),
            ("cycle_start", .bigint(s.map(\.cycle.startMicros))), ("cycle_end", .bigint(s.map(\.cycle.endMicros))),
            ("deduction_minor", .bigint(s.map(\.deductionMinor))), ("remainder_units", .bigint(s.map(\.remainderUnits))),
            ("charge_id", .optionalText(s.map(\.chargeId))),
            // Nothing to charge: settled as it is stored.
            ("state", .text(s.map { $0.chargeId == nil ? "charged" : "claimed" })),
            ("deduction_month", .text(s.map(\.deductionMonth))), ("billing_month", .text(s.map(\.billingMonth))),
            ("record_count", .bigint(s.map { Int64($0.recordCount) })), ("created_at", .bigint(s.map(\.createdAtMicros))),
        ])
    }

    static func lineInsert(_ s: [SettlementRecord]) -> BatchInsert {
        let rows = s.flatMap { st in st.lines.map { (st, $0) } }
        return BatchInsert("settlement_lines", [
            ("account_id", .text(rows.map(\.0.accountId))), ("settlement_id", .text(rows.map(\.0.id))),
            ("component", .text(rows.map(\.1.component))), ("unit", .text(rows.map(\.1.unit))),
            ("quantity", .text(rows.map(\.1.quantity))), ("amount_units", .bigint(rows.map(\.1.amountUnits))),
            ("list_amount_units", .optionalBigint(rows.map(\.1.listAmountUnits))),
            ("record_count", .bigint(rows.map { Int64($0.1.recordCount) })),
        ])
    }
}

extension DriverConnection {
    /// Inserts the rows that are new (`ON CONFLICT DO NOTHING`) and answers the (account_id, id) of those inserted.
    func insertReturningKeys(_ insert: BatchInsert) async throws -> [ObjectKey] {
        guard insert.rowCount > 0 else { return [] }
        let suffix = " ON CONFLICT DO NOTHING RETURNING account_id, id"
        switch self {
        case .postgres(let conn, let logger):
            var query = insert.postgresQuery()
            query.sql += suffix
            var keys: [ObjectKey] = []
            for try await (account, id) in try await conn.query(query, logger: logger).decode((String, String).self) {
                keys.append(ObjectKey(account, id))
            }
            return keys
        case .sqlite(let conn):
            var keys: [ObjectKey] = []
            for (sql, binds) in insert.sqliteStatements() {
                for row in try await conn.query(sql + suffix, binds) {
                    keys.append(ObjectKey(row.column("account_id")?.string ?? "", row.column("id")?.string ?? ""))
                }
            }
            return keys
        }
    }
}

extension SQLStore {
    /// The benchmark's floor: PostgreSQL (or SQLite) grouping the unsettled usage rows by resource and cycle, with no
    /// Coffer in between — what a settlement run must at least read.
    public func unsettledUsageFloor() async throws -> (groups: Int, records: Int, micros: Int64) {
        try await read { db in
            let started = SystemClock().nowMicros()
            let rows = try await db.raw("""
                SELECT account_id, resource_id, cycle_start, COUNT(*) AS n, SUM(amount_units) AS total FROM usage_records
                WHERE settlement_id IS NULL GROUP BY account_id, resource_id, cycle_start
                """).all()
            var records = 0
            for row in rows { records += try row.decode(column: "n", as: Int.self) }
            return (rows.count, records, SystemClock().nowMicros() - started)
        }
    }
}
