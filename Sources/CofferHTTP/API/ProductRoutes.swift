import CofferCore
import CofferServices
import Hummingbird

/// The product catalog: operators PUT products; every authenticated caller reads the catalog (prices are public to
/// the provider's customers). Thin handlers over ProductCatalog.
struct ProductRoutes: Sendable {
    let routes: Routes
    var engine: CofferEngine { routes.engine }

    func register(on v1: RouterGroup<CofferContext>) {
        v1.put("operator/products/:productId", use: putProduct)
        v1.get("products", use: listProducts)
    }

    struct Body: Decodable {
        struct Names: Decodable { let zh: String; let en: String }
        let name: Names
        let settlementCycle: String
        let taxCategory: String
        /// specification → monthly price; JSON object keys are unique, so each specification is priced once.
        let plans: [String: String]?
    }

    @Sendable func putProduct(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await routes.authenticate(request)
        try Access.requireOperator(principal)
        let id = try context.param("productId")
        let body = try await JSON.decode(Body.self, from: request)
        let input = ProductInput(nameZh: body.name.zh, nameEn: body.name.en, settlementCycle: body.settlementCycle,
                                 taxCategory: body.taxCategory,
                                 plans: (body.plans ?? [:]).sorted { $0.key < $1.key }.map { ($0.key, $0.value) })
        let (product, created) = try await engine.products.put(id: id, input, actor: principal.actor)
        return try JSON.response(ProductView(product), status: created ? .created : .ok)
    }

    @Sendable func listProducts(_ request: Request, _ context: CofferContext) async throws -> Response {
        _ = try await routes.authenticate(request)
        return try JSON.response(["items": try await engine.store.products().map(ProductView.init)])
    }
}

struct ProductView: Encodable {
    struct Names: Encodable { let zh: String; let en: String }
    struct Plan: Encodable { let specification: String; let monthlyPrice: String }
    let id: String
    let name: Names
    let settlementCycle: String
    let taxCategory: String
    let vatRate: String
    let plans: [Plan]
    let version: Int64
    let createdAt: String
    let updatedAt: String
    init(_ p: ProductRecord) {
        id = p.id
        name = Names(zh: p.nameZh, en: p.nameEn)
        (settlementCycle, taxCategory) = (p.settlementCycle.rawValue, p.taxCategory.rawValue)
        vatRate = p.taxCategory == .cloudService ? "0.06" : "0.13"
        plans = p.plans.map { Plan(specification: $0.specification, monthlyPrice: MoneyFormat.format($0.monthlyPriceMinor)) }
        (version, createdAt, updatedAt) = (p.version, RFC3339.format(micros: p.createdAtMicros), RFC3339.format(micros: p.updatedAtMicros))
    }
}
