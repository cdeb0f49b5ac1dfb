import Logging
import PostgresNIO
import SQLiteNIO

/// One column of a multi-row insert, as a typed array. The ledger's hot path writes hundreds of rows per batch; going
/// through SQLKit's `any Encodable` binds cost a fifth of the writer's CPU (see docs/PERFORMANCE.md), so the batch
/// write talks to the drivers with typed values.
enum ColumnValues {
    case text([String])
    case optionalText([String?])
    case bigint([Int64])
    case optionalBigint([Int64?])
    case bool([Bool])

    var count: Int {
        switch self {
        case .bool(let v): v.count
        case .text(let v): v.count
        case .optionalText(let v): v.count
        case .bigint(let v): v.count
        case .optionalBigint(let v): v.count
        }
    }
}

/// Rows for one table, column by column.
struct BatchInsert {
    let table: String
    let columns: [(name: String, values: ColumnValues)]

    init(_ table: String, _ columns: [(String, ColumnValues)]) {
        self.table = table
        self.columns = columns.map { (name: $0.0, values: $0.1) }
        precondition(Set(self.columns.map { $0.values.count }).count <= 1, "ragged columns for \(table)")
    }

    var rowCount: Int { columns.first?.values.count ?? 0 }

    /// PostgreSQL: one statement whose text does not depend on the row count — one array parameter per column, expanded
    /// by `unnest` — so that the server parses a short statement and the client encodes arrays in tight loops. A nullable
    /// column travels as its values plus a boolean array of NULL flags (PostgresNIO does not encode arrays with NULLs).
    func postgresQuery() -> PostgresQuery {
        var binds = PostgresBindings(capacity: columns.count * 2)
        var arrays: [String] = []
        var aliases: [String] = []
        var selects: [String] = []
        for (name, values) in columns {
            switch values {
            case .text(let v):
                binds.append(v)
                arrays.append("$\(binds.count)::text[]")
                aliases.append(name)
                selects.append(name)
            case .bigint(let v):
                binds.append(v)
                arrays.append("$\(binds.count)::int8[]")
                aliases.append(name)
                selects.append(name)
            case .bool(let v):
                binds.append(v)
                arrays.append("$\(binds.count)::bool[]")
                aliases.append(name)
                selects.append(name)
            case .optionalText(let v):
                binds.append(v.map { $0 ?? "" })
                arrays.append("$\(binds.count)::text[]")
                binds.append(v.map { $0 == nil })
                arrays.append("$\(binds.count)::bool[]")
                aliases += [name, name + "_isnull"]
                selects.append("CASE WHEN \(name)_isnull THEN NULL ELSE \(name) END")
            case .optionalBigint(let v):
                binds.append(v.map { $0 ?? 0 })
                arrays.append("$\(binds.count)::int8[]")
                binds.append(v.map { $0 == nil })
                arrays.append("$\(binds.count)::bool[]")
                aliases += [name, name + "_isnull"]
                selects.append("CASE WHEN \(name)_isnull THEN NULL ELSE \(name) END")
            }
        }
        let sql = "INSERT INTO \(table) (\(columns.map(\.name).joined(separator: ", "))) SELECT \(selects.joined(separator: ", ")) "
            + "FROM unnest(\(arrays.joined(separator: ", "))) AS u(\(aliases.joined(separator: ", ")))"
        return PostgresQuery(unsafeSQL: sql, binds: binds)
    }

    /// SQLite: multi-row VALUES statements with native binds, chunked under SQLite's limit of 32,766 variables.
    func sqliteStatements() -> [(sql: String, binds: [SQLiteData])] {
        let perRow = columns.count
        let rowsPerStatement = max(1, 30_000 / perRow)
        let placeholders = "(" + Array(repeating: "?", count: perRow).joined(separator: ", ") + ")"
        var out: [(String, [SQLiteData])] = []
        var start = 0
        while start < rowCount {
            let end = min(start + rowsPerStatement, rowCount)
            var binds: [SQLiteData] = []
            binds.reserveCapacity((end - start) * perRow)
            for row in start..<end {
                for (_, values) in columns {
                    switch values {
                    case .text(let v): binds.append(.text(v[row]))
                    case .optionalText(let v): binds.append(v[row].map { .text($0) } ?? .null)
                    case .bigint(let v): binds.append(.integer(Int(v[row])))
                    case .optionalBigint(let v): binds.append(v[row].map { .integer(Int($0)) } ?? .null)
                    case .bool(let v): binds.append(.integer(v[row] ? 1 : 0))
                    }
                }
            }
            let sql = "INSERT INTO \(table) (\(columns.map(\.name).joined(separator: ", "))) VALUES "
                + Array(repeating: placeholders, count: end - start).joined(separator: ", ")
            out.append((sql, binds))
            start = end
        }
        return out
    }
}

/// The driver connection under a transaction, for the statements that bypass SQLKit.
enum DriverConnection: @unchecked Sendable {
    case postgres(PostgresConnection, Logger)
    case sqlite(SQLiteConnection)

    func run(_ insert: BatchInsert) async throws {
        guard insert.rowCount > 0 else { return }
        switch self {
        case .postgres(let conn, let logger):
            // Consumed, not discarded: an error (a violated constraint) must reach us, or COMMIT would quietly roll back.
            _ = try await conn.query(insert.postgresQuery(), logger: logger).collect()
        case .sqlite(let conn):
            for (sql, binds) in insert.sqliteStatements() { _ = try await conn.query(sql, binds) }
        }
    }
}
