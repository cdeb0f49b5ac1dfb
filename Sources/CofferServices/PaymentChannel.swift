import CofferCore

/// What the customer does next to pay: scan a QR code, follow a link, or (sandbox) call the simulated payer.
public struct PaymentInstruction: Codable, Sendable, Equatable {
    public var kind: String
    public var url: String
    public init(kind: String, url: String) {
        self.kind = kind
        self.url = url
    }
}

/// A channel's notification after its signature, freshness and format were checked.
public struct VerifiedNotification: Sendable, Equatable {
    public var rechargeId: String
    public var channelTradeNo: String
    public var amountMinor: Int64
    public init(rechargeId: String, channelTradeNo: String, amountMinor: Int64) {
        self.rechargeId = rechargeId
        self.channelTradeNo = channelTradeNo
        self.amountMinor = amountMinor
    }
}

/// The payment channel port (R2, R5). Real channels (WeChat Pay, Alipay) implement it in CofferChannels.
public protocol PaymentChannel: Sendable {
    var name: String { get }
    /// False for channels that only simulate a payer (the sandbox); the API says so on every recharge.
    var movesRealMoney: Bool { get }
    func paymentInstruction(for recharge: RechargeRecord) async throws -> PaymentInstruction
    func verifyNotification(headers: [String: String], body: [UInt8], nowMicros: Int64) throws(CofferError) -> VerifiedNotification
    /// Asks the channel about an order, for when its notification was lost or is late (R5: a paid order is never lost).
    func queryPayment(for recharge: RechargeRecord) async throws -> PaymentStatus
    /// The plain-text body the channel expects once a notification is durably handled (Alipay: "success"); nil for JSON.
    var notificationAcknowledgement: String? { get }
}

/// What a channel says about an order when asked.
public enum PaymentStatus: Sendable, Equatable {
    case paid(VerifiedNotification)
    /// Not (yet) paid, with the channel's own word for the state.
    case notPaid(String)
}

extension PaymentChannel {
    public var notificationAcknowledgement: String? { nil }
}

extension CofferError {
    public static let notificationSignatureInvalid = CofferError(
        "notification_signature_invalid", .unauthorized, "The notification's signature does not verify; it was refused and logged.")
    public static let notificationStale = CofferError(
        "notification_stale", .unauthorized, "The notification's timestamp is too old or in the future; it was refused.")
    public static func notificationMalformed(_ why: String) -> CofferError {
        .init("notification_malformed", .badRequest, "The notification could not be read: \(why).")
    }
}
