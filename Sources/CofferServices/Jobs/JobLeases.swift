import CofferCore
import Foundation

/// One run of a scheduled job, held by one instance until it finishes or its lease runs out.
public struct JobLease: Sendable, Equatable {
    public let job: String
    /// Numbers the job's runs across every instance: a run number is never given twice.
    public let run: Int64
    public let holder: String
    public init(job: String, run: Int64, holder: String) {
        self.job = job
        self.run = run
        self.holder = holder
    }
}

public struct JobRunRecord: Sendable, Equatable {
    public var job: String
    public var run: Int64
    public var holder: String
    public var startedAtMicros: Int64
    /// Absent while it runs, and for ever when its instance died during the run.
    public var finishedAtMicros: Int64?
    public var items: Int?
    public var error: String?
    public init(job: String, run: Int64, holder: String, startedAtMicros: Int64, finishedAtMicros: Int64?, items: Int?, error: String?) {
        self.job = job
        self.run = run
        self.holder = holder
        self.startedAtMicros = startedAtMicros
        self.finishedAtMicros = finishedAtMicros
        self.items = items
        self.error = error
    }
}

/// The leases of scheduled jobs, kept in the database so that several instances share one schedule.
public protocol JobLeaseStore: Sendable {
    /// Makes sure each job has its lease row.
    func ensureJobs(_ names: [String]) async throws
    /// Claims the job for `leaseMicros` when its lease is free (never taken, released, or run out) and — unless
    /// `ignoringSchedule` — its next run is due; nil when another instance holds it or it is not due. The clock is read
    /// inside the claim, after the row is locked; the answer carries that start.
    func claimJob(_ name: String, holder: String, clock: any Clock, leaseMicros: Int64,
                  ignoringSchedule: Bool) async throws -> (lease: JobLease, startedAtMicros: Int64)?
    /// Extends a lease still held; false when it was lost (it ran out and another instance took the job).
    func renewJob(_ lease: JobLease, untilMicros: Int64) async throws -> Bool
    /// Records the run's end and frees the lease; false when the lease had been lost.
    func finishJob(_ lease: JobLease, nowMicros: Int64, nextRunAtMicros: Int64, items: Int, error: String?) async throws -> Bool
    /// Newest first.
    func jobRuns(job: String?, limit: Int) async throws -> [JobRunRecord]
}

/// Who holds a lease: host, process and a random part (a restarted process with a reused pid is someone else).
public enum JobHolder {
    public static func make() -> String {
        "\(ProcessInfo.processInfo.hostName.prefix(40)):\(ProcessInfo.processInfo.processIdentifier):\(Secrets.token(prefix: "").suffix(8))"
    }
}
