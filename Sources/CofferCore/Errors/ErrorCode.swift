/// Every refusal Coffer can give, as a stable snake_case code (the API's `code`, the catalogs' `error_<code>` key) with its
/// HTTP status in one place. Call sites name a case; nothing compares codes as strings. The OpenAPI document lists the
/// raw values and a test keeps the two equal. Append new cases; never rename a raw value (clients match on them).
public enum ErrorCode: String, CaseIterable, Codable, Sendable {
    case amountInvalid = "amount_invalid"
    case amountTooManyDecimals = "amount_too_many_decimals"
    case amountOutOfRange = "amount_out_of_range"
    case amountNotPositive = "amount_not_positive"
    case amountNotString = "amount_not_string"
    case arithmeticOverflow = "arithmetic_overflow"
    case insufficientBalance = "insufficient_balance"
    case accountInArrears = "account_in_arrears"
    case freezeAlreadyResolved = "freeze_already_resolved"
    case freezeNotDue = "freeze_not_due"
    case captureExceedsFreeze = "capture_exceeds_freeze"
    case refundExceedsCharge = "refund_exceeds_charge"
    case adjustmentBelowZero = "adjustment_below_zero"
    case amountMismatch = "amount_mismatch"
    case duplicateId = "duplicate_id"
    case invalidField = "invalid_field"
    case idempotencyKeyRequired = "idempotency_key_required"
    case idempotencyKeyInvalid = "idempotency_key_invalid"
    case idempotencyConflict = "idempotency_conflict"
    case idempotencyKeyInUse = "idempotency_key_in_use"
    case unauthorized = "unauthorized"
    case forbidden = "forbidden"
    case accountNotFound = "account_not_found"
    case userNotFound = "user_not_found"
    case apiKeyNotFound = "api_key_not_found"
    case freezeNotFound = "freeze_not_found"
    case chargeNotFound = "charge_not_found"
    case rechargeNotFound = "recharge_not_found"
    case remittanceNotFound = "remittance_not_found"
    case statementLineNotFound = "statement_line_not_found"
    case payerNameNotFound = "payer_name_not_found"
    case codeBatchNotFound = "code_batch_not_found"
    case productNotFound = "product_not_found"
    case productChanged = "product_changed"
    case codeNotFound = "code_not_found"
    case channelRefundNotFound = "channel_refund_not_found"
    case routeNotFound = "route_not_found"
    case methodNotAllowed = "method_not_allowed"
    case badRequest = "bad_request"
    case bodyRequired = "body_required"
    case bodyTooLarge = "body_too_large"
    case malformedJson = "malformed_json"
    case batchSizeInvalid = "batch_size_invalid"
    case multipartRequired = "multipart_required"
    case multipartInvalid = "multipart_invalid"
    case emailTaken = "email_taken"
    case signInFailed = "sign_in_failed"
    case signInThrottled = "sign_in_throttled"
    case currentPasswordWrong = "current_password_wrong"
    case csrfFailed = "csrf_failed"
    case sandboxDisabled = "sandbox_disabled"
    case channelUnavailable = "channel_unavailable"
    case channelNotConfigured = "channel_not_configured"
    case channelRefused = "channel_refused"
    case channelUnreachable = "channel_unreachable"
    case feeRuleInvalid = "fee_rule_invalid"
    case rechargeRateLimited = "recharge_rate_limited"
    case rechargeLimitExceeded = "recharge_limit_exceeded"
    case rechargePayerLimit = "recharge_payer_limit"
    case rechargeAlreadyPaid = "recharge_already_paid"
    case rechargeRefused = "recharge_refused"
    case notificationSignatureInvalid = "notification_signature_invalid"
    case notificationStale = "notification_stale"
    case notificationMalformed = "notification_malformed"
    case notificationNotSuccess = "notification_not_success"
    case codeAlreadyRedeemed = "code_already_redeemed"
    case codeExpired = "code_expired"
    case codeVoided = "code_voided"
    case codeAttemptsExceeded = "code_attempts_exceeded"
    case receiptTooLarge = "receipt_too_large"
    case receiptTypeUnsupported = "receipt_type_unsupported"
    case receiptMissing = "receipt_missing"
    case receiptNotStored = "receipt_not_stored"
    case remittanceAlreadyPending = "remittance_already_pending"
    case remittanceAlreadyReviewed = "remittance_already_reviewed"
    case remittanceNotRejected = "remittance_not_rejected"
    case bankSerialAlreadyCredited = "bank_serial_already_credited"
    case dedicatedAccountUnavailable = "dedicated_account_unavailable"
    case statementCsvInvalid = "statement_csv_invalid"
    case statementTooLong = "statement_too_long"
    case statementLineChanged = "statement_line_changed"
    case statementLineForeignCurrency = "statement_line_foreign_currency"
    case statementLineNotCreditable = "statement_line_not_creditable"
    case statementLineNotCredited = "statement_line_not_credited"
    case statementLineNotRefundable = "statement_line_not_refundable"
    case catalogMissing = "catalog_missing"
    case templatesMissing = "templates_missing"
    case demoCredentialsUnwritable = "demo_credentials_unwritable"
    case resourceNotFound = "resource_not_found"
    case projectNotFound = "project_not_found"
    case projectNameTaken = "project_name_taken"
    case usageRecordConflict = "usage_record_conflict"
    case statisticPeriodLocked = "statistic_period_locked"
    case settlementRunInProgress = "settlement_run_in_progress"
    case settlementNotFound = "settlement_not_found"
    case sandboxClockDisabled = "sandbox_clock_disabled"
    case metricsDisabled = "metrics_disabled"
    case orderNotFound = "order_not_found"
    case orderStateConflict = "order_state_conflict"
    case orderPaymentNotFound = "order_payment_not_found"
    case planNotFound = "plan_not_found"
    case couponNotFound = "coupon_not_found"
    case couponNotApplicable = "coupon_not_applicable"
    case couponsNotCombinable = "coupons_not_combinable"
    case couponCodeNotFound = "coupon_code_not_found"
    case couponCodeRedeemed = "coupon_code_redeemed"
    case webhookEndpointNotFound = "webhook_endpoint_not_found"
    case resourceTermChanged = "resource_term_changed"
    case nothingToRefund = "nothing_to_refund"
    case resourceRefundNotFound = "resource_refund_not_found"
    case shuttingDown = "shutting_down"
    case internalError = "internal_error"

    public var kind: CofferError.Kind {
        switch self {
        case .amountInvalid, .amountTooManyDecimals, .amountOutOfRange, .amountNotPositive, .amountNotString,
             .invalidField, .idempotencyKeyRequired, .idempotencyKeyInvalid, .badRequest, .bodyRequired, .malformedJson,
             .batchSizeInvalid, .multipartRequired, .multipartInvalid, .currentPasswordWrong,
             .feeRuleInvalid, .notificationMalformed, .receiptTypeUnsupported, .statementCsvInvalid:
            .badRequest
        case .arithmeticOverflow, .insufficientBalance, .accountInArrears, .captureExceedsFreeze, .refundExceedsCharge,
             .adjustmentBelowZero, .amountMismatch, .rechargeLimitExceeded, .notificationNotSuccess, .channelUnavailable,
             .couponNotApplicable, .couponsNotCombinable, .nothingToRefund:
            .unprocessable
        case .freezeAlreadyResolved, .freezeNotDue, .duplicateId, .idempotencyConflict, .idempotencyKeyInUse, .emailTaken,
             .rechargeAlreadyPaid, .rechargeRefused, .codeAlreadyRedeemed, .codeExpired, .codeVoided,
             .remittanceAlreadyPending, .remittanceAlreadyReviewed, .remittanceNotRejected, .bankSerialAlreadyCredited,
             .statementLineChanged, .statementLineForeignCurrency, .statementLineNotCreditable, .statementLineNotCredited,
             .statementLineNotRefundable, .productChanged, .projectNameTaken, .usageRecordConflict, .statisticPeriodLocked,
             .settlementRunInProgress, .orderStateConflict, .couponCodeRedeemed, .resourceTermChanged:
            .conflict
        case .unauthorized, .signInFailed, .notificationSignatureInvalid, .notificationStale:
            .unauthorized
        case .forbidden, .csrfFailed:
            .forbidden
        case .accountNotFound, .userNotFound, .apiKeyNotFound, .freezeNotFound, .chargeNotFound, .rechargeNotFound, .remittanceNotFound,
             .statementLineNotFound, .payerNameNotFound, .codeBatchNotFound, .productNotFound, .codeNotFound, .channelRefundNotFound, .routeNotFound,
             .resourceNotFound, .projectNotFound, .settlementNotFound, .sandboxClockDisabled, .metricsDisabled,
             .sandboxDisabled, .receiptMissing, .orderNotFound, .orderPaymentNotFound, .planNotFound, .couponNotFound,
             .couponCodeNotFound, .webhookEndpointNotFound, .resourceRefundNotFound:
            .notFound
        case .methodNotAllowed:
            .methodNotAllowed
        case .bodyTooLarge, .receiptTooLarge, .statementTooLong:
            .payloadTooLarge
        case .signInThrottled, .rechargeRateLimited, .rechargePayerLimit, .codeAttemptsExceeded:
            .tooManyRequests
        case .channelNotConfigured, .channelRefused, .channelUnreachable:
            .badGateway
        case .receiptNotStored, .dedicatedAccountUnavailable, .catalogMissing, .templatesMissing,
             .demoCredentialsUnwritable, .shuttingDown, .internalError:
            .internalError
        }
    }
}

extension ErrorCode {
    /// The gateway's faults: a payment channel refused, could not be reached, or is not set up here.
    public static let channelFaults: Set<ErrorCode> = [.channelRefused, .channelUnreachable, .channelNotConfigured]
}
