import CofferCore
import Logging
import Metrics
import Synchronization

/// The scheduled jobs, in the order one pass runs them.
public enum ScheduledJob: String, CaseIterable, Sendable {
    case freezeExpiry = "freeze_expiry"
    case channelCredentials = "channel_credentials"
    case rechargeExpiry = "recharge_expiry"
    case channelRefunds = "channel_refunds"
    case settlement
    case orderExpiry = "order_expiry"
    case prepaidTerms = "prepaid_terms"
    case notices
    /// Last, so that the events of a pass go out in it.
    case webhooks
}

public struct JobSettings: Sendable {
    /// How long after a run of a job ends its next run is due.
    public var intervalSeconds = 5
    /// How long a claimed job stays with its instance without a renewal; a killed instance's jobs wait this long.
    public var leaseSeconds = 60
    /// This instance, in the lease rows and the run records.
    public var holder = JobHolder.make()
    /// Leases are measured in the machines' time, not Coffer's clock: the sandbox clock jumps, and a jump must not end
    /// a lease that an instance still holds.
    public var leaseClock: any Clock = SystemClock()
    public init() {}
}

/// Scheduled work. Its state lives in the database (freeze deadlines, recharge expiry), and so does its schedule: each
/// job runs on one instance at a time, the one holding its lease. The writer's state checks stay as the second guard,
/// so a run repeated after a lost lease does nothing twice.
public struct BackgroundJobs: Sendable {
    let store: any CofferStore
    let writer: LedgerWriter
    let recharges: RechargeService
    let settlement: SettlementService
    let orders: OrderService
    let prepaid: PrepaidService
    let webhooks: WebhookService
    private let memory = JobsMemory()
    let notices: NoticeDelivery
    let clock: any Clock
    let settings: JobSettings
    let logger: Logger

    public init(store: any CofferStore, writer: LedgerWriter, recharges: RechargeService, settlement: SettlementService,
                orders: OrderService, prepaid: PrepaidService, webhooks: WebhookService, notices: NoticeDelivery, clock: any Clock,
                settings: JobSettings = .init(), logger: Logger = Logger(label: "coffer")) {
        precondition(settings.intervalSeconds >= 1 && settings.leaseSeconds >= 3, "jobs need an interval and a lease of some seconds")
        self.orders = orders
        self.prepaid = prepaid
        self.webhooks = webhooks
        self.store = store
        self.writer = writer
        self.recharges = recharges
        self.settlement = settlement
        self.notices = notices
        self.clock = clock
        self.settings = settings
        self.logger = logger
    }

    public var holder: String { settings.holder }

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

        public init(freezesExpired: Int = 0, rechargesExpired: Int = 0, noticesDelivered: Int = 0) {
            self.freezesExpired = freezesExpired
            self.rechargesExpired = rechargesExpired
            self.noticesDelivered = noticesDelivered
        }
    }

    /// Runs every job now whose lease is free, whether or not it is due (tests, and an operator's "run now"); throws the
    /// first job's error after every job had its turn.
    public func runOnce(limit: Int = 500) async throws -> RunReport {
        let (report, failures) = try await pass(limit: limit, ignoringSchedule: true)
        if let first = failures.first { throw first.error }
        return report
    }

    /// The jobs loop's pass: the due jobs whose lease is free. A job that fails is recorded and logged; the others run.
    public func runDue(limit: Int = 500) async throws -> (report: RunReport, failures: [(job: ScheduledJob, error: any Error)]) {
        try await pass(limit: limit, ignoringSchedule: false)
    }

    private func pass(limit: Int, ignoringSchedule: Bool) async throws -> (RunReport, [(job: ScheduledJob, error: any Error)]) {
        if !memory.leasesReady.withLock({ $0 }) {
            try await store.ensureJobs(ScheduledJob.allCases.map(\.rawValue))
            memory.leasesReady.withLock { $0 = true }
        }
        var report = RunReport()
        var failures: [(job: ScheduledJob, error: any Error)] = []
        let leaseMicros = Int64(settings.leaseSeconds) * 1_000_000
        for job in ScheduledJob.allCases {
            guard let (lease, now) = try await store.claimJob(job.rawValue, holder: settings.holder, clock: settings.leaseClock,
                                                               leaseMicros: leaseMicros, ignoringSchedule: ignoringSchedule)
            else { continue }
            let heartbeat = renewing(lease, leaseMicros: leaseMicros)
            var items = 0
            var failure: (any Error)?
            do { items = try await run(job, limit: limit, into: &report) } catch { failure = error }
            // Stopped before the finish, so that a renewal in flight cannot come after it.
            heartbeat.cancel()
            await heartbeat.value
            let end = settings.leaseClock.nowMicros()
            let kept = try await store.finishJob(lease, nowMicros: end, nextRunAtMicros: end + Int64(settings.intervalSeconds) * 1_000_000,
                                                  items: items, error: failure.map { String(String(describing: $0).prefix(500)) })
            if !kept { logger.warning("job \(job.rawValue) run \(lease.run) outlived its lease; another instance may have run it too") }
            Metrics.Timer(label: "coffer_job_run_seconds", dimensions: [("job", job.rawValue)]).recordMicroseconds(end - now)
            if let failure {
                failures.append((job, failure))
            } else {
                Gauge(label: "coffer_job_last_success_timestamp_seconds", dimensions: [("job", job.rawValue)]).record(Double(end) / 1e6)
            }
        }
        return (report, failures)
    }

    /// Renews the lease every third of its length while the job runs.
    private func renewing(_ lease: JobLease, leaseMicros: Int64) -> Task<Void, Never> {
        let store = store, leaseClock = settings.leaseClock, logger = logger
        return Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: .microseconds(leaseMicros / 3))
                if Task.isCancelled { return }
                let renewed = (try? await store.renewJob(lease, untilMicros: leaseClock.nowMicros() + leaseMicros)) ?? false
                if !renewed {
                    logger.warning("job \(lease.job) run \(lease.run) could not renew its lease")
                    return
                }
            }
        }
    }

    /// One job's work; answers how many things it did.
    private func run(_ job: ScheduledJob, limit: Int, into report: inout RunReport) async throws -> Int {
        switch job {
        case .freezeExpiry:
            let due = try await store.dueFreezes(nowMicros: clock.nowMicros(), limit: limit)
            let outcomes = try await writer.submitAll(due.map {
                LedgerRequest(.expireFreeze(accountId: $0.accountId, freezeId: $0.id),
                              idempotencyKey: "expire:\($0.id)", actor: "system:freeze-expiry")
            })
            report.freezesExpired = outcomes.filter { if case .success = $0.result { !$0.replayed } else { false } }.count
            return report.freezesExpired
        case .channelCredentials:
            return await recharges.refreshChannelCredentials().count
        case .rechargeExpiry:
            report.rechargesExpired = try await recharges.expireDue(limit: limit)
            return report.rechargesExpired
        case .channelRefunds:
            report.refundsFinished = try await recharges.refunds.processDue(limit: limit)
            return report.refundsFinished
        case .settlement:
            report.cyclesSettled = try await settlement.runDue()?.cycles ?? 0
            return report.cyclesSettled
        case .orderExpiry:
            report.ordersExpired = try await orders.expireDue(limit: limit)
            return report.ordersExpired
        case .prepaidTerms:
            // O4–O6 act once a day per term; scanning the terms every few seconds would only cost the database. Once a
            // minute of Coffer's clock (the sandbox clock moves it too).
            let now = clock.nowMicros()
            let due = memory.prepaidLast.withLock { last in
                guard last.map({ now - $0 >= 60_000_000 || now < $0 }) ?? true else { return false }
                last = now
                return true
            }
            guard due else { return 0 }
            report.prepaid = try await prepaid.runDue()
            let p = report.prepaid
            return p.renewed + p.renewalsRefused + p.reminded + p.suspended + p.reclaimed
        case .notices:
            report.noticesDelivered = try await notices.deliverPending(limit: limit)
            return report.noticesDelivered
        case .webhooks:
            report.webhooksDelivered = try await webhooks.dispatch(limit: limit)
            return report.webhooksDelivered
        }
    }
}

/// What this process remembers between passes (shared by copies of the jobs value).
final class JobsMemory: Sendable {
    /// When the prepaid pass last ran, in Coffer's clock.
    let prepaidLast = Mutex<Int64?>(nil)
    let leasesReady = Mutex(false)
}
