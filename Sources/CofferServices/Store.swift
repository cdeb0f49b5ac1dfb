import CofferCore

/// Everything the ledger writer persists for one batch, applied in one database transaction.
public struct LedgerBatchWrite: Sendable {
    public var entries: [JournalEntryRecord] = []
    public var transactions: [TransactionRecord] = []
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
    public var idempotency: [(scope: String, key: String, stored: StoredIdempotency)] = []
    public var audits: [AuditRecord] = []
    public init() {}
    public var isEmpty: Bool { entries.isEmpty && idempotency.isEmpty }
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
public protocol StoreTransaction: MoneyInWrites, ConsoleWrites {
    func idempotency(scope: String, key: String) async throws -> StoredIdempotency?
    /// Many lookups in one round trip.
    func idempotency(_ pairs: [IdempotencyKeyPair]) async throws -> [IdempotencyKeyPair: StoredIdempotency]
    func putIdempotency(scope: String, key: String, _ stored: StoredIdempotency) async throws
    /// Stores the answer under the key unless the key is taken; false when it was (read the earlier answer then).
    func claimIdempotency(scope: String, key: String, _ stored: StoredIdempotency, nowMicros: Int64) async throws -> Bool
    /// Locks and returns the wallets of these accounts; missing accounts are absent from the result.
    func lockWallets(_ accountIds: [String]) async throws -> [String: WalletBalances]
    /// Lock in key order (one statement each, or one per chunk), after the wallets, so that concurrent batches cannot
    /// deadlock. Missing rows are absent from the result.
    func lockFreezes(_ keys: [ObjectKey]) async throws -> [ObjectKey: FreezeRecord]
    func lockCharges(_ keys: [ObjectKey]) async throws -> [ObjectKey: ChargeRecord]
    func lockRecharges(_ ids: [String]) async throws -> [String: RechargeRecord]
    func lockCodes(_ ids: [String]) async throws -> [String: RechargeCodeRecord]
    func lockRemittances(_ ids: [String]) async throws -> [String: RemittanceRecord]
    func lockStatementLines(_ ids: [String]) async throws -> [String: StatementLineRecord]
    /// Of these bank serial numbers, those whose money was already credited (an approved remittance or a credited line).
    func creditedBankSerials(_ serials: [String]) async throws -> Set<String>
    func apply(_ batch: LedgerBatchWrite) async throws

    func insertAccount(_ account: AccountRecord) async throws
    func insertUser(_ user: UserRecord) async throws
    func userExists(email: String) async throws -> Bool
    func insertApiKey(_ key: ApiKeyRecord) async throws
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
public protocol CofferStore: MoneyInReads, ConsoleReads {
    var backendName: String { get }
    func migrate() async throws
    func transaction<R: Sendable>(_ body: @escaping @Sendable (any StoreTransaction) async throws -> R) async throws -> R
    func shutdown() async

    func account(id: String) async throws -> AccountRecord?
    func user(id: String) async throws -> UserRecord?
    func user(email: String) async throws -> UserRecord?
    func apiKey(digest: String) async throws -> ApiKeyRecord?
    /// The stored answer under an idempotency key, read outside any write transaction.
    func idempotency(scope: String, key: String) async throws -> StoredIdempotency?
    func wallet(accountId: String) async throws -> WalletBalances?
    func freeze(accountId: String, id: String) async throws -> FreezeRecord?
    func charge(accountId: String, id: String) async throws -> ChargeRecord?
    func recharge(id: String) async throws -> RechargeRecord?
    /// Pending orders past their deadline, oldest first.
    func dueRecharges(nowMicros: Int64, limit: Int) async throws -> [RechargeRecord]
    func transactions(_ query: TransactionQuery) async throws -> [TransactionRecord]
    func entries(accountId: String) async throws -> [JournalEntryRecord]
    func dueFreezes(nowMicros: Int64, limit: Int) async throws -> [FreezeRecord]
    func accountIds(limit: Int) async throws -> [String]
    /// Newest first.
    func auditLog(accountId: String, limit: Int) async throws -> [AuditRecord]
    /// Recomputes every wallet from its postings and checks every entry balances (W9).
    func verify() async throws -> [VerifyProblem]
}
