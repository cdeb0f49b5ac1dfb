import CofferCore
import CofferHTTP
import CofferServices
import Foundation
import Hummingbird

/// Z3, Z4 in the console: the audit log at the desk (every account, filters, CSV) and an account's own trail for its
/// owner. Thin handlers over the store's audit reads.
struct AuditPages: Sendable {
    let console: WebConsole
    var engine: CofferEngine { console.engine }
    typealias Visit = WebConsole.Visit
    static let pageSize = 50

    func register(on web: RouterGroup<CofferContext>) {
        web.get("/desk/audit", use: desk)
        web.get("/desk/audit.csv", use: deskCSV)
        web.get("/audit", use: own)
        web.get("/desk/jobs", use: jobs)
    }

    /// N1: the latest runs of the scheduled jobs — which instance ran each, when, with what result (as
    /// `GET /v1/operator/job-runs`).
    @Sendable func jobs(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let runs = try await engine.store.jobRuns(job: nil, limit: 100)
        return console.page("desk/jobs", v, title: console.t(v, "desk_jobs_title"), model: [
            "runs": runs.map { r -> [String: Any] in
                ["job": console.t(v, "job_name_" + r.job), "run": r.run, "holder": r.holder,
                 "started": Display.time(r.startedAtMicros, timeZone: "Asia/Shanghai", withSeconds: true),
                 "finished": r.finishedAtMicros.map { Display.time($0, timeZone: "Asia/Shanghai", withSeconds: true) } ?? console.t(v, "desk_job_unfinished"),
                 "items": r.items.map(String.init) ?? "", "error": r.error ?? "", "failed": r.error != nil]
            },
            "hasRuns": !runs.isEmpty,
        ])
    }

    /// The filters a page or its download was asked for, checked by the API's own parser (a form's empty fields are
    /// no filter).
    func query(_ p: [String: String], accountId: String?) throws(CofferError) -> AuditQuery {
        var q = try AuditRoutes.query(p.filter { !$0.value.isEmpty }, accountField: accountId == nil ? "account" : nil)
        if let accountId { q.accountId = accountId }
        q.limit = Self.pageSize
        return q
    }

    /// Before and after as a person reads them: each field that changed, `cash 0.00 → 100.00`; what was created, `url …`.
    static func change(_ a: AuditRecord) -> String {
        let keys = Set((a.before ?? [:]).keys).union((a.after ?? [:]).keys).sorted()
        return keys.compactMap { k -> String? in
            let (old, new) = (a.before?[k], a.after?[k])
            guard old != new else { return nil }
            return "\(k) \(old ?? "–") → \(new ?? "–")"
        }.joined(separator: "; ")
    }

    func rows(_ records: [AuditRecord], timeZone: String) -> [[String: Any]] {
        records.map { a in
            ["seq": a.seq.map(String.init) ?? "", "time": Display.time(a.createdAtMicros, timeZone: timeZone, withSeconds: true),
             "account": a.accountId ?? "", "actor": a.actor, "action": a.action, "detail": a.detail, "change": Self.change(a),
             "origin": [a.ip, a.userAgent, a.requestId].compactMap { $0 }.joined(separator: " · ")]
        }
    }

    func page(_ template: String, _ v: Visit, _ p: [String: String], accountId: String?, timeZone: String, path: String) async throws -> Response {
        let q = try query(p, accountId: accountId)
        let records = try await engine.store.auditEvents(q)
        var kept = p
        kept["cursor"] = nil
        let filters = kept.filter { !$0.value.isEmpty }.sorted { $0.key < $1.key }
            .map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
        let base = filters.joined(separator: "&")
        let next = records.count == q.limit ? records.last?.seq.map { path + "?" + (base.isEmpty ? "" : base + "&") + "cursor=\($0)" } : nil
        var model: [String: Any] = [
            "records": rows(records, timeZone: timeZone), "hasRecords": !records.isEmpty, "next": next ?? "",
            "account": p["account"] ?? "", "actor": p["actor"] ?? "", "action": p["action"] ?? "",
        ]
        // Staff only: the download and the chain's head (its length counts every account's records).
        if accountId == nil {
            let head = try await engine.store.auditChainHead()
            model["csv"] = path + ".csv" + (base.isEmpty ? "" : "?" + base)
            model["chain"] = console.t(v, "audit_chain_head", ["count": String(head.seq), "hash": String(head.hash.prefix(16))])
        }
        return console.page(template, v, title: console.t(v, accountId == nil ? "desk_audit_title" : "audit_title"), model: model)
    }

    @Sendable func desk(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        return try await page("desk/audit", v, console.query(request), accountId: nil, timeZone: "Asia/Shanghai", path: "/desk/audit")
    }

    /// The download speaks the page's language (the API's keeps its stable column names).
    @Sendable func deskCSV(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let q = try query(console.query(request), accountId: nil)
        let header = AuditRoutes.csvColumns.map { console.t(v, "audit_csv_" + $0) }
        return try await AuditRoutes.csv(engine.store, q, name: "audit", header: header)
    }

    /// The owner's own trail: sign-ins, users and keys, and what operators did to the account.
    @Sendable func own(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .owner)
        let tz = try await console.timeZone(accountId)
        return try await page("audit", v, console.query(request), accountId: accountId, timeZone: tz, path: "/audit")
    }
}
