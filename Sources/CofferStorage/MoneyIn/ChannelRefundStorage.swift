import CofferCore
import CofferServices
import SQLKit

/// R7 payers and the channel-refund outbox.
extension SQLTransaction {
    func recentPayers(accountId: String, sinceMicros: Int64) async throws -> Set<String> {
        let rows = try await db.raw("""
            SELECT DISTINCT channel, payer_id FROM recharges
            WHERE account_id = \(bind: accountId) AND state = 'paid' AND payer_id IS NOT NULL AND paid_at >= \(bind: sinceMicros)
            """).all()
        return Set(try rows.map {
            RechargeRecord.payerKey(channel: try $0.decode(column: "channel", as: String.self),
                                    payerId: try $0.decode(column: "payer_id", as: String.self))
        })
    }

    func refuseRecharge(_ r: RechargeRecord) async throws -> Bool {
        let refused = try await db.raw("""
            UPDATE recharges SET state = 'refused', channel_trade_no = \(bind: r.channelTradeNo), paid_at = \(bind: r.paidAtMicros),
                   payer_id = \(bind: r.payerId)
            WHERE account_id = \(bind: r.accountId) AND id = \(bind: r.id) AND state IN ('pending','expired') RETURNING id
            """).all().count == 1
        if refused, let tradeNo = r.channelTradeNo {
            try await Lookups.insert(db, .channelTrade, Lookups.channelTrade(r.channel, tradeNo), accountId: r.accountId, targetId: r.id)
        }
        return refused
    }

    func insertChannelRefund(_ f: ChannelRefundRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO channel_refunds (id, account_id, recharge_id, channel, channel_trade_no, purpose, amount_minor,
                                         order_total_minor, state, channel_refund_no, last_error, attempts, next_attempt_at,
                                         created_at, resolved_at)
            VALUES (\(bind: f.id), \(bind: f.accountId), \(bind: f.rechargeId), \(bind: f.channel), \(bind: f.channelTradeNo),
                    \(bind: f.purpose.rawValue), \(bind: f.amountMinor), \(bind: f.orderTotalMinor), \(bind: f.state.rawValue),
                    \(bind: f.channelRefundNo), \(bind: f.lastError), \(bind: f.attempts), \(bind: f.nextAttemptAtMicros),
                    \(bind: f.createdAtMicros), \(bind: f.resolvedAtMicros))
            """).all()
        // A channel's refund notification and the desk name a refund by its id alone.
        try await Lookups.insert(db, .channelRefund, f.id, accountId: f.accountId, targetId: f.id)
    }

    func updateChannelRefund(_ f: ChannelRefundRecord, from: ChannelRefundState) async throws -> Bool {
        try await db.raw("""
            UPDATE channel_refunds SET state = \(bind: f.state.rawValue), channel_refund_no = \(bind: f.channelRefundNo),
                   last_error = \(bind: f.lastError), attempts = \(bind: f.attempts), next_attempt_at = \(bind: f.nextAttemptAtMicros),
                   resolved_at = \(bind: f.resolvedAtMicros)
            WHERE account_id = \(bind: f.accountId) AND id = \(bind: f.id) AND state = \(bind: from.rawValue) RETURNING id
            """).all().count == 1
    }
}

extension SQLStore {
    public func channelRefund(id: String) async throws -> ChannelRefundRecord? {
        try await read { db in try await db.raw(Lookups.select("channel_refunds", .channelRefund, id)).first().map(Rows.channelRefund) }
    }

    public func dueChannelRefunds(nowMicros: Int64, limit: Int) async throws -> [ChannelRefundRecord] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM channel_refunds WHERE state IN ('pending','processing') AND next_attempt_at <= \(bind: nowMicros)
                ORDER BY next_attempt_at, id LIMIT \(literal: limit)
                """).all().map(Rows.channelRefund)
        }
    }

    public func channelRefunds(accountId: String?, states: [ChannelRefundState], limit: Int) async throws -> [ChannelRefundRecord] {
        let query = Self.select("channel_refunds", accountId: accountId, states: states.map(\.rawValue),
                                orderBy: "created_at DESC, id DESC", limit: limit)
        return try await read { db in try await db.raw(query).all().map(Rows.channelRefund) }
    }
}
