import CofferCore
import Synchronization

/// Turns API requests into ledger operations. Ids of new objects are chosen here; money moves only in the writer.
public struct WalletService: Sendable {
    public let writer: LedgerWriter
    let store: any CofferStore
    let ids: IdGenerator

    public init(writer: LedgerWriter, store: any CofferStore, ids: IdGenerator) {
        self.writer = writer
        self.store = store
        self.ids = ids
    }

    public func wallet(accountId: String) async throws -> WalletBalances {
        guard let w = try await store.wallet(accountId: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        return w
    }

    public func submit(_ command: LedgerCommand, idempotencyKey: String, actor: String) async throws -> LedgerOutcome {
        _ = try IdempotencyContext(scope: command.accountId, key: idempotencyKey, fingerprint: "")
        return try await writer.submit(LedgerRequest(command, idempotencyKey: idempotencyKey, actor: actor))
    }

    public func newFreezeId() -> String { ids.make("frz") }
    public func newChargeId() -> String { ids.make("chg") }
    public func newRefundId() -> String { ids.make("rfd") }
}

/// Scheduled work. Its state lives in the database (freeze deadlines, recharge expiry), so every run — on any instance —
/// finds the same due work, and the writer's state checks make a second run a no-op.
public struct BackgroundJobs: Sendable {
    let store: any CofferStore
    let writer: LedgerWriter
    let recharges: RechargeService
    let settlement: SettlementService
    let orders: OrderService
    let prepaid: PrepaidService
    let webhooks: WebhookService
    private let prepaidPass = PeriodicPass()
    let notices: NoticeDelivery
    let clock: any Clock

    public init(store: any CofferStore, writer: LedgerWriter, recharges: RechargeService, settlement: SettlementService,
                orders: OrderService, prepaid: PrepaidService, webhooks: WebhookService, notices: NoticeDelivery, clock: any Clock) {
        self.orders = orders
        self.prepaid = prepaid
        self.webhooks = webhooks
        self.store = store
        self.writer = writer
        self.recharges = recharges
        self.settlement = settlement
        self.notices = notices
        self.clock = clock
    }

    public struct RunReport: Sendable, Equatable {
        public var freezesExpired: Int
        public var rechargesExpired: Int
        public var noticesDelivered: Int
        /// Channel refunds that reached an end (succeeded or failed) in this run.
        public var refundsFinished: Int = 0
        /// B2: cycles settled (a grace period after they ended).
        public var cyclesSettled: Int = 0
        /// O2: unpaid orders that reached their expiry.
        public var ordersExpired: Int = 0
        /// N2: webhook deliveries that succeeded in this run.
        public var webhooksDelivered: Int = 0
        /// O4–O6.
        public var prepaid = PrepaidService.RunReport()
    }

    public func runOnce(limit: Int = 500) async throws -> RunReport {
        let due = try await store.dueFreezes(nowMicros: clock.nowMicros(), limit: limit)
        let outcomes = try await writer.submitAll(due.map {
            LedgerRequest(.expireFreeze(accountId: $0.accountId, freezeId: $0.id),
                          idempotencyKey: "expire:\($0.id)", actor: "system:freeze-expiry")
        })
        let expired = outcomes.filter { if case .success = $0.result { !$0.replayed } else { false } }.count
        _ = await recharges.refreshChannelCredentials()
        let rechargesExpired = try await recharges.expireDue(limit: limit)
        let refundsFinished = try await recharges.refunds.processDue(limit: limit)
        let settled = try await settlement.runDue()
        let ordersExpired = try await orders.expireDue(limit: limit)
        // O4–O6 act once a day per term; scanning the terms every few seconds would only cost the database. Once a minute
        // of Coffer's clock (the sandbox clock moves it too).
        let now = clock.nowMicros()
        let prepaidDue = prepaidPass.time.withLock { last in
            guard last.map({ now - $0 >= 60_000_000 || now < $0 }) ?? true else { return false }
            last = now
            return true
        }
        let prepaidReport = prepaidDue ? try await prepaid.runDue() : PrepaidService.RunReport()
        var report = RunReport(freezesExpired: expired, rechargesExpired: rechargesExpired,
                         noticesDelivered: try await notices.deliverPending(limit: limit), refundsFinished: refundsFinished,
                         cyclesSettled: settled?.cycles ?? 0, ordersExpired: ordersExpired,
                         webhooksDelivered: 0)
        report.prepaid = prepaidReport
        // Last, so that the events of this run go out in it.
        report.webhooksDelivered = try await webhooks.dispatch(limit: limit)
        return report
    }
}

/// When a periodic pass last ran (shared by copies of the jobs value).
final class PeriodicPass: Sendable {
    let time = Mutex<Int64?>(nil)
}
