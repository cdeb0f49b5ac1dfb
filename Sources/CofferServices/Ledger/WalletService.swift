import CofferCore

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
