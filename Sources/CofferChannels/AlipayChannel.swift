import AsyncHTTPClient
import CofferCore
import CofferServices
import Foundation
import NIOCore
import NIOHTTP1

/// Alipay face-to-face QR payment (当面付扫码, `alipay.trade.precreate`) as a payment channel: a recharge becomes a trade
/// whose `qr_code` the customer scans; Alipay's signed notification credits it through the shared handler, and Coffer
/// answers `success` only after the credit is committed.
public struct AlipayChannel: PaymentChannel {
    public static let channelName = "alipay"
    public static let timeoutSeconds: Int64 = 10

    public let name = channelName
    public let movesRealMoney = true
    public let notificationAcknowledgement: String? = "success"
    public let api: AlipayOpenAPI
    /// `https://openapi.alipay.com/gateway.do` in production; configurable for tests and the sandbox gateway.
    public let gatewayURL: String
    /// This server's `/v1/channels/alipay/notifications`, as seen from outside.
    public let notifyURL: String
    /// How long Alipay keeps the QR code payable; matches the pending-order lifetime (R5).
    public let payableMinutes: Int64
    private let http: HTTPClient
    private let clock: any Clock

    public init(api: AlipayOpenAPI, gatewayURL: String, notifyURL: String, payableMinutes: Int64 = 120,
                clock: any Clock = SystemClock(), http: HTTPClient = .shared) {
        self.api = api
        self.gatewayURL = gatewayURL
        self.notifyURL = notifyURL
        self.payableMinutes = payableMinutes
        self.clock = clock
        self.http = http
    }

    static func json(_ object: [String: String]) -> String {
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    public func paymentInstruction(for recharge: RechargeRecord) async throws -> PaymentInstruction {
        let biz = Self.json(["out_trade_no": recharge.id, "total_amount": MoneyFormat.format(recharge.totalMinor),
                             "subject": "账户充值 \(recharge.id)", "timeout_express": "\(payableMinutes)m"])
        let answer = try await call("alipay.trade.precreate", biz, notify: true)
        guard let code = answer["qr_code"] as? String, code.hasPrefix("https://") else {
            throw CofferError(.channelRefused, "Alipay answered without a qr_code.")
        }
        return PaymentInstruction(kind: PaymentInstruction.qrKind, url: code)
    }

    public func verifyNotification(headers: [String: String], body: [UInt8], nowMicros: Int64) throws(CofferError) -> VerifiedNotification {
        try api.verifyPaymentNotification(body: body, nowMicros: nowMicros)
    }

    public func queryPayment(for recharge: RechargeRecord) async throws -> PaymentStatus {
        let answer = try await call("alipay.trade.query", Self.json(["out_trade_no": recharge.id]), notify: false,
                                    tolerating: ["ACQ.TRADE_NOT_EXIST"])
        if answer["sub_code"] as? String == "ACQ.TRADE_NOT_EXIST" { return .notPaid("TRADE_NOT_EXIST") }
        let status = answer["trade_status"] as? String ?? ""
        guard AlipayOpenAPI.successStatuses.contains(status) else { return .notPaid(status) }
        guard answer["out_trade_no"] as? String == recharge.id, let trade = answer["trade_no"] as? String,
              let amountText = answer["total_amount"] as? String else {
            throw CofferError(.channelRefused, "Alipay's query answer lacks out_trade_no, trade_no or total_amount.")
        }
        let amount = try MoneyFormat.parsePositive(amountText, field: "total_amount")
        let payer = AlipayOpenAPI.payerId((answer["buyer_user_id"] ?? answer["buyer_open_id"]) as? String)
        return .paid(VerifiedNotification(rechargeId: recharge.id, channelTradeNo: trade, amountMinor: amount, payerId: payer))
    }

    /// Refusals of alipay.trade.refund that a later try may cure; every other refusal ends the refund as failed.
    static let retryableRefundCodes: Set<String> = ["ACQ.SYSTEM_ERROR", "ACQ.SELLER_BALANCE_NOT_ENOUGH", "ACQ.REASON_TRADE_BEEN_FREEZEN"]

    /// alipay.trade.refund with `out_request_no` = the refund id, so that asking again never refunds twice. Alipay's
    /// advice is followed: `fund_change` Y means refunded; anything else is confirmed with the refund query.
    public func refund(_ request: ChannelRefundRequest) async throws -> ChannelRefundStatus {
        let biz = Self.json(["out_trade_no": request.rechargeId, "out_request_no": request.refundId,
                             "refund_amount": MoneyFormat.format(request.refundMinor), "refund_reason": request.reason])
        let answer = try await call("alipay.trade.refund", biz, notify: false, acceptingRefusals: true)
        guard answer["code"] as? String == "10000" else {
            let code = answer["sub_code"] as? String ?? answer["code"] as? String ?? "?"
            let reason = "Alipay refused the refund (\(code): \(answer["sub_msg"] as? String ?? answer["msg"] as? String ?? ""))"
            if Self.retryableRefundCodes.contains(code) { throw CofferError(.channelRefused, reason + "; it will be asked again.") }
            return .failed(reason)
        }
        guard answer["out_trade_no"] as? String == request.rechargeId else {
            throw CofferError(.channelRefused, "Alipay's refund answer is for another trade; it was ignored.")
        }
        if answer["fund_change"] as? String == "Y" { return .succeeded(channelRefundNo: request.refundId) }
        return try await confirmRefund(request) ?? .processing(channelRefundNo: nil)
    }

    /// alipay.trade.fastpay.refund.query: REFUND_SUCCESS is done; no refund_status means Alipay has no such refund, so it
    /// is asked for again (same out_request_no).
    public func queryRefund(_ request: ChannelRefundRequest) async throws -> ChannelRefundStatus {
        if let done = try await confirmRefund(request) { return done }
        return try await refund(request)
    }

    private func confirmRefund(_ request: ChannelRefundRequest) async throws -> ChannelRefundStatus? {
        let answer = try await call("alipay.trade.fastpay.refund.query",
                                    Self.json(["out_trade_no": request.rechargeId, "out_request_no": request.refundId]),
                                    notify: false, tolerating: ["ACQ.TRADE_NOT_EXIST"])
        guard answer["refund_status"] as? String == "REFUND_SUCCESS" else { return nil }
        guard answer["out_request_no"] as? String == request.refundId,
              let amountText = answer["refund_amount"] as? String,
              (try? MoneyFormat.parsePositive(amountText, field: "refund_amount")) == request.refundMinor else {
            throw CofferError(.channelRefused, "Alipay's refund query answer is for another refund or amount; it was ignored.")
        }
        return .succeeded(channelRefundNo: request.refundId)
    }

    /// Form encoding as Alipay's SDKs send it: everything but unreserved characters percent-encoded.
    static func formEncode(_ parameters: [String: String]) -> String {
        var allowed = CharacterSet.alphanumerics.intersection(CharacterSet(charactersIn: Unicode.Scalar(0)..<Unicode.Scalar(128)))
        allowed.insert(charactersIn: "-._~")
        return parameters.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: allowed)!)" }
            .joined(separator: "&")
    }

    private func call(_ method: String, _ bizContent: String, notify: Bool,
                      tolerating: Set<String> = [], acceptingRefusals: Bool = false) async throws -> [String: Any] {
        let parameters = try api.signedRequest(method: method, bizContent: bizContent, nowMicros: clock.nowMicros(),
                                               notifyURL: notify ? notifyURL : nil)
        var request = HTTPClientRequest(url: gatewayURL)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded;charset=utf-8")
        request.headers.add(name: "User-Agent", value: "Coffer")
        request.body = .bytes(ByteBuffer(string: Self.formEncode(parameters)))
        let response: HTTPClientResponse
        let body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .seconds(Self.timeoutSeconds))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            ChannelMetrics.error(channel: "alipay", kind: "unreachable")
            throw CofferError(.channelUnreachable, "Alipay could not be reached; try again in a moment.")
        }
        guard response.status == .ok else {
            ChannelMetrics.error(channel: "alipay", kind: "refused")
            throw CofferError(.channelRefused, "Alipay answered HTTP \(response.status.code); try again later.")
        }
        return try api.verifyResponse(Array(body.readableBytesView), method: method, tolerating: tolerating,
                                      acceptingRefusals: acceptingRefusals)
    }
}
