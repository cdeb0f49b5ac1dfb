import CofferCore
import CofferServices
import CompressNIO
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

/// Postpaid billing: projects and resources (B5), usage ingestion (B1), settlement runs (B2), bills L0–L3 with CSV (B3),
/// the statistic period (B4) and the cost estimate (B6). Thin handlers over the billing services.
struct BillingRoutes: Sendable {
    let routes: Routes
    var engine: CofferEngine { routes.engine }

    /// 10,000 records of a few hundred bytes each, after gzip is undone.
    static let maxUsageBodyBytes = 8 * 1024 * 1024

    func register(on v1: RouterGroup<CofferContext>) {
        v1.post("usage-records", use: ingestUsage)
        v1.post("operator/settlement-runs", use: runSettlement)
        v1.get("operator/settlement-runs", use: listRuns)
        v1.get("accounts/:accountId/projects", use: listProjects)
        v1.post("accounts/:accountId/projects", use: createProject)
        v1.patch("accounts/:accountId/projects/:projectId", use: renameProject)
        v1.get("accounts/:accountId/resources", use: listResources)
        v1.put("accounts/:accountId/resources/:resourceId", use: putResource)
        v1.patch("accounts/:accountId/resources/:resourceId", use: patchResource)
        v1.get("accounts/:accountId/bills/:month", use: overview)
        v1.get("accounts/:accountId/bills/:month/summary", use: summary)
        v1.get("accounts/:accountId/bills/:month/resources", use: billResources)
        v1.get("accounts/:accountId/bills/:month/lines", use: lines)
        v1.get("accounts/:accountId/bill-settings", use: getSettings)
        v1.put("accounts/:accountId/bill-settings", use: putSettings)
        v1.get("accounts/:accountId/cost-estimate", use: costEstimate)
        v1.post("accounts/:accountId/bill-compensations", use: compensate)
        v1.get("accounts/:accountId/bill-compensations", use: listCompensations)
    }

    struct CompensationBody: Decodable { let settlementId: String; let amount: String; let reason: String }

    /// B3: a negative line for a settled cycle, paid back as a refund of its charge (platform key, audited).
    @Sendable func compensate(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await routes.authorize(request, context, .operatorOnly)
        let key = try request.idempotencyKey()
        let body = try await JSON.decode(CompensationBody.self, from: request)
        let (c, replayed) = try await engine.bills.compensate(accountId: accountId, settlementId: body.settlementId, amountText: body.amount,
                                                              reason: body.reason, idempotencyKey: key, actor: principal.actor,
                                                              wallets: engine.wallets)
        return try JSON.response(CompensationView(c), status: replayed ? .ok : .created, replayed: replayed)
    }

    @Sendable func listCompensations(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        guard let month = request.uri.queryParameters["month"].map(String.init) else {
            throw CofferError.invalidField("month", "is required: a month like 2026-11")
        }
        let items = try await engine.bills.compensations(accountId: accountId, month: month)
        return try JSON.response(["items": items.map { CompensationView($0.compensation) }])
    }

    // MARK: usage and settlement (platform key)

    struct UsageBody: Decodable {
        struct Record: Decodable {
            let id: String, accountId: String, resourceId: String, component: String, quantity: String, unit: String
            let unitPrice: String, listUnitPrice: String?, periodStart: String, periodEnd: String, region: String?
            let tags: [String: String]?
        }
        let records: [Record]
    }

    @Sendable func ingestUsage(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await routes.authenticate(request)
        try Access.requireOperator(principal)
        let body = try await JSON.decode(UsageBody.self, from: try await Self.inflated(request), limitBytes: Self.maxUsageBodyBytes)
        let inputs = body.records.map {
            UsageRecordInput(id: $0.id, accountId: $0.accountId, resourceId: $0.resourceId, component: $0.component, quantity: $0.quantity,
                             unit: $0.unit, unitPrice: $0.unitPrice, listUnitPrice: $0.listUnitPrice, periodStart: $0.periodStart,
                             periodEnd: $0.periodEnd, region: $0.region, tags: $0.tags)
        }
        let results = try await engine.usage.ingest(inputs)
        struct Item: Encodable { let index: Int; let id: String; let status: String; let code: String?; let detail: String? }
        struct Out: Encodable { let accepted: Int; let duplicates: Int; let refused: Int; let results: [Item] }
        var counts = (0, 0, 0)
        let items = zip(inputs, results).enumerated().map { i, pair -> Item in
            switch pair.1 {
            case .accepted: counts.0 += 1; return Item(index: i, id: pair.0.id, status: "accepted", code: nil, detail: nil)
            case .duplicate: counts.1 += 1; return Item(index: i, id: pair.0.id, status: "duplicate", code: nil, detail: nil)
            case .refused(let e): counts.2 += 1; return Item(index: i, id: pair.0.id, status: "refused", code: e.code.rawValue, detail: e.detail)
            }
        }
        return try JSON.response(Out(accepted: counts.0, duplicates: counts.1, refused: counts.2, results: items))
    }

    /// A gzip body (`Content-Encoding: gzip`) is inflated up to the route's limit; anything past it is refused (413), so a
    /// small compressed body cannot expand without bound.
    static func inflated(_ request: Request) async throws -> Request {
        guard let encoding = request.headers[.contentEncoding]?.lowercased(), encoding != "identity" else { return request }
        guard encoding == "gzip" else { throw CofferError.invalidField("Content-Encoding", "must be gzip or identity") }
        var request = request
        var compressed = try await request.collectBody(upTo: maxUsageBodyBytes)
        let plain: ByteBuffer
        do {
            plain = try compressed.decompress(with: .gzip(), maxSize: maxUsageBodyBytes)
        } catch let error as CompressNIOError where error == .bufferOverflow {
            throw CofferError(.bodyTooLarge, "The inflated body is larger than \(maxUsageBodyBytes / 1024 / 1024) MiB; send fewer records per request.")
        } catch {
            throw CofferError(.malformedJson, "The body is not valid gzip.")
        }
        request.body = .init(buffer: plain)
        return request
    }

    struct RunBody: Decodable { let until: String }

    @Sendable func runSettlement(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await routes.authenticate(request)
        try Access.requireOperator(principal)
        let key = try request.idempotencyKey()
        let body = try await JSON.decode(RunBody.self, from: request)
        guard let until = RFC3339.parse(body.until) else { throw CofferError.invalidField("until", "must be an RFC 3339 time like 2026-11-01T00:00:00Z") }
        let (run, replayed) = try await engine.settlement.run(untilMicros: until, idempotencyKey: key, actor: principal.actor)
        return try JSON.response(SettlementRunView(run), status: replayed ? .ok : .created, replayed: replayed)
    }

    @Sendable func listRuns(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await routes.authenticate(request)
        try Access.requireOperator(principal)
        return try JSON.response(["items": try await engine.store.settlementRuns(limit: 100).map(SettlementRunView.init)])
    }

    // MARK: projects and resources (B5)

    struct NameBody: Decodable { let name: String }

    @Sendable func listProjects(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .member)
        return try JSON.response(["items": try await engine.store.projects(accountId: accountId).map(ProjectView.init)])
    }

    @Sendable func createProject(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let key = try request.idempotencyKey()
        let body = try await JSON.decode(NameBody.self, from: request)
        let (project, replayed) = try await engine.resources.createProject(accountId: accountId, name: body.name, idempotencyKey: key)
        return try JSON.response(ProjectView(project), status: .created, replayed: replayed)
    }

    @Sendable func renameProject(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let id = try context.param("projectId")
        let body = try await JSON.decode(NameBody.self, from: request)
        return try JSON.response(ProjectView(try await engine.resources.renameProject(accountId: accountId, id: id, name: body.name)))
    }

    @Sendable func listResources(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .member)
        return try JSON.response(["items": try await engine.store.resources(accountId: accountId).map(ResourceView.init)])
    }

    struct ResourceBody: Decodable {
        let productId: String, name: String, region: String?, projectId: String?, tags: [String: String]?
    }

    @Sendable func putResource(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .operatorOnly)
        let id = try context.param("resourceId")
        let body = try await JSON.decode(ResourceBody.self, from: request)
        let (resource, created) = try await engine.resources.putResource(
            accountId: accountId, id: id, .init(productId: body.productId, name: body.name, region: body.region, projectId: body.projectId,
                                                tags: body.tags ?? [:]))
        return try JSON.response(ResourceView(resource), status: created ? .created : .ok)
    }

    /// The customer moves a resource to a project (`"projectId": null`: to none). An absent projectId changes nothing.
    struct PatchResourceBody: Decodable {
        let projectId: String??
        let autoRenew: Bool?
        enum CodingKeys: String, CodingKey { case projectId, autoRenew }
        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            projectId = c.contains(.projectId) ? .some(try c.decodeIfPresent(String.self, forKey: .projectId)) : nil
            autoRenew = try c.decodeIfPresent(Bool.self, forKey: .autoRenew)
        }
    }

    @Sendable func patchResource(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let id = try context.param("resourceId")
        let body = try await JSON.decode(PatchResourceBody.self, from: request)
        // O3: the auto-renew switch of a prepaid resource.
        var term = try await engine.store.prepaidTerm(accountId: accountId, resourceId: id)
        if let autoRenew = body.autoRenew {
            term = try await engine.prepaid.setAutoRenew(accountId: accountId, resourceId: id, autoRenew: autoRenew)
        }
        var resource: ResourceRecord
        if let projectId = body.projectId {
            resource = try await engine.resources.assignProject(accountId: accountId, resourceId: id, projectId: projectId)
        } else {
            guard let r = try await engine.store.resource(accountId: accountId, id: id) else { throw CofferError.notFound(.resourceNotFound, id) }
            resource = r
        }
        var view = ResourceView(resource)
        view.prepaid = term.map(PrepaidTermView.init)
        return try JSON.response(view)
    }

    // MARK: bills (B3, B4, B6)

    private func query(_ request: Request) throws(CofferError) -> [String: String] {
        let params = request.queryDictionary
        if let f = params["format"], f != "json", f != "csv" { throw .invalidField("format", "must be json or csv") }
        return params
    }

    @Sendable func overview(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let month = try context.param("month")
        let params = try query(request)
        let o = try await engine.bills.overview(accountId: accountId, month: month)
        let products = Dictionary(uniqueKeysWithValues: try await engine.store.products().map { ($0.id, $0) })
        let view = BillOverviewView(o, products: products)
        if params["format"] == "csv" { return BillExports.overview(o, products: products) }
        return try JSON.response(view)
    }

    @Sendable func summary(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let month = try context.param("month")
        let params = try query(request)
        let by = params["by"] ?? "product"
        let tagKey = try params["tagKey"].map { k throws(CofferError) in try TextRules.required(k, field: "tagKey", max: 64) }
        let dimension: BillSummaryDimension
        switch by {
        case "product": dimension = .product
        case "project": dimension = .project
        case "region": dimension = .region
        case "tag":
            guard let tagKey else { throw CofferError.invalidField("tagKey", "is required with by=tag: the tag key to group by (1–64 characters)") }
            dimension = .tag(tagKey)
        default: throw CofferError.invalidField("by", "must be product, project, region or tag")
        }
        let rows = try await engine.bills.summary(accountId: accountId, month: month, by: dimension)
        struct Item: Encodable { let key: String; let amounts: BillAmountsView }
        struct Out: Encodable { let month: String; let by: String; let tagKey: String?; let items: [Item] }
        let items = rows.map { Item(key: $0.key, amounts: BillAmountsView($0.amounts)) }
        if params["format"] == "csv" { return BillExports.summary(rows, accountId: accountId, month: month, by: by) }
        if case .tag(let k) = dimension { return try JSON.response(Out(month: month, by: by, tagKey: k, items: items)) }
        return try JSON.response(Out(month: month, by: by, tagKey: nil, items: items))
    }

    @Sendable func billResources(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let month = try context.param("month")
        let params = try query(request)
        let rows = try await engine.bills.resources(accountId: accountId, month: month)
        struct Item: Encodable {
            let resourceId: String, resourceName: String, productId: String, projectId: String?, region: String?
            let amounts: BillAmountsView
        }
        let items = rows.map { Item(resourceId: $0.resourceId, resourceName: $0.resourceName, productId: $0.productId, projectId: $0.projectId,
                                    region: $0.region, amounts: BillAmountsView($0.amounts)) }
        if params["format"] == "csv" { return BillExports.resources(rows, accountId: accountId, month: month) }
        struct Out: Encodable { let month: String; let items: [Item] }
        return try JSON.response(Out(month: month, items: items))
    }

    @Sendable func lines(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let month = try context.param("month")
        let params = try query(request)
        var limit = 100
        if let v = params["limit"] {
            guard let n = Int(v), (1...Limits.maxPageSize).contains(n) else {
                throw CofferError.invalidField("limit", "must be a whole number from 1 to \(Limits.maxPageSize)")
            }
            limit = n
        }
        if params["format"] == "csv" { return try await BillExports.lines(engine.bills, accountId: accountId, month: month, cursor: params["cursor"]) }
        let page = try await engine.bills.lines(accountId: accountId, month: month, cursor: params["cursor"], limit: limit)
        // The month's negative lines, on the first page (there are few: each is an operator's decision).
        let compensations = params["cursor"] == nil ? try await engine.bills.compensations(accountId: accountId, month: month) : []
        struct Out: Encodable { let month: String; let items: [BillLineView]; let compensations: [CompensationView]; let nextCursor: String? }
        return try JSON.response(Out(month: month, items: page.rows.map(BillLineView.init), compensations: compensations.map { CompensationView($0.compensation) },
                                     nextCursor: page.next))
    }

    @Sendable func getSettings(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        return try JSON.response(BillSettingsView(try await engine.bills.settings(accountId: accountId)))
    }

    struct SettingsBody: Decodable { let statisticPeriod: String }

    /// Idempotent by content (a PUT): billing period again changes nothing; deduction after the switch is refused.
    @Sendable func putSettings(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await routes.authorize(request, context, .finance)
        let body = try await JSON.decode(SettingsBody.self, from: request)
        let period = try parseEnum(StatisticPeriod.self, body.statisticPeriod, field: "statisticPeriod")
        return try JSON.response(BillSettingsView(try await engine.bills.setPeriod(accountId: accountId, period, actor: principal.actor)))
    }

    @Sendable func costEstimate(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let e = try await engine.bills.costEstimate(accountId: accountId)
        struct Out: Encodable {
            let month: String, daysInMonth: Int, sampleDays: Int, sampleAmount: String, postpaid: String, prepaidRenewals: String
            /// Always true since prepaid orders exist; kept for clients written when it was false.
            let total: String, prepaidRenewalsAvailable: Bool
        }
        return try JSON.response(Out(month: e.month, daysInMonth: e.daysInMonth, sampleDays: e.sampleDays,
                                     sampleAmount: MoneyFormat.format(e.sampleDeductionMinor), postpaid: MoneyFormat.format(e.postpaidMinor),
                                     prepaidRenewals: MoneyFormat.format(e.prepaidRenewalsMinor), total: MoneyFormat.format(e.totalMinor),
                                     prepaidRenewalsAvailable: true))
    }
}

// MARK: views

struct ProjectView: Encodable {
    let id: String, accountId: String, name: String, createdAt: String, updatedAt: String
    init(_ p: ProjectRecord) {
        (id, accountId, name) = (p.id, p.accountId, p.name)
        (createdAt, updatedAt) = (RFC3339.format(micros: p.createdAtMicros), RFC3339.format(micros: p.updatedAtMicros))
    }
}

struct ResourceView: Encodable {
    let id: String, accountId: String, productId: String, name: String, region: String?, projectId: String?
    let tags: [String: String], createdAt: String, updatedAt: String
    /// O3: its prepaid term, where the answer is about one resource and it has one.
    var prepaid: PrepaidTermView?
    init(_ r: ResourceRecord) {
        (id, accountId, productId, name, region, projectId, tags) = (r.id, r.accountId, r.productId, r.name, r.region, r.projectId, r.tags)
        (createdAt, updatedAt) = (RFC3339.format(micros: r.createdAtMicros), RFC3339.format(micros: r.updatedAtMicros))
    }
}

struct PrepaidTermView: Encodable {
    let resourceId: String, productId: String, specification: String, state: String, autoRenew: Bool, startsAt: String, expiresAt: String
    let suspendedAt: String?, reclaimedAt: String?
    init(_ t: PrepaidTermRecord) {
        (resourceId, productId, specification, state, autoRenew) = (t.resourceId, t.productId, t.specification, t.state.rawValue, t.autoRenew)
        (startsAt, expiresAt) = (RFC3339.format(micros: t.startsAtMicros), RFC3339.format(micros: t.expiresAtMicros))
        suspendedAt = t.suspendedAtMicros.map { RFC3339.format(micros: $0) }
        reclaimedAt = t.reclaimedAtMicros.map { RFC3339.format(micros: $0) }
    }
}

struct SettlementRunView: Encodable {
    let id: String, until: String, state: String, cycles: Int, records: Int, failed: Int, actor: String, startedAt: String
    let finishedAt: String?
    init(_ r: SettlementRunRecord) {
        (id, until, state) = (r.id, RFC3339.format(micros: r.untilMicros), r.state.rawValue)
        (cycles, records, failed, actor, startedAt) = (r.cycles, r.records, r.failed, r.actor, RFC3339.format(micros: r.startedAtMicros))
        finishedAt = r.finishedAtMicros.map { RFC3339.format(micros: $0) }
    }
}

struct CompensationView: Encodable {
    let id: String, accountId: String, settlementId: String, refundId: String, amount: String, cash: String, gift: String
    let reason: String, month: String, createdAt: String
    init(_ c: CompensationRecord) {
        (id, accountId, settlementId, refundId, reason, month) = (c.id, c.accountId, c.settlementId, c.refundId, c.reason, c.month)
        (amount, cash, gift) = (MoneyFormat.format(c.amountMinor), MoneyFormat.format(c.cashMinor), MoneyFormat.format(c.giftMinor))
        createdAt = RFC3339.format(micros: c.createdAtMicros)
    }
}

struct BillSettingsView: Encodable {
    let statisticPeriod: String, switchMonth: String?
    init(_ s: BillSettings) { (statisticPeriod, switchMonth) = (s.period.rawValue, s.switchMonth) }
}

/// Money of a group of lines: deducted (2 decimals) and how it was paid; the exact rated amount and the precision
/// difference with 8 decimals.
struct BillAmountsView: Encodable {
    let amount: String, cash: String, gift: String, coupon: String, ratedAmount: String, precisionDifference: String, cycles: Int
    let compensation: String
    init(_ a: BillAmounts) {
        compensation = MoneyFormat.format(a.compensationMinor)
        (amount, cash, gift, coupon) = (MoneyFormat.format(a.deductionMinor), MoneyFormat.format(a.cashMinor),
                                        MoneyFormat.format(a.giftMinor), MoneyFormat.format(a.couponMinor))
        (ratedAmount, precisionDifference, cycles) = (Rating.format(a.ratedUnits), Rating.format(a.remainderUnits), a.cycles)
    }
    static let csvColumns = ["amount", "cash", "gift", "coupon", "rated_amount", "precision_difference", "cycles", "compensation"]
    var csvFields: [String] { [amount, cash, gift, coupon, ratedAmount, precisionDifference, String(cycles), compensation] }
    static func precisionRow(_ a: BillAmounts) -> [String] { ["", "", "", "", "", Rating.format(a.remainderUnits), "", ""] }
}

struct BillOverviewView: Encodable {
    struct Names: Encodable { let zh: String; let en: String }
    struct Product: Encodable { let productId: String; let name: Names; let amounts: BillAmountsView }
    struct PaymentTypes: Encodable { let prepaid: String; let postpaid: String }
    struct Paid: Encodable { let cash: String; let gift: String; let coupon: String }
    struct PrecisionLine: Encodable { let name: Names; let amount: String }
    let accountId: String, month: String, statisticPeriod: String, total: String
    let byPaymentType: PaymentTypes
    let paid: Paid
    let byProduct: [Product]
    let precisionDifference: PrecisionLine
    let postpaid: BillAmountsView
    init(_ o: BillOverview, products: [String: ProductRecord]) {
        (accountId, month, statisticPeriod) = (o.accountId, o.month, o.period.rawValue)
        total = MoneyFormat.format(o.postpaid.deductionMinor)
        // Prepaid orders come with the orders issue; until then nothing is prepaid.
        byPaymentType = PaymentTypes(prepaid: MoneyFormat.format(0), postpaid: total)
        paid = Paid(cash: MoneyFormat.format(o.postpaid.cashMinor), gift: MoneyFormat.format(o.postpaid.giftMinor),
                    coupon: MoneyFormat.format(o.postpaid.couponMinor))
        byProduct = o.byProduct.map { p in
            let product = products[p.productId]
            return Product(productId: p.productId, name: Names(zh: product?.nameZh ?? p.productId, en: product?.nameEn ?? p.productId),
                           amounts: BillAmountsView(p.amounts))
        }
        precisionDifference = PrecisionLine(name: Names(zh: "月度计费精度差异", en: "Billing precision difference"),
                                            amount: Rating.format(o.postpaid.remainderUnits))
        postpaid = BillAmountsView(o.postpaid)
    }
}

/// An L3 line: one component of one settled cycle, with list price and discount where the provider gave a list price.
struct BillLineView: Encodable {
    let settlementId: String, resourceId: String, resourceName: String, productId: String, projectId: String?, region: String?
    let component: String, unit: String, quantity: String, cycleStart: String, cycleEnd: String, deductedAt: String
    let billingMonth: String, deductionMonth: String, paymentType: String
    let amount: String, listAmount: String, discountRate: String
    let chargeId: String?
    init(_ row: BillLineRow) {
        let s = row.billed.settlement, l = row.line
        (settlementId, resourceId, resourceName, productId, projectId, region) = (s.id, s.resourceId, s.resourceName, s.productId, s.projectId, s.region)
        (component, unit, quantity) = (l.component, l.unit, l.quantity)
        (cycleStart, cycleEnd, deductedAt) = (RFC3339.format(micros: s.cycle.startMicros), RFC3339.format(micros: s.cycle.endMicros),
                                              RFC3339.format(micros: s.createdAtMicros))
        (billingMonth, deductionMonth, paymentType, chargeId) = (s.billingMonth, s.deductionMonth, "postpaid", s.chargeId)
        amount = Rating.format(Int128(l.amountUnits))
        // "-" where the customer has a contract price and the provider sent no list price (seed 001).
        listAmount = l.listAmountUnits.map { Rating.format(Int128($0)) } ?? "-"
        discountRate = UsageRules.discountRate(amountUnits: l.amountUnits, listAmountUnits: l.listAmountUnits) ?? "-"
    }
    static let csvColumns = ["settlement_id", "resource_id", "resource_name", "product_id", "project_id", "region", "component", "unit",
                             "quantity", "cycle_start", "cycle_end", "deducted_at", "billing_month", "deduction_month", "payment_type",
                             "amount", "list_amount", "discount_rate"]
    var csvFields: [String] {
        [settlementId, resourceId, resourceName, productId, projectId ?? "", region ?? "", component, unit, quantity, cycleStart, cycleEnd,
         deductedAt, billingMonth, deductionMonth, paymentType, amount, listAmount, discountRate]
    }
}

/// Bill CSVs for the API and the console alike: UTF-8 with BOM, the same quoting and formula defusing as the transaction
/// export, stable column names and codes.
public enum BillExports {
    /// What a file's header and codes read as: the API keeps the stable names; the console passes its page's language.
    public struct Labels: Sendable {
        /// A column's name (every name in `columns`) as the file's header shows it.
        public var column: @Sendable (String) -> String = { $0 }
        /// A code in a cell (`postpaid`, `compensation`, `billing_precision_difference`) as the file shows it.
        public var code: @Sendable (String) -> String = { $0 }
        /// Product names in English rather than Chinese.
        public var english = false
        /// The overview's row of the monthly billing precision difference (the API's file has always named it in Chinese).
        public var precisionName = "月度计费精度差异"
        public init() {}
        public init(column: @escaping @Sendable (String) -> String, code: @escaping @Sendable (String) -> String, english: Bool) {
            (self.column, self.code, self.english) = (column, code, english)
            precisionName = code("billing_precision_difference")
        }
    }

    /// Every column name and code the bill files use (the console's catalogs have a text for each).
    public static let columns = Set(["product_id", "product_name", "resource_id", "resource_name", "project_id", "region",
                                     "product", "project", "tag"] + BillAmountsView.csvColumns + BillLineView.csvColumns)
    /// Codes in cells, and the name of the precision row.
    public static let codes = ["postpaid", "compensation", "billing_precision_difference"]
    static let paymentTypeColumn = BillLineView.csvColumns.firstIndex(of: "payment_type")!

    public static func overview(_ o: BillOverview, products: [String: ProductRecord], labels: Labels = .init()) -> Response {
        let view = BillOverviewView(o, products: products)
        return csv("bill-\(o.accountId)-\(o.month).csv", header: (["product_id", "product_name"] + BillAmountsView.csvColumns).map(labels.column),
                   rows: view.byProduct.map { [$0.productId, labels.english ? $0.name.en : $0.name.zh] + $0.amounts.csvFields }
                       + [["billing_precision_difference", labels.precisionName] + BillAmountsView.precisionRow(o.postpaid)])
    }

    public static func summary(_ rows: [BillSummaryRow], accountId: String, month: String, by: String, labels: Labels = .init()) -> Response {
        csv("bill-\(accountId)-\(month)-by-\(by).csv", header: ([by] + BillAmountsView.csvColumns).map(labels.column),
            rows: rows.map { [$0.key] + BillAmountsView($0.amounts).csvFields })
    }

    public static func resources(_ rows: [BillResourceRow], accountId: String, month: String, labels: Labels = .init()) -> Response {
        csv("bill-\(accountId)-\(month)-resources.csv",
            header: (["resource_id", "resource_name", "product_id", "project_id", "region"] + BillAmountsView.csvColumns).map(labels.column),
            rows: rows.map { [$0.resourceId, $0.resourceName, $0.productId, $0.projectId ?? "", $0.region ?? ""] + BillAmountsView($0.amounts).csvFields })
    }

    /// Every line of the month (from `cursor` on), up to the CSV row limit.
    public static func lines(_ bills: BillService, accountId: String, month: String, cursor: String? = nil,
                             filter: BillLineFilter = .init(), labels: Labels = .init()) async throws -> Response {
        var rows: [[String]] = []
        var cursor = cursor
        repeat {
            let page = try await bills.lines(accountId: accountId, month: month, cursor: cursor, limit: 1_000, filter: filter)
            rows += page.rows.map { line in
                var fields = BillLineView(line).csvFields
                fields[Self.paymentTypeColumn] = labels.code(fields[Self.paymentTypeColumn])
                return fields
            }
            cursor = page.next
        } while cursor != nil && rows.count < Limits.maxCSVRows
        // Compensations follow as negative lines of their settlement.
        for c in try await bills.compensations(accountId: accountId, month: month) {
            let s = c.settlement
            rows.append([s.id, s.resourceId, s.resourceName, s.productId, s.projectId ?? "", s.region ?? "", labels.code("compensation"), "", "",
                         RFC3339.format(micros: s.cycle.startMicros), RFC3339.format(micros: s.cycle.endMicros),
                         RFC3339.format(micros: c.compensation.createdAtMicros), c.compensation.month, c.compensation.month, labels.code("compensation"),
                         MoneyFormat.format(-c.compensation.amountMinor), "-", "-"])
        }
        return csv("bill-\(accountId)-\(month)-lines.csv", header: BillLineView.csvColumns.map(labels.column), rows: rows)
    }

    static func csv(_ filename: String, header: [String], rows: [[String]]) -> Response {
        var out = "\u{FEFF}" + header.joined(separator: ",") + "\r\n"
        for row in rows { out += row.map { Exports.csvField($0, text: true) }.joined(separator: ",") + "\r\n" }
        var headers = HTTPFields()
        headers[.contentType] = "text/csv; charset=utf-8"
        headers[.contentDisposition] = "attachment; filename=\"\(filename)\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: out)))
    }
}
