import CofferCore
import CofferServices
import Foundation
import Logging
import SQLKit

/// The CofferStore over SQLite or PostgreSQL.
public final class SQLStore: CofferStore {
    let connections: Connections
    public let backendName: String

    public static func open(_ location: DatabaseLocation, logger: Logger = Logger(label: "coffer.sql")) async throws -> SQLStore {
        let connections = try await Connections.open(location, logger: logger)
        let name: String = switch location {
        case .sqlite: "sqlite"
        case .postgres: "postgres"
        }
        return SQLStore(connections: connections, backendName: name)
    }

    init(connections: Connections, backendName: String) {
        self.connections = connections
        self.backendName = backendName
    }

    public func shutdown() async { await connections.shutdown() }

    public func migrate() async throws { try await migrate(upTo: Schema.migrations.count) }

    /// SHA-256 of each migration's text, in order: a test pins them, so an applied migration cannot change unseen.
    public static var migrationDigests: [String] { Schema.migrations.map { Secrets.sha256Hex($0.text) } }

    /// Applies the migrations up to a version (tests use it to prove a migration keeps the rows of the one before).
    public func migrate(upTo version: Int) async throws {
        try await connections.transaction { db, driver in
            _ = try await db.raw("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)").all()
            let done = try await db.raw("SELECT version FROM schema_migrations").all().map { try $0.decode(column: "version", as: Int.self) }
            for (index, migration) in Schema.migrations.prefix(version).enumerated() where !done.contains(index + 1) {
                switch migration {
                case .sql(let statements):
                    for sql in statements { _ = try await db.raw(SQLQueryString(sql)).all() }
                case let .steps(before, data, after, _):
                    for sql in before { _ = try await db.raw(SQLQueryString(sql)).all() }
                    try await data(db, driver)
                    for sql in after { _ = try await db.raw(SQLQueryString(sql)).all() }
                }
                _ = try await db.raw("INSERT INTO schema_migrations (version, applied_at) VALUES (\(bind: index + 1), \(bind: SystemClock().nowMicros()))").all()
            }
        }
    }

    public func transaction<R: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) async throws -> R) async throws -> R {
        try await writeTransaction(body)
    }

    /// The concrete transaction, for writes this module makes in one piece (a row and its audit record).
    func writeTransaction<R: Sendable>(_ body: @escaping @Sendable (SQLTransaction) async throws -> R) async throws -> R {
        let postgres = connections.isPostgres
        return try await connections.transaction { db, driver in
            let tx = SQLTransaction(db: db, driver: driver, postgres: postgres)
            let result = try await body(tx)
            try await AuditStorage.commit(tx.audits.take(), db, postgres: postgres)
            return result
        }
    }

    func read<R: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        try await connections.withConnection(body)
    }

    // MARK: reads

    public func account(id: String) async throws -> AccountRecord? {
        try await read { db in try await db.raw("SELECT * FROM accounts WHERE id = \(bind: id)").first().map(Rows.account) }
    }

    public func user(accountId: String, id: String) async throws -> UserRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM users WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(Rows.user)
        }
    }

    public func user(email: String) async throws -> UserRecord? {
        try await read { db in try await db.raw(Lookups.select("users", .email, email)).first().map(Rows.user) }
    }

    public func idempotency(scope: String, key: String) async throws -> StoredIdempotency? {
        try await read { db in try await SQLTransaction.idempotency(db, scope: scope, key: key) }
    }

    public func apiKey(digest: String) async throws -> ApiKeyRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM api_keys WHERE digest = \(bind: digest) AND revoked_at IS NULL").first().map(Rows.apiKey)
        }
    }

    public func wallet(accountId: String) async throws -> WalletBalances? {
        try await read { db in try await db.raw("SELECT * FROM wallets WHERE account_id = \(bind: accountId)").first().map(Rows.wallet) }
    }

    public func freeze(accountId: String, id: String) async throws -> FreezeRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM freezes WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(Rows.freeze)
        }
    }

    public func charge(accountId: String, id: String) async throws -> ChargeRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM charges WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(Rows.charge)
        }
    }

    public func recharge(id: String) async throws -> RechargeRecord? {
        try await read { db in try await db.raw(Lookups.select("recharges", .recharge, id)).first().map(Rows.recharge) }
    }

    public func recharge(accountId: String, id: String) async throws -> RechargeRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM recharges WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(Rows.recharge)
        }
    }

    public func dueRecharges(nowMicros: Int64, limit: Int) async throws -> [RechargeRecord] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM recharges WHERE state = 'pending' AND expires_at <= \(bind: nowMicros)
                ORDER BY expires_at LIMIT \(literal: limit)
                """).all().map(Rows.recharge)
        }
    }

    public func transactions(_ q: TransactionQuery) async throws -> [TransactionRecord] {
        precondition(q.limit >= 1 && q.limit <= 10_000)
        var sql: SQLQueryString = "SELECT * FROM ledger_entries WHERE account_id = \(bind: q.accountId)"
        if !q.types.isEmpty { sql += " AND type IN (\(binds: q.types.map(\.rawValue)))" }
        if let v = q.fromMicros { sql += " AND created_at >= \(bind: v)" }
        if let v = q.toMicros { sql += " AND created_at < \(bind: v)" }
        if let v = q.minAmountMinor { sql += " AND amount_minor >= \(bind: v)" }
        if let v = q.maxAmountMinor { sql += " AND amount_minor <= \(bind: v)" }
        if let v = q.beforeId { sql += " AND id < \(bind: v)" }
        sql += " ORDER BY id DESC LIMIT \(literal: q.limit)"
        let query = sql
        return try await read { db in try await db.raw(query).all().map { try LedgerRows.row($0).transaction } }
    }

    /// The journal entries of an account with their postings, rebuilt from the rows (one per movement).
    public func entries(accountId: String) async throws -> [JournalEntryRecord] {
        let rows = try await read { db in
            try await db.raw("SELECT * FROM ledger_entries WHERE account_id = \(bind: accountId) ORDER BY entry_id, seq").all().map(LedgerRows.row)
        }
        var entries: [JournalEntryRecord] = []
        for row in rows {
            if row.seq == 0 || entries.last?.id != row.entryId {
                entries.append(JournalEntryRecord(id: row.entryId, accountId: row.accountId, kind: row.kind,
                                                  idempotencyKey: row.head?.idempotencyKey ?? "", actor: row.actor,
                                                  memo: row.memo, createdAtMicros: row.createdAtMicros, postings: []))
            }
            entries[entries.count - 1].postings += row.movement.books.postings
        }
        return entries
    }

    public func idempotencyKeyUsed(scope: String, key: String) async throws -> Bool {
        try await read { db in
            if try await LedgerRows.keyUsed(db, scope: scope, key: key) { return true }
            return try await SQLTransaction.idempotency(db, scope: scope, key: key) != nil
        }
    }

    public func dueFreezes(nowMicros: Int64, limit: Int) async throws -> [FreezeRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM freezes WHERE state = 'active' AND expires_at <= \(bind: nowMicros) ORDER BY expires_at LIMIT \(literal: limit)")
                .all().map(Rows.freeze)
        }
    }

    public func accountIds(limit: Int) async throws -> [String] {
        try await read { db in
            try await db.raw("SELECT id FROM accounts ORDER BY id LIMIT \(literal: limit)").all().map { try $0.decode(column: "id", as: String.self) }
        }
    }

    public func auditLog(accountId: String, limit: Int) async throws -> [AuditRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM audit_log WHERE account_id = \(bind: accountId) ORDER BY seq DESC LIMIT \(literal: limit)")
                .all().map(AuditStorage.record)
        }
    }

    public func verify() async throws -> [VerifyProblem] {
        try await read { db in
            var problems: [VerifyProblem] = []
            // Each row balances by its CHECK; recomputed here all the same (a guard that was dropped must not go unseen).
            let unbalanced = try await db.raw("""
                SELECT account_id, id FROM ledger_entries
                WHERE cash_minor + gift_minor + share_minor + frozen_minor + advance_minor + channel_clearing_minor + revenue_minor
                      + gift_expense_minor + adjustment_minor + hold_control_minor <> 0
                """).all()
            for row in unbalanced {
                problems.append(VerifyProblem(accountId: try row.decode(column: "account_id", as: String.self),
                                              detail: "record \(try row.decode(column: "id", as: String.self)) does not balance"))
            }
            let sums = try await db.raw("""
                SELECT w.account_id AS account_id, w.cash_minor, w.gift_minor, w.share_minor, w.frozen_minor, w.advance_minor,
                  CAST(COALESCE(SUM(l.cash_minor), 0) AS BIGINT) AS p_cash,
                  CAST(COALESCE(SUM(l.gift_minor), 0) AS BIGINT) AS p_gift,
                  CAST(COALESCE(SUM(l.share_minor), 0) AS BIGINT) AS p_share,
                  CAST(COALESCE(SUM(l.frozen_minor), 0) AS BIGINT) AS p_frozen,
                  CAST(COALESCE(SUM(l.advance_minor), 0) AS BIGINT) AS p_advance
                FROM wallets w LEFT JOIN ledger_entries l ON l.account_id = w.account_id
                GROUP BY w.account_id, w.cash_minor, w.gift_minor, w.share_minor, w.frozen_minor, w.advance_minor
                """).all()
            for row in sums {
                let account = try row.decode(column: "account_id", as: String.self)
                let pairs: [(String, String, Int64)] = [("cash", "p_cash", 1), ("gift", "p_gift", 1), ("share", "p_share", 1),
                                                         ("frozen", "p_frozen", 1), ("advance", "p_advance", -1)]
                for (name, postingColumn, sign) in pairs {
                    let stored = try row.decode(column: "\(name)_minor", as: Int64.self)
                    let posted = try row.decode(column: postingColumn, as: Int64.self) * sign
                    if stored != posted {
                        problems.append(VerifyProblem(accountId: account,
                                                      detail: "\(name) is \(MoneyFormat.format(stored)) but its postings sum to \(MoneyFormat.format(posted))"))
                    }
                }
            }
            let holds = try await db.raw("""
                SELECT w.account_id AS account_id, w.frozen_minor AS frozen,
                  CAST(COALESCE((SELECT SUM(f.amount_minor) FROM freezes f WHERE f.account_id = w.account_id AND f.state = 'active'), 0) AS BIGINT) AS active
                FROM wallets w
                """).all()
            for row in holds {
                let frozen = try row.decode(column: "frozen", as: Int64.self)
                let active = try row.decode(column: "active", as: Int64.self)
                if frozen != active {
                    problems.append(VerifyProblem(accountId: try row.decode(column: "account_id", as: String.self),
                                                  detail: "frozen is \(MoneyFormat.format(frozen)) but active freezes hold \(MoneyFormat.format(active))"))
                }
            }
            problems += try await Lookups.problems(db)
            problems += try await AuditStorage.problems(db)
            return problems
        }
    }
}

extension SQLStore {
    /// Test support: drops the per-test PostgreSQL schema.
    public func dropSchemaForTests() async throws {
        try await read { db in
            let rows = try await db.raw("SELECT current_schema() AS s").all()
            guard let schema = try rows.first?.decode(column: "s", as: String.self), schema.hasPrefix("t_") else { return }
            _ = try await db.raw("DROP SCHEMA \(ident: schema) CASCADE").all()
        }
    }

    /// Test support: raw SQL, to prove that `verify` and the database guards catch what the code would never do.
    public func executeRawForTests(_ sql: String) async throws {
        try await read { db in _ = try await db.raw(SQLQueryString(sql)).all() }
    }
}

extension SQLStore {
    /// An online backup of an SQLite database: `VACUUM INTO` copies one consistent snapshot (a read transaction, so the
    /// server keeps writing in WAL mode meanwhile) into a new, compact file. PostgreSQL has its own tools (pg_dump, base
    /// backups with WAL archiving); the README gives the procedure.
    public func backup(to path: String) async throws {
        guard !connections.isPostgres else {
            throw StoreError("coffer backup copies SQLite databases; back PostgreSQL up with pg_dump or a base backup (README)")
        }
        guard !FileManager.default.fileExists(atPath: path) else { throw StoreError("\(path) exists; name a new file") }
        try await read { db in _ = try await db.raw("VACUUM INTO \(bind: path)").all() }
    }
}
