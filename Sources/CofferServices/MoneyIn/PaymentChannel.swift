import Metrics
import CofferCore

/// What the customer does next to pay: scan a QR code, follow a link, or (sandbox) call the simulated payer.
public struct PaymentInstruction: Codable, Sendable, Equatable {
    /// `url` is to be shown as a QR code for the customer to scan (WeChat Pay Native, Alipay precreate).
    public static let qrKind = "qr"
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
    /// Who paid, in the channel's own terms (WeChat Pay `payer.openid`, Alipay `buyer_id`); nil when the channel does not
    /// say. R7 counts distinct payers per account.
    public var payerId: String?
    public init(rechargeId: String, channelTradeNo: String, amountMinor: Int64, payerId: String? = nil) {
        self.rechargeId = rechargeId
        self.channelTradeNo = channelTradeNo
        self.amountMinor = amountMinor
        self.payerId = payerId
    }
}

/// A refund of (part of) a paid order back to its payer (原路退回). `refundId` is Coffer's refund number (WeChat Pay
/// `out_refund_no`, Alipay `out_request_no`): asking again with the same number never refunds twice.
public struct ChannelRefundRequest: Sendable, Equatable {
    public var refundId: String
    public var rechargeId: String
    public var channelTradeNo: String
    public var refundMinor: Int64
    /// What the payer paid for the order (amount + R4 fee); WeChat Pay wants it with every refund.
    public var orderTotalMinor: Int64
    public var reason: String
    public init(refundId: String, rechargeId: String, channelTradeNo: String, refundMinor: Int64, orderTotalMinor: Int64,
                reason: String) {
        (self.refundId, self.rechargeId, self.channelTradeNo, self.refundMinor, self.orderTotalMinor, self.reason) =
            (refundId, rechargeId, channelTradeNo, refundMinor, orderTotalMinor, reason)
    }
}

/// What a channel says about a refund.
public enum ChannelRefundStatus: Sendable, Equatable {
    /// The money is on its way back (or back); the channel's refund number.
    case succeeded(channelRefundNo: String)
    /// Accepted, not finished; ask again later.
    case processing(channelRefundNo: String?)
    /// The channel will not refund (closed, abnormal, refused for good), in its own words. Needs an operator.
    case failed(String)
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
    /// Refunds a paid order to its payer. Thrown errors mean "not known to have happened": the caller asks again later
    /// with the same refund number.
    func refund(_ request: ChannelRefundRequest) async throws -> ChannelRefundStatus
    /// Asks how a refund asked for earlier stands.
    func queryRefund(_ request: ChannelRefundRequest) async throws -> ChannelRefundStatus
    /// Fetches keys the channel rotates (WeChat Pay's platform certificates); returns a line for the log, nil if nothing to do.
    func refreshCredentials() async throws -> String?
}

/// What a channel says about an order when asked.
public enum PaymentStatus: Sendable, Equatable {
    case paid(VerifiedNotification)
    /// Not (yet) paid, with the channel's own word for the state.
    case notPaid(String)
}

extension PaymentChannel {
    public var notificationAcknowledgement: String? { nil }
    public func refreshCredentials() async throws -> String? { nil }
}

extension CofferError {
    public static let notificationSignatureInvalid = CofferError(.notificationSignatureInvalid, "The notification's signature does not verify; it was refused and logged.")
    public static let notificationStale = CofferError(.notificationStale, "The notification's timestamp is too old or in the future; it was refused.")
    public static func notificationMalformed(_ why: String) -> CofferError {
        .init(.notificationMalformed, "The notification could not be read: \(why).")
    }
}

/// R2's channels and what Coffer does with each. A channel is offered to customers only when Coffer speaks its protocol
/// and it is configured; the others are listed as unavailable so that nobody mistakes them for working ones.
public enum ChannelCatalog {
    public struct Entry: Codable, Sendable, Equatable {
        public var name: String
        public var title: String
        public var currency: String
        /// "real" (Coffer speaks the protocol), "test" (moves no money) or "not_implemented".
        public var protocolStatus: String
        public var enabled: Bool
        public var note: String?
    }

    static let notImplemented: [(String, String, String)] = [
        ("qqwallet", "QQ 钱包 QQ Wallet", "CNY"), ("netbank", "网银 (财付通) Net banking via Tenpay", "CNY"),
        ("unionpay", "云闪付 UnionPay", "CNY"), ("wechatpay_hk", "WeChat Pay HK", "HKD"), ("alipay_hk", "AlipayHK", "HKD"),
        ("intl_card", "国际信用卡 International card (via WeChat)", "CNY"), ("paypal", "PayPal", "USD"),
    ]

    public static func entries(enabled channels: [any PaymentChannel]) -> [Entry] {
        let titles = ["wechatpay": "微信支付 WeChat Pay (Native)", "alipay": "支付宝 Alipay (当面付)", "sandbox": "Sandbox (test channel)"]
        var out = channels.sorted { $0.name < $1.name }.map {
            Entry(name: $0.name, title: titles[$0.name] ?? $0.name, currency: "CNY", protocolStatus: $0.movesRealMoney ? "real" : "test",
                  enabled: true, note: $0.movesRealMoney ? nil : "Moves no money; for trying Coffer out.")
        }
        for (name, title, currency) in notImplemented {
            out.append(Entry(name: name, title: title, currency: currency, protocolStatus: "not_implemented", enabled: false,
                             note: "Coffer does not speak this channel's protocol yet; it cannot be enabled."))
        }
        return out
    }
}

/// Calls to payment channels that failed, by channel and kind (`unreachable`: no answer; `refused`: an HTTP error
/// status), exported at `/metrics` as `coffer_channel_errors_total`.
public enum ChannelMetrics {
    public static func error(channel: String, kind: String) {
        Counter(label: "coffer_channel_errors_total", dimensions: [("channel", channel), ("kind", kind)]).increment()
    }
}
