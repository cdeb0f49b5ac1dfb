import CofferCore
import Logging
import Metrics
import Synchronization

public struct LedgerWriterSettings: Sendable {
    /// Most operations applied in one database transaction.
    public var maxBatchSize: Int
    /// Operable reserve of W3 (*default* 0.00).
    public var reserveMinor: Int64
    /// Batches in flight at once. More than one lets the database flush one commit while the next batch is evaluated;
    /// batches lock their wallets in account order, so they cannot deadlock. SQLite serializes writers anyway: use 1.
    public var workers: Int
    /// How long a worker that finds fewer than `maxBatchSize` operations waits for more before it starts. 0 (the
    /// default) adds no latency: while one batch commits, the next one gathers anyway.
    public var maxWaitMicros: Int
    public init(maxBatchSize: Int = 512, maxWaitMicros: Int = 0, reserveMinor: Int64 = 0, workers: Int = 1) {
        precondition(maxBatchSize >= 1 && maxBatchSize <= 8192)
        precondition(maxWaitMicros >= 0 && maxWaitMicros <= 100_000)
        precondition(workers >= 1 && workers <= 64)
        self.maxBatchSize = maxBatchSize
        self.maxWaitMicros = maxWaitMicros
        self.reserveMinor = reserveMinor
        self.workers = workers
    }
}

/// The one way money moves. Callers submit operations; a worker takes everything queued (up to the batch limit), applies
/// it in one transaction and answers each caller only after that transaction committed (group commit). While a batch
/// commits, the next one gathers.
public final class LedgerWriter: Sendable {
    private struct Waiting: Sendable {
        let request: LedgerRequest
        let continuation: CheckedContinuation<LedgerOutcome, any Error>
    }
    private struct State {
        var queue: [Waiting] = []
        /// Workers parked until work arrives.
        var idle: [CheckedContinuation<Void, Never>] = []
        var stopped = false
        var running = false
    }

    private let store: any CofferStore
    private let clock: any Clock
    private let ids: IdGenerator
    private let settings: LedgerWriterSettings
    /// W3's operable reserve, for previews that say what a payment would need.
    public var reserveMinor: Int64 { settings.reserveMinor }
    private let logger: Logger
    private let state = Mutex(State())
    private let profileCounter = LedgerProfileCounter()

    /// Where batches spent their time since start (or the last `resetProfile()`).
    public var profile: LedgerProfile { profileCounter.snapshot }
    public func resetProfile() { profileCounter.reset() }

    public init(store: any CofferStore, clock: any Clock, ids: IdGenerator,
                settings: LedgerWriterSettings = .init(), logger: Logger = Logger(label: "coffer.ledger")) {
        self.store = store
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self.logger = logger
    }

    /// Submits one operation and waits until it is durable (or refused).
    public func submit(_ request: LedgerRequest) async throws -> LedgerOutcome {
        try await withCheckedThrowingContinuation { continuation in
            let wake: CheckedContinuation<Void, Never>? = state.withLock { s in
                if s.stopped {
                    continuation.resume(throwing: CofferError(.shuttingDown, "The server is shutting down."))
                    return nil
                }
                s.queue.append(Waiting(request: request, continuation: continuation))
                return s.idle.isEmpty ? nil : s.idle.removeFirst()
            }
            wake?.resume()
        }
    }

    /// Submits several operations at once; they share batches and each has its own outcome.
    public func submitAll(_ requests: [LedgerRequest]) async throws -> [LedgerOutcome] {
        try await withThrowingTaskGroup(of: (Int, LedgerOutcome).self) { group in
            for (i, r) in requests.enumerated() { group.addTask { (i, try await self.submit(r)) } }
            var out = [LedgerOutcome?](repeating: nil, count: requests.count)
            for try await (i, o) in group { out[i] = o }
            return out.map { $0! }
        }
    }

    /// Runs the workers until `stop()`; everything still queued is answered before it returns.
    public func run() async {
        // One run per writer: a second would double the workers behind the caller's back.
        let alreadyRunning = state.withLock { s in
            defer { s.running = true }
            return s.running
        }
        precondition(!alreadyRunning, "LedgerWriter.run() called twice")
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<settings.workers { group.addTask { await self.work() } }
        }
    }

    private func work() async {
        while true {
            if settings.maxWaitMicros > 0 {
                let short = state.withLock { s in !s.queue.isEmpty && s.queue.count < settings.maxBatchSize && !s.stopped }
                if short { try? await Task.sleep(for: .microseconds(settings.maxWaitMicros)) }
            }
            let batch: [Waiting]? = state.withLock { s in
                if s.queue.isEmpty { return s.stopped ? nil : [] }
                let n = min(settings.maxBatchSize, s.queue.count)
                defer { s.queue.removeFirst(n) }
                return Array(s.queue.prefix(n))
            }
            guard let batch else { return }
            if !batch.isEmpty {
                await apply(batch)
                continue
            }
            // Nothing queued: park until a submit (or stop) wakes us.
            await withCheckedContinuation { (wake: CheckedContinuation<Void, Never>) in
                let resumeNow = state.withLock { s -> Bool in
                    if !s.queue.isEmpty || s.stopped { return true }
                    s.idle.append(wake)
                    return false
                }
                if resumeNow { wake.resume() }
            }
        }
    }

    public func stop() {
        let parked = state.withLock { s in
            s.stopped = true
            defer { s.idle = [] }
            return s.idle
        }
        for wake in parked { wake.resume() }
    }

    private func apply(_ batch: [Waiting]) async {
        let requests = batch.map(\.request)
        do {
            let outcomes = try await applyInTransaction(requests)
            for (w, o) in zip(batch, outcomes) { w.continuation.resume(returning: o) }
        } catch {
            // The batch as a whole failed (a constraint, a lost connection, a concurrent writer): try each operation alone
            // so that one bad operation cannot fail its neighbours.
            logger.warning("ledger batch of \(batch.count) failed, retrying one by one: \(String(reflecting: error))")
            for w in batch {
                do {
                    let outcome = try await applyInTransaction([w.request])[0]
                    w.continuation.resume(returning: outcome)
                } catch {
                    logger.error("ledger operation \(w.request.command.kind) failed: \(String(reflecting: error))")
                    w.continuation.resume(throwing: error)
                }
            }
        }
    }

    private func applyInTransaction(_ requests: [LedgerRequest]) async throws -> [LedgerOutcome] {
        let requested = monotonicMicros()
        let (outcomes, bodyStarted, bodyEnded, phases) = try await store.transaction { [clock, ids, settings] tx in
            let started = monotonicMicros()
            var applier = LedgerBatchApplier(tx: tx, clock: clock, ids: ids, reserveMinor: settings.reserveMinor)
            let outcomes = try await applier.run(requests)
            return (outcomes, started, monotonicMicros(), applier.profile)
        }
        var p = phases
        p.beginMicros = bodyStarted - requested
        p.commitMicros = monotonicMicros() - bodyEnded
        profileCounter.add(p)
        // Made per batch, not cached: a handler made before the metrics backend is bootstrapped would stay a no-op.
        Recorder(label: "coffer_ledger_batch_size", aggregate: true).record(requests.count)
        Metrics.Timer(label: "coffer_ledger_commit_seconds").recordMicroseconds(p.commitMicros)
        return outcomes
    }
}
