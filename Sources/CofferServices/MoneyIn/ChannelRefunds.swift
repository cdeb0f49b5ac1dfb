import CofferCore
import Logging

public enum ChannelRefundState: String, Codable, Sendable, CaseIterable {
    /// Recorded, not yet accepted by the channel (or its answer was lost): asked again with the same refund number.
    case pending
    /// Accepted by the channel, not finished: queried until it is.
    case processing
    case succeeded
    /// The channel will not refund; an operator must return the money another way.
    case failed
}

/// Why money goes back through a channel. `payerLimit`: R7 refused a payment from one payer too many, so the payment is
/// returned whole (amount and fee). Withdrawals (X2, original route) will add their own purpose.
public enum ChannelRefundPurpose: String, Codable, Sendable { case payerLimit = "payer_limit" }

/// A refund through a payment channel, kept until the channel confirms it (an outbox: recorded in the same transaction as
/// the decision, sent afterwards, retried with the same number until the channel answers for good).
public struct ChannelRefundRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var rechargeId: String
    public var channel: String
    public var channelTradeNo: String
    public var purpose: ChannelRefundPurpose
    public var amountMinor: Int64
    public var orderTotalMinor: Int64
    public var state: ChannelRefundState
    public var channelRefundNo: String?
    /// The last thing that went wrong (kept while retrying; the reason when failed).
    public var lastError: String?
    public var attempts: Int
    public var nextAttemptAtMicros: Int64
    public var createdAtMicros: Int64
    public var resolvedAtMicros: Int64?

    public init(id: String, accountId: String, rechargeId: String, channel: String, channelTradeNo: String,
                purpose: ChannelRefundPurpose, amountMinor: Int64, orderTotalMinor: Int64, state: ChannelRefundState = .pending,
                channelRefundNo: String? = nil, lastError: String? = nil, attempts: Int = 0, nextAttemptAtMicros: Int64,
                createdAtMicros: Int64, resolvedAtMicros: Int64? = nil) {
        (self.id, self.accountId, self.rechargeId, self.channel, self.channelTradeNo) = (id, accountId, rechargeId, channel, channelTradeNo)
        (self.purpose, self.amountMinor, self.orderTotalMinor, self.state) = (purpose, amountMinor, orderTotalMinor, state)
        (self.channelRefundNo, self.lastError, self.attempts) = (channelRefundNo, lastError, attempts)
        (self.nextAttemptAtMicros, self.createdAtMicros, self.resolvedAtMicros) = (nextAttemptAtMicros, createdAtMicros, resolvedAtMicros)
    }

    var request: ChannelRefundRequest {
        let reason = switch purpose { case .payerLimit: "付款人超出账户限制，原路退回" }
        return ChannelRefundRequest(refundId: id, rechargeId: rechargeId, channelTradeNo: channelTradeNo, refundMinor: amountMinor,
                                    orderTotalMinor: orderTotalMinor, reason: reason)
    }
}

/// Sends recorded channel refunds and follows them to the end: pending ones are asked for (again, with the same number),
/// processing ones are queried; every attempt that fails backs off, up to `maxBackoffSeconds` between tries.
public struct ChannelRefundService: Sendable {
    public static let firstBackoffSeconds: Int64 = 60
    public static let maxBackoffSeconds: Int64 = 6 * 3600

    let store: any CofferStore
    let channels: [String: any PaymentChannel]
    let clock: any Clock
    let ids: IdGenerator
    let logger: Logger

    public init(store: any CofferStore, channels: [any PaymentChannel], clock: any Clock, ids: IdGenerator,
                logger: Logger = Logger(label: "coffer.refunds")) {
        self.store = store
        self.channels = Dictionary(uniqueKeysWithValues: channels.map { ($0.name, $0) })
        self.clock = clock
        self.ids = ids
        self.logger = logger
    }

    /// Every refund due now, oldest first; returns how many reached an end (succeeded or failed).
    public func processDue(limit: Int = 100) async throws -> Int {
        var finished = 0
        for refund in try await store.dueChannelRefunds(nowMicros: clock.nowMicros(), limit: limit) {
            let after = try await process(refund)
            if after.state == .succeeded || after.state == .failed { finished += 1 }
        }
        return finished
    }

    /// One step for one refund. Safe to run twice at once: both channels treat a repeated refund number as the same refund,
    /// and the row only moves from the state it was read in.
    @discardableResult
    public func process(_ refund: ChannelRefundRecord) async throws -> ChannelRefundRecord {
        guard refund.state == .pending || refund.state == .processing else { return refund }
        var next = refund
        next.attempts += 1
        let now = clock.nowMicros()
        do {
            guard let channel = channels[refund.channel] else {
                throw CofferError(.channelNotConfigured, "Channel \(refund.channel) is not enabled on this server.")
            }
            let status = refund.state == .pending ? try await channel.refund(refund.request)
                                                  : try await channel.queryRefund(refund.request)
            switch status {
            case .succeeded(let number):
                next.state = .succeeded
                next.channelRefundNo = number
                next.lastError = nil
                next.resolvedAtMicros = now
            case .processing(let number):
                next.state = .processing
                next.channelRefundNo = number ?? next.channelRefundNo
                next.nextAttemptAtMicros = now + backoffMicros(attempts: next.attempts)
            case .failed(let reason):
                next.state = .failed
                next.lastError = String(reason.prefix(500))
                next.resolvedAtMicros = now
            }
        } catch {
            let reason = (error as? CofferError)?.detail ?? "\(error)"
            next.lastError = String(reason.prefix(500))
            next.nextAttemptAtMicros = now + backoffMicros(attempts: next.attempts)
            logger.warning("channel refund \(refund.id) on \(refund.channel): attempt \(next.attempts) failed: \(reason)")
        }
        let updated = next
        let saved = try await store.transaction { tx in
            guard try await tx.updateChannelRefund(updated, from: refund.state) else { return false }
            if updated.state == .succeeded || updated.state == .failed {
                try await tx.insertMessages([message(updated, now)])
                try await tx.insertAudit(AuditRecord(
                    id: ids.make("aud"), accountId: updated.accountId, actor: "channel:\(updated.channel)",
                    action: "channel_refund.\(updated.state.rawValue)",
                    detail: "refund \(updated.id) of \(MoneyFormat.format(updated.amountMinor)) for recharge \(updated.rechargeId) (\(updated.purpose.rawValue))\(updated.lastError.map { "; \($0)" } ?? "")",
                    createdAtMicros: now))
            }
            return true
        }
        return saved ? updated : (try await store.channelRefund(id: refund.id) ?? refund)
    }

    func backoffMicros(attempts: Int) -> Int64 {
        let shift = Int64(Swift.min(Swift.max(attempts - 1, 0), 12))
        return Swift.min(Self.firstBackoffSeconds << shift, Self.maxBackoffSeconds) * 1_000_000
    }

    func message(_ r: ChannelRefundRecord, _ now: Int64) -> SiteMessageRecord {
        let amount = MoneyFormat.format(r.amountMinor)
        return r.state == .succeeded
            ? SiteMessageRecord(id: ids.make("msg"), accountId: r.accountId, kind: "channel_refund_succeeded",
                                title: "退款已原路退回 Payment returned",
                                body: "充值订单 \(r.rechargeId) 的 \(amount) 元已原路退回付款人（\(r.channel)，退款单 \(r.id)）。",
                                createdAtMicros: now,
                                parameters: ["recharge": r.rechargeId, "amount": amount, "channel": r.channel, "refund": r.id])
            : SiteMessageRecord(id: ids.make("msg"), accountId: r.accountId, kind: "channel_refund_failed",
                                title: "退款未成功 Return failed",
                                // The channel's reason stays with finance (desk, audit): it may speak of the platform's own accounts.
                                body: "充值订单 \(r.rechargeId) 的 \(amount) 元未能原路退回；平台财务会与您联系，以其他方式退还。",
                                createdAtMicros: now, parameters: ["recharge": r.rechargeId, "amount": amount])
    }
}
