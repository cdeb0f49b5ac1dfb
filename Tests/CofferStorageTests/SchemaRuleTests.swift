import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Testing

/// ARCHITECTURE: every account-owned table (one with a NOT NULL `account_id`) has `account_id` first in its primary key
/// and in every unique key, so that the schema can be distributed by account (the rule Citus imposes). Read from each
/// database's own catalog.
@Suite("Schema: account-owned tables are keyed by account")
struct SchemaRuleTests {
    /// Keys that break the rule today, as `table(columns)`: the debt the ledger-v2 issue's item 4 pays off (rebuild the
    /// table keyed by account; move values unique across accounts to lookup tables). The list may only shrink: a new
    /// table or key that breaks the rule fails the test, and so does a fixed one still listed.
    static let knownViolations: Set<String> = [
        "channel_refunds(id)", "channel_refunds(recharge_id)",
        "code_attempts(id)",
        "dedicated_accounts(identifier)", "dedicated_accounts(number)",
        "recharges(id)", "recharges(channel,channel_trade_no)",
        "remittances(id)", "remittances(bank_serial)",
        "site_messages(id)",
        "users(id)", "users(email)",
    ]

    @Test("Every key of an account-owned table starts with account_id (known debt pinned)", arguments: Backend.available)
    func accountFirst(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let tables = try await env.store.tableKeys()
            #expect(tables.contains { $0.table == "ledger_entries" }, "the catalog was read")
            var violations: Set<String> = []
            for t in tables where t.table != "accounts" && t.notNullColumns.contains("account_id") {
                for key in t.uniqueKeys where key.first != "account_id" {
                    violations.insert("\(t.table)(\(key.joined(separator: ",")))")
                }
            }
            #expect(violations.subtracting(Self.knownViolations).sorted() == [], "new keys that break the rule")
            #expect(Self.knownViolations.subtracting(violations).sorted() == [], "fixed: remove them from knownViolations")
        }
    }
}
