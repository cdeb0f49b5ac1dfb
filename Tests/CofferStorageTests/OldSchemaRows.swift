import CofferCore

/// Rows as a server of an earlier schema wrote them, for migration tests (the current writers also fill tables that
/// did not exist then).
enum OldSchemaRows {
    static func sql(_ v: String?) -> String { v.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" } ?? "NULL" }
    static func sql(_ v: Int64?) -> String { v.map(String.init) ?? "NULL" }

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
