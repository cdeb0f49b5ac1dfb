import SQLKit

/// What the schema says about keys, read back from the database itself (not from Schema.swift), so that a test can hold
/// every table to the distribution rule on both databases.
public struct TableKeys: Sendable, Equatable {
    public var table: String
    /// Columns of the table that are NOT NULL.
    public var notNullColumns: Set<String>
    /// The primary key and every unique constraint or unique index (partial ones included), each as its columns in order.
    public var uniqueKeys: [[String]]
}

extension SQLStore {
    public func tableKeys() async throws -> [TableKeys] {
        let postgres = connections.isPostgres
        return try await read { db in
            postgres ? try await Self.postgresKeys(db) : try await Self.sqliteKeys(db)
        }
    }

    private static func sqliteKeys(_ db: any SQLDatabase) async throws -> [TableKeys] {
        let tables = try await db.raw("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
            .all().map { try $0.decode(column: "name", as: String.self) }
        var result: [TableKeys] = []
        for table in tables {
            var notNull: Set<String> = [], primary: [(Int, String)] = []
            for c in try await db.raw("SELECT name, \"notnull\" AS nn, pk FROM pragma_table_info(\(bind: table))").all() {
                let name = try c.decode(column: "name", as: String.self)
                let pk = try c.decode(column: "pk", as: Int.self)
                // A PRIMARY KEY column is NOT NULL in intent even where SQLite's legacy rule does not enforce it.
                if try c.decode(column: "nn", as: Int.self) == 1 || pk > 0 { notNull.insert(name) }
                if pk > 0 { primary.append((pk, name)) }
            }
            var keys: [[String]] = primary.isEmpty ? [] : [primary.sorted { $0.0 < $1.0 }.map(\.1)]
            for index in try await db.raw("SELECT name, \"unique\" AS u, origin FROM pragma_index_list(\(bind: table))").all()
                where try index.decode(column: "u", as: Int.self) == 1 && index.decode(column: "origin", as: String.self) != "pk" {
                let name = try index.decode(column: "name", as: String.self)
                keys.append(try await db.raw("SELECT name FROM pragma_index_info(\(bind: name)) ORDER BY seqno").all()
                    .map { try $0.decode(column: "name", as: String.self) })
            }
            result.append(TableKeys(table: table, notNullColumns: notNull, uniqueKeys: keys))
        }
        return result
    }

    private static func postgresKeys(_ db: any SQLDatabase) async throws -> [TableKeys] {
        let columns = try await db.raw("""
            SELECT table_name, column_name FROM information_schema.columns
            WHERE table_schema = current_schema() AND is_nullable = 'NO'
            """).all()
        var notNull: [String: Set<String>] = [:]
        for c in columns {
            notNull[try c.decode(column: "table_name", as: String.self), default: []].insert(try c.decode(column: "column_name", as: String.self))
        }
        let indexes = try await db.raw("""
            SELECT t.relname AS table_name, i.indexrelid::text AS index_id, a.attname AS column_name, k.ord AS ord
            FROM pg_index i
            JOIN pg_class t ON t.oid = i.indrelid
            JOIN pg_namespace n ON n.oid = t.relnamespace AND n.nspname = current_schema()
            CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord)
            JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum
            WHERE i.indisunique
            ORDER BY t.relname, i.indexrelid, k.ord
            """).all()
        var keys: [String: [String: [String]]] = [:]
        for row in indexes {
            let table = try row.decode(column: "table_name", as: String.self)
            keys[table, default: [:]][try row.decode(column: "index_id", as: String.self), default: []]
                .append(try row.decode(column: "column_name", as: String.self))
        }
        let tables = try await db.raw("SELECT tablename FROM pg_tables WHERE schemaname = current_schema() ORDER BY tablename").all()
            .map { try $0.decode(column: "tablename", as: String.self) }
        return tables.map { TableKeys(table: $0, notNullColumns: notNull[$0] ?? [], uniqueKeys: Array((keys[$0] ?? [:]).values)) }
    }
}
