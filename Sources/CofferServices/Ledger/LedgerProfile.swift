import Foundation
import Synchronization

/// Where the ledger writer's batches spend their time, summed over all batches since start. Cheap enough to be always
/// on (a few clock reads per batch); `coffer bench ledger` prints it so that a throughput figure comes with its profile.
public struct LedgerProfile: Sendable, Equatable {
    public var batches = 0
    public var operations = 0
    /// Waiting for a pooled connection and BEGIN.
    public var beginMicros: Int64 = 0
    /// SELECT … FOR UPDATE of the batch's wallets.
    public var lockMicros: Int64 = 0
    /// The one idempotency lookup of the batch.
    public var idempotencyMicros: Int64 = 0
    /// Rules, receipts, fingerprints and response JSON in Swift (plus any per-operation row lock).
    public var evaluateMicros: Int64 = 0
    /// The multi-row INSERTs and the wallet UPDATE.
    public var writeMicros: Int64 = 0
    /// COMMIT, i.e. the durable flush.
    public var commitMicros: Int64 = 0

    public init() {}

    mutating func add(_ o: LedgerProfile) {
        batches += o.batches
        operations += o.operations
        beginMicros += o.beginMicros
        lockMicros += o.lockMicros
        idempotencyMicros += o.idempotencyMicros
        evaluateMicros += o.evaluateMicros
        writeMicros += o.writeMicros
        commitMicros += o.commitMicros
    }

    /// One line per phase: mean milliseconds per batch and share of the batch's time.
    public var report: String {
        guard batches > 0 else { return "no batches" }
        let phases: [(String, Int64)] = [("begin", beginMicros), ("lock wallets", lockMicros),
                                         ("idempotency lookup", idempotencyMicros), ("evaluate", evaluateMicros),
                                         ("write rows", writeMicros), ("commit", commitMicros)]
        let total = max(1, phases.map(\.1).reduce(0, +))
        var lines = [String(format: "%d batches, mean %.1f operations per batch, mean %.2f ms per batch", batches,
                            Double(operations) / Double(batches), Double(total) / Double(batches) / 1000)]
        for (name, micros) in phases {
            lines.append("  \(name): " + String(format: "%.2f ms per batch (%.0f %%)", Double(micros) / Double(batches) / 1000,
                                                 Double(micros) * 100 / Double(total)))
        }
        return lines.joined(separator: "\n")
    }
}

/// Microseconds since an arbitrary start, for phase timings.
func monotonicMicros() -> Int64 {
    let d = ContinuousClock.now - ContinuousClock.Instant.zeroReference
    return d.components.seconds * 1_000_000 + d.components.attoseconds / 1_000_000_000_000
}

extension ContinuousClock.Instant {
    static let zeroReference = ContinuousClock.now
}

final class LedgerProfileCounter: Sendable {
    private let total = Mutex(LedgerProfile())
    func add(_ p: LedgerProfile) { total.withLock { $0.add(p) } }
    var snapshot: LedgerProfile { total.withLock { $0 } }
    func reset() { total.withLock { $0 = LedgerProfile() } }
}
