import CofferCore
import CofferServices
import Foundation
import Hummingbird
import MultipartKit

/// HTML forms: the API's multipart upload and the console's pages read them the same way.
public enum Forms {
    /// A receipt of at most 5 MB plus the form's other fields.
    public static let maxUploadBytes = 5 * 1_024 * 1_024 + 64 * 1_024

    public static func multipart<T: Decodable>(_ type: T.Type, from request: Request, limitBytes: Int,
                                               tooLarge: CofferError, fields: String) async throws -> T {
        guard let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("multipart/form-data"),
              let boundary = contentType.split(separator: ";").lazy.map({ $0.trimmingCharacters(in: .whitespaces) })
                .first(where: { $0.lowercased().hasPrefix("boundary=") })?.dropFirst(9) else {
            throw CofferError(.multipartRequired, "Send multipart/form-data with \(fields).")
        }
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: limitBytes) } catch { throw tooLarge }
        let cleanBoundary = String(boundary).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
        guard headerNamesAreASCII(Array(body.readableBytesView), boundary: cleanBoundary) else {
            throw CofferError(.multipartInvalid, "The form could not be read: a part's header name is not ASCII.")
        }
        do {
            return try FormDataDecoder().decode(T.self, from: body, boundary: cleanBoundary)
        } catch {
            throw CofferError(.multipartInvalid, "The form could not be read; check the multipart boundary and fields.")
        }
    }

    /// MultipartKit 4.7 indexes a 128-entry table with each byte of a part's header name, so a name byte ≥ 0x80 traps the
    /// whole server (schemathesis found it). Header names are ASCII by RFC 7578/5322: such a form is refused before parsing.
    static func headerNamesAreASCII(_ bytes: [UInt8], boundary: String) -> Bool {
        let marker = Array(("--" + boundary).utf8)
        guard !marker.isEmpty else { return true }
        var i = 0
        while let start = find(marker, in: bytes, from: i) {
            // The header block: from the line after the boundary to the first empty line (or the end).
            var line = start + marker.count
            while line < bytes.count, bytes[line] != UInt8(ascii: "\n") { line += 1 }
            line += 1
            while line < bytes.count {
                var end = line
                while end < bytes.count, bytes[end] != UInt8(ascii: "\n") { end += 1 }
                let content = bytes[line..<end].last == UInt8(ascii: "\r") ? bytes[line..<(end - 1)] : bytes[line..<end]
                if content.isEmpty { break }
                let name = content.prefix { $0 != UInt8(ascii: ":") }
                if name.contains(where: { $0 >= 0x80 }) { return false }
                line = end + 1
            }
            i = max(line, start + 1)
        }
        return true
    }

    private static func find(_ needle: [UInt8], in haystack: [UInt8], from: Int) -> Int? {
        guard needle.count <= haystack.count else { return nil }
        var i = from
        while i + needle.count <= haystack.count {
            if haystack[i] == needle[0], haystack[i..<(i + needle.count)].elementsEqual(needle) { return i }
            i += 1
        }
        return nil
    }

    /// application/x-www-form-urlencoded fields; a repeated field keeps its last value.
    public static func urlEncoded(_ request: Request, limitBytes: Int = 64 * 1_024) async throws -> [String: String] {
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: limitBytes) } catch { throw CofferError.bodyTooLarge }
        let fields = parseURLEncoded(String(decoding: body.readableBytesView, as: UTF8.self))
        if fields.values.contains(where: { $0.contains("\0") }) { throw CofferError.invalidField("form", "may not contain NUL characters") }
        return fields
    }

    public static func parseURLEncoded(_ text: String) -> [String: String] {
        var fields: [String: String] = [:]
        for pair in text.split(separator: "&").prefix(200) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            func decode(_ s: Substring) -> String? { s.replacingOccurrences(of: "+", with: " ").removingPercentEncoding }
            guard let key = decode(kv[0]), !key.isEmpty else { continue }
            fields[key] = kv.count > 1 ? (decode(kv[1]) ?? "") : ""
        }
        return fields
    }
}

/// The remittance form (T1), shared by the API and the console.
public struct RemittanceForm: Decodable, Sendable {
    public var payerName: String?
    public var payerAccount: String?
    public var payerBank: String?
    public var amount: String?
    public var remittedOn: String?
    public var bankSerial: String?
    public var resubmissionOf: String?
    public var receipt: Data?
    /// Console only: the CSRF token and the form's idempotency key.
    public var csrf: String?
    public var idem: String?

    public static let fields = "the fields payerName, payerAccount, payerBank, amount, remittedOn, optional bankSerial, and the file receipt"
    public static let tooLarge = CofferError(.receiptTooLarge, "The receipt must be at most 5 MB.")

    public var input: RemittanceInput {
        RemittanceInput(payerName: payerName ?? "", payerAccount: payerAccount ?? "", payerBank: payerBank ?? "",
                        amountText: amount ?? "", remittedOn: remittedOn ?? "", bankSerial: bankSerial,
                        receipt: receipt.map { Array($0) } ?? [], resubmissionOf: resubmissionOf.flatMap { $0.isEmpty ? nil : $0 })
    }
}
