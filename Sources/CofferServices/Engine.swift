import CofferCore
import Logging

/// Wires the use cases over one store. The executable and the tests build Coffer the same way.
public struct CofferEngine: Sendable {
    public let store: any CofferStore
    public let clock: any Clock
    public let ids: IdGenerator
    public let writer: LedgerWriter
    public let accounts: AccountService
    public let wallets: WalletService
    public let recharges: RechargeService
    public let codes: RechargeCodeService
    public let bank: BankTransferService
    public let products: ProductCatalog
    public let resources: ResourceService
    public let usage: UsageIngestion
    public let settlement: SettlementService
    public let bills: BillService
    public let console: ConsoleService
    public let orders: OrderService
    public let prepaid: PrepaidService
    public let coupons: CouponService
    public let webhooks: WebhookService
    public let jobs: BackgroundJobs
    public let selfServiceRefunds: Bool

    public struct Settings: Sendable {
        public var ledger = LedgerWriterSettings()
        public var recharge = RechargeSettings()
        public var codes = RechargeCodeSettings()
        public var bank = BankTransferSettings()
        public var console = ConsoleSettings()
        public var settlement = SettlementSettings()
        /// E-mail and SMS: logging senders unless an SMTP relay is configured (`SMTPNoticeSender`); SMS has no gateway yet.
        public var noticeSenders: [any NoticeSender] = [LoggingNoticeSender(medium: .email), LoggingNoticeSender(medium: .sms)]
        /// Notices in the account's language (the console's catalogs); nil: the text each message was written with.
        public var noticeRenderer: (any NoticeRenderer)?
        public var bcryptCost: UInt8 = 12
        /// N2: how webhooks are sent (nil: events are kept and fanned out, nothing is sent — tests that do not look).
        public var webhookTransport: (any WebhookTransport)?
        public var webhooks = WebhookSettings()
        /// O8: whether customers (owner, finance) may refund their own prepaid resources; off: the provider's key only.
        public var selfServiceRefunds = false
        public var jobs = JobSettings()
        public init() {}
    }

    public init(store: any CofferStore, clock: any Clock = SystemClock(), channels: [any PaymentChannel],
                settings: Settings = .init(), logger: Logger = Logger(label: "coffer")) {
        self.store = store
        self.clock = clock
        ids = IdGenerator(clock: clock)
        writer = LedgerWriter(store: store, clock: clock, ids: ids, settings: settings.ledger, logger: logger)
        accounts = AccountService(store: store, clock: clock, ids: ids, bcryptCost: settings.bcryptCost)
        wallets = WalletService(writer: writer, store: store, ids: ids)
        recharges = RechargeService(store: store, writer: writer, clock: clock, ids: ids, channels: channels,
                                    settings: settings.recharge, logger: logger)
        codes = RechargeCodeService(store: store, writer: writer, clock: clock, ids: ids, settings: settings.codes)
        bank = BankTransferService(store: store, writer: writer, clock: clock, ids: ids, settings: settings.bank, logger: logger)
        products = ProductCatalog(store: store, clock: clock, ids: ids)
        resources = ResourceService(store: store, clock: clock, ids: ids)
        usage = UsageIngestion(store: store, clock: clock)
        settlement = SettlementService(store: store, writer: writer, clock: clock, ids: ids, settings: settings.settlement, logger: logger)
        bills = BillService(store: store, clock: clock, ids: ids)
        console = ConsoleService(store: store, clock: clock, ids: ids, bcryptCost: settings.bcryptCost, settings: settings.console)
        selfServiceRefunds = settings.selfServiceRefunds
        prepaid = PrepaidService(store: store, writer: writer, clock: clock, ids: ids, logger: logger)
        orders = OrderService(store: store, writer: writer, clock: clock, ids: ids, prepaid: prepaid)
        coupons = CouponService(store: store, clock: clock, ids: ids, codeSettings: settings.codes)
        webhooks = WebhookService(store: store, clock: clock, ids: ids, transport: settings.webhookTransport, settings: settings.webhooks,
                                  logger: logger)
        jobs = BackgroundJobs(store: store, writer: writer, recharges: recharges, settlement: settlement, orders: orders, prepaid: prepaid, webhooks: webhooks,
                              notices: NoticeDelivery(store: store, senders: settings.noticeSenders, clock: clock,
                                                       renderer: settings.noticeRenderer, logger: logger),
                              clock: clock, settings: settings.jobs, logger: logger)
    }
}
