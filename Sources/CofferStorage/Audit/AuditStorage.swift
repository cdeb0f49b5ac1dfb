import CofferCore
import CofferServices
import Foundation
import SQLKit
import Synchronization

/// The audit records a transaction wrote, chained and inserted just before it commits: the chain's head row is then the
/// last lock the transaction takes, held only until the commit, so no transaction waits for it while holding it.
final class AuditBuffer: Sendable {
    private let records = Mutex<[AuditRecord]>([])
    func append(_ r: AuditRecord) { records.withLock { $0.append(r) } }
    func take() -> [AuditRecord] { records.withLock { r in defer { r = [] }; return r } }
}

/// Z3, Z4: the audit log — a hash chain committed under the head row of `audit_chain` (migration 18).
enum AuditStorage {
    static func record(_ row: any SQLRow) throws -> AuditRecord {
        let r = Rows.Reader(row: row)
        var a = AuditRecord(id: try r.text("id"), accountId: try r.optionalText("account_id"), actor: try r.text("actor"),
                            action: try r.text("action"), detail: try r.text("detail"), createdAtMicros: try r.int("created_at"),
                            origin: nil)
        (a.ip, a.userAgent, a.requestId) = (try r.optionalText("ip"), try r.optionalText("user_agent"), try r.optionalText("request_id"))
        (a.seq, a.hash) = (try r.optionalInt("seq"), try r.optionalText("hash"))
        // Rows read by migration 18's data step predate the columns of migration 22.
        if row.allColumns.contains("before_state") {
            (a.before, a.after) = (AuditChain.state(try r.optionalText("before_state")), AuditChain.state(try r.optionalText("after_state")))
        }
        return a
    }

    /// Chains and inserts the records after the head, and moves the head; inside the writing transaction.
    static func commit(_ records: [AuditRecord], _ db: any SQLDatabase, postgres: Bool) async throws {
        guard !records.isEmpty else { return }
        let head = try await db.raw(SQLQueryString("SELECT seq, hash FROM audit_chain WHERE id = 1" + (postgres ? " FOR UPDATE" : ""))).first()
        guard let head else { throw CofferError(.internalError, "the audit chain has no head row (migration 18)") }
        var seq = try head.decode(column: "seq", as: Int64.self)
        var hash = try head.decode(column: "hash", as: String.self)
        for r in records {
            seq += 1
            hash = AuditChain.hash(previous: hash, seq: seq, r)
            _ = try await db.raw("""
                INSERT INTO audit_log (id, account_id, actor, action, detail, created_at, ip, user_agent, request_id, seq, hash,
                                       before_state, after_state)
                VALUES (\(bind: r.id), \(bind: r.accountId), \(bind: r.actor), \(bind: r.action), \(bind: r.detail), \(bind: r.createdAtMicros),
                        \(bind: r.ip), \(bind: r.userAgent), \(bind: r.requestId), \(bind: seq), \(bind: hash),
                        \(bind: AuditChain.stateText(r.before)), \(bind: AuditChain.stateText(r.after)))
                """).all()
        }
        _ = try await db.raw("UPDATE audit_chain SET seq = \(bind: seq), hash = \(bind: hash) WHERE id = 1").all()
    }

    /// Migration 18's data step: the records written before the chain, chained in their time order.
    @Sendable static func chainExisting(_ db: any SQLDatabase, _ driver: DriverConnection) async throws {
        var seq: Int64 = 0
        var hash = AuditChain.genesis
        for row in try await db.raw("SELECT * FROM audit_log ORDER BY created_at, id").all() {
            let r = try record(row)
            seq += 1
            hash = AuditChain.hash(previous: hash, seq: seq, r)
            _ = try await db.raw("UPDATE audit_log SET seq = \(bind: seq), hash = \(bind: hash) WHERE id = \(bind: r.id)").all()
        }
        _ = try await db.raw("INSERT INTO audit_chain (id, seq, hash) VALUES (1, \(bind: seq), \(bind: hash))").all()
    }

    /// Z4 for `coffer verify`: every record chained, seq 1…n without a gap, each hash recomputed, the head matching.
    static func problems(_ db: any SQLDatabase) async throws -> [VerifyProblem] {
        func problem(_ detail: String) -> VerifyProblem { VerifyProblem(accountId: "audit", detail: detail) }
        var problems: [VerifyProblem] = []
        let unchained = try await db.raw("SELECT COUNT(*) AS n FROM audit_log WHERE seq IS NULL OR hash IS NULL").first()!.decode(column: "n", as: Int64.self)
        if unchained > 0 { problems.append(problem("\(unchained) audit records are outside the hash chain")) }
        var expected: Int64 = 0
        var hash = AuditChain.genesis
        pages: while true {
            let page = try await db.raw("SELECT * FROM audit_log WHERE seq > \(bind: expected) ORDER BY seq LIMIT 1000").all().map(record)
            for r in page {
                expected += 1
                guard r.seq == expected else {
                    problems.append(problem("audit record \(expected) is missing (the next is \(r.seq ?? 0))"))
                    break pages
                }
                hash = AuditChain.hash(previous: hash, seq: expected, r)
                guard r.hash == hash else {
                    problems.append(problem("audit record \(expected) (\(r.id)) does not match its hash: it or one before it was changed"))
                    break pages
                }
            }
            if page.count < 1000 { break }
        }
        guard problems.isEmpty else { return problems }
        if let head = try await db.raw("SELECT seq, hash FROM audit_chain WHERE id = 1").first() {
            let headSeq = try head.decode(column: "seq", as: Int64.self), headHash = try head.decode(column: "hash", as: String.self)
            if headSeq != expected || headHash != hash {
                problems.append(problem("the audit chain ends at record \(expected) but its head says \(headSeq): records were removed from the end"))
            }
        } else {
            problems.append(problem("the audit chain has no head row"))
        }
        return problems
    }
}

extension SQLStore {
    /// Z4: the chain's head — its length and last hash — for an operator to note down outside Coffer.
    public func auditChainHead() async throws -> (seq: Int64, hash: String) {
        try await read { db in
            guard let row = try await db.raw("SELECT seq, hash FROM audit_chain WHERE id = 1").first() else { return (0, AuditChain.genesis) }
            return (try row.decode(column: "seq", as: Int64.self), try row.decode(column: "hash", as: String.self))
        }
    }

    public func auditEvents(_ q: AuditQuery) async throws -> [AuditRecord] {
        try await read { db in
            var sql: SQLQueryString = "SELECT * FROM audit_log WHERE seq IS NOT NULL"
            if let a = q.accountId { sql += " AND account_id = \(bind: a)" }
            if let a = q.actor { sql += " AND actor = \(bind: a)" }
            if let a = q.actionPrefix { sql += " AND action LIKE \(bind: Self.likeEscaped(a) + "%") ESCAPE '\\'" }
            if let f = q.fromMicros { sql += " AND created_at >= \(bind: f)" }
            if let t = q.toMicros { sql += " AND created_at < \(bind: t)" }
            if let b = q.beforeSeq { sql += " AND seq < \(bind: b)" }
            sql += " ORDER BY seq DESC LIMIT \(literal: q.limit)"
            return try await db.raw(sql).all().map(AuditStorage.record)
        }
    }

    /// Text for LIKE with its wildcards escaped (`ESCAPE '\'`): "50%" finds "50%", not everything.
    static func likeEscaped(_ s: String) -> String {
        s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_")
    }
}
