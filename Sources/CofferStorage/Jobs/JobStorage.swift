import CofferCore
import CofferServices
import SQLKit

/// Leases of the scheduled jobs (migration 20). Every change is one short transaction; a job's work runs outside it.
extension SQLStore {
    public func ensureJobs(_ names: [String]) async throws {
        try await writeTransaction { tx in
            for name in names {
                _ = try await tx.db.raw("INSERT INTO job_leases (job) VALUES (\(bind: name)) ON CONFLICT (job) DO NOTHING").all()
            }
        }
    }

    public func claimJob(_ name: String, holder: String, clock: any Clock, leaseMicros: Int64,
                         ignoringSchedule: Bool) async throws -> (lease: JobLease, startedAtMicros: Int64)? {
        precondition(leaseMicros > 0, "a lease ends after it is taken")
        return try await writeTransaction { tx in
            let db = tx.db
            // PostgreSQL: an instance that finds the row locked by another's claim or finish moves on instead of waiting
            // for it. SQLite: the transaction holds the database's write lock already.
            var sql: SQLQueryString = "SELECT holder, lease_until, next_run_at, runs FROM job_leases WHERE job = \(bind: name)"
            if tx.postgres { sql += " FOR UPDATE SKIP LOCKED" }
            guard let row = try await db.raw(sql).first() else { return nil }
            // The time is read with the row in hand: a finish committed before is then earlier than this start, so the
            // recorded runs of a job never seem to overlap.
            let now = clock.nowMicros()
            let holderNow = try row.decode(column: "holder", as: String?.self)
            let leaseUntil = try row.decode(column: "lease_until", as: Int64.self)
            let nextRunAt = try row.decode(column: "next_run_at", as: Int64.self)
            let free = holderNow == nil || leaseUntil <= now
            let due = ignoringSchedule || nextRunAt <= now
            guard free && due else { return nil }
            let run = try row.decode(column: "runs", as: Int64.self) + 1
            let leaseUntilMicros = now + leaseMicros
            let nowMicros = now
            _ = try await db.raw("""
                UPDATE job_leases SET holder = \(bind: holder), lease_until = \(bind: leaseUntilMicros), runs = \(bind: run)
                WHERE job = \(bind: name)
                """).all()
            _ = try await db.raw("""
                INSERT INTO job_runs (job, run, holder, started_at) VALUES (\(bind: name), \(bind: run), \(bind: holder), \(bind: nowMicros))
                """).all()
            // A limit on everything: the last thousand runs of each job are kept.
            _ = try await db.raw("DELETE FROM job_runs WHERE job = \(bind: name) AND run <= \(bind: run - 1000)").all()
            return (JobLease(job: name, run: run, holder: holder), now)
        }
    }

    public func renewJob(_ lease: JobLease, untilMicros: Int64) async throws -> Bool {
        try await writeTransaction { tx in
            try await tx.db.raw("""
                UPDATE job_leases SET lease_until = \(bind: untilMicros)
                WHERE job = \(bind: lease.job) AND holder = \(bind: lease.holder) AND runs = \(bind: lease.run) RETURNING job
                """).all().count == 1
        }
    }

    public func finishJob(_ lease: JobLease, nowMicros: Int64, nextRunAtMicros: Int64, items: Int, error: String?) async throws -> Bool {
        try await writeTransaction { tx in
            let db = tx.db
            _ = try await db.raw("""
                UPDATE job_runs SET finished_at = \(bind: nowMicros), items = \(bind: Int64(items)), error = \(bind: error)
                WHERE job = \(bind: lease.job) AND run = \(bind: lease.run) AND finished_at IS NULL
                """).all()
            return try await db.raw("""
                UPDATE job_leases SET holder = NULL, lease_until = 0, next_run_at = \(bind: nextRunAtMicros)
                WHERE job = \(bind: lease.job) AND holder = \(bind: lease.holder) AND runs = \(bind: lease.run) RETURNING job
                """).all().count == 1
        }
    }

    public func jobRuns(job: String?, limit: Int) async throws -> [JobRunRecord] {
        try await read { db in
            var sql: SQLQueryString = "SELECT * FROM job_runs"
            if let job { sql += " WHERE job = \(bind: job)" }
            sql += " ORDER BY started_at DESC, job, run DESC LIMIT \(bind: Int64(limit))"
            return try await db.raw(sql).all().map { row in
                let r = Rows.Reader(row: row)
                return JobRunRecord(job: try r.text("job"), run: try r.int("run"), holder: try r.text("holder"),
                                    startedAtMicros: try r.int("started_at"), finishedAtMicros: try r.optionalInt("finished_at"),
                                    items: try r.optionalInt("items").map { Int($0) }, error: try r.optionalText("error"))
            }
        }
    }
}
