import ArgumentParser
import CofferCore
import CofferServices
import CofferStorage
import Foundation
import Synchronization

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Benchmarks that print figures.", subcommands: [BenchLedger.self, BenchSettlement.self, BenchRenewals.self])
}

/// Durable prepaid charges through the in-process ledger writer: N callers, each waiting for its own commit.
struct BenchLedger: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "ledger",
                                                    abstract: "Durable charges per second and p50/p99 latency through the ledger writer.")
    @OptionGroup var db: DatabaseOptions
    @Option(help: "Concurrent callers.") var clients = 64
    @Option(help: "How long to run.") var seconds = 10
    @Option(help: "Accounts the charges spread over (1 = one hot wallet).") var accounts = 1000
    @Option(help: "Most operations in one transaction.") var maxBatch = 512
    @Option(help: "Microseconds a batch may wait for more operations before it starts.") var maxWaitMicros = 0
    @Option(help: "Batches in flight at once (default: 2 on PostgreSQL, 1 on SQLite).") var workers: Int?

    func validate() throws {
        guard (1...4096).contains(clients), (1...3600).contains(seconds), (1...100_000).contains(accounts),
              (1...8192).contains(maxBatch), (0...100_000).contains(maxWaitMicros), (1...64).contains(workers ?? 1) else {
            throw ValidationError("out of range: clients 1–4096, seconds 1–3600, accounts 1–100000, max-batch 1–8192, "
                                  + "max-wait-micros 0–100000, workers 1–64")
        }
    }

    func run() async throws {
        let store = try await db.openStore()
        var settings = CofferEngine.Settings()
        settings.bcryptCost = 4
        settings.ledger = LedgerWriterSettings(maxBatchSize: maxBatch, maxWaitMicros: maxWaitMicros,
                                               workers: workers ?? db.defaultLedgerWorkers)
        let engine = CofferEngine(store: store, channels: [], settings: settings)
        let writerTask = Task { await engine.writer.run() }

        let run = Secrets.token(prefix: "").prefix(8)
        print("bench ledger: \(db.displayName), \(clients) clients, \(accounts) accounts, \(seconds) s, \(settings.ledger.workers) batch workers")
        var ids: [String] = []
        for i in 0..<accounts {
            let (created, _) = try await engine.accounts.createAccount(
                NewAccount(type: .personal, entityName: "bench \(i)", taxId: nil, contactEmail: "bench@example.com",
                           owner: NewUser(email: "bench-\(run)-\(i)@example.com", name: "bench", role: .owner,
                                          password: "bench-password")),
                idempotencyKey: "bench-\(run)-\(i)", actor: "system:bench")
            ids.append(created.account.id)
        }
        _ = try await engine.writer.submitAll(ids.map {
            LedgerRequest(.adjust(accountId: $0, bucket: .cash, deltaMinor: 100_000_000_00, reason: "bench funding"),
                          idempotencyKey: "fund-\(run)", actor: "system:bench")
        })

        engine.writer.resetProfile()
        // Unbuffered, so that a profiler can attach exactly when the measured part begins.
        FileHandle.standardError.write(Data("measuring: \(accounts) accounts funded\n".utf8))
        let cpuBefore = Self.processCPUMicros()
        let deadline = ContinuousClock.now + .seconds(seconds)
        let started = ContinuousClock.now
        let accountIds = ids
        let results = try await withThrowingTaskGroup(of: (latenciesMicros: [Int64], failed: Int).self) { group in
            for client in 0..<clients {
                group.addTask {
                    var latencies: [Int64] = []
                    var failed = 0
                    var n = 0
                    while ContinuousClock.now < deadline {
                        let account = accountIds[(client + n * clients) % accountIds.count]
                        let t0 = ContinuousClock.now
                        let outcome = try await engine.writer.submit(LedgerRequest(
                            .charge(accountId: account, chargeId: engine.ids.make("chg"), amountMinor: 1, mode: .prepaid,
                                    reference: nil),
                            idempotencyKey: "bench-\(run)-\(client)-\(n)", actor: "system:bench"))
                        let d = ContinuousClock.now - t0
                        latencies.append(d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000)
                        if case .failure = outcome.result { failed += 1 }
                        n += 1
                    }
                    return (latencies, failed)
                }
            }
            var all: [(latenciesMicros: [Int64], failed: Int)] = []
            for try await r in group { all.append(r) }
            return all
        }
        let elapsed = ContinuousClock.now - started
        let cpuMicros = Self.processCPUMicros() - cpuBefore
        // The window is over: bench.sh reads PostgreSQL's CPU between "measuring" and this line.
        FileHandle.standardError.write(Data("measured\n".utf8))
        let elapsedSeconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let latencies = results.flatMap(\.latenciesMicros).sorted()
        let failed = results.map(\.failed).reduce(0, +)
        func pct(_ p: Double) -> Double { Double(latencies[min(latencies.count - 1, Int(Double(latencies.count) * p))]) / 1000 }
        let opsPerSecond = Double(latencies.count - failed) / elapsedSeconds
        print(String(format: "charges: %d ok, %d refused in %.1f s", latencies.count - failed, failed, elapsedSeconds))
        print(String(format: "throughput: %.0f durable charges/s", opsPerSecond))
        print(String(format: "latency: p50 %.2f ms, p99 %.2f ms", pct(0.50), pct(0.99)))
        let ok = max(1, latencies.count - failed)
        print(String(format: "coffer CPU: %.0f us per charge (%.2f cores)", Double(cpuMicros) / Double(ok),
                     Double(cpuMicros) / 1e6 / elapsedSeconds))
        print(String(format: "RESULT ops_per_s=%.0f p50_ms=%.2f p99_ms=%.2f coffer_cpu_us=%.0f", opsPerSecond, pct(0.50), pct(0.99),
                     Double(cpuMicros) / Double(ok)))
        print("batch profile (where the writer's time goes):\n" + engine.writer.profile.report)
        engine.writer.stop()
        await writerTask.value
        let problems = try await store.verify()
        print(problems.isEmpty ? "verify: ok" : "verify: \(problems.count) problems, first: \(problems[0])")
        await store.shutdown()
        if !problems.isEmpty { throw ExitCode(1) }
    }

    /// The process's peak resident set so far (getrusage's ru_maxrss), in KiB.
    static func peakRSSKiB() -> Int { Int(selfUsage().ru_maxrss) }

    static func selfUsage() -> rusage {
        var usage = rusage()
        #if os(Linux)
        getrusage(RUSAGE_SELF.rawValue, &usage)
        #else
        getrusage(RUSAGE_SELF, &usage)
        #endif
        return usage
    }

    /// User + system CPU of this process so far (getrusage), in microseconds.
    static func processCPUMicros() -> Int64 {
        let usage = selfUsage()
        func micros(_ t: timeval) -> Int64 { Int64(t.tv_sec) * 1_000_000 + Int64(t.tv_usec) }
        return micros(usage.ru_utime) + micros(usage.ru_stime)
    }
}
