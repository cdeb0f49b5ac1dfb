import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Testing

/// ARCHITECTURE: every account-owned table (one with a NOT NULL `account_id`) has `account_id` first in its primary key
/// and in every unique key, so that the schema can be distributed by account (the rule Citus imposes). Values unique
/// across accounts live in `lookups`, keyed by the value and pointing at the account. Read from each database's own
/// catalog, not from Schema.swift.
@Suite("Schema: account-owned tables are keyed by account")
struct SchemaRuleTests {
    /// Tables keyed by a value that is unique across accounts, pointing at the account that owns it: distributed by
    /// their own key, never joined to an account's rows except through the account they name.
    static let lookupTables: Set<String> = ["lookups"]

    @Test("Every key of an account-owned table starts with account_id; lookup tables have their value as the only key",
          arguments: Backend.available)
    func accountFirst(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let tables = try await env.store.tableKeys()
            #expect(tables.contains { $0.table == "ledger_entries" }, "the catalog was read")
            var violations: [String] = []
            for t in tables where t.table != "accounts" && t.notNullColumns.contains("account_id") {
                if Self.lookupTables.contains(t.table) {
                    if t.uniqueKeys != [["kind", "value"]] { violations.append("\(t.table): keys \(t.uniqueKeys)") }
                    continue
                }
                if t.uniqueKeys.isEmpty { violations.append("\(t.table): no key") }
                for key in t.uniqueKeys where key.first != "account_id" {
                    violations.append("\(t.table)(\(key.joined(separator: ",")))")
                }
            }
            #expect(violations.sorted() == [])
        }
    }
}
