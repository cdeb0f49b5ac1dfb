import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Testing

/// N1 (several instances, one database): every scheduled job runs on one instance at a time, the one holding its lease;
/// a lease left by a killed instance runs out and another instance takes the job; run numbers are never given twice.
@Suite("Scheduled jobs claimed with leases")
struct JobLeaseTests {
    @Test("N1 a held lease keeps the job from other instances until it runs out; the first holder's late finish is refused",
          arguments: Backend.available)
    func leaseRunsOut(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let store = env.store
            let job = ScheduledJob.notices.rawValue
            try await store.ensureJobs([job])
            try await store.ensureJobs([job])   // twice: the row is made once
            let t0: Int64 = 1_000_000_000
            /// A claim by `holder` at time `t` for a lease until `until`.
            func claim(_ holder: String, at t: Int64, until: Int64, ignoringSchedule: Bool = false) async throws -> JobLease? {
                try await store.claimJob(job, holder: holder, clock: ManualClock(micros: t), leaseMicros: until - t,
                                         ignoringSchedule: ignoringSchedule)?.lease
            }
            let first = try #require(try await claim("a", at: t0, until: t0 + 10_000_000))
            #expect(first.run == 1)
            // Another instance, before the lease runs out, whether or not it ignores the schedule.
            #expect(try await claim("b", at: t0 + 9_999_999, until: t0 + 20_000_000, ignoringSchedule: true) == nil)
            // The holder renews; then it is "killed" and the renewed lease runs out.
            #expect(try await store.renewJob(first, untilMicros: t0 + 15_000_000))
            #expect(try await claim("b", at: t0 + 14_000_000, until: t0 + 30_000_000) == nil)
            let second = try #require(try await claim("b", at: t0 + 15_000_000, until: t0 + 30_000_000))
            #expect(second.run == 2)
            // The first holder comes back: it can neither renew nor finish, and the second's lease is untouched.
            #expect(try await store.renewJob(first, untilMicros: t0 + 40_000_000) == false)
            #expect(try await store.finishJob(first, nowMicros: t0 + 16_000_000, nextRunAtMicros: t0 + 21_000_000, items: 1, error: nil) == false)
            #expect(try await claim("c", at: t0 + 29_000_000, until: t0 + 40_000_000, ignoringSchedule: true) == nil)
            #expect(try await store.finishJob(second, nowMicros: t0 + 17_000_000, nextRunAtMicros: t0 + 22_000_000, items: 3, error: nil))
            // Released, but not due until its next run.
            #expect(try await claim("c", at: t0 + 21_999_999, until: t0 + 40_000_000) == nil)
            let third = try #require(try await claim("c", at: t0 + 22_000_000, until: t0 + 40_000_000))
            #expect(third.run == 3)
            let runs = try await store.jobRuns(job: job, limit: 10).sorted { $0.run < $1.run }
            #expect(runs.map(\.holder) == ["a", "b", "c"])
            #expect(runs.map(\.finishedAtMicros) == [t0 + 16_000_000, t0 + 17_000_000, nil])
            #expect(runs.map(\.items) == [1, 3, nil])
        }
    }

    @Test("N1 three instances running their jobs loops at once never run one job twice at the same time", arguments: Backend.available)
    func threeInstances(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let instances = ["i1", "i2", "i3"].map { holder in
                var settings = CofferEngine.Settings()
                settings.bcryptCost = 4
                settings.jobs.holder = holder
                settings.jobs.intervalSeconds = 1
                return CofferEngine(store: env.store, clock: env.clock, channels: [env.sandbox], settings: settings)
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for engine in instances {
                    group.addTask {
                        // Every job now, whatever its schedule: as many claims racing for each lease as possible.
                        for _ in 0..<8 { _ = try await engine.jobs.runOnce() }
                    }
                }
                try await group.waitForAll()
            }
            var total = 0
            for job in ScheduledJob.allCases {
                let runs = try await env.store.jobRuns(job: job.rawValue, limit: 1000).sorted { $0.run < $1.run }
                // A pass skips a job only while another instance holds it, so every job ran.
                #expect(!runs.isEmpty, "\(job) ran")
                #expect(runs.map(\.run) == (0..<runs.count).map { Int64($0 + 1) }, "\(job): runs numbered once each")
                total += runs.count
                for (earlier, later) in zip(runs, runs.dropFirst()) {
                    let end = try #require(earlier.finishedAtMicros, "\(job) run \(earlier.run) finished")
                    #expect(later.startedAtMicros >= end, "\(job) run \(later.run) started before run \(earlier.run) ended")
                }
            }
            print("three instances: \(total) runs of \(ScheduledJob.allCases.count) jobs, none overlapping")
            let holders = Set(try await env.store.jobRuns(job: nil, limit: 1000).map(\.holder))
            #expect(holders.isSubset(of: ["i1", "i2", "i3"]) && !holders.isEmpty)
        }
    }
}
