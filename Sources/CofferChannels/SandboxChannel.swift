import CofferCore
import CofferServices
import Crypto
import Foundation

/// A test channel that moves no real money. Its simulated payer signs notifications with HMAC-SHA256 over
/// "timestamp\nnonce\nbody" and sends them through the same notification handler that real channels use, so the credit
/// path (verification, amount check, exactly-once credit, R9) is the production one.
public struct SandboxChannel: PaymentChannel {
    public static let channelName = "sandbox"
    public static let signatureHeader = "coffer-sandbox-signature"
    public static let timestampHeader = "coffer-sandbox-timestamp"
    public static let nonceHeader = "coffer-sandbox-nonce"
    /// Notifications older (or newer) than this are refused, so a captured one cannot be replayed later.
    public static let maxSkewSeconds: Int64 = 300

    private let secret: [UInt8]
    private var key: SymmetricKey { SymmetricKey(data: secret) }
    public let name = channelName
    public let movesRealMoney = false

    public init(secret: String) {
        precondition(secret.utf8.count >= 16, "sandbox secret must be at least 16 bytes")
        self.secret = Array(secret.utf8)
    }

    struct Body: Codable {
        var rechargeId: String
        var tradeNo: String
        var amount: String
        /// The simulated payer's name (R7 counts distinct payers); optional so that older signed bodies still read.
        var payer: String?
    }

    public func paymentInstruction(for recharge: RechargeRecord) async throws -> PaymentInstruction {
        PaymentInstruction(kind: "sandbox", url: "/v1/sandbox/recharges/\(recharge.id)/pay")
    }

    /// The simulated payer: a signed notification for a recharge, as a channel would send it.
    public func signedNotification(rechargeId: String, tradeNo: String, amountMinor: Int64, payer: String? = nil,
                                   nowMicros: Int64) throws -> (headers: [String: String], body: [UInt8]) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let body = Array(try encoder.encode(Body(rechargeId: rechargeId, tradeNo: tradeNo, amount: MoneyFormat.format(amountMinor),
                                                 payer: payer)))
        let timestamp = String(nowMicros / 1_000_000)
        let nonce = Secrets.token(prefix: "")
        let signature = sign(timestamp: timestamp, nonce: nonce, body: body)
        return ([Self.signatureHeader: signature, Self.timestampHeader: timestamp, Self.nonceHeader: nonce], body)
    }

    func sign(timestamp: String, nonce: String, body: [UInt8]) -> String {
        var message = Data("\(timestamp)\n\(nonce)\n".utf8)
        message.append(contentsOf: body)
        return Data(HMAC<SHA256>.authenticationCode(for: message, using: key)).base64EncodedString()
    }

    /// The simulated payer pays synchronously, so there is never a payment the sandbox knows of and Coffer does not.
    public func queryPayment(for recharge: RechargeRecord) async throws -> PaymentStatus { .notPaid("sandbox") }

    public func verifyNotification(headers: [String: String], body: [UInt8], nowMicros: Int64) throws(CofferError) -> VerifiedNotification {
        guard let signature = headers[Self.signatureHeader], let timestamp = headers[Self.timestampHeader],
              let nonce = headers[Self.nonceHeader], let seconds = Int64(timestamp),
              let given = Data(base64Encoded: signature) else {
            throw .notificationSignatureInvalid
        }
        var message = Data("\(timestamp)\n\(nonce)\n".utf8)
        message.append(contentsOf: body)
        guard HMAC<SHA256>.isValidAuthenticationCode(given, authenticating: message, using: key) else {
            throw .notificationSignatureInvalid
        }
        guard abs(nowMicros / 1_000_000 - seconds) <= Self.maxSkewSeconds else { throw .notificationStale }
        let decoded: Body
        do { decoded = try JSONDecoder().decode(Body.self, from: Data(body)) } catch {
            throw .notificationMalformed("expected {rechargeId, tradeNo, amount}")
        }
        let amount = try MoneyFormat.parsePositive(decoded.amount)
        if let payer = decoded.payer, !(1...128).contains(payer.utf8.count) {
            throw .notificationMalformed("payer must be 1–128 bytes")
        }
        return VerifiedNotification(rechargeId: decoded.rechargeId, channelTradeNo: decoded.tradeNo, amountMinor: amount,
                                    payerId: decoded.payer)
    }

    /// The sandbox moved no money, so there is none to return: a refund succeeds at once under a number that says so.
    public func refund(_ request: ChannelRefundRequest) async throws -> ChannelRefundStatus {
        .succeeded(channelRefundNo: "sandbox-" + request.refundId)
    }

    public func queryRefund(_ request: ChannelRefundRequest) async throws -> ChannelRefundStatus { try await refund(request) }
}
