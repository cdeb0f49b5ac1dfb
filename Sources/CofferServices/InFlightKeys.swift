import CofferCore

/// Idempotency keys whose request is running in this process. A second request with the same key while the first runs
/// gets the retryable `idempotency_key_in_use` instead of racing it: for writes whose side effects come before the ledger
/// sees the key (a code redemption counts an attempt first), the race would answer with the limit's error, not the
/// first answer. Bounded: a key is held only while its request runs.
public actor InFlightKeys {
    private var running: Set<IdempotencyKeyPair> = []
    public init() {}

    public func run<R: Sendable>(_ pair: IdempotencyKeyPair, _ body: @Sendable () async throws -> R) async throws -> R {
        guard running.insert(pair).inserted else { throw CofferError.idempotencyKeyInUse }
        defer { running.remove(pair) }
        return try await body()
    }
}

extension CofferError {
    public static let idempotencyKeyInUse = CofferError(
        .idempotencyKeyInUse, "A request with this Idempotency-Key is still being processed; retry it in a moment to get its answer.")
}
