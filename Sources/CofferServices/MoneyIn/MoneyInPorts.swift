import CofferCore

/// Reads for money that arrives without a payment channel: recharge codes, remittances, statement lines, messages.
public protocol MoneyInReads: Sendable {
    func bankSerialCredited(_ serial: String) async throws -> Bool
    func code(digest: String) async throws -> RechargeCodeRecord?
    func codeBatch(id: String) async throws -> CodeBatchRecord?
    /// Newest first.
    func codeBatches(limit: Int) async throws -> [CodeBatchRecord]
    func codes(batchId: String) async throws -> [RechargeCodeRecord]
    /// Through the remittance's lookup row (the review queue names it by id alone).
    func remittance(id: String) async throws -> RemittanceRecord?
    func remittance(accountId: String, id: String) async throws -> RemittanceRecord?
    /// For one account newest first; for all accounts (the review queue) oldest first.
    func remittances(accountId: String?, state: RemittanceState?, limit: Int) async throws -> [RemittanceRecord]
    func remittances(bankSerial: String) async throws -> [RemittanceRecord]
    func dedicatedAccount(accountId: String) async throws -> DedicatedAccountRecord?
    func dedicatedAccount(identifier: String) async throws -> DedicatedAccountRecord?
    func payerNames(accountId: String) async throws -> [PayerNameRecord]
    func statementLine(id: String) async throws -> StatementLineRecord?
    func statementLine(bankSerial: String) async throws -> StatementLineRecord?
    /// Oldest first.
    func statementLines(accountId: String?, states: [StatementLineState], limit: Int) async throws -> [StatementLineRecord]
    /// Newest first.
    func siteMessages(accountId: String, limit: Int) async throws -> [SiteMessageRecord]
    func undeliveredMessages(limit: Int) async throws -> [SiteMessageRecord]
    func markDelivered(_ messages: [ObjectKey], atMicros: Int64) async throws
    func channelRefund(id: String) async throws -> ChannelRefundRecord?
    /// Pending and processing refunds whose next attempt is due, oldest first.
    func dueChannelRefunds(nowMicros: Int64, limit: Int) async throws -> [ChannelRefundRecord]
    /// Newest first; all accounts when `accountId` is nil, all states when `states` is empty.
    func channelRefunds(accountId: String?, states: [ChannelRefundState], limit: Int) async throws -> [ChannelRefundRecord]
}

/// Writes of the same, inside a store transaction.
public protocol MoneyInWrites: Sendable {
    func insertCodeBatch(_ batch: CodeBatchRecord, codes: [RechargeCodeRecord]) async throws
    /// False when the account has used up its attempts in the window (R8).
    func reserveCodeAttempt(accountId: String, id: String, nowMicros: Int64, sinceMicros: Int64, limit: Int) async throws -> Bool
    func deleteCodeAttempt(accountId: String, id: String) async throws
    /// Marks the batch's unused codes voided; returns how many.
    func voidUnusedCodes(batchId: String) async throws -> Int
    func insertRemittance(_ r: RemittanceRecord) async throws
    func rejectRemittance(accountId: String, id: String, reason: String, actor: String, nowMicros: Int64) async throws -> Bool
    func insertDedicatedAccount(_ d: DedicatedAccountRecord) async throws
    /// False when a line with the same bank serial number exists (T2: a line is processed once).
    func insertStatementLine(_ l: StatementLineRecord) async throws -> Bool
    func updateStatementLine(id: String, from: StatementLineState, to: StatementLineState, accountId: String?, note: String?,
                             actor: String?, nowMicros: Int64?) async throws -> Bool
    func upsertPayerName(_ p: PayerNameRecord) async throws
    func signAgreement(accountId: String, name: String, actor: String, nowMicros: Int64) async throws -> Bool
    func insertMessages(_ messages: [SiteMessageRecord]) async throws
    /// R7: the account's payers ("channel:payer") of credited recharges paid since a moment.
    func recentPayers(accountId: String, sinceMicros: Int64) async throws -> Set<String>
    /// Marks a pending or expired recharge refused with the trade that paid it; false when it is no longer either.
    func refuseRecharge(_ recharge: RechargeRecord) async throws -> Bool
    func insertChannelRefund(_ refund: ChannelRefundRecord) async throws
    /// Writes the refund's new state only if it is still in `from`; false otherwise.
    func updateChannelRefund(_ refund: ChannelRefundRecord, from: ChannelRefundState) async throws -> Bool
}
