import CofferCore
import Foundation

public struct RechargeCodeSettings: Sendable {
    /// R8 (*default* 5 failed attempts per account per hour).
    public var maxFailedAttempts = 5
    public var attemptWindowSeconds: Int64 = 3_600
    public var maxCodesPerBatch = 10_000
    public init() {}
}

/// R8: recharge codes (充值码). Operators create batches; a customer redeems a code once, even when many try at once: the
/// code row is locked and moved to `redeemed` by the ledger writer in the same transaction as the credit.
public struct RechargeCodeService: Sendable {
    let store: any CofferStore
    let writer: LedgerWriter
    let clock: any Clock
    let ids: IdGenerator
    let settings: RechargeCodeSettings
    let inFlight = InFlightKeys()

    public init(store: any CofferStore, writer: LedgerWriter, clock: any Clock, ids: IdGenerator, settings: RechargeCodeSettings = .init()) {
        self.store = store
        self.writer = writer
        self.clock = clock
        self.ids = ids
        self.settings = settings
    }

    /// 32 symbols without 0/O, 1/I: 16 of them carry 80 random bits, printed as XXXX-XXXX-XXXX-XXXX.
    public static let alphabet = Array("23456789ABCDEFGHJKLMNPQRSTUVWXYZ")
    public static let codeLength = 16

    public static func newCode() -> String {
        var rng = SystemRandomNumberGenerator()
        let symbols = (0..<codeLength).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] }
        return stride(from: 0, to: codeLength, by: 4).map { String(symbols[$0..<($0 + 4)]) }.joined(separator: "-")
    }

    /// What a customer typed, in canonical form: case, spaces and dashes do not matter. Nil if it cannot be a code.
    public static func normalize(_ typed: String) -> String? {
        let symbols = typed.uppercased().filter { $0 != "-" && !$0.isWhitespace }
        guard symbols.count == codeLength, symbols.allSatisfy(alphabet.contains) else { return nil }
        let chars = Array(symbols)
        return stride(from: 0, to: codeLength, by: 4).map { String(chars[$0..<($0 + 4)]) }.joined(separator: "-")
    }

    public static func digest(_ code: String) -> String { Secrets.sha256Hex("coffer-code|" + code) }

    public func createBatch(amountText: String, bucket: WalletBucket, validUntilMicros: Int64, count: Int, memo: String?,
                            idempotencyKey: String, actor: String) async throws -> (CodeBatchRecord, replayed: Bool) {
        let amount = try MoneyFormat.parsePositive(amountText, maxMinor: 999_999_999)
        guard (1...settings.maxCodesPerBatch).contains(count) else {
            throw CofferError.invalidField("count", "must be between 1 and \(settings.maxCodesPerBatch)")
        }
        let now = clock.nowMicros()
        guard validUntilMicros > now else { throw CofferError.invalidField("validUntil", "must be in the future") }
        let memo = try TextRules.optional(memo, field: "memo", max: 200)
        let ctx = try IdempotencyContext(scope: "platform", key: idempotencyKey,
                                         fingerprint: "code-batch|\(amount)|\(bucket.rawValue)|\(validUntilMicros)|\(count)|\(memo ?? "")")
        if let earlier: CodeBatchRecord = try await Idempotent.replay(store, ctx) { return (earlier, true) }
        let batch = CodeBatchRecord(id: ids.make("cdb"), amountMinor: amount, bucket: bucket, validUntilMicros: validUntilMicros,
                                    count: count, memo: memo, createdBy: actor, createdAtMicros: now)
        var seen = Set<String>()
        var codes: [RechargeCodeRecord] = []
        while codes.count < count {
            let code = Self.newCode()
            guard seen.insert(code).inserted else { continue }
            codes.append(RechargeCodeRecord(id: ids.make("rcd"), batchId: batch.id, code: code, digest: Self.digest(code),
                                            amountMinor: amount, bucket: bucket, validUntilMicros: validUntilMicros, state: .unused))
        }
        let audit = AuditRecord(id: ids.make("aud"), accountId: nil, actor: actor, action: "codes.batch_created",
                                detail: "batch \(batch.id): \(count) × \(MoneyFormat.format(amount)) \(bucket.rawValue)", createdAtMicros: now)
        let made = codes
        return try await Idempotent.write(store, ctx, batch, at: now) { tx in
            try await tx.insertCodeBatch(batch, codes: made)
            try await tx.insertAudit(audit)
        }
    }

    /// The codes of a batch for printing; every export is audited.
    public func export(batchId: String, actor: String) async throws -> (CodeBatchRecord, [RechargeCodeRecord]) {
        guard let batch = try await store.codeBatch(id: batchId) else { throw CofferError.notFound(.codeBatchNotFound, batchId) }
        let codes = try await store.codes(batchId: batchId)
        let audit = AuditRecord(id: ids.make("aud"), accountId: nil, actor: actor, action: "codes.exported",
                                detail: "batch \(batchId): \(codes.count) codes", createdAtMicros: clock.nowMicros())
        try await store.transaction { tx in try await tx.insertAudit(audit) }
        return (batch, codes)
    }

    /// Withdraws the unused codes of a batch (a lost box of cards, a cancelled campaign). Redeemed codes stay redeemed;
    /// a redemption racing the void either committed first or is refused with `code_voided` (the ledger locks the code row
    /// and checks its state). A repeat voids nothing more and says so.
    public func voidBatch(batchId: String, reason rawReason: String, actor: String) async throws -> Int {
        let reason = try TextRules.required(rawReason, field: "reason", max: 200)
        guard try await store.codeBatch(id: batchId) != nil else { throw CofferError.notFound(.codeBatchNotFound, batchId) }
        let now = clock.nowMicros()
        let auditId = ids.make("aud")
        return try await store.transaction { tx in
            let voided = try await tx.voidUnusedCodes(batchId: batchId)
            try await tx.insertAudit(AuditRecord(id: auditId, accountId: nil, actor: actor, action: "codes.batch_voided",
                                                 detail: "batch \(batchId): \(voided) unused codes voided: \(reason)", createdAtMicros: now))
            return voided
        }
    }

    public static let attemptsExceeded = CofferError(.codeAttemptsExceeded, "Too many unsuccessful code redemptions; wait an hour and check the code on the card.")
    public static let notFound = CofferError(.codeNotFound, "No recharge code matches; check the 16 characters on the card (0/O and 1/I are not used).")

    /// Redeems a code into the account. Every attempt counts against the account until it succeeds (R8).
    public func redeem(accountId: String, typed: String, idempotencyKey: String, actor: String) async throws -> LedgerOutcome {
        let ctx = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "")
        return try await inFlight.run(IdempotencyKeyPair(scope: accountId, key: ctx.key)) {
            try await redeemOnce(accountId: accountId, typed: typed, ctx: ctx, actor: actor)
        }
    }

    private func redeemOnce(accountId: String, typed: String, ctx: IdempotencyContext, actor: String) async throws -> LedgerOutcome {
        // A replay is answered before an attempt is counted: asking again is not a guess.
        let isReplay = try await store.idempotencyKeyUsed(scope: accountId, key: ctx.key)
        let now = clock.nowMicros()
        let attemptId = ids.make("cat")
        let settings = self.settings
        if !isReplay {
            let allowed = try await store.transaction { tx in
                try await tx.reserveCodeAttempt(accountId: accountId, id: attemptId, nowMicros: now,
                                                sinceMicros: now - settings.attemptWindowSeconds * 1_000_000,
                                                limit: settings.maxFailedAttempts)
            }
            guard allowed else { throw Self.attemptsExceeded }
        }
        guard let code = Self.normalize(typed), let record = try await store.code(digest: Self.digest(code)) else {
            throw Self.notFound
        }
        let outcome = try await writer.submit(LedgerRequest(.redeemCode(accountId: accountId, codeId: record.id),
                                                            idempotencyKey: ctx.key, actor: actor))
        let succeeded: Bool
        switch outcome.result {
        case .success: succeeded = true
        // Asking again for a code this account already has is not a guess.
        case .failure(let error) where error.code == .codeAlreadyRedeemed:
            succeeded = try await store.code(digest: record.digest)?.redeemedBy == accountId
        case .failure: succeeded = false
        }
        if succeeded && !isReplay { try await store.transaction { tx in try await tx.deleteCodeAttempt(accountId: accountId, id: attemptId) } }
        return outcome
    }
}
