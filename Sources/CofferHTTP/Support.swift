import CofferCore
import CofferServices
import Foundation
import Hummingbird
import HTTPTypes
import Logging
import NIOCore

public struct CofferContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// The client's IP address (for per-client limits such as sign-in attempts, and the audit log): the peer's, or behind
    /// a trusted proxy the one it forwarded; nil in router tests.
    public var remoteIP: String?
    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        remoteIP = source.channel.remoteAddress?.ipAddress
    }
}

extension Request {
    /// The query as a dictionary (the last value of a repeated name): what every list route and page reads.
    public var queryDictionary: [String: String] {
        var params: [String: String] = [:]
        for (k, v) in uri.queryParameters { params[String(k)] = String(v) }
        return params
    }
}

/// Hard limits (TIGER_STYLE: a limit on everything).
enum Limits {
    static let maxBodyBytes = 64 * 1024
    /// A batch of the documented 1,000 operations is about 125 KB of JSON; 512 KiB leaves room for long references.
    static let maxBatchBodyBytes = 512 * 1024
    static let maxPageSize = 200
    static let maxCSVRows = 100_000
    static let maxReferenceLength = 200
}

/// Z3: every request gets an id — the caller's `X-Request-Id` when it is a short safe token, else a new one — returned in
/// the response's `X-Request-Id`, written into the audit records the request causes and into its log lines.
struct RequestOriginMiddleware: RouterMiddleware {
    typealias Context = CofferContext
    static let header = HTTPField.Name("X-Request-Id")!
    static let forwardedFor = HTTPField.Name("X-Forwarded-For")!
    var trustedProxies: Set<String> = []

    func handle(_ request: Request, context: CofferContext,
                next: (Request, CofferContext) async throws -> Response) async throws -> Response {
        var context = context
        context.remoteIP = Self.clientIP(peer: context.remoteIP, forwardedFor: request.headers[values: Self.forwardedFor],
                                         trustedProxies: trustedProxies)
        let incoming = request.headers[Self.header].flatMap { v in
            (1...64).contains(v.count) && v.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "-_.".contains($0)) }) ? v : nil
        }
        let id = incoming ?? Self.newId()
        let origin = RequestOrigin(requestId: id, ip: context.remoteIP, userAgent: request.headers[.userAgent])
        var response = try await RequestOrigin.$current.withValue(origin) { try await next(request, context) }
        response.headers[Self.header] = id
        return response
    }

    /// The rightmost address of X-Forwarded-For that is not a trusted proxy: addresses left of it were written by the
    /// client and prove nothing. Only when the peer itself is trusted; a value that is not an address is ignored.
    static func clientIP(peer: String?, forwardedFor: [String], trustedProxies: Set<String>) -> String? {
        guard let peer, trustedProxies.contains(peer) else { return peer }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { $0.trimmingCharacters(in: .whitespaces) }
        for hop in hops.reversed().prefix(16) where !trustedProxies.contains(hop) {
            guard (2...45).contains(hop.count), hop.allSatisfy({ $0.isHexDigit || $0 == "." || $0 == ":" }) else { return peer }
            return hop
        }
        return peer
    }

    /// 128 random bits as 32 hex digits.
    static func newId() -> String { "req_" + Secrets.token(prefix: "").prefix(32) }
}

/// Renders every error as application/problem+json (RFC 9457) with a stable `code`. Internal errors are logged, never shown.
struct ProblemMiddleware: RouterMiddleware {
    typealias Context = CofferContext
    let logger: Logger
    var modules: [any RouteModule] = []

    func handle(_ request: Request, context: CofferContext,
                next: (Request, CofferContext) async throws -> Response) async throws -> Response {
        let error: CofferError
        do {
            // PostgreSQL refuses NUL in text: a NUL anywhere in the query is bad input (a 400), never a database error.
            if let query = request.uri.query, query.contains("\0") || query.range(of: "%00", options: .caseInsensitive) != nil {
                throw CofferError.nulCharacter("query")
            }
            return try await next(request, context)
        } catch let thrown {
            error = cofferError(thrown, request)
        }
        // A browser asking for a page outside the API gets an HTML page with the same status and code.
        if !modules.isEmpty, !request.uri.path.hasPrefix("/v1/"), request.headers[.accept]?.contains("text/html") == true {
            for module in modules {
                if let page = await module.htmlError(request, error) { return page }
            }
        }
        var response = Self.problem(error)
        if let allow = error.parameters["allow"], error.code == .methodNotAllowed { response.headers[.allow] = allow }
        return response
    }

    /// What a log line says of its request: method, path (apart from the message, so that log checks can tell them
    /// apart) and request id. Never the query, headers or body: they may carry keys and personal data.
    static func requestMetadata(_ request: Request, _ extra: Logger.Metadata = [:]) -> Logger.Metadata {
        var m: Logger.Metadata = ["method": "\(request.method)", "path": "\(request.uri.path)",
                                  "request_id": "\(RequestOrigin.current?.requestId ?? "-")"]
        m.merge(extra) { $1 }
        return m
    }

    /// Every error as a CofferError with a stable code; anything unexpected is logged and becomes `internal_error`.
    private func cofferError(_ error: any Error, _ request: Request) -> CofferError {
        switch error {
        case let e as CofferError:
            return e
        case is NIOTooManyBytesError:
            return .bodyTooLarge
        case let e as HTTPError:
            switch e.status {
            case .contentTooLarge: return .bodyTooLarge
            case .notFound:
                // The router has no route for this method; a documented path with other methods is a 405, not a 404.
                let allowed = OpenAPIDocument.methods(forPath: request.uri.path)
                if !allowed.isEmpty {
                    return CofferError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path); use \(allowed.joined(separator: " or ")).",
                                       ["allow": allowed.joined(separator: ", ")])
                }
                return CofferError(.routeNotFound, "No such route: \(request.method) \(request.uri.path).")
            case .methodNotAllowed:
                return CofferError(.methodNotAllowed, "\(request.method) is not allowed on \(request.uri.path).")
            case let status where status.code >= 500:
                logger.error("HTTP error", metadata: Self.requestMetadata(request, ["status": "\(status.code)"]))
                return .internalError
            default:
                return CofferError(.badRequest, e.body ?? e.status.reasonPhrase)
            }
        default:
            logger.error("internal error: \(String(describing: error))", metadata: Self.requestMetadata(request))
            return CofferError(.internalError, "Something went wrong on our side; nothing was changed. Retry with the same Idempotency-Key.")
        }
    }

    static func problem(_ error: CofferError) -> Response {
        let status = error.kind.httpStatus
        struct Problem: Encodable {
            let type: String, title: String, status: Int, code: String, detail: String
        }
        let body = Problem(type: "https://coffer.dev/problems/\(error.code.rawValue)", title: status.reasonPhrase,
                           status: status.code, code: error.code.rawValue, detail: error.detail)
        var headers = HTTPFields()
        headers[.contentType] = "application/problem+json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try! JSON.encoder.encode(body))))
    }
}

extension CofferError.Kind {
    /// The HTTP status of an error kind, for the API and the console alike.
    public var httpStatus: HTTPResponse.Status {
        switch self {
        case .badRequest: .badRequest
        case .unauthorized: .unauthorized
        case .forbidden: .forbidden
        case .notFound: .notFound
        case .methodNotAllowed: .methodNotAllowed
        case .conflict: .conflict
        case .unprocessable: .unprocessableContent
        case .payloadTooLarge: .contentTooLarge
        case .tooManyRequests: .tooManyRequests
        case .internalError: .internalServerError
        case .badGateway: .badGateway
        }
    }
}

extension CofferError {
    static func nulCharacter(_ where_: String) -> CofferError {
        .invalidField(where_, "may not contain NUL characters (\\u0000)")
    }
    public static let internalError = CofferError(
        .internalError, "Something went wrong on our side; nothing was changed. Retry with the same Idempotency-Key.")
    public static let bodyTooLarge = CofferError(.bodyTooLarge, "The request body is larger than \(Limits.maxBodyBytes / 1024) KiB; send less.")
}

enum JSON {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return e
    }()

    static func response<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok, replayed: Bool = false) throws -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json; charset=utf-8"
        if replayed { headers[HTTPField.Name("Idempotent-Replayed")!] = "true" }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    /// Reads and decodes a JSON body, turning every decoding failure into a 400 that names the field to fix.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, limitBytes: Int = Limits.maxBodyBytes) async throws -> T {
        var request = request
        let buffer = try await request.collectBody(upTo: limitBytes)
        guard buffer.readableBytes > 0 else {
            throw CofferError(.bodyRequired, "Send a JSON object as the request body.")
        }
        if Self.containsNUL(buffer.readableBytesView) { throw CofferError.nulCharacter("body") }
        do {
            return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView))
        } catch let error as DecodingError {
            // Foundation reports a number that does not fit an integer field (1.5, 1e40) as invalid JSON with no field;
            // when the body parses as JSON, say what is wrong instead.
            if case .dataCorrupted(let ctx) = error, ctx.codingPath.isEmpty,
               (try? JSONSerialization.jsonObject(with: Data(buffer.readableBytesView), options: [.fragmentsAllowed])) != nil {
                throw CofferError.invalidField("body", "a number does not fit its field: whole-number fields (months, counts, seconds, percentages) take no fraction and must be in range")
            }
            throw describe(error)
        }
    }

    /// A raw NUL byte, or the JSON escape `\u0000` (in any case of hex digits). Scans raw bytes: usage batches are megabytes
    /// and a byte-view loop with bounds checks was a twentieth of ingestion's CPU.
    static func containsNUL(_ bytes: ByteBufferView) -> Bool {
        bytes.withUnsafeBytes { raw in
            let count = raw.count
            guard count > 0, let base = raw.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return false }
            if memchr(base, 0, count) != nil { return true }
            var i = 0
            while i < count, let hit = memchr(base + i, Int32(UInt8(ascii: "\\")), count - i) {
                let at = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                if at + 5 < count, base[at + 1] == UInt8(ascii: "u"), base[at + 2] == 48, base[at + 3] == 48, base[at + 4] == 48,
                   base[at + 5] == 48 {
                    return true
                }
                i = at + 2  // skip the escaped character: "\\u0000" is a backslash and text
            }
            return false
        } ?? false
    }

    static func describe(_ error: DecodingError) -> CofferError {
        func path(_ ctx: DecodingError.Context, _ last: CodingKey? = nil) -> String {
            let keys = ctx.codingPath + (last.map { [$0] } ?? [])
            return keys.isEmpty ? "body" : keys.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let ctx):
            let field = path(ctx)
            if type == String.self && ctx.codingPath.last.map({ Money.isMoneyField($0.stringValue) }) == true {
                return CofferError(.amountNotString, "\(field) must be a decimal string like \"12.30\", not a JSON number (floats lose cents).")
            }
            return .invalidField(field, "has the wrong type; expected \(type == String.self ? "a string" : "\(type)")")
        case .valueNotFound(_, let ctx):
            return .invalidField(path(ctx), "is required and may not be null")
        case .keyNotFound(let key, let ctx):
            return .invalidField(path(ctx, key), "is required")
        case .dataCorrupted(let ctx):
            if ctx.codingPath.isEmpty {
                return CofferError(.malformedJson, "The body is not valid JSON; send a JSON object.")
            }
            return .invalidField(path(ctx), ctx.debugDescription)
        @unknown default:
            return CofferError(.malformedJson, "The body could not be read as JSON.")
        }
    }
}

enum Money {
    static func isMoneyField(_ name: String) -> Bool { name == "amount" || name.hasSuffix("Amount") }
}

enum Time {
    static func parse(_ text: String, field: String) throws(CofferError) -> Int64 {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let plain = ISO8601DateFormatter()
        guard let date = f.date(from: text) ?? plain.date(from: text) else {
            throw .invalidField(field, "must be an RFC 3339 time like 2026-11-01T00:00:00Z")
        }
        return Int64((date.timeIntervalSince1970 * 1000).rounded()) * 1000
    }
}

extension Request {
    /// W10: every state-changing request names its idempotency key.
    func idempotencyKey() throws(CofferError) -> String {
        guard let key = headers[HTTPField.Name("Idempotency-Key")!] else { throw .idempotencyKeyRequired }
        guard !key.isEmpty, key.utf8.count <= 100, key.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw .idempotencyKeyInvalid
        }
        return key
    }
}

extension CofferContext {
    /// A path id that is empty, longer than any id, or not printable ASCII names nothing that can exist: 404, the code
    /// of the thing the path names (ids are made by Coffer, so no valid request has such an id).
    public func param(_ name: String) throws(CofferError) -> String {
        guard let v = parameters.get(name), !v.isEmpty, v.utf8.count <= 100, v.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) else {
            throw .notFound(Self.notFoundCodes[name] ?? .routeNotFound, String(parameters.get(name)?.prefix(40) ?? ""))
        }
        return v
    }

    static let notFoundCodes: [String: ErrorCode] = [
        "accountId": .accountNotFound, "rechargeId": .rechargeNotFound, "freezeId": .freezeNotFound, "chargeId": .chargeNotFound,
        "remittanceId": .remittanceNotFound, "batchId": .codeBatchNotFound, "lineId": .statementLineNotFound,
        "refundId": .channelRefundNotFound, "userId": .userNotFound, "productId": .productNotFound,
        "projectId": .projectNotFound, "resourceId": .resourceNotFound,
    ]
}
