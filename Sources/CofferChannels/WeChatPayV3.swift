import CofferCore
import CofferServices
import Crypto
import _CryptoExtras
import Foundation
import Synchronization
import X509

/// Merchant settings for WeChat Pay API v3. They come from configuration, never from code; `description` never shows a
/// secret, so the settings can be logged.
public struct WeChatPayV3Settings: Sendable, CustomStringConvertible {
    public var merchantId: String
    public var appId: String
    /// Serial number of the merchant's API certificate (sent in the Authorization header).
    public var merchantSerialNo: String
    public var merchantPrivateKeyPEM: String
    /// The 32-byte APIv3 key that encrypts notification resources.
    public var apiV3Key: String
    /// Serial number and public key WeChat Pay signs its notifications and responses with.
    public var platformSerialNo: String
    public var platformPublicKeyPEM: String
    /// More keys by serial, for a rotation announced ahead (the old and the new certificate both valid for a while).
    public var additionalPlatformKeys: [String: String]

    public init(merchantId: String, appId: String, merchantSerialNo: String, merchantPrivateKeyPEM: String, apiV3Key: String,
                platformSerialNo: String, platformPublicKeyPEM: String, additionalPlatformKeys: [String: String] = [:]) {
        self.additionalPlatformKeys = additionalPlatformKeys
        self.merchantId = merchantId
        self.appId = appId
        self.merchantSerialNo = merchantSerialNo
        self.merchantPrivateKeyPEM = merchantPrivateKeyPEM
        self.apiV3Key = apiV3Key
        self.platformSerialNo = platformSerialNo
        self.platformPublicKeyPEM = platformPublicKeyPEM
    }

    public var description: String {
        "WeChatPayV3Settings(merchantId: \(merchantId), appId: \(appId), merchantSerialNo: \(merchantSerialNo), platformSerialNo: \(platformSerialNo), keys: redacted)"
    }
}

/// The cryptographic half of WeChat Pay API v3: signing the merchant's requests (`WECHATPAY2-SHA256-RSA2048`), verifying
/// WeChat Pay's signed notifications, and decrypting their `AEAD_AES_256_GCM` resource. Proven against the PyPI package
/// `wechatpayv3` in the interoperability tests.
public struct WeChatPayV3Protocol: Sendable {
    public static let schema = "WECHATPAY2-SHA256-RSA2048"
    /// Notifications whose timestamp is further than this from now are refused (replay window).
    public static let maxSkewSeconds: Int64 = 300

    public let settings: WeChatPayV3Settings
    private let merchantKey: _RSA.Signing.PrivateKey
    /// The keys WeChat Pay may sign with, by serial: the configured ones, plus certificates downloaded while running.
    public let platformKeys: WeChatPayPlatformKeys
    private let apiV3KeyBytes: [UInt8]
    private var apiV3Key: SymmetricKey { SymmetricKey(data: apiV3KeyBytes) }

    public enum SettingsError: Error, CustomStringConvertible {
        case merchantKey, platformKey, apiV3Key
        public var description: String {
            switch self {
            case .merchantKey: "the merchant private key is not a PEM RSA key of at least 2048 bits"
            case .platformKey: "the platform public key is not a PEM RSA key of at least 2048 bits"
            case .apiV3Key: "the APIv3 key must be exactly 32 bytes"
            }
        }
    }

    public init(settings: WeChatPayV3Settings) throws(SettingsError) {
        self.settings = settings
        do { merchantKey = try _RSA.Signing.PrivateKey(pemRepresentation: settings.merchantPrivateKeyPEM) } catch {
            throw .merchantKey
        }
        var keys: [String: _RSA.Signing.PublicKey] = [:]
        for (serial, pem) in [(settings.platformSerialNo, settings.platformPublicKeyPEM)] + settings.additionalPlatformKeys.sorted(by: { $0.key < $1.key }) {
            do { keys[serial] = try _RSA.Signing.PublicKey(pemRepresentation: pem) } catch { throw .platformKey }
        }
        platformKeys = WeChatPayPlatformKeys(keys)
        guard settings.apiV3Key.utf8.count == 32 else { throw .apiV3Key }
        apiV3KeyBytes = Array(settings.apiV3Key.utf8)
    }

    /// The Authorization header of a request: the signature covers "METHOD\nPATH?QUERY\nTIMESTAMP\nNONCE\nBODY\n".
    public func authorization(method: String, pathAndQuery: String, body: [UInt8], timestamp: Int64, nonce: String) throws -> String {
        var message = Array("\(method)\n\(pathAndQuery)\n\(timestamp)\n\(nonce)\n".utf8)
        message += body
        message.append(UInt8(ascii: "\n"))
        let signature = try merchantKey.signature(for: message, padding: .insecurePKCS1v1_5).rawRepresentation.base64EncodedString()
        return "\(Self.schema) mchid=\"\(settings.merchantId)\",nonce_str=\"\(nonce)\",signature=\"\(signature)\","
            + "timestamp=\"\(timestamp)\",serial_no=\"\(settings.merchantSerialNo)\""
    }

    /// Checks a response or notification signature: "TIMESTAMP\nNONCE\nBODY\n" signed by the platform key named by
    /// `Wechatpay-Serial`, no further than `maxSkewSeconds` from now.
    public func verifySignature(headers: [String: String], body: [UInt8], nowMicros: Int64,
                                alsoTrusting extraKeys: [String: _RSA.Signing.PublicKey] = [:]) throws(CofferError) {
        func header(_ name: String) -> String? { headers[name] ?? headers.first { $0.key.lowercased() == name }?.value }
        guard let timestamp = header("wechatpay-timestamp"), let nonce = header("wechatpay-nonce"),
              let signature = header("wechatpay-signature"), let serial = header("wechatpay-serial"),
              let seconds = Int64(timestamp), let raw = Data(base64Encoded: signature) else {
            throw .notificationSignatureInvalid
        }
        // A serial we do not know is a key we cannot check with: refuse rather than guess.
        guard let platformKey = platformKeys.key(serial: serial) ?? extraKeys[serial] else { throw .notificationSignatureInvalid }
        var message = Array("\(timestamp)\n\(nonce)\n".utf8)
        message += body
        message.append(UInt8(ascii: "\n"))
        guard platformKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: raw), for: message,
                                           padding: .insecurePKCS1v1_5) else {
            throw .notificationSignatureInvalid
        }
        guard abs(nowMicros / 1_000_000 - seconds) <= Self.maxSkewSeconds else { throw .notificationStale }
    }

    /// Decrypts a notification resource: AES-256-GCM with the APIv3 key, the resource's nonce and associated data; the
    /// base64 ciphertext carries the 16-byte tag at its end.
    public func decrypt(ciphertextBase64: String, nonce: String, associatedData: String) throws(CofferError) -> [UInt8] {
        guard let sealed = Data(base64Encoded: ciphertextBase64), sealed.count > 16 else {
            throw .notificationMalformed("the resource ciphertext is not base64 of at least 17 bytes")
        }
        do {
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: Array(nonce.utf8)), ciphertext: sealed.dropLast(16),
                                            tag: sealed.suffix(16))
            return Array(try AES.GCM.open(box, using: apiV3Key, authenticating: Array(associatedData.utf8)))
        } catch {
            throw .notificationMalformed("the resource does not decrypt with the APIv3 key")
        }
    }

    struct Notification: Decodable {
        struct Resource: Decodable {
            var algorithm: String
            var ciphertext: String
            var associated_data: String?
            var nonce: String
        }
        var event_type: String
        var resource: Resource
    }

    struct Transaction: Decodable {
        struct Amount: Decodable {
            var total: Int64
            var currency: String
        }
        var mchid: String
        var appid: String
        var out_trade_no: String
        /// Absent until the order is paid.
        var transaction_id: String?
        var trade_state: String
        var amount: Amount
        struct Payer: Decodable { var openid: String? }
        var payer: Payer?
        /// The payer's openid under this app (R7), when it is a sensible identifier.
        var payerId: String? { payer?.openid.flatMap { (1...128).contains($0.utf8.count) ? $0 : nil } }
    }

    /// A payment notification, verified and decrypted: the recharge it pays, WeChat Pay's transaction id and the amount in
    /// fen. Anything but a successful payment to this merchant and app, in CNY, is refused.
    public func verifyPaymentNotification(headers: [String: String], body: [UInt8], nowMicros: Int64) throws(CofferError) -> VerifiedNotification {
        try verifySignature(headers: headers, body: body, nowMicros: nowMicros)
        let notification: Notification
        do { notification = try JSONDecoder().decode(Notification.self, from: Data(body)) } catch {
            throw .notificationMalformed("expected event_type and an encrypted resource")
        }
        guard notification.event_type == "TRANSACTION.SUCCESS" else {
            throw CofferError(.notificationNotSuccess, "The notification reports \(notification.event_type), not a successful payment; nothing was credited.")
        }
        guard notification.resource.algorithm == "AEAD_AES_256_GCM" else {
            throw .notificationMalformed("unsupported resource algorithm \(notification.resource.algorithm)")
        }
        let plain = try decrypt(ciphertextBase64: notification.resource.ciphertext, nonce: notification.resource.nonce,
                                associatedData: notification.resource.associated_data ?? "")
        let transaction = try ownTransaction(plain)
        guard transaction.trade_state == "SUCCESS" else {
            throw CofferError(.notificationNotSuccess, "The transaction is \(transaction.trade_state), not SUCCESS; nothing was credited.")
        }
        guard let transactionId = transaction.transaction_id else {
            throw .notificationMalformed("a paid transaction must carry transaction_id")
        }
        return VerifiedNotification(rechargeId: transaction.out_trade_no, channelTradeNo: transactionId,
                                    amountMinor: transaction.amount.total, payerId: transaction.payerId)
    }

    /// A transaction object (decrypted notification resource or query answer) of this merchant and app, in CNY.
    func ownTransaction(_ json: [UInt8]) throws(CofferError) -> Transaction {
        let transaction: Transaction
        do { transaction = try JSONDecoder().decode(Transaction.self, from: Data(json)) } catch {
            throw .notificationMalformed("the transaction lacks out_trade_no, trade_state or amount")
        }
        guard transaction.mchid == settings.merchantId, transaction.appid == settings.appId else {
            throw .notificationMalformed("the transaction belongs to another merchant or app")
        }
        guard transaction.amount.currency == "CNY", transaction.amount.total > 0,
              transaction.amount.total <= MoneyFormat.maxAbsMinor else {
            throw .notificationMalformed("the amount must be a positive number of fen in CNY")
        }
        return transaction
    }

    struct RefundAnswer: Decodable {
        struct Amount: Decodable { var refund: Int64 }
        var refund_id: String
        var out_refund_no: String
        var out_trade_no: String?
        var status: String
        var amount: Amount?
    }

    /// A refund answer or refund query answer (already signature-checked). SUCCESS is done; PROCESSING is asked again;
    /// CLOSED (closed after 7 days without funds) and ABNORMAL (the payer's card was closed; the money waits in WeChat
    /// Pay's refund account for the merchant to direct it) need an operator, so both end here as failed with the reason.
    public func refundStatus(answer json: [UInt8], for request: ChannelRefundRequest) throws(CofferError) -> ChannelRefundStatus {
        let answer: RefundAnswer
        do { answer = try JSONDecoder().decode(RefundAnswer.self, from: Data(json)) } catch {
            throw CofferError(.channelRefused, "WeChat Pay's refund answer lacks refund_id, out_refund_no or status.")
        }
        guard answer.out_refund_no == request.refundId, answer.out_trade_no.map({ $0 == request.rechargeId }) ?? true,
              answer.amount.map({ $0.refund == request.refundMinor }) ?? true else {
            throw CofferError(.channelRefused, "WeChat Pay's refund answer is for another refund or amount; it was ignored.")
        }
        switch answer.status {
        case "SUCCESS": return .succeeded(channelRefundNo: answer.refund_id)
        case "PROCESSING": return .processing(channelRefundNo: answer.refund_id)
        case "CLOSED": return .failed("WeChat Pay closed the refund (CLOSED): the merchant account lacked funds for 7 days.")
        case "ABNORMAL": return .failed("WeChat Pay could not return the money to the payer's card (ABNORMAL); direct it at the merchant platform.")
        default: return .processing(channelRefundNo: answer.refund_id)
        }
    }

    /// A query answer (already signature-checked): paid with WeChat Pay's transaction id, or the state it is in.
    public func paymentStatus(queryAnswer json: [UInt8], rechargeId: String) throws(CofferError) -> PaymentStatus {
        let transaction = try ownTransaction(json)
        guard transaction.out_trade_no == rechargeId else { throw .notificationMalformed("the answer is for another order") }
        guard transaction.trade_state == "SUCCESS", let id = transaction.transaction_id else {
            return .notPaid(transaction.trade_state)
        }
        return .paid(VerifiedNotification(rechargeId: rechargeId, channelTradeNo: id, amountMinor: transaction.amount.total,
                                          payerId: transaction.payerId))
    }
}

/// The platform keys WeChat Pay signs with, by serial number. Shared by every copy of the channel, so that a certificate
/// downloaded while running is used by all of them at once.
public final class WeChatPayPlatformKeys: Sendable {
    private let keys: Mutex<[String: _RSA.Signing.PublicKey]>
    init(_ keys: [String: _RSA.Signing.PublicKey]) { self.keys = Mutex(keys) }
    public func key(serial: String) -> _RSA.Signing.PublicKey? { keys.withLock { $0[serial] } }
    public var serials: [String] { keys.withLock { $0.keys.sorted() } }
    func add(_ more: [String: _RSA.Signing.PublicKey]) { keys.withLock { $0.merge(more) { _, new in new } } }
}

/// 下载平台证书 (`GET /v3/certificates`): the answer lists WeChat Pay's current certificates, each encrypted with the
/// APIv3 key. The encryption is what makes them trustworthy (only WeChat Pay and the merchant hold that key); the answer's
/// own signature must then check out with one of the keys it carries or one already known.
extension WeChatPayV3Protocol {
    public struct PlatformCertificate: Sendable {
        public var serialNo: String
        public var publicKey: _RSA.Signing.PublicKey
        public var notValidAfter: Date
    }

    struct CertificateList: Decodable {
        struct Item: Decodable {
            struct Encrypted: Decodable {
                var algorithm: String
                var nonce: String
                var associated_data: String?
                var ciphertext: String
            }
            var serial_no: String
            var encrypt_certificate: Encrypted
        }
        var data: [Item]
    }

    public func platformCertificates(answer: [UInt8], headers: [String: String], nowMicros: Int64) throws(CofferError) -> [PlatformCertificate] {
        let list: CertificateList
        do { list = try JSONDecoder().decode(CertificateList.self, from: Data(answer)) } catch {
            throw CofferError(.channelRefused, "WeChat Pay's certificate list is not {data: [{serial_no, encrypt_certificate}]}.")
        }
        let now = Date(timeIntervalSince1970: Double(nowMicros / 1_000_000))
        var found: [PlatformCertificate] = []
        for item in list.data.prefix(16) {
            let e = item.encrypt_certificate
            guard e.algorithm == "AEAD_AES_256_GCM" else { continue }
            guard let pem = try? decrypt(ciphertextBase64: e.ciphertext, nonce: e.nonce, associatedData: e.associated_data ?? "") else {
                throw CofferError(.channelRefused, "WeChat Pay's certificate \(item.serial_no) does not decrypt with the APIv3 key; no certificate was trusted.")
            }
            guard let certificate = try? Certificate(pemEncoded: String(decoding: pem, as: UTF8.self)),
                  let key = _RSA.Signing.PublicKey(certificate.publicKey) else {
                throw CofferError(.channelRefused, "WeChat Pay's certificate \(item.serial_no) is not an RSA X.509 certificate.")
            }
            // The listed serial must be the certificate's own (hex, as WeChat Pay writes it).
            let serial = certificate.serialNumber.bytes.map { String(format: "%02X", $0) }.joined()
            func trimmed(_ s: String) -> Substring { s.uppercased().drop { $0 == "0" } }
            guard trimmed(serial) == trimmed(item.serial_no) else {
                throw CofferError(.channelRefused, "WeChat Pay listed certificate \(item.serial_no) under another serial.")
            }
            guard certificate.notValidBefore <= now, now <= certificate.notValidAfter else { continue }
            found.append(PlatformCertificate(serialNo: item.serial_no, publicKey: key, notValidAfter: certificate.notValidAfter))
        }
        // The list's signature: by a key we know, or by one of the certificates it brings.
        try verifySignature(headers: headers, body: answer, nowMicros: nowMicros,
                            alsoTrusting: Dictionary(found.map { ($0.serialNo, $0.publicKey) }, uniquingKeysWith: { a, _ in a }))
        return found
    }

    /// Adds downloaded certificates to the keys used for every later check.
    public func install(_ certificates: [PlatformCertificate]) {
        platformKeys.add(Dictionary(certificates.map { ($0.serialNo, $0.publicKey) }, uniquingKeysWith: { a, _ in a }))
    }
}
