/// A refusal: a stable code from `ErrorCode` and a detail for the API's caller (English, saying what to fix). People in the
/// console read the catalogs' text for the code instead. The HTTP layer maps `kind` to a status.
public struct CofferError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: String, Sendable {
        case badRequest       // 400: the request itself is malformed or out of range
        case unauthorized     // 401
        case forbidden        // 403
        case notFound         // 404
        case methodNotAllowed // 405
        case conflict         // 409: wrong state, idempotency conflict, duplicate
        case unprocessable    // 422: well-formed but refused by a money rule or by this server's set-up (a channel not enabled)
        case payloadTooLarge  // 413
        case tooManyRequests  // 429
        case internalError    // 500
        case badGateway       // 502: a payment channel refused or failed
    }

    public let code: ErrorCode
    public let detail: String
    /// Values the catalogs' text for this code may name as `{key}` (amounts as decimal strings, states, field names).
    public let parameters: [String: String]

    public init(_ code: ErrorCode, _ detail: String, _ parameters: [String: String] = [:]) {
        self.code = code
        self.detail = detail
        self.parameters = parameters
    }

    public var kind: Kind { code.kind }
    public var description: String { "\(code.rawValue): \(detail)" }
}

extension CofferError {
    // Money format and range (M1, M4, R1)
    public static func amountInvalid(_ field: String, _ value: String) -> CofferError {
        .init(.amountInvalid, "\(field) must be a decimal string with at most two decimals, like \"12.30\"; got \"\(value.prefix(40))\".")
    }
    public static func amountTooManyDecimals(_ field: String, _ value: String) -> CofferError {
        .init(.amountTooManyDecimals, "\(field) has more than two decimals (\"\(value.prefix(40))\"); amounts are in yuan with at most 2 decimals.")
    }
    public static func amountOutOfRange(_ field: String, min: String, max: String) -> CofferError {
        .init(.amountOutOfRange, "\(field) must be between \(min) and \(max).",
              ["min": min, "max": max])
    }
    public static func amountNotPositive(_ field: String) -> CofferError {
        .init(.amountNotPositive, "\(field) must be greater than 0.00.")
    }
    public static let arithmeticOverflow = CofferError(.arithmeticOverflow, "The operation would overflow a money amount; it was refused.")

    // Wallet rules (W3, W4, W5)
    public static func insufficientBalance(shortfallMinor: Int64) -> CofferError {
        .init(.insufficientBalance, "Available balance is not enough: recharge at least \(MoneyFormat.format(shortfallMinor)) and try again.",
              ["shortfall": MoneyFormat.format(shortfallMinor)])
    }
    public static func accountInArrears(balanceMinor: Int64) -> CofferError {
        .init(.accountInArrears, "The account is in arrears (balance \(MoneyFormat.format(balanceMinor))); recharge at least \(MoneyFormat.format(-balanceMinor)) before new purchases.",
              ["shortfall": MoneyFormat.format(-balanceMinor)])
    }
    public static func freezeAlreadyResolved(_ id: String, state: String) -> CofferError {
        .init(.freezeAlreadyResolved, "Freeze \(id) is already \(state); a freeze resolves exactly once.",
              ["state": state])
    }
    public static func captureExceedsFreeze(frozenMinor: Int64) -> CofferError {
        .init(.captureExceedsFreeze, "The capture amount is larger than the frozen amount \(MoneyFormat.format(frozenMinor)).",
              ["frozen": MoneyFormat.format(frozenMinor)])
    }
    public static func refundExceedsCharge(refundableMinor: Int64) -> CofferError {
        .init(.refundExceedsCharge, "The refund is larger than what is left to refund on this charge (\(MoneyFormat.format(refundableMinor))).",
              ["refundable": MoneyFormat.format(refundableMinor)])
    }
    public static func adjustmentBelowZero(bucket: String) -> CofferError {
        .init(.adjustmentBelowZero, "The adjustment would make \(bucket) negative; adjust by a smaller amount.")
    }

    // Requests
    public static func invalidField(_ field: String, _ detail: String) -> CofferError {
        .init(.invalidField, "\(field): \(detail)",
              ["field": field])
    }
    /// `code` is one of the `…_not_found` cases; the detail names the thing it could not find.
    public static func notFound(_ code: ErrorCode, _ id: String) -> CofferError {
        let what = String(code.rawValue.dropLast("_not_found".count).map { $0 == "_" ? " " : $0 })
        return .init(code, "No \(what) \(id.prefix(80)) exists for this caller.")
    }
    public static let idempotencyKeyRequired = CofferError(.idempotencyKeyRequired, "Send an Idempotency-Key header (1–100 characters) with every request that changes state.")
    public static let idempotencyKeyInvalid = CofferError(.idempotencyKeyInvalid, "Idempotency-Key must be 1–100 visible ASCII characters.")
    public static let idempotencyConflict = CofferError(.idempotencyConflict, "This Idempotency-Key was already used with a different request; use a new key for a new request.")
    public static let forbidden = CofferError(.forbidden, "Your role does not allow this action.")
    public static let unauthorized = CofferError(.unauthorized, "Send a valid API key as 'Authorization: Bearer <key>'.")
}
