import CofferCore
import CofferHTTP
import CofferServices
import Foundation
import HTTPTypes
import Hummingbird

/// 账单 / Bills for owner and finance users (B3–B6): the month's overview (L0) with a six-month chart by product, the
/// summaries (L1), resources (L2) and lines (L3) with filters and CSV, projects (B5), the statistic-period switch (B4) and
/// the cost estimate (B6); at the desk, settlement runs (B2). Thin handlers over BillService and ResourceService.
struct BillPages: Sendable {
    let console: WebConsole
    var engine: CofferEngine { console.engine }
    typealias Visit = WebConsole.Visit

    func register(on web: RouterGroup<CofferContext>) {
        web.get("/bills", use: overview)
        web.get("/bills.csv", use: overviewCSV)
        web.get("/bills/summary", use: summary)
        web.get("/bills/summary.csv", use: summaryCSV)
        web.get("/bills/resources", use: resources)
        web.get("/bills/resources.csv", use: resourcesCSV)
        web.get("/bills/lines", use: lines)
        web.get("/bills/lines.csv", use: linesCSV)
        web.post("/bills/settings", use: switchPeriod)
        web.get("/projects", use: projects)
        web.post("/projects", use: createProject)
        web.post("/projects/:projectId/rename", use: renameProject)
        web.post("/resources/:resourceId/project", use: assignProject)
        web.get("/desk/settlements", use: runs)
        web.post("/desk/settlements", use: runNow)
    }

    // MARK: shared

    func params(_ request: Request) -> [String: String] { console.query(request) }

    /// The month asked for (`?month=YYYY-MM`), or the current month in the account's zone.
    func month(_ request: Request, _ accountId: String) async throws -> (month: String, timeZone: String) {
        let tz = try await engine.store.account(id: accountId)?.timeZone ?? "Asia/Shanghai"
        let m = params(request)["month"] ?? SettlementCalendar.month(of: engine.clock.nowMicros(), timeZone: tz)
        try engine.bills.checkMonth(m)
        return (m, tz)
    }

    static func shift(_ month: String, by delta: Int) -> String {
        guard let (y, m) = StatisticPeriod.parseMonth(month) else { return month }
        let index = y * 12 + (m - 1) + delta
        return String(format: "%04d-%02d", index / 12, index % 12 + 1)
    }

    func productNames(_ v: Visit) async throws -> [String: String] { try await console.productNames(v) }

    func amounts(_ a: BillAmounts) -> [String: Any] {
        ["amount": Display.money(a.deductionMinor), "cash": Display.money(a.cashMinor), "gift": Display.money(a.giftMinor),
         "coupon": Display.money(a.couponMinor), "rated": "¥" + Rating.format(a.ratedUnits), "cycles": a.cycles]
    }

    static func query(_ pairs: [String: String?]) -> String {
        let kept = pairs.compactMapValues { $0 }.filter { !$0.value.isEmpty }
        return kept.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")" }
            .joined(separator: "&")
    }

    /// A bad month or filter shows the page's error in place of its data.
    func failed(_ template: String, _ v: Visit, _ titleKey: String, _ e: CofferError) -> Response {
        console.page(template, v, title: console.t(v, titleKey), model: ["failed": true], status: e.kind.httpStatus, error: console.message(e, v))
    }

    // MARK: L0

    @Sendable func overview(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let (m, _): (String, String)
        do { (m, _) = try await month(request, accountId) } catch let e as CofferError { return failed("bills", v, "bills_title", e) }
        let bills = engine.bills
        let o = try await bills.overview(accountId: accountId, month: m)
        let names = try await productNames(v)
        let settings = try await bills.settings(accountId: accountId)
        let estimate = try await bills.costEstimate(accountId: accountId)
        // Six months, oldest first, for the chart.
        var series: [(String, [(String, Int64)])] = []
        for back in (0..<6).reversed() {
            let month = Self.shift(m, by: -back)
            let mo = back == 0 ? o : try await bills.overview(accountId: accountId, month: month)
            series.append((month, mo.byProduct.map { (names[$0.productId] ?? $0.productId, $0.amounts.deductionMinor) }))
        }
        let period = console.t(v, "bill_period_" + o.period.rawValue)
        var model: [String: Any] = [
            "month": m, "prev": Self.shift(m, by: -1), "next": Self.shift(m, by: 1),
            "total": Display.money(o.postpaid.deductionMinor), "postpaid": Display.money(o.postpaid.deductionMinor),
            "prepaid": Display.money(0), "cash": Display.money(o.postpaid.cashMinor), "gift": Display.money(o.postpaid.giftMinor),
            "coupon": Display.money(o.postpaid.couponMinor), "precision": "¥" + Rating.format(o.postpaid.remainderUnits),
            "periodUsed": period,
            "products": o.byProduct.map { p -> [String: Any] in
                var row = amounts(p.amounts)
                row["name"] = names[p.productId] ?? p.productId
                row["lines"] = "/bills/lines?" + Self.query(["month": m, "product": p.productId])
                return row
            },
            "hasProducts": !o.byProduct.isEmpty,
            "chart": BillChart.svg(series, title: console.t(v, "bill_chart_title"), empty: console.t(v, "bill_chart_empty")),
            "csv": "/bills.csv?month=" + m,
            "estimateMonth": estimate.month, "estimatePostpaid": Display.money(estimate.postpaidMinor),
            "estimatePrepaid": Display.money(estimate.prepaidRenewalsMinor),
            "estimateTotal": Display.money(estimate.totalMinor),
            "estimateBasis": console.t(v, "bill_estimate_basis", ["days": String(estimate.sampleDays), "amount": Display.money(estimate.sampleDeductionMinor),
                                                                  "monthDays": String(estimate.daysInMonth)]),
            "currentPeriod": console.t(v, "bill_period_" + settings.period.rawValue),
            "switchMonth": settings.switchMonth ?? "",
            "canSwitch": settings.period == .deduction,
        ]
        model["monthLinks"] = ["summary": "/bills/summary?month=" + m, "resources": "/bills/resources?month=" + m, "lines": "/bills/lines?month=" + m]
        return console.page("bills", v, title: console.t(v, "bills_title"), model: model)
    }

    /// The console's files speak the page's language (the API's keep the stable names and codes).
    func labels(_ v: Visit) -> BillExports.Labels {
        let table = console.catalogs.table(v.lang)
        return BillExports.Labels(column: { table["csv_bill_" + $0] ?? $0 }, code: { table["csv_bill_code_" + $0] ?? $0 }, english: v.lang == .en)
    }

    @Sendable func overviewCSV(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let (m, _) = try await month(request, accountId)
        let products = Dictionary(uniqueKeysWithValues: try await engine.store.products().map { ($0.id, $0) })
        return BillExports.overview(try await engine.bills.overview(accountId: accountId, month: m), products: products, labels: labels(v))
    }

    @Sendable func switchPeriod(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        guard f["confirm"] == "yes" else { throw WebFlow.redirect("/bills?notice=notice_period_confirm") }
        _ = try await engine.bills.setPeriod(accountId: accountId, .billing, actor: v.session!.principal.actor)
        throw WebFlow.redirect("/bills?notice=notice_period_switched")
    }

    // MARK: L1

    func dimension(_ p: [String: String]) throws(CofferError) -> (BillSummaryDimension, String) {
        let by = p["by"] ?? "product"
        switch by {
        case "product": return (.product, by)
        case "project": return (.project, by)
        case "region": return (.region, by)
        case "tag":
            let key = try TextRules.required(p["tagKey"] ?? "", field: "tagKey", max: 64)
            return (.tag(key), by)
        default: throw .invalidField("by", "must be product, project, region or tag")
        }
    }

    @Sendable func summary(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let p = params(request)
        let m: String, dim: BillSummaryDimension, by: String
        do { (m, _) = try await month(request, accountId); (dim, by) = try dimension(p) } catch let e as CofferError {
            return failed("bills_summary", v, "bills_summary_title", e)
        }
        let rows = try await engine.bills.summary(accountId: accountId, month: m, by: dim)
        let names = try await productNames(v)
        let projects = Dictionary(uniqueKeysWithValues: try await engine.store.projects(accountId: accountId).map { ($0.id, $0.name) })
        let items = rows.map { r -> [String: Any] in
            var row = amounts(r.amounts)
            switch dim {
            case .product:
                row["label"] = names[r.key] ?? r.key
                row["lines"] = "/bills/lines?" + Self.query(["month": m, "product": r.key])
            case .project:
                row["label"] = r.key.isEmpty ? console.t(v, "bill_no_project") : projects[r.key] ?? r.key
                row["lines"] = "/bills/lines?" + Self.query(["month": m, "project": r.key.isEmpty ? "none" : r.key])
            case .region: row["label"] = r.key.isEmpty ? console.t(v, "bill_no_region") : r.key
            case .tag: row["label"] = r.key.isEmpty ? console.t(v, "bill_untagged") : r.key
            }
            return row
        }
        let options = ["product", "project", "region", "tag"].map { ["value": $0, "label": console.t(v, "bill_by_" + $0), "selected": $0 == by] }
        return console.page("bills_summary", v, title: console.t(v, "bills_summary_title"), model: [
            "month": m, "rows": items, "hasRows": !items.isEmpty, "options": options, "tagKey": p["tagKey"] ?? "",
            "byLabel": console.t(v, "bill_by_" + by),
            "csv": "/bills/summary.csv?" + Self.query(["month": m, "by": by, "tagKey": p["tagKey"]]),
        ])
    }

    @Sendable func summaryCSV(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let (m, _) = try await month(request, accountId)
        let (dim, by) = try dimension(params(request))
        return BillExports.summary(try await engine.bills.summary(accountId: accountId, month: m, by: dim), accountId: accountId, month: m, by: by,
                                   labels: labels(v))
    }

    // MARK: L2

    @Sendable func resources(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let m: String
        do { (m, _) = try await month(request, accountId) } catch let e as CofferError { return failed("bills_resources", v, "bills_resources_title", e) }
        let rows = try await engine.bills.resources(accountId: accountId, month: m)
        let names = try await productNames(v)
        let projects = Dictionary(uniqueKeysWithValues: try await engine.store.projects(accountId: accountId).map { ($0.id, $0.name) })
        let items = rows.map { r -> [String: Any] in
            var row = amounts(r.amounts)
            row["id"] = r.resourceId
            row["name"] = r.resourceName
            row["product"] = names[r.productId] ?? r.productId
            row["project"] = r.projectId.map { projects[$0] ?? $0 } ?? console.t(v, "bill_no_project")
            row["region"] = r.region ?? ""
            row["lines"] = "/bills/lines?" + Self.query(["month": m, "resource": r.resourceId])
            return row
        }
        return console.page("bills_resources", v, title: console.t(v, "bills_resources_title"), model: [
            "month": m, "rows": items, "hasRows": !items.isEmpty, "csv": "/bills/resources.csv?month=" + m,
        ])
    }

    @Sendable func resourcesCSV(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let (m, _) = try await month(request, accountId)
        return BillExports.resources(try await engine.bills.resources(accountId: accountId, month: m), accountId: accountId, month: m,
                                     labels: labels(v))
    }

    // MARK: L3

    func filter(_ p: [String: String]) -> BillLineFilter {
        BillLineFilter(resourceId: p["resource"].flatMap { $0.isEmpty ? nil : $0 }, productId: p["product"].flatMap { $0.isEmpty ? nil : $0 },
                       projectId: p["project"].flatMap { $0.isEmpty ? nil : ($0 == "none" ? "" : $0) })
    }

    @Sendable func lines(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let p = params(request)
        let m: String, tz: String
        do { (m, tz) = try await month(request, accountId) } catch let e as CofferError { return failed("bills_lines", v, "bills_lines_title", e) }
        let filter = filter(p)
        let page: (rows: [BillLineRow], next: String?)
        do { page = try await engine.bills.lines(accountId: accountId, month: m, cursor: p["cursor"], limit: 50, filter: filter) } catch let e as CofferError {
            return failed("bills_lines", v, "bills_lines_title", e)
        }
        let names = try await productNames(v)
        let rows = page.rows.map { r -> [String: Any] in
            let s = r.billed.settlement, l = r.line
            let list = l.listAmountUnits.map { "¥" + Rating.format(Int128($0)) } ?? "-"
            let discount = UsageRules.discountRate(amountUnits: l.amountUnits, listAmountUnits: l.listAmountUnits) ?? "-"
            return ["cycle": Display.time(s.cycle.startMicros, timeZone: tz) + " – " + Display.time(s.cycle.endMicros, timeZone: tz),
                    "resource": s.resourceName, "resourceId": s.resourceId, "product": names[s.productId] ?? s.productId,
                    "component": l.component, "quantity": l.quantity + " " + l.unit, "list": list, "discount": discount,
                    "amount": "¥" + Rating.format(Int128(l.amountUnits)), "deducted": Display.time(s.createdAtMicros, timeZone: tz)]
        }
        let kept: [String: String?] = ["month": m, "resource": p["resource"], "product": p["product"], "project": p["project"]]
        var next = kept
        next["cursor"] = page.next
        return console.page("bills_lines", v, title: console.t(v, "bills_lines_title"), model: [
            "month": m, "rows": rows, "hasRows": !rows.isEmpty,
            "resource": p["resource"] ?? "", "product": p["product"] ?? "", "project": p["project"] ?? "",
            "productOptions": names.sorted { $0.key < $1.key }.map { ["value": $0.key, "label": $0.value, "selected": $0.key == p["product"]] },
            "older": page.next == nil ? "" : "/bills/lines?" + Self.query(next),
            "first": p["cursor"] == nil ? "" : "/bills/lines?" + Self.query(kept),
            "csv": "/bills/lines.csv?" + Self.query(kept),
        ])
    }

    @Sendable func linesCSV(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let (m, _) = try await month(request, accountId)
        return try await BillExports.lines(engine.bills, accountId: accountId, month: m, filter: filter(params(request)), labels: labels(v))
    }

    // MARK: projects (B5)

    func projectsPage(_ v: Visit, _ accountId: String, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let projects = try await engine.store.projects(accountId: accountId)
        let resources = try await engine.store.resources(accountId: accountId)
        let names = try await productNames(v)
        let counts = Dictionary(grouping: resources.compactMap(\.projectId), by: { $0 }).mapValues(\.count)
        return console.page("projects", v, title: console.t(v, "projects_title"), model: [
            "projects": projects.map { p in ["id": p.id, "name": p.name, "count": String(counts[p.id] ?? 0)] },
            "hasProjects": !projects.isEmpty, "idem": console.formKey(),
            "resources": resources.map { r -> [String: Any] in
                ["id": r.id, "name": r.name, "product": names[r.productId] ?? r.productId, "region": r.region ?? "",
                 "options": [["value": "", "label": console.t(v, "bill_no_project"), "selected": r.projectId == nil]]
                    + projects.map { ["value": $0.id, "label": $0.name, "selected": $0.id == r.projectId] }]
            },
            "hasResources": !resources.isEmpty,
        ], status: status, error: error)
    }

    @Sendable func projects(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        return try await projectsPage(v, accountId)
    }

    @Sendable func createProject(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await projectsPage(v, accountId, error: e, status: s) }) {
            _ = try await engine.resources.createProject(accountId: accountId, name: f["name"] ?? "", idempotencyKey: f["idem"] ?? "")
            throw WebFlow.redirect("/projects?notice=notice_project_created")
        }
    }

    @Sendable func renameProject(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let id = try context.param("projectId")
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await projectsPage(v, accountId, error: e, status: s) }) {
            _ = try await engine.resources.renameProject(accountId: accountId, id: id, name: f["name"] ?? "")
            throw WebFlow.redirect("/projects?notice=notice_project_renamed")
        }
    }

    @Sendable func assignProject(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let id = try context.param("resourceId")
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await projectsPage(v, accountId, error: e, status: s) }) {
            let project = f["projectId"].flatMap { $0.isEmpty ? nil : $0 }
            _ = try await engine.resources.assignProject(accountId: accountId, resourceId: id, projectId: project)
            throw WebFlow.redirect("/projects?notice=notice_resource_moved")
        }
    }

    // MARK: desk: settlement runs (B2)

    func runsPage(_ v: Visit, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let runs = try await engine.store.settlementRuns(limit: 100)
        return console.page("desk/settlements", v, title: console.t(v, "desk_settlements_title"), model: [
            "runs": runs.map { r -> [String: Any] in
                ["id": r.id, "started": Display.time(r.startedAtMicros, timeZone: "Asia/Shanghai", withSeconds: true),
                 "until": Display.time(r.untilMicros, timeZone: "Asia/Shanghai", withSeconds: true), "cycles": r.cycles, "records": r.records,
                 "failed": r.failed, "hasFailed": r.failed > 0, "actor": r.actor, "state": console.t(v, "settlement_state_" + r.state.rawValue)]
            },
            "hasRuns": !runs.isEmpty, "idem": console.formKey(),
            "grace": console.t(v, "desk_settlements_grace", ["minutes": String(engine.settlement.settings.graceSeconds / 60)]),
        ], status: status, error: error)
    }

    @Sendable func runs(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        return try await runsPage(v)
    }

    @Sendable func runNow(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await runsPage(v, error: e, status: s) }) {
            _ = try await engine.settlement.run(untilMicros: engine.clock.nowMicros(), idempotencyKey: f["idem"] ?? "",
                                                actor: v.session!.principal.actor)
            throw WebFlow.redirect("/desk/settlements?notice=notice_settlement_run")
        }
    }
}

/// The bills page's chart: the last six months' deductions, one stacked bar per month with a part per product, drawn on
/// the server as SVG (integer sums; doubles only for pixel positions).
enum BillChart {
    static func svg(_ months: [(String, [(String, Int64)])], title: String, empty: String) -> String {
        let width = 720, height = 240, left = 80, bottom = 30, top = 40
        let plot = Double(height - bottom - top)
        let totals = months.map { $0.1.reduce(Int64(0)) { $0 + max(0, $1.1) } }
        let maxValue = Chart.niceCeiling(totals.max() ?? 0)
        var products: [String] = []
        for (_, parts) in months { for (name, _) in parts where !products.contains(name) { products.append(name) } }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(width) \(height)" role="img" aria-labelledby="bill-chart-title" class="chart" id="bill-chart">\
            <title id="bill-chart-title">\(Chart.escape(title))</title>
            """
        func y(_ v: Int64) -> Double { Double(top) + plot * (1 - Double(v) / Double(maxValue)) }
        for step in 0...4 {
            let v = maxValue * Int64(step) / 4
            out += "<line x1=\"\(left)\" x2=\"\(width - 10)\" y1=\"\(Chart.f(y(v)))\" y2=\"\(Chart.f(y(v)))\" class=\"grid\"/>"
            out += "<text x=\"\(left - 6)\" y=\"\(Chart.f(y(v) + 4))\" text-anchor=\"end\" class=\"axis\">\(Chart.escape(Display.money(v)))</text>"
        }
        let slot = Double(width - left - 10) / Double(max(1, months.count))
        for (i, (month, parts)) in months.enumerated() {
            let x = Double(left) + Double(i) * slot + slot * 0.2
            var base: Int64 = 0
            for (name, value) in parts where value > 0 {
                let index = products.firstIndex(of: name) ?? 0
                let y0 = y(base + value), y1 = y(base)
                out += "<rect x=\"\(Chart.f(x))\" y=\"\(Chart.f(y0))\" width=\"\(Chart.f(slot * 0.6))\" height=\"\(Chart.f(y1 - y0))\" class=\"p\(index % 6)\">"
                out += "<title>\(Chart.escape(month)) \(Chart.escape(name)) \(Chart.escape(Display.money(value)))</title></rect>"
                base += value
            }
            out += "<text x=\"\(Chart.f(x + slot * 0.3))\" y=\"\(height - 10)\" text-anchor=\"middle\" class=\"axis\">\(Chart.escape(month))</text>"
        }
        if products.isEmpty {
            out += "<text x=\"\(width / 2)\" y=\"\(height / 2)\" text-anchor=\"middle\" class=\"axis\">\(Chart.escape(empty))</text>"
        }
        // The legend: each name as long as it is (CJK counted double), on one line.
        var lx = left
        for (i, name) in products.prefix(6).enumerated() {
            let label = String(name.prefix(20))
            out += "<rect x=\"\(lx)\" y=\"8\" width=\"10\" height=\"10\" class=\"p\(i % 6)\"/><text x=\"\(lx + 14)\" y=\"17\" class=\"axis\">\(Chart.escape(label))</text>"
            lx += 34 + label.unicodeScalars.reduce(0) { $0 + ($1.value > 0x2E80 ? 12 : 7) }
        }
        return out + "</svg>"
    }
}
