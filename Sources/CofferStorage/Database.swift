import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresKit
import SQLiteKit

/// The two backends. All dialect differences live in this file: how a connection is opened, how a write transaction
/// starts, and whether row locks are needed.
public enum DatabaseLocation: Sendable, Equatable {
    case sqlite(path: String)
    case postgres(url: String, schema: String?)

    /// `postgres://…` or `postgresql://…` selects PostgreSQL; `sqlite:PATH` or a plain path selects SQLite.
    public static func parse(_ text: String) -> DatabaseLocation {
        if text.hasPrefix("postgres://") || text.hasPrefix("postgresql://") { return .postgres(url: text, schema: nil) }
        if text.hasPrefix("sqlite:") { return .sqlite(path: String(text.dropFirst("sqlite:".count))) }
        return .sqlite(path: text)
    }
}

/// Opens SQLite connections with the settings the ledger needs: WAL with synchronous=FULL (durable commits), a busy
/// timeout, and foreign keys on.
struct SQLiteSource: ConnectionPoolSource {
    let path: String

    func makeConnection(logger: Logger, on eventLoop: any EventLoop) -> EventLoopFuture<SQLiteConnection> {
        SQLiteConnection.open(storage: .file(path: path), threadPool: .singleton, logger: logger, on: eventLoop)
            .flatMap { conn in
                let pragmas = ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA busy_timeout=10000",
                               "PRAGMA foreign_keys=ON"]
                return pragmas.reduce(eventLoop.makeSucceededVoidFuture()) { f, p in
                    f.flatMap { conn.query(p).map { _ in } }
                }.map { conn }
            }
    }
}

/// A FIFO lock for async code: SQLite allows one writer at a time, so write transactions queue here instead of spinning
/// on SQLITE_BUSY.
actor AsyncLock {
    private var locked = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func lock() async {
        if !locked {
            locked = true
            return
        }
        await withCheckedContinuation { waiters.append($0) }
    }

    func unlock() {
        if waiters.isEmpty { locked = false } else { waiters.removeFirst().resume() }
    }
}

/// The pools lock internally; AsyncKit predates Sendable annotations.
enum Connections: @unchecked Sendable {
    case sqlite(EventLoopGroupConnectionPool<SQLiteSource>, writeLock: AsyncLock)
    case postgres(EventLoopGroupConnectionPool<PostgresConnectionSource>)

    static func open(_ location: DatabaseLocation, logger: Logger) async throws -> Connections {
        switch location {
        case .sqlite(let path):
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
            return .sqlite(EventLoopGroupConnectionPool(source: SQLiteSource(path: path), maxConnectionsPerEventLoop: 2,
                                                        logger: logger, on: MultiThreadedEventLoopGroup.singleton),
                           writeLock: AsyncLock())
        case .postgres(let url, let schema):
            var config = try SQLPostgresConfiguration(url: url)
            if let schema {
                try await createSchema(config, schema, logger: logger)
                config.searchPath = [schema]
            }
            return .postgres(EventLoopGroupConnectionPool(source: PostgresConnectionSource(sqlConfiguration: config),
                                                          maxConnectionsPerEventLoop: 8, logger: logger,
                                                          on: MultiThreadedEventLoopGroup.singleton))
        }
    }

    private static func createSchema(_ config: SQLPostgresConfiguration, _ schema: String, logger: Logger) async throws {
        guard schema.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { throw StoreError("bad schema name") }
        let conn = try await PostgresConnection.connect(on: MultiThreadedEventLoopGroup.singleton.any(),
                                                        configuration: config.coreConfiguration, id: 1, logger: logger)
        defer { Task { try? await conn.close() } }
        _ = try await conn.sql().raw("CREATE SCHEMA IF NOT EXISTS \(unsafeRaw: schema)").all()
    }

    var isPostgres: Bool { if case .postgres = self { true } else { false } }

    func withConnection<R: Sendable>(_ body: @Sendable (any SQLDatabase) async throws -> R) async throws -> R {
        switch self {
        case .sqlite(let pool, _):
            let conn = try await pool.requestConnection().get()
            defer { pool.releaseConnection(conn) }
            return try await body(conn.sql())
        case .postgres(let pool):
            let conn = try await pool.requestConnection().get()
            defer { pool.releaseConnection(conn) }
            return try await body(conn.sql())
        }
    }

    /// A pooled connection as SQLKit sees it and as its driver does (for the typed batch inserts).
    func withDriverConnection<R: Sendable>(_ body: @Sendable (any SQLDatabase, DriverConnection) async throws -> R) async throws -> R {
        switch self {
        case .sqlite(let pool, _):
            let conn = try await pool.requestConnection().get()
            defer { pool.releaseConnection(conn) }
            return try await body(conn.sql(), .sqlite(conn))
        case .postgres(let pool):
            let conn = try await pool.requestConnection().get()
            defer { pool.releaseConnection(conn) }
            return try await body(conn.sql(), .postgres(conn, conn.logger))
        }
    }

    /// One write transaction. SQLite: BEGIN IMMEDIATE under the process-wide write lock. PostgreSQL: READ COMMITTED with
    /// explicit row locks taken by the store (`FOR UPDATE`), commit with synchronous_commit on (the server default).
    func transaction<R: Sendable>(_ body: @escaping @Sendable (any SQLDatabase, DriverConnection) async throws -> R) async throws -> R {
        let postgres = isPostgres
        let run = { @Sendable in
            try await withDriverConnection { db, driver in
                _ = try await db.raw(postgres ? "BEGIN" : "BEGIN IMMEDIATE").all()
                do {
                    let result = try await body(db, driver)
                    _ = try await db.raw("COMMIT").all()
                    return result
                } catch {
                    _ = try? await db.raw("ROLLBACK").all()
                    throw error
                }
            }
        }
        guard case .sqlite(_, let lock) = self else { return try await run() }
        await lock.lock()
        do {
            let result = try await run()
            await lock.unlock()
            return result
        } catch {
            await lock.unlock()
            throw error
        }
    }

    func shutdown() async {
        switch self {
        case .sqlite(let pool, _): try? await pool.shutdownAsync()
        case .postgres(let pool): try? await pool.shutdownAsync()
        }
    }
}

struct StoreError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
