import CofferCore
import CofferServices
import Foundation
import HTTPTypes
import Hummingbird

/// Z3, Z4: the audit log — every account's for operators, an account's own for its owner; JSON pages or CSV.
public struct AuditRoutes: Sendable {
    let routes: Routes
    var engine: CofferEngine { routes.engine }

    func register(on v1: RouterGroup<CofferContext>) {
        v1.get("operator/audit-events", use: operatorList)
        v1.get("accounts/:accountId/audit-events", use: accountList)
    }

    @Sendable func operatorList(_ request: Request, _ context: CofferContext) async throws -> Response {
        try Access.requireOperator(try await routes.authenticate(request))
        let params = request.queryDictionary
        return try await answer(try Self.query(params, accountField: "accountId"), params, name: "audit-events")
    }

    /// The account's own audit trail (its owner): sign-ins, keys, users and what operators did to it.
    @Sendable func accountList(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .owner)
        let params = request.queryDictionary
        var q = try Self.query(params, accountField: nil)
        q.accountId = accountId
        return try await answer(q, params, name: "audit-events-\(accountId)")
    }

    /// The filters of an audit list (the API's and the console's): the account (under `accountField`; nil where the
    /// account is the caller's own), actor, action prefix, from/to, limit and cursor.
    public static func query(_ params: [String: String], accountField: String?) throws(CofferError) -> AuditQuery {
        var q = AuditQuery()
        let window = try TransactionRoutes.window(params)
        (q.fromMicros, q.toMicros) = (window.from, window.to)
        if let limit = window.limit { q.limit = limit }
        if let field = accountField, let a = params[field] {
            guard (1...64).contains(a.count), a.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
                throw .invalidField(field, "is not an account id")
            }
            q.accountId = a
        }
        if let a = params["actor"] {
            guard (1...128).contains(a.unicodeScalars.count) else { throw .invalidField("actor", "1–128 characters, e.g. operator:alice or key:…") }
            q.actor = a
        }
        if let a = params["action"] {
            guard (1...64).contains(a.count), a.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ".") }) else {
                throw .invalidField("action", "an action or its prefix, e.g. wallet. or user.sign_in")
            }
            q.actionPrefix = a
        }
        if let c = params["cursor"] {
            guard let seq = Int64(c), seq > 0 else { throw .invalidField("cursor", "is not a cursor this API returned") }
            q.beforeSeq = seq
        }
        return q
    }

    func answer(_ q: AuditQuery, _ params: [String: String], name: String) async throws -> Response {
        switch params["format"] ?? "json" {
        case "json":
            let page = try await engine.store.auditEvents(q)
            struct Page: Encodable { let items: [AuditEventView]; let nextCursor: String? }
            return try JSON.response(Page(items: page.map(AuditEventView.init),
                                          nextCursor: page.count == q.limit ? page.last?.seq.map(String.init) : nil))
        case "csv":
            return try await Self.csv(engine.store, q, name: name)
        default:
            throw CofferError.invalidField("format", "must be json or csv")
        }
    }

    public static let csvColumns = ["seq", "time", "account_id", "actor", "action", "detail", "ip", "user_agent", "request_id", "hash",
                                    "before", "after"]

    /// The API's file has the stable column names; the console passes its page's language (`header`).
    public static func csv(_ store: any CofferStore, _ query: AuditQuery, name: String, header: [String] = csvColumns) async throws -> Response {
        precondition(header.count == csvColumns.count)
        var q = query
        q.limit = 1_000
        var out = "\u{FEFF}" + header.map { Exports.csvField($0, text: true) }.joined(separator: ",") + "\r\n"
        var rows = 0
        while rows < Limits.maxCSVRows {
            let page = try await store.auditEvents(q)
            for a in page {
                let fields = [String(a.seq ?? 0), RFC3339.format(micros: a.createdAtMicros), a.accountId ?? "", a.actor, a.action, a.detail,
                              a.ip ?? "", a.userAgent ?? "", a.requestId ?? "", a.hash ?? "",
                              AuditChain.stateText(a.before) ?? "", AuditChain.stateText(a.after) ?? ""]
                out += fields.enumerated().map { Exports.csvField($0.element, text: $0.offset >= 3) }.joined(separator: ",") + "\r\n"
            }
            rows += page.count
            guard page.count == q.limit, let last = page.last?.seq else { break }
            q.beforeSeq = last
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/csv; charset=utf-8"
        headers[.contentDisposition] = "attachment; filename=\"\(name).csv\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: out)))
    }
}

struct AuditEventView: Encodable {
    let seq: Int64, time: String, accountId: String?, actor: String, action: String, detail: String
    let ip: String?, userAgent: String?, requestId: String?, hash: String
    let before: [String: String]?, after: [String: String]?
    init(_ a: AuditRecord) {
        (seq, time, accountId, actor, action, detail) = (a.seq ?? 0, RFC3339.format(micros: a.createdAtMicros), a.accountId, a.actor, a.action, a.detail)
        (ip, userAgent, requestId, hash) = (a.ip, a.userAgent, a.requestId, a.hash ?? "")
        (before, after) = (a.before, a.after)
    }
}
