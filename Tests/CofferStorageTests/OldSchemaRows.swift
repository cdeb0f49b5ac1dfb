import CofferCore
import CofferServices

/// Rows as a server of an earlier schema wrote them, for migration tests (the current writers also fill tables that
/// did not exist then).
enum OldSchemaRows {
    static func sql(_ v: String?) -> String { v.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" } ?? "NULL" }
    static func sql(_ v: Int64?) -> String { v.map(String.init) ?? "NULL" }

    /// An account and its wallet as schemas before 21 wrote them (no language).
    static func account(_ a: AccountRecord) -> [String] {
        ["""
        INSERT INTO accounts (id, type, entity_name, tax_id, contact_email, currency, time_zone, created_at)
        VALUES (\(sql(a.id)), \(sql(a.type.rawValue)), \(sql(a.entityName)), \(sql(a.taxId)), \(sql(a.contactEmail)), \(sql(a.currency)),
                \(sql(a.timeZone)), \(a.createdAtMicros))
        """, "INSERT INTO wallets (account_id, currency, updated_at) VALUES (\(sql(a.id)), \(sql(a.currency)), \(a.createdAtMicros))"]
    }

    /// A recharge row of schemas 5–8 (no payer).
    static func recharge(_ r: RechargeRecord) -> String {
        """
        INSERT INTO recharges (account_id, id, channel, amount_minor, state, channel_trade_no, expires_at, paid_at, created_at,
                               payment_kind, payment_url, fee_minor)
        VALUES (\(sql(r.accountId)), \(sql(r.id)), \(sql(r.channel)), \(r.amountMinor), \(sql(r.state.rawValue)), \(sql(r.channelTradeNo)),
                \(r.expiresAtMicros), \(sql(r.paidAtMicros)), \(r.createdAtMicros), \(sql(r.paymentKind)), \(sql(r.paymentURL)), \(r.feeMinor ?? 0))
        """
    }
}
