import AsyncHTTPClient
import CofferCore
import CofferServices
import Foundation
import NIOCore
import NIOHTTP1

/// WeChat Pay Native pay (扫码支付) as a payment channel: a recharge becomes a Native order whose `code_url` the customer
/// scans; WeChat Pay's notification, verified and decrypted by `WeChatPayV3Protocol`, credits it through the shared handler.
public struct WeChatPayChannel: PaymentChannel {
    public static let channelName = "wechatpay"
    public static let nativeOrderPath = "/v3/pay/transactions/native"
    /// Every call to WeChat Pay gives up after this long; the customer can retry, the order number stays the same.
    public static let timeoutSeconds: Int64 = 10

    public let name = channelName
    public let movesRealMoney = true
    public let wire: WeChatPayV3Protocol
    /// `https://api.mch.weixin.qq.com` in production; configurable so that tests (and a provider's proxy) can stand in.
    public let baseURL: String
    /// Where WeChat Pay sends notifications: this server's `/v1/channels/wechatpay/notifications`, as seen from outside.
    public let notifyURL: String
    private let http: HTTPClient
    private let clock: any Clock

    public init(wire: WeChatPayV3Protocol, baseURL: String, notifyURL: String, clock: any Clock = SystemClock(),
                http: HTTPClient = .shared) {
        self.wire = wire
        self.baseURL = baseURL.hasSuffix("/") ? String(baseURL.dropLast()) : baseURL
        self.notifyURL = notifyURL
        self.clock = clock
        self.http = http
    }

    struct NativeOrder: Encodable {
        struct Amount: Encodable {
            var total: Int64
            var currency = "CNY"
        }
        var appid: String
        var mchid: String
        var description: String
        var out_trade_no: String
        var notify_url: String
        var amount: Amount
    }

    struct NativeOrderAnswer: Decodable { var code_url: String }
    struct ErrorAnswer: Decodable {
        var code: String
        var message: String
    }

    /// Creates (or, for an order number WeChat Pay already knows with the same content, finds again) the Native order.
    public func paymentInstruction(for recharge: RechargeRecord) async throws -> PaymentInstruction {
        let order = NativeOrder(appid: wire.settings.appId, mchid: wire.settings.merchantId,
                                description: "账户充值 \(recharge.id)", out_trade_no: recharge.id, notify_url: notifyURL,
                                amount: .init(total: recharge.totalMinor))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let body = Array(try encoder.encode(order))
        let (status, headers, answer) = try await send("POST", Self.nativeOrderPath, body: body)
        guard (200..<300).contains(status) else {
            let reason = (try? JSONDecoder().decode(ErrorAnswer.self, from: Data(answer))).map { "\($0.code): \($0.message)" }
            throw CofferError(.channelRefused, "WeChat Pay refused the order (HTTP \(status)\(reason.map { ", \($0)" } ?? "")); try again later or use another channel.")
        }
        let codeURL = try trusted(headers, answer) { body throws(CofferError) in
            guard let decoded = try? JSONDecoder().decode(NativeOrderAnswer.self, from: Data(body)),
                  decoded.code_url.hasPrefix("weixin://") else {
                throw CofferError(.channelRefused, "WeChat Pay answered without a code_url.")
            }
            return decoded.code_url
        }
        return PaymentInstruction(kind: PaymentInstruction.qrKind, url: codeURL)
    }

    public func verifyNotification(headers: [String: String], body: [UInt8], nowMicros: Int64) throws(CofferError) -> VerifiedNotification {
        try wire.verifyPaymentNotification(headers: headers, body: body, nowMicros: nowMicros)
    }

    /// 查询订单 by out_trade_no: a signed GET; an order WeChat Pay does not know is simply not paid.
    public func queryPayment(for recharge: RechargeRecord) async throws -> PaymentStatus {
        let path = "/v3/pay/transactions/out-trade-no/\(recharge.id)?mchid=\(wire.settings.merchantId)"
        let (status, headers, answer) = try await send("GET", path, body: [])
        if status == 404 { return .notPaid("ORDER_NOT_EXIST") }
        guard status == 200 else {
            throw CofferError(.channelRefused, "WeChat Pay refused the order query (HTTP \(status)).")
        }
        return try trusted(headers, answer) { body throws(CofferError) in try wire.paymentStatus(queryAnswer: body, rechargeId: recharge.id) }
    }

    public static let refundPath = "/v3/refund/domestic/refunds"
    public static let certificatesPath = "/v3/certificates"

    /// Downloads WeChat Pay's current platform certificates and adds them to the keys notifications are checked with, so
    /// that a rotation needs no restart (the jobs loop calls this twice a day). Merchants on the newer "WeChat Pay public
    /// key" (PUB_KEY_ID_…) configure that key and serial instead; for them the list may be empty, which changes nothing.
    public func refreshCredentials() async throws -> String? {
        let (status, headers, answer) = try await send("GET", Self.certificatesPath, body: [])
        guard status == 200 else {
            throw CofferError(.channelRefused, "WeChat Pay refused the certificate download (HTTP \(status)).")
        }
        let certificates = try asGatewayFault { () throws(CofferError) in
            try wire.platformCertificates(answer: answer, headers: headers, nowMicros: clock.nowMicros())
        }
        wire.install(certificates)
        return "wechatpay platform keys: \(wire.platformKeys.serials.joined(separator: ", "))"
    }

    struct RefundOrder: Encodable {
        struct Amount: Encodable {
            var refund: Int64
            var total: Int64
            var currency = "CNY"
        }
        var out_trade_no: String
        var out_refund_no: String
        var reason: String
        var amount: Amount
    }

    /// 申请退款. WeChat Pay refunds one out_refund_no once, so asking again after a lost answer is safe. Refusals that a
    /// retry cannot cure (bad parameters, unknown order, no permission) end the refund as failed; the rest are thrown to
    /// be retried (system errors, rate limits, NOT_ENOUGH: the merchant account lacks funds for now).
    public func refund(_ request: ChannelRefundRequest) async throws -> ChannelRefundStatus {
        let order = RefundOrder(out_trade_no: request.rechargeId, out_refund_no: request.refundId, reason: request.reason,
                                amount: .init(refund: request.refundMinor, total: request.orderTotalMinor))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let (status, headers, answer) = try await send("POST", Self.refundPath, body: Array(try encoder.encode(order)))
        guard (200..<300).contains(status) else {
            let error = try? JSONDecoder().decode(ErrorAnswer.self, from: Data(answer))
            let reason = "WeChat Pay refused the refund (HTTP \(status)\(error.map { ", \($0.code): \($0.message)" } ?? ""))"
            if ["PARAM_ERROR", "INVALID_REQUEST", "RESOURCE_NOT_EXISTS", "NO_AUTH", "USER_ACCOUNT_ABNORMAL"].contains(error?.code ?? "") {
                return .failed(reason)
            }
            throw CofferError(.channelRefused, reason + "; it will be asked again.")
        }
        return try trusted(headers, answer) { body throws(CofferError) in try wire.refundStatus(answer: body, for: request) }
    }

    /// 查询单笔退款 by out_refund_no. A refund WeChat Pay does not know was never accepted: it is asked for again.
    public func queryRefund(_ request: ChannelRefundRequest) async throws -> ChannelRefundStatus {
        let (status, headers, answer) = try await send("GET", "\(Self.refundPath)/\(request.refundId)", body: [])
        if status == 404 { return try await refund(request) }
        guard status == 200 else {
            throw CofferError(.channelRefused, "WeChat Pay refused the refund query (HTTP \(status)).")
        }
        return try trusted(headers, answer) { body throws(CofferError) in try wire.refundStatus(answer: body, for: request) }
    }

    /// An answer is believed only when a platform key signed it, and then read.
    private func trusted<T>(_ headers: [String: String], _ answer: [UInt8],
                            _ read: ([UInt8]) throws(CofferError) -> T) throws(CofferError) -> T {
        try asGatewayFault { () throws(CofferError) in
            try wire.verifySignature(headers: headers, body: answer, nowMicros: clock.nowMicros())
            return try read(answer)
        }
    }

    /// The protocol layer speaks of notifications (401 for a bad signature, 400 for a malformed body). For an answer to
    /// our own call those are the gateway's fault, not the caller's: a refused channel call (502) with the reason.
    private func asGatewayFault<T>(_ body: () throws(CofferError) -> T) throws(CofferError) -> T {
        do { return try body() } catch where ErrorCode.channelFaults.contains(error.code) { throw error } catch {
            throw CofferError(.channelRefused, "WeChat Pay's answer was not believed (\(error.code): \(error.detail)); it was ignored. Try again later.")
        }
    }

    private func send(_ method: String, _ path: String, body: [UInt8]) async throws -> (Int, [String: String], [UInt8]) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = HTTPMethod(rawValue: method)
        let authorization = try wire.authorization(method: method, pathAndQuery: path, body: body,
                                                   timestamp: clock.nowMicros() / 1_000_000,
                                                   nonce: Secrets.token(prefix: "").uppercased())
        request.headers.add(name: "Authorization", value: authorization)
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "Coffer")
        if method != "GET" {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, timeout: .seconds(Self.timeoutSeconds))
        } catch {
            ChannelMetrics.error(channel: "wechatpay", kind: "unreachable")
            throw CofferError(.channelUnreachable, "WeChat Pay could not be reached; try again in a moment.")
        }
        if response.status.code >= 500 { ChannelMetrics.error(channel: "wechatpay", kind: "refused") }
        let answer = try await response.body.collect(upTo: 1 << 20)
        var headers: [String: String] = [:]
        for (name, value) in response.headers { headers[name.lowercased()] = value }
        return (Int(response.status.code), headers, Array(answer.readableBytesView))
    }
}
