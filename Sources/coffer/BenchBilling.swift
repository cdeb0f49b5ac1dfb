import ArgumentParser
import CofferCore
import CofferServices
import CofferStorage
import Foundation

/// B2 at scale: N usage records over R resources and A accounts, settled in one run; printed beside the plain
/// `SELECT … GROUP BY` of the same rows (the floor) and with the process's peak resident memory. `--phase setup` loads the
/// records and `--phase run` settles them in a fresh process, so the run's peak memory is its own.
struct BenchSettlement: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "settlement",
                                                    abstract: "Usage records settled per second in one settlement run, beside a GROUP BY of the same rows.")
    @OptionGroup var db: DatabaseOptions
    @Option(help: "Usage records.") var records = 1_000_000
    @Option(help: "Resources the records spread over.") var resources = 10_000
    @Option(help: "Accounts the resources spread over.") var accounts = 1_000
    @Option(help: "Settlement cycles per resource (daily cycles, the days before today).") var cyclesPerResource = 1
    @Option(help: "setup (load records), run (settle), or both.") var phase = "both"

    func validate() throws {
        guard (1...10_000_000).contains(records), (1...1_000_000).contains(resources), (1...100_000).contains(accounts),
              accounts <= resources, (1...28).contains(cyclesPerResource), ["setup", "run", "both"].contains(phase) else {
            throw ValidationError("out of range: records 1–10000000, resources 1–1000000, accounts 1–100000 (≤ resources), "
                                  + "cycles-per-resource 1–28, phase setup|run|both")
        }
    }

    func run() async throws {
        let (store, engine, writerTask) = try await BenchSetup.engine(db)
        print("bench settlement: \(db.displayName), \(records) records, \(resources) resources, \(accounts) accounts, "
              + "\(cyclesPerResource) daily cycle(s) per resource, phase \(phase)")
        if phase != "run" { try await setUp(engine) }
        if phase != "setup" {
            let floor = try await store.unsettledUsageFloor()
            print(String(format: "floor: SELECT … GROUP BY of the unsettled rows: %d groups, %d records in %.2f s",
                         floor.groups, floor.records, Double(floor.micros) / 1e6))
            let rssBefore = BenchLedger.peakRSSKiB()
            let started = ContinuousClock.now
            let (run, _) = try await engine.settlement.run(untilMicros: engine.clock.nowMicros(), idempotencyKey: "bench-\(Secrets.token(prefix: "").prefix(8))",
                                                           actor: "system:bench")
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            print(String(format: "settled: %d cycles, %d records, %d failed in %.2f s (%.0f records/s, %.0f cycles/s; %.1f× the floor's time)",
                         run.cycles, run.records, run.failed, seconds, Double(run.records) / seconds, Double(run.cycles) / seconds,
                         seconds / max(0.001, Double(floor.micros) / 1e6)))
            print("peak resident memory: \(rssBefore / 1024) MiB before the run, \(BenchLedger.peakRSSKiB() / 1024) MiB after it")
            print(String(format: "RESULT settle_s=%.2f floor_s=%.2f records=%d cycles=%d peak_rss_mib=%d", seconds, Double(floor.micros) / 1e6,
                         run.records, run.cycles, BenchLedger.peakRSSKiB() / 1024))
        }
        engine.writer.stop()
        await writerTask.value
        await store.shutdown()
    }

    private func setUp(_ engine: CofferEngine) async throws {
        let store = engine.store
        let run = Secrets.token(prefix: "").prefix(6)
        _ = try await engine.products.put(id: "bench-meter", ProductInput(nameZh: "计量", nameEn: "Meter", settlementCycle: "daily",
                                                                          taxCategory: "cloud_service", plans: []), actor: "system:bench")
        let accountIds = try await BenchSetup.accounts(engine, count: accounts, run: "bench-" + run)
        let now = engine.clock.nowMicros()
        let resourceIds = (0..<resources).map { "res-\(run)-\($0)" }
        for chunk in stride(from: 0, to: resources, by: 1_000) {
            let slice = Array(resourceIds[chunk..<min(chunk + 1_000, resources)])
            let owners = accountIds
            try await store.transaction { tx in
                for (i, id) in slice.enumerated() {
                    _ = try await tx.putResource(ResourceRecord(accountId: owners[(chunk + i) % owners.count], id: id, productId: "bench-meter",
                                                                name: id, region: "ap-shanghai", projectId: nil, tags: [:],
                                                                createdAtMicros: now, updatedAtMicros: now))
                }
            }
        }
        let today = try SettlementCalendar.window(containing: now, cycle: .daily, timeZone: "Asia/Shanghai")
        var days: [CycleWindow] = [today]
        for _ in 0..<cyclesPerResource { days.append(try SettlementCalendar.window(containing: days.last!.startMicros - 1, cycle: .daily, timeZone: "Asia/Shanghai")) }
        days.removeFirst()
        let started = ContinuousClock.now
        var batch: [UsageRecord] = []
        for n in 0..<records {
            let r = n % resources, cycle = days[(n / resources) % days.count]
            let quantity = Int64(n % 97 + 1) * 1_000_000, price = 1_234_567
            batch.append(UsageRecord(accountId: accountIds[r % accountIds.count], id: "u-\(run)-\(n)", resourceId: resourceIds[r],
                                     productId: "bench-meter", component: n % 2 == 0 ? "cpu" : "disk", unit: "h", quantityUnits: quantity,
                                     unitPriceUnits: Int64(price), listUnitPriceUnits: nil,
                                     amountUnits: Int64(try Rating.rate(quantityUnits: quantity, unitPriceUnits: Int64(price))), listAmountUnits: nil,
                                     periodStartMicros: cycle.startMicros, periodEndMicros: cycle.startMicros + 3_600_000_000, region: nil,
                                     tagsJSON: nil, cycle: cycle, contentHash: String(repeating: "0", count: 64), receivedAtMicros: now))
            if batch.count == 10_000 || n == records - 1 {
                _ = try await store.insertUsage(batch)
                batch.removeAll(keepingCapacity: true)
            }
        }
        let elapsed = ContinuousClock.now - started
        print(String(format: "setup: %d accounts, %d resources, %d records loaded in %.1f s", accounts, resources, records,
                     Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18))
    }
}

/// O4 at scale: the renewal day. T prepaid resources over A accounts fall due at once; one jobs-loop pass renews those
/// whose account can pay (80 %), refuses and reminds the rest (10 %, auto-renew on, no money), and suspends those 7 days
/// past expiry (10 %). Prints the pass's time, what it did and the peak resident memory.
struct BenchRenewals: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "renewals",
                                                    abstract: "One renewal day: prepaid resources renewed, reminded or suspended by the jobs loop.")
    @OptionGroup var db: DatabaseOptions
    @Option(help: "Prepaid resources falling due.") var resources = 100_000
    @Option(help: "Accounts they belong to.") var accounts = 10_000

    func validate() throws {
        guard (1...1_000_000).contains(resources), (1...100_000).contains(accounts), accounts <= resources else {
            throw ValidationError("out of range: resources 1–1000000, accounts 1–100000 (≤ resources)")
        }
    }

    func run() async throws {
        let (store, engine, writerTask) = try await BenchSetup.engine(db)
        print("bench renewals: \(db.displayName), \(resources) prepaid resources over \(accounts) accounts")
        let run = Secrets.token(prefix: "").prefix(6)
        let setupStarted = ContinuousClock.now
        _ = try await engine.products.put(id: "bench-vm", ProductInput(nameZh: "云服务器", nameEn: "Server", settlementCycle: "monthly",
                                                                       taxCategory: "cloud_service", plans: [(specification: "1c1g", monthlyPrice: "30.00")]),
                                          actor: "system:bench")
        let accountIds = try await BenchSetup.accounts(engine, count: accounts, run: "renew-" + run)
        // 80 % of the accounts can pay for all their resources; 10 % have nothing; the resources of the last 10 % are a week late.
        let perAccount = (resources + accounts - 1) / accounts
        let funded = accountIds.prefix(accounts * 8 / 10)
        _ = try await engine.writer.submitAll(funded.map {
            LedgerRequest(.adjust(accountId: $0, bucket: .cash, deltaMinor: Int64(perAccount) * 3_000 + 100, reason: "bench"),
                          idempotencyKey: "fund-\(run)-\($0)", actor: "system:bench")
        })
        let now = engine.clock.nowMicros()
        var terms: [PrepaidTermRecord] = []
        for r in 0..<resources {
            let a = r % accounts
            let late = a >= accounts * 9 / 10
            let expires = late ? now - 8 * PrepaidLifecycle.day : now - 60_000_000
            terms.append(PrepaidTermRecord(accountId: accountIds[a], resourceId: "vm-\(run)-\(r)", productId: "bench-vm", specification: "1c1g",
                                           autoRenew: !late, startsAtMicros: expires - 30 * PrepaidLifecycle.day, expiresAtMicros: expires, createdAtMicros: now))
        }
        for chunk in stride(from: 0, to: terms.count, by: 10_000) {
            let slice = Array(terms[chunk..<min(chunk + 10_000, terms.count)])
            try await store.transaction { tx in try await tx.insertPrepaidTerms(slice) }
        }
        let setup = ContinuousClock.now - setupStarted
        print(String(format: "setup: %d accounts, %d terms in %.1f s", accounts, resources,
                     Double(setup.components.seconds) + Double(setup.components.attoseconds) / 1e18))
        let rssBefore = BenchLedger.peakRSSKiB()
        let started = ContinuousClock.now
        let report = try await engine.prepaid.runDue(limit: 2_000)
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print(String(format: "renewal day: %d renewed, %d refused (reminded %d), %d suspended in %.2f s (%.0f resources/s)",
                     report.renewed, report.renewalsRefused, report.reminded, report.suspended, seconds,
                     Double(report.renewed + report.renewalsRefused + report.suspended) / seconds))
        print("peak resident memory: \(rssBefore / 1024) MiB before the pass, \(BenchLedger.peakRSSKiB() / 1024) MiB after it")
        let problems = try await store.verify()
        print("verify: \(problems.isEmpty ? "clean" : "\(problems.count) problems")")
        print(String(format: "RESULT renew_s=%.2f renewed=%d refused=%d suspended=%d peak_rss_mib=%d", seconds, report.renewed,
                     report.renewalsRefused, report.suspended, BenchLedger.peakRSSKiB() / 1024))
        engine.writer.stop()
        await writerTask.value
        await store.shutdown()
    }
}

/// What every benchmark starts with: a migrated store, an engine with a running writer, and accounts.
enum BenchSetup {
    static func engine(_ db: DatabaseOptions) async throws -> (SQLStore, CofferEngine, Task<Void, Never>) {
        let store = try await db.openStore()
        try await store.migrate()
        var settings = CofferEngine.Settings()
        settings.bcryptCost = 4
        settings.ledger = LedgerWriterSettings(workers: db.defaultLedgerWorkers)
        let engine = CofferEngine(store: store, channels: [], settings: settings)
        let writer = engine.writer
        return (store, engine, Task { await writer.run() })
    }

    /// `count` personal accounts with an owner each; `run` keeps their e-mails and keys apart from earlier runs.
    static func accounts(_ engine: CofferEngine, count: Int, run: String) async throws -> [String] {
        var ids: [String] = []
        for i in 0..<count {
            let (created, _) = try await engine.accounts.createAccount(
                NewAccount(type: .personal, entityName: "bench \(i)", taxId: nil, contactEmail: "bench@example.com",
                           owner: NewUser(email: "\(run)-\(i)@example.com", name: "bench", role: .owner, password: "bench-password")),
                idempotencyKey: "\(run)-\(i)", actor: "system:bench")
            ids.append(created.account.id)
        }
        return ids
    }
}
