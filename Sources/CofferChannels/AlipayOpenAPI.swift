import CofferCore
import CofferServices
import Crypto
import _CryptoExtras
import Foundation

/// App settings for the Alipay open platform (RSA2 public-key mode). They come from configuration, never from code;
/// `description` never shows a key.
public struct AlipaySettings: Sendable, CustomStringConvertible {
    public var appId: String
    /// The app's private key (PKCS#1 or PKCS#8, PEM or the bare base64 that Alipay's key tool prints).
    public var appPrivateKeyPEM: String
    /// Alipay's public key for this app (支付宝公钥), which signs responses and notifications.
    public var alipayPublicKeyPEM: String
    /// The merchant's Alipay user id (2088…); when set, notifications for another seller are refused.
    public var sellerId: String?

    public init(appId: String, appPrivateKeyPEM: String, alipayPublicKeyPEM: String, sellerId: String? = nil) {
        self.appId = appId
        self.appPrivateKeyPEM = appPrivateKeyPEM
        self.alipayPublicKeyPEM = alipayPublicKeyPEM
        self.sellerId = sellerId
    }

    public var description: String { "AlipaySettings(appId: \(appId), sellerId: \(sellerId ?? "-"), keys: redacted)" }
}

/// The cryptographic and format half of the Alipay open platform: RSA2 (SHA256withRSA) request signing over the sorted
/// parameters, verification of synchronous responses (the raw `<method>_response` object) and of asynchronous
/// notifications (sorted parameters without `sign` and `sign_type`). Proven against the PyPI package `python-alipay-sdk`.
public struct AlipayOpenAPI: Sendable {
    /// Alipay retries an unanswered notification for about 25 hours; a notification sent longer ago than this is refused.
    public static let maxNotificationAgeSeconds: Int64 = 48 * 3_600
    public static let successStatuses: Set<String> = ["TRADE_SUCCESS", "TRADE_FINISHED"]

    public let settings: AlipaySettings
    private let appKey: _RSA.Signing.PrivateKey
    private let alipayKey: _RSA.Signing.PublicKey

    public enum SettingsError: Error, CustomStringConvertible {
        case appKey, alipayKey
        public var description: String {
            switch self {
            case .appKey: "the app private key is not an RSA key of at least 2048 bits (PEM or bare base64)"
            case .alipayKey: "the Alipay public key is not an RSA key of at least 2048 bits (PEM or bare base64)"
            }
        }
    }

    public init(settings: AlipaySettings) throws(SettingsError) {
        self.settings = settings
        func pem(_ text: String, _ label: String) -> String {
            let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if trimmed.hasPrefix("-----BEGIN") { return trimmed }
            var lines: [Substring] = []
            var rest = Substring(trimmed.filter { !$0.isWhitespace })
            while !rest.isEmpty { lines.append(rest.prefix(64)); rest = rest.dropFirst(64) }
            return "-----BEGIN \(label)-----\n" + lines.joined(separator: "\n") + "\n-----END \(label)-----"
        }
        let privateText = settings.appPrivateKeyPEM
        if let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem(privateText, "PRIVATE KEY")) {
            appKey = key
        } else if let key = try? _RSA.Signing.PrivateKey(pemRepresentation: pem(privateText, "RSA PRIVATE KEY")) {
            appKey = key
        } else {
            throw .appKey
        }
        do { alipayKey = try _RSA.Signing.PublicKey(pemRepresentation: pem(settings.alipayPublicKeyPEM, "PUBLIC KEY")) } catch {
            throw .alipayKey
        }
    }

    /// "k1=v1&k2=v2", keys in byte order, empty values left out (as Alipay's own SDKs build it).
    public static func canonical(_ parameters: [String: String]) -> String {
        parameters.filter { !$0.value.isEmpty }
            .sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }
            .map { "\($0.key)=\($0.value)" }.joined(separator: "&")
    }

    /// Alipay's request timestamp: "yyyy-MM-dd HH:mm:ss" in Beijing time (UTC+8, no daylight saving).
    public static func beijingTimestamp(micros: Int64) -> String {
        let seconds = micros / 1_000_000 + 8 * 3_600
        let (days, secondOfDay) = (seconds.quotientAndRemainder(dividingBy: 86_400))
        let (y, m, d) = RFC3339.civil(fromDays: days)
        func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(y)-\(two(m))-\(two(d)) \(two(secondOfDay / 3_600)):\(two(secondOfDay % 3_600 / 60)):\(two(secondOfDay % 60))"
    }

    /// Parses a Beijing-time "yyyy-MM-dd HH:mm:ss" into microseconds since the epoch.
    public static func parseBeijingTimestamp(_ text: String) -> Int64? {
        let parts = text.split(whereSeparator: { $0 == "-" || $0 == " " || $0 == ":" }).map { Int64($0) }
        guard parts.count == 6, parts.allSatisfy({ $0 != nil }) else { return nil }
        let v = parts.map { $0! }
        guard (1...12).contains(v[1]), (1...31).contains(v[2]), (0...23).contains(v[3]), (0...59).contains(v[4]),
              (0...59).contains(v[5]) else { return nil }
        let days = RFC3339.days(fromCivil: v[0], v[1], v[2])
        return ((days * 86_400 + v[3] * 3_600 + v[4] * 60 + v[5]) - 8 * 3_600) * 1_000_000
    }

    public func sign(_ message: String) throws -> String {
        try appKey.signature(for: Array(message.utf8), padding: .insecurePKCS1v1_5).rawRepresentation.base64EncodedString()
    }

    func isValid(signature: String, for message: some DataProtocol) -> Bool {
        guard let raw = Data(base64Encoded: signature) else { return false }
        return alipayKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: raw), for: message,
                                          padding: .insecurePKCS1v1_5)
    }

    /// The parameters of one signed request: the common parameters, `biz_content` as JSON, and `sign` over all of them.
    public func signedRequest(method: String, bizContent: String, nowMicros: Int64, notifyURL: String?) throws -> [String: String] {
        var parameters = ["app_id": settings.appId, "method": method, "format": "JSON", "charset": "utf-8",
                          "sign_type": "RSA2", "timestamp": Self.beijingTimestamp(micros: nowMicros), "version": "1.0",
                          "biz_content": bizContent]
        if let notifyURL { parameters["notify_url"] = notifyURL }
        parameters["sign"] = try sign(Self.canonical(parameters))
        return parameters
    }

    /// A synchronous answer: the raw text of `<method>_response` must carry Alipay's signature; its decoded object is
    /// returned. `code` 10000 is success; anything else is Alipay's refusal, with its sub_code and sub_msg.
    /// Refusals whose sub_code is in `tolerating` are returned too, for the caller to read (a query of an unknown trade).
    /// With `acceptingRefusals`, every signed answer is returned, refusals included, for the caller to judge.
    public func verifyResponse(_ body: [UInt8], method: String, tolerating: Set<String> = [],
                               acceptingRefusals: Bool = false) throws(CofferError) -> [String: Any] {
        let name = method.replacingOccurrences(of: ".", with: "_") + "_response"
        guard let raw = Self.rawObject(named: name, in: body),
              let whole = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
              let object = try? JSONSerialization.jsonObject(with: Data(raw)) as? [String: Any] else {
            throw CofferError(.channelRefused, "Alipay answered without \(name).")
        }
        guard let signature = whole["sign"] as? String else {
            // Alipay leaves unsigned only the answers that refuse the request itself (bad app id, bad signature).
            throw Self.refusal(object)
        }
        guard isValid(signature: signature, for: raw) else {
            throw CofferError(.channelRefused, "Alipay's answer does not carry a valid signature; it was ignored.")
        }
        guard acceptingRefusals || object["code"] as? String == "10000" || tolerating.contains(object["sub_code"] as? String ?? "") else {
            throw Self.refusal(object)
        }
        return object
    }

    static func refusal(_ object: [String: Any]) -> CofferError {
        let detail = [object["code"], object["sub_code"], object["sub_msg"] ?? object["msg"]].compactMap { $0 as? String }
        return CofferError(.channelRefused, "Alipay refused the request (\(detail.joined(separator: ", "))); try again later or use another channel.")
    }

    /// The bytes of the JSON object under `name` as they were sent (Alipay signs that exact text). Strings are skipped
    /// so that a brace inside a value cannot end the object early.
    public static func rawObject(named name: String, in body: [UInt8]) -> ArraySlice<UInt8>? {
        let needle = Array("\"\(name)\"".utf8)
        guard needle.count <= body.count,
              let at = (0...(body.count - needle.count)).first(where: { body[$0..<($0 + needle.count)].elementsEqual(needle) }),
              let start = body[(at + needle.count)...].firstIndex(of: UInt8(ascii: "{")) else { return nil }
        var depth = 0
        var inString = false
        var escaped = false
        for i in start..<body.count {
            let c = body[i]
            if inString {
                if escaped { escaped = false } else if c == UInt8(ascii: "\\") { escaped = true } else if c == UInt8(ascii: "\"") { inString = false }
                continue
            }
            switch c {
            case UInt8(ascii: "\""): inString = true
            case UInt8(ascii: "{"): depth += 1
            case UInt8(ascii: "}"):
                depth -= 1
                if depth == 0 { return body[start...i] }
            default: break
            }
        }
        return nil
    }

    /// Decodes an `application/x-www-form-urlencoded` body ("+" is a space).
    public static func formFields(_ body: [UInt8]) -> [String: String]? {
        var fields: [String: String] = [:]
        for pair in String(decoding: body, as: UTF8.self).split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard let key = kv[0].replacingOccurrences(of: "+", with: " ").removingPercentEncoding,
                  let value = (kv.count > 1 ? kv[1] : "").replacingOccurrences(of: "+", with: " ").removingPercentEncoding else {
                return nil
            }
            fields[key] = value
        }
        return fields
    }

    /// An asynchronous payment notification: a signed form whose `out_trade_no` is the recharge id, `trade_no` Alipay's
    /// trade number and `total_amount` yuan with two decimals. Anything but a paid trade of this app (and seller) is refused.
    public func verifyPaymentNotification(body: [UInt8], nowMicros: Int64) throws(CofferError) -> VerifiedNotification {
        guard var fields = Self.formFields(body) else { throw .notificationMalformed("the body is not a URL-encoded form") }
        guard let signature = fields.removeValue(forKey: "sign"), fields.removeValue(forKey: "sign_type") == "RSA2" else {
            throw .notificationSignatureInvalid
        }
        guard isValid(signature: signature, for: Array(Self.canonical(fields).utf8)) else { throw .notificationSignatureInvalid }
        guard let sent = fields["notify_time"].flatMap(Self.parseBeijingTimestamp) else {
            throw .notificationMalformed("notify_time is missing or not yyyy-MM-dd HH:mm:ss")
        }
        guard nowMicros - sent <= Self.maxNotificationAgeSeconds * 1_000_000, sent - nowMicros <= 300 * 1_000_000 else {
            throw .notificationStale
        }
        guard fields["app_id"] == settings.appId else { throw .notificationMalformed("the notification is for another app") }
        if let seller = settings.sellerId, fields["seller_id"] != seller {
            throw .notificationMalformed("the notification is for another seller")
        }
        let status = fields["trade_status"] ?? ""
        guard Self.successStatuses.contains(status) else {
            throw CofferError(.notificationNotSuccess, "The trade is \(status.isEmpty ? "without a status" : status), not paid; nothing was credited.")
        }
        guard let recharge = fields["out_trade_no"], !recharge.isEmpty, let trade = fields["trade_no"], !trade.isEmpty,
              let amountText = fields["total_amount"] else {
            throw .notificationMalformed("out_trade_no, trade_no and total_amount are required")
        }
        let amount = try MoneyFormat.parsePositive(amountText, field: "total_amount")
        return VerifiedNotification(rechargeId: recharge, channelTradeNo: trade, amountMinor: amount,
                                    payerId: Self.payerId(fields["buyer_id"] ?? fields["buyer_open_id"]))
    }

    /// The buyer's Alipay user id (2088…) or, for apps on open ids, `buyer_open_id` (R7), when it is a sensible identifier.
    static func payerId(_ raw: String?) -> String? {
        raw.flatMap { (1...128).contains($0.utf8.count) ? $0 : nil }
    }
}
