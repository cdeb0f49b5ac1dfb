import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

/// Postpaid billing on both databases: usage ingestion (B1), settlement (B2, M2), bills (B3, B4), projects (B5) and the
/// cost estimate (B6).
@Suite("Postpaid billing on SQLite and PostgreSQL")
struct BillingTests {
    static let hour: Int64 = 3_600_000_000

    /// A product settled hourly, an account with cash and gift, and one resource of it.
    static func setUp(_ env: TestEnvironment, cashMinor: Int64 = 10_000, giftMinor: Int64 = 0,
                      cycle: String = "hourly") async throws -> (account: String, resource: String) {
        _ = try await env.engine.products.put(id: "cvm", ProductInput(nameZh: "云服务器", nameEn: "Cloud server", settlementCycle: cycle,
                                                                    taxCategory: "cloud_service", plans: []), actor: "test")
        let account = try await env.fundedAccount(cashMinor: cashMinor, giftMinor: giftMinor)
        _ = try await env.engine.resources.putResource(accountId: account, id: "ins-1", .init(productId: "cvm", name: "web-1", region: "ap-shanghai",
                                                                                             projectId: nil, tags: ["env": "prod"]))
        return (account, "ins-1")
    }

    /// The start of the hour `hoursAgo` before the clock's current hour.
    static func hourStart(_ env: TestEnvironment, hoursAgo: Int64) -> Int64 {
        let now = env.clock.nowMicros()
        return now - now % hour - hoursAgo * hour
    }

    static func record(_ id: String, _ account: String, _ resource: String = "ins-1", start: Int64, quantity: String = "1",
                       price: String = "0.5", component: String = "cpu", list: String? = nil) -> UsageRecordInput {
        UsageRecordInput(id: id, accountId: account, resourceId: resource, component: component, quantity: quantity, unit: "core-hour",
                         unitPrice: price, listUnitPrice: list, periodStart: RFC3339.format(micros: start),
                         periodEnd: RFC3339.format(micros: start + hour))
    }

    /// The code a refused call throws (nil: it was accepted).
    static func refusal(_ body: () async throws -> Any) async -> ErrorCode? { await refusalCode(body) }

    static func runUntilNow(_ env: TestEnvironment, key: String = UUID().uuidString) async throws -> SettlementRunRecord {
        try await env.engine.settlement.run(untilMicros: env.clock.nowMicros(), idempotencyKey: key, actor: "test").0
    }

    @Test("B1 a record is counted once: the same id again is a duplicate, with other content a conflict; bad records are refused with their code and write nothing",
          arguments: Backend.available)
    func ingestion(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.setUp(env)
            let start = Self.hourStart(env, hoursAgo: 2)
            var bad = Self.record("r-bad-decimals", account, start: start, quantity: "1.123456789")
            var negative = Self.record("r-negative", account, start: start, quantity: "-1")
            var backwards = Self.record("r-backwards", account, start: start)
            backwards.periodEnd = RFC3339.format(micros: start - 1)
            let unknownResource = Self.record("r-unknown", account, "ins-404", start: start)
            let unknownAccount = Self.record("r-unknown-account", "acc_nobody", start: start)
            bad.unit = bad.unit
            negative.component = "cpu"
            var longComponent = Self.record("r-long", account, start: start)
            longComponent.component = String(repeating: "c", count: 65)
            let results = try await env.engine.usage.ingest([
                Self.record("r-1", account, start: start), Self.record("r-1", account, start: start), bad, negative, backwards,
                unknownResource, unknownAccount, longComponent, Self.record("r-2", account, start: start, quantity: "2"),
                Self.record("r-2", account, start: start, quantity: "3"),
            ])
            func code(_ r: UsageResult) -> ErrorCode? { if case .refused(let e) = r { e.code } else { nil } }
            #expect(results[0] == .accepted && results[1] == .duplicate && results[8] == .accepted)
            #expect(code(results[2]) == .invalidField && code(results[3]) == .invalidField && code(results[4]) == .invalidField)
            #expect(code(results[5]) == .resourceNotFound && code(results[6]) == .accountNotFound && code(results[7]) == .invalidField)
            #expect(code(results[9]) == .usageRecordConflict)
            // Again, in a later request: duplicates and a conflict, nothing new.
            let again = try await env.engine.usage.ingest([Self.record("r-1", account, start: start),
                                                           Self.record("r-2", account, start: start, quantity: "5")])
            #expect(again[0] == .duplicate && code(again[1]) == .usageRecordConflict)
            let run = try await Self.runUntilNow(env)
            #expect(run.cycles == 1 && run.records == 2)
            // 1 × 0.5 + 2 × 0.5 = 1.50
            #expect(try await env.wallet(account).cashMinor == 10_000 - 150)
        }
    }

    @Test("B2 M2 W4 one deduction per resource and cycle, gift first then cash, cash may go negative; the remainder is kept",
          arguments: Backend.available)
    func settlement(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.setUp(env, cashMinor: 100, giftMinor: 50)
            let h1 = Self.hourStart(env, hoursAgo: 3), h2 = Self.hourStart(env, hoursAgo: 2)
            let results = try await env.engine.usage.ingest([
                Self.record("a", account, start: h1, quantity: "1", price: "0.33333333"),
                Self.record("b", account, start: h1, quantity: "2", price: "0.33333333", component: "memory"),
                Self.record("c", account, start: h2, quantity: "1000", price: "0.0021"),
            ])
            #expect(results.allSatisfy { $0 == .accepted })
            let run = try await Self.runUntilNow(env)
            #expect(run.cycles == 2 && run.records == 3 && run.failed == 0)
            // Hour 1: 0.33333333 + 0.66666666 = 0.99999999 → 1.00, remainder +0.00000001. Hour 2: 2.10 exactly.
            let w = try await env.wallet(account)
            #expect(w.giftMinor == 0 && w.cashMinor == 100 + 50 - 100 - 210)
            let overview = try await env.engine.bills.overview(accountId: account, month: SettlementCalendar.month(of: env.clock.nowMicros(), timeZone: "Asia/Shanghai"))
            #expect(overview.postpaid.deductionMinor == 310 && overview.postpaid.giftMinor == 50 && overview.postpaid.cashMinor == 260)
            #expect(overview.postpaid.remainderUnits == 1 && overview.postpaid.ratedUnits == 309_999_999)
            // N1: the deduction that took the balance below zero told the customer, once.
            let arrears = try await env.store.siteMessages(accountId: account, limit: 10).filter { $0.kind == "account_in_arrears" }
            #expect(arrears.count == 1 && arrears.first?.parameters?["shortfall"] == "1.60")
            // Rerunning settles nothing twice.
            let rerun = try await Self.runUntilNow(env)
            #expect(rerun.cycles == 0 && rerun.records == 0)
            #expect(try await env.wallet(account) == w)
        }
    }

    @Test("B2 a record that arrives after its cycle was settled is settled by the next run, once", arguments: Backend.available)
    func lateRecord(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.setUp(env)
            let h = Self.hourStart(env, hoursAgo: 2)
            _ = try await env.engine.usage.ingest([Self.record("on-time", account, start: h)])
            #expect(try await Self.runUntilNow(env).cycles == 1)
            _ = try await env.engine.usage.ingest([Self.record("late", account, start: h, quantity: "3")])
            let second = try await Self.runUntilNow(env)
            #expect(second.cycles == 1 && second.records == 1)
            #expect(try await Self.runUntilNow(env).cycles == 0)
            #expect(try await env.wallet(account).cashMinor == 10_000 - 50 - 150)
            let month = SettlementCalendar.month(of: h, timeZone: "Asia/Shanghai")
            let lines = try await env.engine.bills.lines(accountId: account, month: month, cursor: nil, limit: 10).rows
            #expect(lines.count == 2 && lines.allSatisfy { $0.billed.settlement.cycle.startMicros == h })
        }
    }

    @Test("B2 twenty concurrent settlement runs settle each cycle once", arguments: Backend.available)
    func concurrentRuns(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.setUp(env, cashMinor: 1_000_000)
            for n in 2...9 {
                _ = try await env.engine.resources.putResource(accountId: account, id: "ins-\(n)", .init(productId: "cvm", name: "web-\(n)", region: nil,
                                                                                                      projectId: nil, tags: [:]))
            }
            var records: [UsageRecordInput] = []
            for n in 1...9 {
                for h in 1...6 { records.append(Self.record("r-\(n)-\(h)", account, "ins-\(n)", start: Self.hourStart(env, hoursAgo: Int64(h)), quantity: "\(n)", price: "0.01")) }
            }
            #expect(try await env.engine.usage.ingest(records).allSatisfy { $0 == .accepted })
            let settlement = env.engine.settlement
            let until = env.clock.nowMicros()
            let runs = try await withThrowingTaskGroup(of: SettlementRunRecord.self) { group in
                for i in 0..<20 { group.addTask { try await settlement.run(untilMicros: until, idempotencyKey: "run-\(i)", actor: "test").0 } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(runs.reduce(0) { $0 + $1.cycles } == 54)
            #expect(runs.reduce(0) { $0 + $1.records } == 54)
            #expect(runs.allSatisfy { $0.failed == 0 })
            // Σ n × 0.01 over 6 hours for n = 1…9 = 2.70
            #expect(try await env.wallet(account).cashMinor == 1_000_000 - 270)
            // The same key again answers the first run.
            let (replay, replayed) = try await settlement.run(untilMicros: until, idempotencyKey: "run-3", actor: "test")
            #expect(replayed && replay == runs.first { $0.idempotencyKey == "run-3" })
        }
    }

    @Test("B2 a cycle claimed but not charged (a crash between the two) is charged once by the next run", arguments: Backend.available)
    func crashBetweenClaimAndCharge(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, resource) = try await Self.setUp(env)
            let h = Self.hourStart(env, hoursAgo: 2)
            _ = try await env.engine.usage.ingest([Self.record("x", account, start: h, quantity: "4")])
            let groups = try await env.store.dueUsageGroups(endedByMicros: env.clock.nowMicros(), after: nil, limit: 10)
            #expect(groups.count == 1 && groups[0].resourceId == resource)
            let claim = UsageClaim(group: groups[0], settlementId: env.engine.ids.make("stl"), chargeId: env.engine.ids.make("chg"))
            let now = env.clock.nowMicros()
            let (settled, refused) = try await env.store.claimUsage([claim]) { claim, resource, lines in
                let s = try! CycleSettlement(lines: lines)
                return SettlementRecord(accountId: claim.group.accountId, id: claim.settlementId, runId: "srun_crashed", resourceId: resource.id,
                                        resourceName: resource.name, productId: resource.productId, projectId: nil, region: nil, tagsJSON: nil,
                                        cycle: claim.group.cycle, deductionMinor: s.deductionMinor, remainderUnits: s.remainderUnits,
                                        chargeId: claim.chargeId, deductionMonth: "2026-12", billingMonth: "2026-12", recordCount: 1,
                                        createdAtMicros: now, lines: [])
            }
            #expect(settled.count == 1 && refused == 0)
            // Not visible in the bill before its deduction commits.
            #expect(try await env.engine.bills.overview(accountId: account, month: "2026-12").postpaid.cycles == 0)
            #expect(try await env.wallet(account).cashMinor == 10_000)
            let run = try await Self.runUntilNow(env)
            #expect(run.cycles == 0 && run.failed == 0)
            #expect(try await env.wallet(account).cashMinor == 10_000 - 200)
            _ = try await Self.runUntilNow(env)
            #expect(try await env.wallet(account).cashMinor == 10_000 - 200)
            #expect(try await env.store.unchargedSettlements(limit: 10).isEmpty)
        }
    }

    @Test("B5 a bill line keeps the project its resource had at deduction time; a rename or a move changes later lines only",
          arguments: Backend.available)
    func projectAtDeductionTime(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, resource) = try await Self.setUp(env)
            let resources = env.engine.resources
            let (web, _) = try await resources.createProject(accountId: account, name: "网站", idempotencyKey: "p1")
            let (data, _) = try await resources.createProject(accountId: account, name: "数据", idempotencyKey: "p2")
            let (webAgain, replayed) = try await resources.createProject(accountId: account, name: "网站", idempotencyKey: "p1")
            #expect(replayed && webAgain == web)
            await #expect(throws: CofferError.self) { try await resources.createProject(accountId: account, name: "网站", idempotencyKey: "p3") }
            _ = try await resources.assignProject(accountId: account, resourceId: resource, projectId: web.id)
            _ = try await env.engine.usage.ingest([Self.record("a", account, start: Self.hourStart(env, hoursAgo: 3))])
            _ = try await Self.runUntilNow(env)
            _ = try await resources.assignProject(accountId: account, resourceId: resource, projectId: data.id)
            _ = try await resources.renameProject(accountId: account, id: web.id, name: "官网")
            _ = try await env.engine.usage.ingest([Self.record("b", account, start: Self.hourStart(env, hoursAgo: 2), quantity: "2")])
            _ = try await Self.runUntilNow(env)
            let month = SettlementCalendar.month(of: env.clock.nowMicros(), timeZone: "Asia/Shanghai")
            let byProject = try await env.engine.bills.summary(accountId: account, month: month, by: .project)
            #expect(byProject.map(\.key) == [data.id, web.id].sorted())
            #expect(byProject.first { $0.key == web.id }?.amounts.deductionMinor == 50)
            #expect(byProject.first { $0.key == data.id }?.amounts.deductionMinor == 100)
            let byTag = try await env.engine.bills.summary(accountId: account, month: month, by: .tag("env"))
            #expect(byTag.map(\.key) == ["prod"] && byTag[0].amounts.deductionMinor == 150)
            #expect(try await env.store.project(accountId: account, id: web.id)?.name == "官网")
            do {
                _ = try await resources.renameProject(accountId: account, id: web.id, name: "数据")
                Issue.record("a taken name was accepted")
            } catch let e as CofferError { #expect(e.code == .projectNameTaken) }
        }
    }

    @Test("B3 the four levels agree: L0 totals = Σ L1 = Σ L2; L3 pages through every line once", arguments: Backend.available)
    func levelsAgree(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.setUp(env, cashMinor: 1_000_000)
            _ = try await env.engine.resources.putResource(accountId: account, id: "ins-2", .init(productId: "cvm", name: "db", region: "ap-beijing",
                                                                                                  projectId: nil, tags: [:]))
            var records: [UsageRecordInput] = []
            for h in 1...5 {
                let start = Self.hourStart(env, hoursAgo: Int64(h))
                records.append(Self.record("c-\(h)", account, start: start, quantity: "1.5", price: "0.123", list: "0.2"))
                records.append(Self.record("m-\(h)", account, start: start, quantity: "4", price: "0.011", component: "memory"))
                records.append(Self.record("d-\(h)", account, "ins-2", start: start, quantity: "100", price: "0.00071"))
            }
            _ = try await env.engine.usage.ingest(records)
            _ = try await Self.runUntilNow(env)
            let month = SettlementCalendar.month(of: env.clock.nowMicros(), timeZone: "Asia/Shanghai")
            let bills = env.engine.bills
            let l0 = try await bills.overview(accountId: account, month: month)
            for dimension in [BillSummaryDimension.product, .project, .region, .tag("env")] {
                let l1 = try await bills.summary(accountId: account, month: month, by: dimension)
                #expect(l1.reduce(0) { $0 + $1.amounts.deductionMinor } == l0.postpaid.deductionMinor)
                #expect(l1.reduce(Int128(0)) { $0 + $1.amounts.ratedUnits } == l0.postpaid.ratedUnits)
            }
            let l2 = try await bills.resources(accountId: account, month: month)
            #expect(l2.map(\.resourceId) == ["ins-1", "ins-2"])
            #expect(l2.reduce(0) { $0 + $1.amounts.deductionMinor } == l0.postpaid.deductionMinor)
            var lines: [BillLineRow] = []
            var cursor: String?
            repeat {
                let page = try await bills.lines(accountId: account, month: month, cursor: cursor, limit: 4)
                lines += page.rows
                cursor = page.next
            } while cursor != nil
            #expect(lines.count == 15)
            #expect(Set(lines.map { "\($0.billed.settlement.id)|\($0.line.component)" }).count == 15)
            #expect(lines.reduce(Int128(0)) { $0 + Int128($1.line.amountUnits) } == l0.postpaid.ratedUnits)
            // The list price is kept where the provider gave one, and absent ("-") where it did not.
            let listed = lines.filter { $0.line.component == "cpu" && $0.billed.settlement.resourceId == "ins-1" }
            #expect(listed.count == 5 && listed.allSatisfy { $0.line.listAmountUnits == 30_000_000 })
            #expect(lines.filter { $0.line.component != "cpu" || $0.billed.settlement.resourceId != "ins-1" }.allSatisfy { $0.line.listAmountUnits == nil })
            #expect(l0.postpaid.deductionMinor == (try await env.wallet(account)).cashMinor.distance(to: 1_000_000))
        }
    }

    @Test("B4 the statistic period switches to billing period once, from the current month, and never back", arguments: Backend.available)
    func statisticPeriod(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.setUp(env)
            let bills = env.engine.bills
            #expect(try await bills.settings(accountId: account) == .standard)
            let month = SettlementCalendar.month(of: env.clock.nowMicros(), timeZone: "Asia/Shanghai")
            let switched = try await bills.setPeriod(accountId: account, .billing, actor: "test")
            #expect(switched == BillSettings(period: .billing, switchMonth: month))
            #expect(try await bills.setPeriod(accountId: account, .billing, actor: "test") == switched)
            do {
                _ = try await bills.setPeriod(accountId: account, .deduction, actor: "test")
                Issue.record("switched back")
            } catch let e as CofferError { #expect(e.code == .statisticPeriodLocked) }
            #expect(try await env.store.auditLog(accountId: account, limit: 10).contains { $0.action == "bill_settings.statistic_period" })
        }
    }

    @Test("M2 property: for any set of records, Σ deductions − Σ precision differences = the exact rated total", arguments: Backend.available)
    func conservation(backend: Backend) async throws {
        var rng = SeededRandom.forTest("billing conservation (\(backend))", environment: ProcessInfo.processInfo.environment)
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.setUp(env, cashMinor: 100_000_000)
            var records: [UsageRecordInput] = []
            var exact: Int128 = 0
            for i in 0..<300 {
                let q = Int64.random(in: 0...5_000_000_000, using: &rng), p = Int64.random(in: 0...200_000_000, using: &rng)
                exact += try Rating.rate(quantityUnits: q, unitPriceUnits: p)
                records.append(Self.record("p-\(i)", account, start: Self.hourStart(env, hoursAgo: Int64.random(in: 1...30, using: &rng)),
                                           quantity: Rating.format(Int128(q)), price: Rating.format(Int128(p)),
                                           component: ["cpu", "memory", "disk"][Int.random(in: 0...2, using: &rng)]))
            }
            #expect(try await env.engine.usage.ingest(records).allSatisfy { $0 == .accepted }, "seed \(rng.seed)")
            _ = try await Self.runUntilNow(env)
            var deductions: Int64 = 0, remainders: Int128 = 0
            for month in Set(records.map { SettlementCalendar.month(of: RFC3339.parse($0.periodStart)!, timeZone: "Asia/Shanghai") } + [SettlementCalendar.month(of: env.clock.nowMicros(), timeZone: "Asia/Shanghai")]) {
                let l0 = try await env.engine.bills.overview(accountId: account, month: month)
                deductions += l0.postpaid.deductionMinor
                remainders += l0.postpaid.remainderUnits
            }
            #expect(Int128(deductions) * Rating.unitsPerMinor - remainders == exact, "seed \(rng.seed)")
            #expect(try await env.wallet(account).cashMinor == 100_000_000 - deductions, "seed \(rng.seed)")
        }
    }

    @Test("B6 the cost estimate is the run rate of the last complete days × next month's days", arguments: Backend.available)
    func costEstimate(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.setUp(env, cashMinor: 1_000_000)
            // Two days of usage, 2.40 a day (0.10 an hour), in an account nine days old.
            env.clock.advance(seconds: 9 * 86_400)
            let now = env.clock.nowMicros()
            let today = try SettlementCalendar.window(containing: now, cycle: .daily, timeZone: "Asia/Shanghai")
            var records: [UsageRecordInput] = []
            for h in 1...48 { records.append(Self.record("e-\(h)", account, start: today.startMicros - Int64(h) * Self.hour, price: "0.1")) }
            _ = try await env.engine.usage.ingest(records)
            _ = try await Self.runUntilNow(env)
            let estimate = try await env.engine.bills.costEstimate(accountId: account)
            #expect(estimate.sampleDeductionMinor == 480 && estimate.prepaidRenewalsMinor == 0)
            // 4.80 over the two complete days with usage (the days before the first usage do not dilute the rate) × next month's days.
            #expect(estimate.sampleDays == 2 && estimate.postpaidMinor == 240 * Int64(estimate.daysInMonth) && estimate.totalMinor == estimate.postpaidMinor)
        }
    }

    @Test("B2 cycles follow the account's zone: a 23-hour DST day is one cycle, a month ends at local midnight, 29 February is its own day",
          arguments: Backend.available)
    func cycleBoundaries(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let engine = env.engine
            for (id, cycle) in [("day-meter", "daily"), ("month-meter", "monthly")] {
                _ = try await engine.products.put(id: id, ProductInput(nameZh: id, nameEn: id, settlementCycle: cycle, taxCategory: "cloud_service",
                                                                     plans: []), actor: "test")
            }
            let account = "acc_newyork"
            try await env.store.transaction { tx in
                try await tx.insertAccount(AccountRecord(id: account, type: .personal, entityName: "NY", contactEmail: "ny@example.com",
                                                         currency: "CNY", timeZone: "America/New_York", createdAtMicros: 0))
            }
            _ = try await env.submit(.adjust(accountId: account, bucket: .cash, deltaMinor: 1_000_000, reason: "funding"))
            for (id, product) in [("daily", "day-meter"), ("monthly", "month-meter")] {
                _ = try await engine.resources.putResource(accountId: account, id: id, .init(productId: product, name: id, region: nil, projectId: nil, tags: [:]))
            }
            func at(_ text: String) -> Int64 { RFC3339.parse(text)! }
            func record(_ id: String, _ resource: String, _ start: String) -> UsageRecordInput {
                UsageRecordInput(id: id, accountId: account, resourceId: resource, component: "x", quantity: "1", unit: "u", unitPrice: "1",
                                 periodStart: start, periodEnd: start)
            }
            let results = try await engine.usage.ingest([
                // 2026-03-08 is 23 hours long in New York: 05:00Z (00:00 EST) to 04:00Z next day (00:00 EDT).
                record("dst-early", "daily", "2026-03-08T05:00:00Z"), record("dst-late", "daily", "2026-03-09T03:59:59Z"),
                record("dst-next", "daily", "2026-03-09T04:00:00Z"),
                record("leap", "daily", "2024-02-29T12:00:00-05:00"), record("leap-next", "daily", "2024-03-01T00:00:00-05:00"),
                // January ends at local midnight: 2026-02-01T05:00Z.
                record("jan-last", "monthly", "2026-02-01T04:59:59Z"), record("feb-first", "monthly", "2026-02-01T05:00:00Z"),
                record("feb-leap", "monthly", "2024-02-29T23:00:00-05:00"),
            ])
            #expect(results.allSatisfy { $0 == .accepted })
            _ = try await Self.runUntilNow(env)
            var lines: [BillLineRow] = []
            var cursor: String?
            repeat {
                let page = try await engine.bills.lines(accountId: account, month: SettlementCalendar.month(of: env.clock.nowMicros(), timeZone: "America/New_York"),
                                                         cursor: cursor, limit: 100)
                lines += page.rows
                cursor = page.next
            } while cursor != nil
            let cycles = Dictionary(grouping: lines, by: { $0.billed.settlement.resourceId }).mapValues { rows in
                rows.map { ($0.billed.settlement.cycle.startMicros, $0.billed.settlement.cycle.endMicros, $0.line.recordCount) }.sorted { $0.0 < $1.0 }
            }
            #expect(cycles["daily"]?.map(\.0) == [at("2024-02-29T05:00:00Z"), at("2024-03-01T05:00:00Z"), at("2026-03-08T05:00:00Z"), at("2026-03-09T04:00:00Z")])
            #expect(cycles["daily"]?.map(\.1) == [at("2024-03-01T05:00:00Z"), at("2024-03-02T05:00:00Z"), at("2026-03-09T04:00:00Z"), at("2026-03-10T04:00:00Z")])
            #expect(cycles["daily"]?.map(\.2) == [1, 1, 2, 1], "the 23-hour day holds both of its records")
            #expect(cycles["monthly"]?.map(\.0) == [at("2024-02-01T05:00:00Z"), at("2026-01-01T05:00:00Z"), at("2026-02-01T05:00:00Z")])
            #expect(cycles["monthly"]?.map(\.1) == [at("2024-03-01T05:00:00Z"), at("2026-02-01T05:00:00Z"), at("2026-03-01T05:00:00Z")])
        }
    }


    @Test("B3 an operator's compensation is a negative line in the month, paid back in the charge's cash and gift proportion, once per key",
          arguments: Backend.available)
    func compensation(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.setUp(env, cashMinor: 300, giftMinor: 100)
            _ = try await env.engine.usage.ingest([Self.record("c", account, start: Self.hourStart(env, hoursAgo: 2), quantity: "4", price: "0.5")])
            _ = try await Self.runUntilNow(env)
            let month = SettlementCalendar.month(of: env.clock.nowMicros(), timeZone: "Asia/Shanghai")
            let settlementId = try #require(try await env.engine.bills.lines(accountId: account, month: month, cursor: nil, limit: 10).rows.first?.billed.settlement.id)
            let bills = env.engine.bills, wallets = env.engine.wallets
            // The deduction of 2.00 took the 1.00 of gift and 1.00 of cash; half of 1.00 comes back as 0.50 + 0.50.
            let (c, replayed) = try await bills.compensate(accountId: account, settlementId: settlementId, amountText: "1.00", reason: "服务中断补偿",
                                                           idempotencyKey: "comp-1", actor: "test", wallets: wallets)
            #expect(!replayed && c.amountMinor == 100 && c.cashMinor == 50 && c.giftMinor == 50 && c.month == month)
            let (again, replayedAgain) = try await bills.compensate(accountId: account, settlementId: settlementId, amountText: "1.00",
                                                                    reason: "服务中断补偿", idempotencyKey: "comp-1", actor: "test", wallets: wallets)
            #expect(replayedAgain && again == c)
            let w = try await env.wallet(account)
            #expect(w.cashMinor == 300 - 100 + 50 && w.giftMinor == 50)
            let l0 = try await bills.overview(accountId: account, month: month)
            #expect(l0.postpaid.deductionMinor == 100 && l0.postpaid.compensationMinor == 100 && l0.postpaid.cashMinor == 50 && l0.postpaid.giftMinor == 50)
            #expect(try await bills.resources(accountId: account, month: month).first?.amounts.deductionMinor == 100)
            #expect(try await bills.compensations(accountId: account, month: month).map(\.compensation) == [c])
            #expect(try await env.store.auditLog(accountId: account, limit: 10).filter { $0.action == "bill.compensation" }.count == 1)
            #expect(await Self.refusal { try await bills.compensate(accountId: account, settlementId: settlementId, amountText: "1.01", reason: "too much",
                                                            idempotencyKey: "comp-2", actor: "test", wallets: wallets) } == .refundExceedsCharge)
            #expect(await Self.refusal { try await bills.compensate(accountId: account, settlementId: "stl_nope", amountText: "1.00", reason: "x",
                                                            idempotencyKey: "comp-3", actor: "test", wallets: wallets) } == .settlementNotFound)
            let other = try await env.fundedAccount(cashMinor: 100)
            #expect(await Self.refusal { try await bills.compensate(accountId: other, settlementId: settlementId, amountText: "1.00", reason: "x",
                                                            idempotencyKey: "comp-4", actor: "test", wallets: wallets) } == .settlementNotFound)
            #expect(await Self.refusal { try await bills.compensate(accountId: account, settlementId: settlementId, amountText: "0.001", reason: "x",
                                                            idempotencyKey: "comp-5", actor: "test", wallets: wallets) } == .amountTooManyDecimals)
            #expect(try await env.wallet(account) == w)
        }
    }

}

/// C2 for postpaid coupons: the settlement pays each cycle with the account's postpaid coupons first.
@Suite("Postpaid coupons in settlements on SQLite and PostgreSQL")
struct PostpaidCouponTests {
    static func grant(_ env: TestEnvironment, _ account: String, _ input: CouponInput) async throws -> CouponRecord {
        try await env.engine.coupons.grant(input, accountIds: [account], codeCount: nil, idempotencyKey: UUID().uuidString, actor: "test").0.coupons[0]
    }

    @Test("C2 C4 W4 a multi-use postpaid voucher pays settled cycles until its value is spent, never past it, under racing runs; the bill shows the coupon's part",
          arguments: Backend.available)
    func settlementSpendsCoupon(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await BillingTests.setUp(env, cashMinor: 10_000)
            let until = env.clock.nowMicros() + 30 * 86_400_000_000
            let voucher = try await Self.grant(env, account, CouponInput(kind: "voucher", value: "10.00", singleUse: false, paymentType: "postpaid",
                                                                         validUntilMicros: until))
            let prepaid = try await Self.grant(env, account, CouponInput(kind: "voucher", value: "50.00", singleUse: false, validUntilMicros: until))
            // 12 resources × one cycle of 1.00 each: the voucher pays ten of them, cash the other two.
            var records: [UsageRecordInput] = []
            let h = BillingTests.hourStart(env, hoursAgo: 2)
            for i in 1...12 {
                _ = try await env.engine.resources.putResource(accountId: account, id: "r-\(i)", .init(productId: "cvm", name: "r-\(i)", region: nil,
                                                                                                     projectId: nil, tags: [:]))
                records.append(BillingTests.record("u-\(i)", account, "r-\(i)", start: h, quantity: "2"))
            }
            #expect(try await env.engine.usage.ingest(records).allSatisfy { $0 == .accepted })
            let runs = try await withThrowingTaskGroup(of: SettlementRunRecord.self) { group in
                for _ in 0..<3 { group.addTask { try await BillingTests.runUntilNow(env) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(runs.reduce(0) { $0 + $1.cycles } == 12 && runs.allSatisfy { $0.failed == 0 })
            let after = try #require(try await env.store.coupon(accountId: account, id: voucher.id))
            #expect(after.remainingMinor == 0 && after.storedState == .used)
            #expect(try await env.store.coupon(accountId: account, id: prepaid.id)?.remainingMinor == 5_000)
            #expect(try await env.wallet(account).cashMinor == 10_000 - 200)
            let month = SettlementCalendar.month(of: env.clock.nowMicros(), timeZone: "Asia/Shanghai")
            let overview = try await env.engine.bills.overview(accountId: account, month: month)
            #expect(overview.postpaid.deductionMinor == 1_200 && overview.postpaid.couponMinor == 1_000 && overview.postpaid.cashMinor == 200)
            let types = try await env.store.transactions(TransactionQuery(accountId: account)).map(\.movement.type)
            #expect(types.filter { $0 == .couponUse }.count == 10 && types.filter { $0 == .deduction }.count == 2)
        }
    }

    @Test("C2 C5 a single-use postpaid coupon pays one cycle of a product it covers; none for an account in arrears; a compensation refunds only what money paid",
          arguments: Backend.available)
    func singleUseAndArrears(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await BillingTests.setUp(env, cashMinor: 100)
            let until = env.clock.nowMicros() + 30 * 86_400_000_000
            let other = try await Self.grant(env, account, CouponInput(kind: "cash", value: "5.00", productsIncluded: ["cdn"], paymentType: "postpaid",
                                                                       validUntilMicros: until))
            let single = try await Self.grant(env, account, CouponInput(kind: "cash", value: "5.00", paymentType: "postpaid", validUntilMicros: until))
            _ = try await env.engine.usage.ingest([BillingTests.record("a", account, start: BillingTests.hourStart(env, hoursAgo: 3), quantity: "2")])
            #expect(try await BillingTests.runUntilNow(env).cycles == 1)
            // 1.00 of a 5.00 single-use coupon: the rest is forfeited (C2); the wallet is untouched.
            #expect(try await env.store.coupon(accountId: account, id: single.id)?.storedState == .used)
            #expect(try await env.store.coupon(accountId: account, id: other.id)?.storedState == .unused)
            #expect(try await env.wallet(account).cashMinor == 100)
            // The cycle's charge was paid by the coupon alone: a compensation has no money to give back.
            let month = SettlementCalendar.month(of: env.clock.nowMicros(), timeZone: "Asia/Shanghai")
            let line = try #require(try await env.engine.bills.lines(accountId: account, month: month, cursor: nil, limit: 10).rows.first?.billed)
            #expect(line.couponMinor == 100 && line.cashMinor == 0 && line.giftMinor == 0)
            #expect(await BillingTests.refusal { try await env.engine.bills.compensate(
                accountId: account, settlementId: line.settlement.id, amountText: "0.50", reason: "outage", idempotencyKey: UUID().uuidString,
                actor: "test", wallets: env.engine.wallets) } == .refundExceedsCharge)
            // Into arrears, then a fresh coupon is not used (C5).
            _ = try await env.engine.usage.ingest([BillingTests.record("b", account, start: BillingTests.hourStart(env, hoursAgo: 2), quantity: "4")])
            #expect(try await BillingTests.runUntilNow(env).cycles == 1)
            #expect(try await env.wallet(account).cashMinor == -100)
            let fresh = try await Self.grant(env, account, CouponInput(kind: "voucher", value: "5.00", paymentType: "postpaid", validUntilMicros: until))
            _ = try await env.engine.usage.ingest([BillingTests.record("c", account, start: BillingTests.hourStart(env, hoursAgo: 1), quantity: "2")])
            #expect(try await BillingTests.runUntilNow(env).cycles == 1)
            #expect(try await env.wallet(account).cashMinor == -200)
            #expect(try await env.store.coupon(accountId: account, id: fresh.id)?.storedState == .unused)
        }
    }
}
