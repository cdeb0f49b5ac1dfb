import CofferCore
import Foundation
import Logging
import Synchronization

public struct RechargeSettings: Sendable {
    /// R1 (*default* 0.01–9,999,999.00).
    public var minMinor: Int64 = 1
    public var maxMinor: Int64 = 999_999_999
    /// R5: pending orders expire (*default* 2 h).
    public var pendingTTLSeconds: Int64 = 7_200
    /// R7: orders per account in the window (*default* 10 per 10 minutes).
    public var maxOrdersPerWindow: Int = 10
    public var orderWindowSeconds: Int64 = 600
    /// R7: distinct payers per account in the window (*default* 5 per 24 h). A payment from one more is returned to its payer.
    public var maxPayersPerWindow: Int = 5
    public var payerWindowSeconds: Int64 = 86_400
    /// R3: per-channel limits, counted on paid and pending orders of the account, days and months in its time zone.
    public var channelLimits: [String: ChannelLimits] = ["wechatpay": ChannelLimits(perPaymentMinor: 5_000_000, perDayMinor: 5_000_000)]
    /// R4: no fee by *default*; a channel may carry a rule.
    public var feeRules: [String: FeeRule] = [:]
    public init() {}
}

/// R4: a channel's fee, paid by the customer on top of the amount and never credited. Example (the seeds' WeChat rule):
/// above 200.00, 0.6 % — `FeeRule(aboveMinor: 20_000, rateBasisPoints: 60)`.
public struct FeeRule: Sendable, Equatable, Codable {
    /// The fee applies to amounts strictly above this (0: to every amount).
    public var aboveMinor: Int64
    /// Parts per ten thousand of the amount (60 = 0.6 %), rounded half up to the cent.
    public var rateBasisPoints: Int64
    public var fixedMinor: Int64
    public var minMinor: Int64
    public var maxMinor: Int64?

    public init(aboveMinor: Int64 = 0, rateBasisPoints: Int64 = 0, fixedMinor: Int64 = 0, minMinor: Int64 = 0, maxMinor: Int64? = nil) {
        (self.aboveMinor, self.rateBasisPoints, self.fixedMinor, self.minMinor, self.maxMinor) =
            (aboveMinor, rateBasisPoints, fixedMinor, minMinor, maxMinor)
    }

    /// A rule a platform may configure: rates up to 100 %, amounts within the money range, min ≤ max.
    public func validated(channel: String) throws(CofferError) -> FeeRule {
        guard (0...10_000).contains(rateBasisPoints), aboveMinor >= 0, fixedMinor >= 0, minMinor >= 0,
              [aboveMinor, fixedMinor, minMinor, maxMinor ?? 0].allSatisfy({ $0 <= MoneyFormat.maxAbsMinor }),
              maxMinor.map({ $0 >= minMinor }) ?? true else {
            throw CofferError(.feeRuleInvalid, "The fee rule of \(channel) must have a rate of 0–10000 basis points, amounts ≥ 0 and min ≤ max.")
        }
        return self
    }

    /// The fee for an amount (0 at or below the threshold). Exact integer arithmetic: amounts are at most 9,999,999.00, so
    /// amount × 10,000 stays far inside Int64.
    public func fee(forMinor amountMinor: Int64) throws(CofferError) -> Int64 {
        guard amountMinor > aboveMinor else { return 0 }
        let (product, overflow) = amountMinor.multipliedReportingOverflow(by: rateBasisPoints)
        let (rounded, overflow2) = product.addingReportingOverflow(5_000)
        guard !overflow, !overflow2 else { throw .arithmeticOverflow }
        var fee = try Checked.add(rounded / 10_000, fixedMinor)
        fee = Swift.max(fee, minMinor)
        if let maxMinor { fee = Swift.min(fee, maxMinor) }
        return fee
    }
}

/// R3: a channel's limits; nil means the platform sets none (the payer's bank still may).
public struct ChannelLimits: Sendable, Equatable {
    public var perPaymentMinor: Int64?
    public var perDayMinor: Int64?
    public var perMonthMinor: Int64?
    public init(perPaymentMinor: Int64? = nil, perDayMinor: Int64? = nil, perMonthMinor: Int64? = nil) {
        (self.perPaymentMinor, self.perDayMinor, self.perMonthMinor) = (perPaymentMinor, perDayMinor, perMonthMinor)
    }
}

public struct RechargeView: Codable, Sendable, Equatable {
    public var recharge: RechargeRecord
    public var payment: PaymentInstruction?
    public var testChannel: Bool
}

public enum NotificationResult: Sendable, Equatable {
    case credited(LedgerReceipt)
    case alreadyCredited(RechargeRecord)
    /// R7 refused the payment: nothing credited, the refund to the payer is recorded (the jobs loop sends it).
    case refused(RechargeRecord, ChannelRefundRecord?)
}

/// R1, R5, R7, R9: recharge orders, the notification handler every channel shares, and expiry.
public struct RechargeService: Sendable {
    let store: any CofferStore
    let writer: LedgerWriter
    let clock: any Clock
    let ids: IdGenerator
    let channels: [String: any PaymentChannel]
    let settings: RechargeSettings
    let logger: Logger
    public let refunds: ChannelRefundService
    /// Channel keys that rotate (WeChat Pay's platform certificates) are fetched at most this often; after a failure, again
    /// after `credentialRetrySeconds` (the keys already held keep working meanwhile).
    public static let credentialRefreshSeconds: Int64 = 12 * 3600
    public static let credentialRetrySeconds: Int64 = 15 * 60
    private let lastCredentialRefresh = LastRun()

    public init(store: any CofferStore, writer: LedgerWriter, clock: any Clock, ids: IdGenerator,
                channels: [any PaymentChannel], settings: RechargeSettings = .init(),
                logger: Logger = Logger(label: "coffer.recharge")) {
        refunds = ChannelRefundService(store: store, channels: channels, clock: clock, ids: ids, logger: logger)
        self.store = store
        self.writer = writer
        self.clock = clock
        self.ids = ids
        self.channels = Dictionary(uniqueKeysWithValues: channels.map { ($0.name, $0) })
        self.settings = settings
        self.logger = logger
    }

    public var channelNames: [String] { channels.keys.sorted() }
    /// R1 range and R3 limits, for showing before the customer pays.
    public var limits: RechargeSettings { settings }
    public var catalog: [ChannelCatalog.Entry] { ChannelCatalog.entries(enabled: Array(channels.values)) }

    public func acknowledgement(channelName: String) -> String? { channels[channelName]?.notificationAcknowledgement }

    func channel(_ name: String) throws(CofferError) -> any PaymentChannel {
        guard let c = channels[name] else {
            throw CofferError(.channelUnavailable, "Channel '\(name.prefix(40))' is not enabled; enabled channels: \(channelNames.joined(separator: ", ")).")
        }
        return c
    }

    public func create(accountId: String, amountText: String, channelName: String, idempotencyKey: String,
                       actor: String) async throws -> (RechargeView, replayed: Bool) {
        let amount = try MoneyFormat.parsePositive(amountText, minMinor: settings.minMinor, maxMinor: settings.maxMinor)
        let channel = try channel(channelName)
        let fee = try settings.feeRules[channel.name]?.fee(forMinor: amount) ?? 0
        guard let account = try await store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        let limits = settings.channelLimits[channel.name] ?? ChannelLimits()
        if let max = limits.perPaymentMinor, amount > max { throw Self.limitExceeded("per payment", max, channel.name) }
        let ctx = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "recharge|\(amount)|\(channel.name)")
        // A replay is answered before the channel is asked, so that it cannot open a second order at the channel.
        if let earlier: RechargeView = try await Idempotent.replay(store, ctx) { return (earlier, true) }
        let now = clock.nowMicros()
        var recharge = RechargeRecord(id: ids.make("rch"), accountId: accountId, channel: channel.name, amountMinor: amount,
                                      state: .pending, channelTradeNo: nil,
                                      expiresAtMicros: now + settings.pendingTTLSeconds * 1_000_000, paidAtMicros: nil,
                                      createdAtMicros: now, feeMinor: fee > 0 ? fee : nil)
        let instruction = try await channel.paymentInstruction(for: recharge)
        recharge.paymentKind = instruction.kind
        recharge.paymentURL = instruction.url
        let order = recharge
        let view = RechargeView(recharge: order, payment: instruction, testChannel: !channel.movesRealMoney)
        let settings = self.settings
        return try await Idempotent.write(store, ctx, view, at: now) { tx in
            // R7, checked inside the write transaction so that parallel requests cannot slip past the limit together.
            let recent = try await tx.countRecentRecharges(accountId: accountId,
                                                           sinceMicros: now - settings.orderWindowSeconds * 1_000_000)
            guard recent < settings.maxOrdersPerWindow else {
                throw CofferError(.rechargeRateLimited, "At most \(settings.maxOrdersPerWindow) recharge orders per \(settings.orderWindowSeconds / 60) minutes; wait a few minutes or pay an open order.")
            }
            // R3, in the same transaction for the same reason.
            let (dayStart, monthStart) = Self.periodStarts(nowMicros: now, timeZone: account.timeZone)
            for (max, since, name) in [(limits.perDayMinor, dayStart, "per day"), (limits.perMonthMinor, monthStart, "per month")] {
                guard let max else { continue }
                let used = try await tx.sumRechargeAmounts(accountId: accountId, channel: channel.name, sinceMicros: since)
                if try Checked.add(used, amount) > max { throw Self.limitExceeded(name, max, channel.name, usedMinor: used) }
            }
            try await tx.insertRecharge(order)
        }
    }

    static func limitExceeded(_ period: String, _ maxMinor: Int64, _ channel: String, usedMinor: Int64? = nil) -> CofferError {
        let used = usedMinor.map { " (\(MoneyFormat.format($0)) already paid or pending)" } ?? ""
        return CofferError(.rechargeLimitExceeded, "\(channel) allows at most \(MoneyFormat.format(maxMinor)) \(period)\(used). Pay a smaller amount, or use bank remittance (对公汇款), which has no platform limit.",
                           ["limit": MoneyFormat.format(maxMinor)])
    }

    /// Start of today and of this month in the account's time zone (*default* Asia/Shanghai).
    public static func periodStarts(nowMicros: Int64, timeZone: String) -> (day: Int64, month: Int64) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "Asia/Shanghai")!
        let now = Date(timeIntervalSince1970: Double(nowMicros / 1_000_000))
        let day = calendar.startOfDay(for: now)
        let month = calendar.date(from: calendar.dateComponents([.year, .month], from: now)) ?? day
        return (Int64(day.timeIntervalSince1970) * 1_000_000, Int64(month.timeIntervalSince1970) * 1_000_000)
    }

    public func view(_ recharge: RechargeRecord) async throws -> RechargeView {
        let c = channels[recharge.channel]
        let payment: PaymentInstruction?
        if recharge.state != .pending {
            payment = nil
        } else if let kind = recharge.paymentKind, let url = recharge.paymentURL {
            payment = PaymentInstruction(kind: kind, url: url)
        } else {
            payment = try await c?.paymentInstruction(for: recharge)
        }
        return RechargeView(recharge: recharge, payment: payment, testChannel: !(c?.movesRealMoney ?? false))
    }

    /// The one handler for every channel's notifications (R5): verify, check the amount against the order, credit once.
    public func handleNotification(channelName: String, headers: [String: String], body: [UInt8]) async throws -> NotificationResult {
        let channel = try channel(channelName)
        let notice: VerifiedNotification
        do {
            notice = try channel.verifyNotification(headers: headers, body: body, nowMicros: clock.nowMicros())
        } catch {
            logger.warning("refused \(channelName) notification: \(error.code)")
            throw error
        }
        return try await credit(notice, channel: channel)
    }

    /// The credit path shared by notifications and queries: the amount must match the order; keyed by the channel trade
    /// number, so a repeated notification or a query after a notification is a replay, never a second credit.
    func credit(_ notice: VerifiedNotification, channel: any PaymentChannel) async throws -> NotificationResult {
        guard let recharge = try await store.recharge(id: notice.rechargeId), recharge.channel == channel.name else {
            logger.warning("refused \(channel.name) notification for unknown recharge \(notice.rechargeId)")
            throw CofferError.notFound(.rechargeNotFound, notice.rechargeId)
        }
        if recharge.state == .refused, recharge.channelTradeNo == notice.channelTradeNo {
            return .refused(recharge, nil)
        }
        if recharge.state == .paid {
            guard recharge.channelTradeNo == notice.channelTradeNo else {
                logger.error("recharge \(recharge.id) already paid by trade \(recharge.channelTradeNo ?? "?"), second trade \(notice.channelTradeNo) refused")
                throw CofferError(.rechargeAlreadyPaid, "Recharge \(recharge.id) is already paid by another trade.")
            }
            return .alreadyCredited(recharge)
        }
        let payer = notice.payerId.map {
            PayerCheck(payerId: $0, maxDistinct: settings.maxPayersPerWindow, windowSeconds: settings.payerWindowSeconds)
        }
        let request = LedgerRequest(.creditRecharge(accountId: recharge.accountId, rechargeId: recharge.id,
                                                    channelTradeNo: notice.channelTradeNo, amountMinor: notice.amountMinor,
                                                    payer: payer),
                                    idempotencyKey: "notify:\(channel.name):\(notice.channelTradeNo)",
                                    actor: "channel:\(channel.name)")
        let outcome = try await writer.submit(request)
        switch outcome.result {
        case .success(let receipt):
            return outcome.replayed ? .alreadyCredited(receipt.recharge ?? recharge) : .credited(receipt)
        case .failure(let error) where error.code == .rechargePayerLimit:
            return try await refuse(recharge, notice, channel: channel)
        case .failure(let error):
            if error.code == .rechargeAlreadyPaid, let again = try await store.recharge(accountId: recharge.accountId, id: recharge.id),
               again.channelTradeNo == notice.channelTradeNo {
                return .alreadyCredited(again)
            }
            logger.warning("refused \(channel.name) payment for \(recharge.id): \(error.code)")
            throw error
        }
    }

    /// R7 refused a paid order: it becomes `refused` and its whole payment (amount and fee) goes back to the payer. The
    /// refusal, the refund's record, the customer's message and the audit row commit together; the jobs loop then sends the
    /// refund and keeps asking, with the same refund number, until the channel answers for good.
    func refuse(_ recharge: RechargeRecord, _ notice: VerifiedNotification, channel: any PaymentChannel) async throws -> NotificationResult {
        let now = clock.nowMicros()
        var refused = recharge
        refused.state = .refused
        refused.channelTradeNo = notice.channelTradeNo
        refused.paidAtMicros = now
        refused.payerId = notice.payerId
        let refusal = refused
        let refund = ChannelRefundRecord(id: ids.make("crf"), accountId: recharge.accountId, rechargeId: recharge.id,
                                         channel: channel.name, channelTradeNo: notice.channelTradeNo, purpose: .payerLimit,
                                         amountMinor: notice.amountMinor, orderTotalMinor: recharge.totalMinor,
                                         nextAttemptAtMicros: now, createdAtMicros: now)
        let settings = self.settings, ids = self.ids
        let recorded = try await store.transaction { tx -> Bool in
            guard try await tx.refuseRecharge(refusal) else { return false }
            try await tx.insertChannelRefund(refund)
            try await tx.insertMessages([SiteMessageRecord(
                id: ids.make("msg"), accountId: recharge.accountId, kind: "recharge_refused",
                title: "充值未入账 Payment returned",
                body: "充值订单 \(recharge.id) 的付款（\(MoneyFormat.format(notice.amountMinor)) 元）来自 24 小时内第 \(settings.maxPayersPerWindow + 1) 位不同的付款人，超出账户限制，未入账，将原路退回付款人。",
                createdAtMicros: now,
                parameters: ["recharge": recharge.id, "amount": MoneyFormat.format(notice.amountMinor),
                             "payers": String(settings.maxPayersPerWindow + 1)])])
            try await tx.insertAudit(AuditRecord(
                id: ids.make("aud"), accountId: recharge.accountId, actor: "channel:\(channel.name)", action: "recharge.refused",
                detail: "R7 payer limit (\(settings.maxPayersPerWindow) per \(settings.payerWindowSeconds / 3600) h): trade \(notice.channelTradeNo), refund \(refund.id) of \(MoneyFormat.format(notice.amountMinor))",
                createdAtMicros: now))
            return true
        }
        guard recorded else {
            // Someone else settled this order meanwhile (a repeated notification, or the query path): answer as they did.
            guard let current = try await store.recharge(accountId: recharge.accountId, id: recharge.id) else { throw CofferError.notFound(.rechargeNotFound, recharge.id) }
            switch current.state {
            case .refused where current.channelTradeNo == notice.channelTradeNo: return .refused(current, nil)
            case .paid where current.channelTradeNo == notice.channelTradeNo: return .alreadyCredited(current)
            default: throw CofferError(.rechargeAlreadyPaid, "Recharge \(recharge.id) is already settled by another trade.")
            }
        }
        // The refund is sent by the jobs loop (every few seconds), not here: the channel waits for this answer, and a slow
        // refund call must not make it think the notification failed.
        logger.notice("recharge \(recharge.id) refused by R7 (payer limit); refund \(refund.id) recorded")
        return .refused(refusal, refund)
    }

    /// Asks the channel whether an order was paid and credits it if so ("I have paid" in the console, and expiry).
    public func sync(_ recharge: RechargeRecord) async throws -> RechargeRecord {
        guard recharge.state == .pending || recharge.state == .expired else { return recharge }
        let channel = try channel(recharge.channel)
        switch try await channel.queryPayment(for: recharge) {
        case .paid(let notice):
            guard notice.rechargeId == recharge.id else { throw CofferError.notificationMalformed("the answer is for another order") }
            _ = try await credit(notice, channel: channel)
        case .notPaid:
            break
        }
        return try await store.recharge(accountId: recharge.accountId, id: recharge.id) ?? recharge
    }

    /// Fetches rotating channel keys when due (the first jobs run after start-up, then every 12 h, or when `force`d). A
    /// failure is logged and tried again after `credentialRetrySeconds`, not at every turn of the jobs loop.
    public func refreshChannelCredentials(force: Bool = false) async -> [String] {
        let now = clock.nowMicros()
        guard lastCredentialRefresh.claim(now: now, everyMicros: Self.credentialRefreshSeconds * 1_000_000, force: force) else {
            return []
        }
        var lines: [String] = []
        for channel in channels.values.sorted(by: { $0.name < $1.name }) {
            do {
                if let line = try await channel.refreshCredentials() {
                    logger.info("\(line)")
                    lines.append(line)
                }
            } catch {
                lastCredentialRefresh.due(inMicros: Self.credentialRetrySeconds * 1_000_000, now: now,
                                          everyMicros: Self.credentialRefreshSeconds * 1_000_000)
                logger.warning("could not refresh \(channel.name) credentials: \(error)")
            }
        }
        return lines
    }

    /// R5: pending orders past their deadline become expired. Moves no money.
    /// Before that, every due order of a real channel is queried once, so that a payment whose notification was lost is
    /// credited rather than left behind (a notification that arrives after expiry still credits, too).
    public func expireDue(limit: Int = 500) async throws -> Int {
        let now = clock.nowMicros()
        for recharge in try await store.dueRecharges(nowMicros: now, limit: limit) {
            guard let channel = channels[recharge.channel], channel.movesRealMoney else { continue }
            do { _ = try await sync(recharge) } catch {
                logger.warning("could not query \(recharge.channel) for \(recharge.id) before expiry: \(error)")
            }
        }
        return try await store.transaction { tx in try await tx.expireRecharges(dueBeforeMicros: now, limit: limit) }
    }
}

/// When something periodic last ran; `claim` says whether it is due and, if so, marks it run.
final class LastRun: Sendable {
    private let last = Mutex<Int64?>(nil)
    func claim(now: Int64, everyMicros: Int64, force: Bool) -> Bool {
        last.withLock { last in
            if !force, let l = last, now - l < everyMicros { return false }
            last = now
            return true
        }
    }
    /// After a failure: due again after `inMicros` instead of a whole period.
    func due(inMicros: Int64, now: Int64, everyMicros: Int64) { last.withLock { $0 = now - everyMicros + inMicros } }
}
