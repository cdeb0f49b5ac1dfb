import PostgresNIO
import SQLiteNIO
import CofferServices
import SQLKit

/// Values unique across accounts, and ids that someone names without their account (a channel's notification, an
/// operator's queue, a sign-in): one row each in `lookups`, keyed by (kind, value) and pointing at the account and the
/// row. The owning rows are keyed by account first; the lookup is written in the same transaction as the row, so its
/// primary key is the database's guard of the value's uniqueness.
enum LookupKind: String {
    case email
    case recharge
    case remittance
    case channelRefund = "channel_refund"
    /// `channel:trade number`: a channel's payment credits one recharge.
    case channelTrade = "channel_trade"
    /// A bank serial number whose money was credited (an approved remittance or a credited statement line), once.
    case bankSerial = "bank_serial"
    case dedicatedIdentifier = "dedicated_identifier"
    case dedicatedNumber = "dedicated_number"
}

enum Lookups {
    static func insert(_ db: any SQLDatabase, _ kind: LookupKind, _ value: String, accountId: String, targetId: String) async throws {
        _ = try await db.raw("""
            INSERT INTO lookups (kind, value, account_id, target_id)
            VALUES (\(bind: kind.rawValue), \(bind: value), \(bind: accountId), \(bind: targetId))
            """).all()
    }

    static func channelTrade(_ channel: String, _ tradeNo: String) -> String { "\(channel):\(tradeNo)" }

    /// `SELECT t.* FROM lookups JOIN table` for one value: the row a global id or unique value names, found through its
    /// account. Table and join columns are constants of the caller.
    static func select(_ table: StaticString, _ kind: LookupKind, _ value: String, targetColumn: StaticString = "id") -> SQLQueryString {
        """
        SELECT t.* FROM lookups l JOIN \(unsafeRaw: "\(table)") t ON t.account_id = l.account_id AND t.\(unsafeRaw: "\(targetColumn)") = l.target_id
        WHERE l.kind = \(bind: kind.rawValue) AND l.value = \(bind: value)
        """
    }

    /// Of these values of a kind, those present.
    static func present(_ db: any SQLDatabase, _ kind: LookupKind, _ values: [String]) async throws -> Set<String> {
        var found: Set<String> = []
        for chunk in Array(Set(values)).sorted().chunked(500) {
            let rows = try await db.raw("""
                SELECT value FROM lookups WHERE kind = \(bind: kind.rawValue) AND value IN (\(binds: chunk.map { $0 as any Encodable & Sendable }))
                """).all()
            for row in rows { found.insert(try row.decode(column: "value", as: String.self)) }
        }
        return found
    }
}

extension Lookups {
    /// `coffer verify`: rows whose lookup is missing or points elsewhere (the global id or unique value would not find
    /// them, or would not guard them). Each as (kind, value expression, table, row filter).
    static let owned: [(LookupKind, String, String, String)] = [
        (.email, "t.email", "users", "1 = 1"),
        (.recharge, "t.id", "recharges", "1 = 1"),
        (.channelTrade, "t.channel || ':' || t.channel_trade_no", "recharges", "t.channel_trade_no IS NOT NULL"),
        (.remittance, "t.id", "remittances", "1 = 1"),
        (.bankSerial, "t.bank_serial", "remittances", "t.state = 'approved' AND t.bank_serial IS NOT NULL"),
        (.channelRefund, "t.id", "channel_refunds", "1 = 1"),
        (.dedicatedIdentifier, "t.identifier", "dedicated_accounts", "1 = 1"),
        (.dedicatedNumber, "t.number", "dedicated_accounts", "1 = 1"),
    ]

    static func problems(_ db: any SQLDatabase) async throws -> [VerifyProblem] {
        var problems: [VerifyProblem] = []
        for (kind, value, table, filter) in owned {
            let rows = try await db.raw("""
                SELECT t.account_id AS account_id, \(unsafeRaw: value) AS v FROM \(unsafeRaw: table) t
                WHERE \(unsafeRaw: filter) AND NOT EXISTS (SELECT 1 FROM lookups l
                  WHERE l.kind = \(bind: kind.rawValue) AND l.value = \(unsafeRaw: value) AND l.account_id = t.account_id)
                """).all()
            for row in rows {
                problems.append(VerifyProblem(accountId: try row.decode(column: "account_id", as: String.self),
                                              detail: "\(table) row \(try row.decode(column: "v", as: String.self)) has no \(kind.rawValue) lookup"))
            }
        }
        return problems
    }
}

extension SQLStore {
    /// Whether a write failed on a primary or unique key (a lookup's value taken, a row id reused), on either database.
    public static func isUniqueViolation(_ error: any Error) -> Bool {
        if let e = error as? PSQLError { return e.serverInfo?[.sqlState] == PostgresError.Code.uniqueViolation.raw }
        if let e = error as? SQLiteError {
            return [.constraint, .constraintUniqueFailed, .constraintPrimaryKeyFailed].contains(e.reason)
        }
        return false
    }
}
