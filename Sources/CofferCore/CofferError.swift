/// Every refusal Coffer can give, with a stable machine code. The HTTP layer maps `kind` to a status;
/// the code and detail travel unchanged to the client.
public struct CofferError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case badRequest       // 400: the request itself is malformed or out of range
        case unauthorized     // 401
        case forbidden        // 403
        case notFound         // 404
        case conflict         // 409: wrong state, idempotency conflict, duplicate
        case unprocessable    // 422: well-formed but refused by a money rule
        case payloadTooLarge  // 413
        case tooManyRequests  // 429
        case internalError    // 500
        case badGateway       // 502: a payment channel refused or failed
    }

    public let code: String
    public let kind: Kind
    public let detail: String

    public init(_ code: String, _ kind: Kind, _ detail: String) {
        self.code = code
        self.kind = kind
        self.detail = detail
    }

    public var description: String { "\(code): \(detail)" }
}

extension CofferError {
    // Money format and range (M1, M4, R1)
    public static func amountInvalid(_ field: String, _ value: String) -> CofferError {
        .init("amount_invalid", .badRequest,
              "\(field) must be a decimal string with at most two decimals, like \"12.30\"; got \"\(value.prefix(40))\".")
    }
    public static func amountTooManyDecimals(_ field: String, _ value: String) -> CofferError {
        .init("amount_too_many_decimals", .badRequest,
              "\(field) has more than two decimals (\"\(value.prefix(40))\"); amounts are in yuan with at most 2 decimals.")
    }
    public static func amountOutOfRange(_ field: String, min: String, max: String) -> CofferError {
        .init("amount_out_of_range", .badRequest, "\(field) must be between \(min) and \(max).")
    }
    public static func amountNotPositive(_ field: String) -> CofferError {
        .init("amount_not_positive", .badRequest, "\(field) must be greater than 0.00.")
    }
    public static let arithmeticOverflow = CofferError(
        "arithmetic_overflow", .unprocessable, "The operation would overflow a money amount; it was refused.")

    // Wallet rules (W3, W4, W5)
    public static func insufficientBalance(shortfallMinor: Int64) -> CofferError {
        .init("insufficient_balance", .unprocessable,
              "Available balance is not enough: recharge at least \(MoneyFormat.format(shortfallMinor)) and try again.")
    }
    public static func accountInArrears(balanceMinor: Int64) -> CofferError {
        .init("account_in_arrears", .unprocessable,
              "The account is in arrears (balance \(MoneyFormat.format(balanceMinor))); recharge at least \(MoneyFormat.format(-balanceMinor)) before new purchases.")
    }
    public static func freezeAlreadyResolved(_ id: String, state: String) -> CofferError {
        .init("freeze_already_resolved", .conflict, "Freeze \(id) is already \(state); a freeze resolves exactly once.")
    }
    public static func captureExceedsFreeze(frozenMinor: Int64) -> CofferError {
        .init("capture_exceeds_freeze", .unprocessable,
              "The capture amount is larger than the frozen amount \(MoneyFormat.format(frozenMinor)).")
    }
    public static func refundExceedsCharge(refundableMinor: Int64) -> CofferError {
        .init("refund_exceeds_charge", .unprocessable,
              "The refund is larger than what is left to refund on this charge (\(MoneyFormat.format(refundableMinor))).")
    }
    public static func adjustmentBelowZero(bucket: String) -> CofferError {
        .init("adjustment_below_zero", .unprocessable, "The adjustment would make \(bucket) negative; adjust by a smaller amount.")
    }

    // Requests
    public static func invalidField(_ field: String, _ detail: String) -> CofferError {
        .init("invalid_field", .badRequest, "\(field): \(detail)")
    }
    public static func notFound(_ what: String, _ id: String) -> CofferError {
        .init("\(what)_not_found", .notFound, "No \(what) \(id.prefix(80)) exists for this caller.")
    }
    public static let idempotencyKeyRequired = CofferError(
        "idempotency_key_required", .badRequest,
        "Send an Idempotency-Key header (1–100 characters) with every request that changes state.")
    public static let idempotencyKeyInvalid = CofferError(
        "idempotency_key_invalid", .badRequest,
        "Idempotency-Key must be 1–100 visible ASCII characters.")
    public static let idempotencyConflict = CofferError(
        "idempotency_conflict", .conflict,
        "This Idempotency-Key was already used with a different request; use a new key for a new request.")
    public static let forbidden = CofferError(
        "forbidden", .forbidden, "Your role does not allow this action.")
    public static let unauthorized = CofferError(
        "unauthorized", .unauthorized, "Send a valid API key as 'Authorization: Bearer <key>'.")
}
