import CofferCore

public struct LedgerRequest: Sendable {
    public var command: LedgerCommand
    public var idempotencyKey: String
    /// Who asked: "key:<id>", "user:<id>" or "system:<job>". Recorded on the journal entry.
    public var actor: String
    /// The request that asked (Z3): the writer's batch runs in another task, so it is carried along for the audit record.
    public var origin: RequestOrigin?

    public init(_ command: LedgerCommand, idempotencyKey: String, actor: String, origin: RequestOrigin? = RequestOrigin.current) {
        self.command = command
        self.idempotencyKey = idempotencyKey
        self.actor = actor
        self.origin = origin
    }
}

/// The stored result of one applied operation; a replay with the same key returns exactly this.
public struct LedgerReceipt: Codable, Sendable, Equatable {
    public var entryId: String
    public var accountId: String
    public var kind: String
    public var createdAtMicros: Int64
    public var wallet: WalletBalances
    public var freeze: FreezeRecord?
    public var charge: ChargeRecord?
    public var refund: RefundInfo?
    public var recharge: RechargeRecord?
    /// The object the entry is about (an order payment, an order), for the services that answer with it.
    public var relatedId: String?
    /// A payment's record and its orders as the entry left them (first answers only: a replay reads them again).
    public var payment: OrderPaymentRecord?
    public var orders: [OrderRecord]?

    public init(entryId: String, accountId: String, kind: String, createdAtMicros: Int64, wallet: WalletBalances, freeze: FreezeRecord? = nil, charge: ChargeRecord? = nil, refund: RefundInfo? = nil, recharge: RechargeRecord? = nil) {
        self.entryId = entryId
        self.accountId = accountId
        self.kind = kind
        self.createdAtMicros = createdAtMicros
        self.wallet = wallet
        self.freeze = freeze
        self.charge = charge
        self.refund = refund
        self.recharge = recharge
    }
}

public struct LedgerOutcome: Sendable {
    public var result: Result<LedgerReceipt, CofferError>
    /// True when the receipt came from an earlier request with the same idempotency key.
    public var replayed: Bool

    public func get() throws(CofferError) -> LedgerReceipt {
        switch result {
        case .success(let r): return r
        case .failure(let e): throw e
        }
    }
}
