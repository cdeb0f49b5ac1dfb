import CofferCore

/// One row of the journal (`ledger_entries`): one W11 movement with its own balanced amount per book. The first row of a
/// journal entry (seq 0) also carries the entry's idempotency key, the request's hash and the wallet after the whole entry,
/// from which a replay's answer is rebuilt: a plain charge writes this one row, the charge and the wallet update.
public struct LedgerRowRecord: Sendable, Equatable {
    public struct Head: Sendable, Equatable {
        public var idempotencyKey: String
        public var requestHash: String
        public var walletAfter: WalletBalances
        public init(idempotencyKey: String, requestHash: String, walletAfter: WalletBalances) {
            (self.idempotencyKey, self.requestHash, self.walletAfter) = (idempotencyKey, requestHash, walletAfter)
        }
    }
    public var accountId: String
    public var id: String
    public var entryId: String
    public var seq: Int
    public var kind: String
    public var actor: String
    public var movement: Movement
    public var relatedType: String?
    public var relatedId: String?
    /// The object the entry made that the related one does not name (a refund's id).
    public var detailId: String?
    public var channelTradeNo: String?
    public var memo: String?
    public var createdAtMicros: Int64
    public var head: Head?

    public init(accountId: String, id: String, entryId: String, seq: Int, kind: String, actor: String, movement: Movement,
                relatedType: String?, relatedId: String?, detailId: String?, channelTradeNo: String?, memo: String?,
                createdAtMicros: Int64, head: Head?) {
        (self.accountId, self.id, self.entryId, self.seq, self.kind, self.actor) = (accountId, id, entryId, seq, kind, actor)
        (self.movement, self.relatedType, self.relatedId, self.detailId) = (movement, relatedType, relatedId, detailId)
        (self.channelTradeNo, self.memo, self.createdAtMicros, self.head) = (channelTradeNo, memo, createdAtMicros, head)
    }

    public var transaction: TransactionRecord {
        TransactionRecord(id: id, accountId: accountId, entryId: entryId, movement: movement, relatedType: relatedType,
                          relatedId: relatedId, channelTradeNo: channelTradeNo, memo: memo, createdAtMicros: createdAtMicros)
    }
}

/// What an idempotency key of a batch already stands for: an earlier ledger entry (its first row and the object it
/// touched, to rebuild its answer), or a write outside the ledger (the same key cannot be used again for the ledger).
public enum StoredKey: Sendable {
    case ledger(LedgerRowRecord, freeze: FreezeRecord?, charge: ChargeRecord?, recharge: RechargeRecord?)
    case other
}

/// Everything the ledger writer persists for one batch, applied in one database transaction.
public struct LedgerBatchWrite: Sendable {
    public var rows: [LedgerRowRecord] = []
    public var wallets: [String: WalletBalances] = [:]
    public var newFreezes: [FreezeRecord] = []
    public var updatedFreezes: [FreezeRecord] = []
    public var newCharges: [ChargeRecord] = []
    public var updatedCharges: [ChargeRecord] = []
    public var paidRecharges: [RechargeRecord] = []
    public var redeemedCodes: [RechargeCodeRecord] = []
    public var approvedRemittances: [RemittanceRecord] = []
    public var creditedLines: [StatementLineRecord] = []
    public var messages: [SiteMessageRecord] = []
    public var audits: [AuditRecord] = []
    /// Orders (W7, C8): state-guarded order and coupon changes, new coupon uses and payments, returned uses.
    public var orderChanges: [(order: OrderRecord, from: OrderState)] = []
    public var couponChanges: [(coupon: CouponRecord, before: CouponRecord)] = []
    public var newCouponUses: [CouponUseRecord] = []
    public var returnedCouponUses: [CouponUseRecord] = []
    public var newPayments: [OrderPaymentRecord] = []
    /// O3, O4: prepaid terms made or changed (guarded by the term as it was) and orders made inside an entry.
    public var termChanges: [(term: PrepaidTermRecord, before: PrepaidTermRecord?)] = []
    public var newOrders: [OrderRecord] = []
    public var newResourceRefunds: [ResourceRefundRecord] = []
    /// N2: the provider's events of the batch (the webhook outbox).
    public var webhookEvents: [WebhookEventRecord] = []
    public init() {}
    public var isEmpty: Bool { rows.isEmpty }
}

public struct IdempotencyKeyPair: Hashable, Sendable {
    public var scope: String
    public var key: String
    public init(scope: String, key: String) {
        self.scope = scope
        self.key = key
    }
}

/// One database transaction. Reads marked "lock" take row locks on PostgreSQL (SQLite holds the write lock already).
public protocol StoreTransaction: MoneyInWrites, ConsoleWrites, ProductWrites, BillingWrites, OrderWrites, OrderLedgerLocks, WebhookWrites, PrepaidTermWrites {
    func idempotency(scope: String, key: String) async throws -> StoredIdempotency?
    /// What these keys already stand for, in one round trip (plus one per ledger entry found, to rebuild its answer).
    func storedKeys(_ pairs: [IdempotencyKeyPair]) async throws -> [IdempotencyKeyPair: StoredKey]
    /// Whether a ledger entry was made under this key (a write outside the ledger may not reuse it).
    func ledgerKeyUsed(scope: String, key: String) async throws -> Bool
    /// Stores the answer under the key unless the key is taken; false when it was (read the earlier answer then).
    func claimIdempotency(scope: String, key: String, _ stored: StoredIdempotency, nowMicros: Int64) async throws -> Bool
    /// Locks and returns the wallets of these accounts; missing accounts are absent from the result.
    func lockWallets(_ accountIds: [String]) async throws -> [String: WalletBalances]
    /// Lock in key order (one statement each, or one per chunk), after the wallets, so that concurrent batches cannot
    /// deadlock. Missing rows are absent from the result.
    func lockFreezes(_ keys: [ObjectKey]) async throws -> [ObjectKey: FreezeRecord]
    func lockCharges(_ keys: [ObjectKey]) async throws -> [ObjectKey: ChargeRecord]
    func lockRecharges(_ keys: [ObjectKey]) async throws -> [String: RechargeRecord]
    func lockCodes(_ ids: [String]) async throws -> [String: RechargeCodeRecord]
    func lockRemittances(_ keys: [ObjectKey]) async throws -> [String: RemittanceRecord]
    func lockStatementLines(_ ids: [String]) async throws -> [String: StatementLineRecord]
    /// Of these bank serial numbers, those whose money was already credited (an approved remittance or a credited line).
    func creditedBankSerials(_ serials: [String]) async throws -> Set<String>
    func apply(_ batch: LedgerBatchWrite) async throws

    func insertAccount(_ account: AccountRecord) async throws
    func insertUser(_ user: UserRecord) async throws
    func userExists(email: String) async throws -> Bool
    func insertApiKey(_ key: ApiKeyRecord) async throws
    /// Answers whether an unrevoked key of the account was revoked.
    func revokeApiKey(accountId: String, id: String, atMicros: Int64) async throws -> Bool
    func insertRecharge(_ recharge: RechargeRecord) async throws
    func expireRecharges(dueBeforeMicros: Int64, limit: Int) async throws -> Int
    func insertAudit(_ audit: AuditRecord) async throws
    func countRecentRecharges(accountId: String, sinceMicros: Int64) async throws -> Int
    /// R3: paid and pending order amounts of one channel since a moment.
    func sumRechargeAmounts(accountId: String, channel: String, sinceMicros: Int64) async throws -> Int64
}

public struct VerifyProblem: Sendable, CustomStringConvertible {
    public var accountId: String
    public var detail: String
    public init(accountId: String, detail: String) {
        self.accountId = accountId
        self.detail = detail
    }
    public var description: String { "\(accountId): \(detail)" }
}

/// The storage port: one implementation over SQLite and PostgreSQL (CofferStorage).
public protocol CofferStore: MoneyInReads, ConsoleReads, ProductReads, BillingReads, OrderReads, WebhookReads, PrepaidTermReads,
    JobLeaseStore {
    var backendName: String { get }
    func migrate() async throws
    func transaction<R: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) async throws -> R) async throws -> R
    func shutdown() async

    func account(id: String) async throws -> AccountRecord?
    func user(accountId: String, id: String) async throws -> UserRecord?
    /// Through the e-mail's lookup row (e-mails are unique across accounts).
    func user(email: String) async throws -> UserRecord?
    func apiKey(digest: String) async throws -> ApiKeyRecord?
    /// The stored answer under an idempotency key, read outside any write transaction.
    func idempotency(scope: String, key: String) async throws -> StoredIdempotency?
    /// Whether anything (a ledger entry or another write) was made under this key.
    func idempotencyKeyUsed(scope: String, key: String) async throws -> Bool
    func wallet(accountId: String) async throws -> WalletBalances?
    func freeze(accountId: String, id: String) async throws -> FreezeRecord?
    func charge(accountId: String, id: String) async throws -> ChargeRecord?
    /// Through the recharge's lookup row: a channel names an order by its id alone.
    func recharge(id: String) async throws -> RechargeRecord?
    func recharge(accountId: String, id: String) async throws -> RechargeRecord?
    /// Pending orders past their deadline, oldest first.
    func dueRecharges(nowMicros: Int64, limit: Int) async throws -> [RechargeRecord]
    func transactions(_ query: TransactionQuery) async throws -> [TransactionRecord]
    func entries(accountId: String) async throws -> [JournalEntryRecord]
    func dueFreezes(nowMicros: Int64, limit: Int) async throws -> [FreezeRecord]
    func accountIds(limit: Int) async throws -> [String]
    /// Newest first.
    func auditLog(accountId: String, limit: Int) async throws -> [AuditRecord]
    /// Z3: committed audit records, newest first.
    func auditEvents(_ q: AuditQuery) async throws -> [AuditRecord]
    /// Z4: the chain's length and last hash.
    func auditChainHead() async throws -> (seq: Int64, hash: String)
    /// Recomputes every wallet from its postings and checks every entry balances (W9).
    func verify() async throws -> [VerifyProblem]
}
