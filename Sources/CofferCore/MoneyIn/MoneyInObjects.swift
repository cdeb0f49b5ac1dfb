/// Money-in sources the ledger credits: recharge codes (R8), remittances (T1) and bank statement lines (T2).

public enum CodeState: String, Codable, Sendable { case unused, redeemed, voided }

public struct RechargeCodeRecord: Codable, Sendable, Equatable {
    public var id: String
    public var batchId: String
    /// The printable code. Kept so that a batch can be exported again for printing; looked up only by `digest`.
    public var code: String
    public var digest: String
    public var amountMinor: Int64
    public var bucket: WalletBucket
    public var validUntilMicros: Int64
    public var state: CodeState
    public var redeemedBy: String?
    public var redeemedAtMicros: Int64?

    public init(id: String, batchId: String, code: String, digest: String, amountMinor: Int64, bucket: WalletBucket,
                validUntilMicros: Int64, state: CodeState, redeemedBy: String? = nil, redeemedAtMicros: Int64? = nil) {
        (self.id, self.batchId, self.code, self.digest, self.amountMinor) = (id, batchId, code, digest, amountMinor)
        (self.bucket, self.validUntilMicros, self.state) = (bucket, validUntilMicros, state)
        (self.redeemedBy, self.redeemedAtMicros) = (redeemedBy, redeemedAtMicros)
    }
}

public enum RemittanceState: String, Codable, Sendable { case pendingReview = "pending_review", approved, rejected }

/// T1: a customer's report of a bank transfer to the collection account, with the receipt, waiting for review.
public struct RemittanceRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var payerName: String
    public var payerAccount: String
    public var payerBank: String
    public var amountMinor: Int64
    /// The transfer date as the customer gave it (yyyy-MM-dd).
    public var remittedOn: String
    public var bankSerial: String?
    public var receiptPath: String
    public var receiptType: String
    public var receiptBytes: Int
    public var receiptSHA256: String
    public var state: RemittanceState
    public var rejectReason: String?
    public var resubmissionOf: String?
    public var reviewedBy: String?
    public var reviewedAtMicros: Int64?
    public var createdAtMicros: Int64

    public init(id: String, accountId: String, payerName: String, payerAccount: String, payerBank: String, amountMinor: Int64,
                remittedOn: String, bankSerial: String?, receiptPath: String, receiptType: String, receiptBytes: Int,
                receiptSHA256: String, state: RemittanceState, rejectReason: String? = nil, resubmissionOf: String? = nil,
                reviewedBy: String? = nil, reviewedAtMicros: Int64? = nil, createdAtMicros: Int64) {
        (self.id, self.accountId, self.payerName, self.payerAccount, self.payerBank) = (id, accountId, payerName, payerAccount, payerBank)
        (self.amountMinor, self.remittedOn, self.bankSerial) = (amountMinor, remittedOn, bankSerial)
        (self.receiptPath, self.receiptType, self.receiptBytes, self.receiptSHA256) = (receiptPath, receiptType, receiptBytes, receiptSHA256)
        (self.state, self.rejectReason, self.resubmissionOf) = (state, rejectReason, resubmissionOf)
        (self.reviewedBy, self.reviewedAtMicros, self.createdAtMicros) = (reviewedBy, reviewedAtMicros, createdAtMicros)
    }
}

/// T2: where an imported bank statement line stands.
public enum StatementLineState: String, Codable, Sendable, CaseIterable {
    /// Matched to an account and about to be credited (the credit follows in the ledger writer).
    case matched, credited
    /// 待确认: the payer name is not registered for the account.
    case toBeConfirmed = "to_be_confirmed"
    /// 待签署: a registered third-party payer whose payment agreement is not signed yet.
    case toBeSigned = "to_be_signed"
    case heldKeyword = "held_keyword"
    case heldCurrency = "held_currency"
    /// Right prefix, unknown identifier: an operator assigns it or refunds it.
    case unmatched, refunded

    /// States the ledger writer may credit from.
    public static let creditable: Set<StatementLineState> = [.matched, .toBeConfirmed, .toBeSigned, .unmatched]
}

public struct StatementLineRecord: Codable, Sendable, Equatable {
    public var id: String
    public var bankSerial: String
    public var bookedOn: String
    public var amountMinor: Int64
    public var currency: String
    public var payerName: String
    public var payerAccount: String
    public var payeeAccount: String
    public var memo: String
    public var state: StatementLineState
    public var accountId: String?
    public var note: String?
    /// "file:<name>" for an operator's upload, "push" for the bank's API.
    public var source: String
    public var importedAtMicros: Int64
    public var resolvedAtMicros: Int64?
    public var resolvedBy: String?

    public init(id: String, bankSerial: String, bookedOn: String, amountMinor: Int64, currency: String, payerName: String,
                payerAccount: String, payeeAccount: String, memo: String, state: StatementLineState, accountId: String?,
                note: String?, source: String, importedAtMicros: Int64, resolvedAtMicros: Int64? = nil, resolvedBy: String? = nil) {
        (self.id, self.bankSerial, self.bookedOn, self.amountMinor, self.currency) = (id, bankSerial, bookedOn, amountMinor, currency)
        (self.payerName, self.payerAccount, self.payeeAccount, self.memo) = (payerName, payerAccount, payeeAccount, memo)
        (self.state, self.accountId, self.note, self.source) = (state, accountId, note, source)
        (self.importedAtMicros, self.resolvedAtMicros, self.resolvedBy) = (importedAtMicros, resolvedAtMicros, resolvedBy)
    }
}

extension CofferError {
    public static func amountMismatch(_ givenMinor: Int64, expected expectedMinor: Int64) -> CofferError {
        CofferError(.amountMismatch, "The amount \(MoneyFormat.format(givenMinor)) differs from the expected \(MoneyFormat.format(expectedMinor)); nothing was credited.")
    }
    public static func codeAlreadyRedeemed(byThisAccount: Bool) -> CofferError {
        CofferError(.codeAlreadyRedeemed, byThisAccount
            ? "You have already redeemed this code; its amount is in your wallet."
            : "This code has already been redeemed. Each code can be used once.")
    }
    public static let codeVoided = CofferError(.codeVoided, "This code was withdrawn by the platform and can no longer be redeemed.")
    public static let codeExpired = CofferError(.codeExpired, "This code has expired and can no longer be redeemed.")
}
