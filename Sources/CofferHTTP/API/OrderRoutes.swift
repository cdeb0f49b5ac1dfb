import CofferCore
import CofferServices
import Foundation
import Hummingbird

/// Prepaid orders (O1, O2), merged payments with coupons (W7, C8) and coupons (C1–C6). Thin handlers over OrderService
/// and CouponService; the money moves in the ledger writer.
struct OrderRoutes: Sendable {
    let routes: Routes
    var engine: CofferEngine { routes.engine }

    func register(on v1: RouterGroup<CofferContext>) {
        v1.post("accounts/:accountId/orders", use: create)
        v1.get("accounts/:accountId/orders", use: list)
        v1.get("accounts/:accountId/orders/:orderId", use: get)
        v1.post("accounts/:accountId/orders/:orderId/cancel", use: cancel)
        v1.post("accounts/:accountId/orders/:orderId/deliver", use: deliver)
        v1.post("accounts/:accountId/orders/:orderId/delivery-failed", use: deliveryFailed)
        v1.post("accounts/:accountId/order-payments", use: pay)
        v1.post("accounts/:accountId/order-payments/preview", use: preview)
        v1.get("accounts/:accountId/prepaid-resources", use: prepaidResources)
        v1.post("accounts/:accountId/resources/:resourceId/refund", use: refundResource)
        v1.get("accounts/:accountId/resource-refunds", use: resourceRefunds)
        v1.post("accounts/:accountId/unified-expiry/preview", use: unifiedPreview)
        v1.post("accounts/:accountId/unified-expiry", use: unify)
        v1.get("accounts/:accountId/coupons", use: coupons)
        v1.post("accounts/:accountId/coupon-redemptions", use: redeem)
        v1.post("operator/coupons", use: grant)
    }

    struct OrderBody: Decodable {
        struct Campaign: Decodable { let expiresInSeconds: Int64?; let discountPercent: Int?; let couponsAllowed: Bool? }
        let type: String, productId: String, specification: String, durationMonths: Int
        let resourceId: String?, reference: String?, campaign: Campaign?
    }

    /// O1: the provider's purchase flow creates the order (platform key); the price comes from the catalog.
    @Sendable func create(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .operatorOnly)
        let key = try request.idempotencyKey()
        let b = try await JSON.decode(OrderBody.self, from: request)
        let (order, replayed) = try await engine.orders.create(accountId: accountId, OrderInput(
            type: b.type, productId: b.productId, specification: b.specification, durationMonths: b.durationMonths,
            resourceId: b.resourceId, reference: b.reference, campaignExpiresInSeconds: b.campaign?.expiresInSeconds,
            campaignDiscountPercent: b.campaign?.discountPercent, couponsAllowed: b.campaign?.couponsAllowed ?? true), idempotencyKey: key)
        return try JSON.response(OrderView(order), status: replayed ? .ok : .created, replayed: replayed)
    }

    static func query(accountId: String, _ params: [String: String]) throws(CofferError) -> OrderQuery {
        var q = OrderQuery(accountId: accountId)
        if let v = params["state"] { q.states = try parseEnumList(OrderState.self, v, field: "state") }
        if let v = params["productId"] {
            guard ProductCatalog.validId(v) else { throw .invalidField("productId", "is not a product id") }
            q.productId = v
        }
        let window = try TransactionRoutes.window(params)
        (q.fromMicros, q.toMicros) = (window.from, window.to)
        if let limit = window.limit { q.limit = limit }
        if let v = params["cursor"] {
            let parts = v.split(separator: "~", maxSplits: 1)
            guard parts.count == 2, parts[0].count <= 18, let at = Int64(parts[0]), parts[1].hasPrefix("ord_"), parts[1].count <= 40,
                  parts[1].allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) else {
                throw .invalidField("cursor", "is not a cursor this API returned")
            }
            q.before = (at, String(parts[1]))
        }
        return q
    }

    /// O2: by state, product and time, newest first.
    @Sendable func list(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let q = try Self.query(accountId: accountId, request.queryDictionary)
        let page = try await engine.orders.orders(q)
        struct Page: Encodable { let items: [OrderView]; let nextCursor: String? }
        return try JSON.response(Page(items: page.map { OrderView($0) },
                                      nextCursor: page.count == q.limit ? page.last.map { "\($0.createdAtMicros)~\($0.id)" } : nil))
    }

    @Sendable func get(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let order = try await engine.orders.order(accountId: accountId, id: try context.param("orderId"))
        let uses = try await engine.store.couponUses(accountId: accountId, orderId: order.id)
        return try JSON.response(OrderView(order, uses: uses))
    }

    @Sendable func cancel(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let (order, replayed) = try await engine.orders.cancel(accountId: accountId, orderId: try context.param("orderId"),
                                                               idempotencyKey: try request.idempotencyKey())
        return try JSON.response(OrderView(order), replayed: replayed)
    }

    @Sendable func deliver(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await resolve(request, context, delivered: true)
    }

    @Sendable func deliveryFailed(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await resolve(request, context, delivered: false)
    }

    struct DeliverBody: Decodable { let resourceId: String?; let resourceName: String? }

    /// W7: the provider confirms delivery (capture; O3: the term is made or extended) or reports its failure (release,
    /// coupons back). A delivery's body is optional: the provider's id and name for a new resource.
    func resolve(_ request: Request, _ context: CofferContext, delivered: Bool) async throws -> Response {
        let (principal, accountId) = try await routes.authorize(request, context, .operatorOnly)
        let key = try request.idempotencyKey()
        var body: DeliverBody?
        if delivered, request.headers[.contentLength].map({ $0 != "0" }) ?? (request.headers[.transferEncoding] != nil) {
            body = try await JSON.decode(DeliverBody.self, from: request)
        }
        let (order, replayed) = try await engine.orders.resolve(accountId: accountId, orderId: try context.param("orderId"),
                                                                delivered: delivered, idempotencyKey: key, actor: principal.actor,
                                                                resourceId: body?.resourceId, resourceName: body?.resourceName)
        return try JSON.response(OrderView(order), replayed: replayed)
    }

    /// O3: the account's prepaid resources with expiry, state and auto-renew flag.
    @Sendable func prepaidResources(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        return try JSON.response(["items": try await engine.prepaid.terms(accountId: accountId).map(PrepaidTermView.init)])
    }

    struct UnifiedBody: Decodable { let day: Int; let resourceIds: [String] }

    /// O7: what bringing these resources to one expiry day would cost, before confirming. Writes nothing.
    @Sendable func unifiedPreview(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let b = try await JSON.decode(UnifiedBody.self, from: request)
        let lines = try await engine.prepaid.unifiedExpiry(accountId: accountId, day: b.day, resourceIds: b.resourceIds)
        struct Line: Encodable { let resourceId: String; let expiresAt: String; let newExpiresAt: String; let amount: String }
        struct Out: Encodable { let day: Int; let lines: [Line]; let total: String }
        return try JSON.response(Out(day: b.day, lines: lines.map {
            Line(resourceId: $0.term.resourceId, expiresAt: RFC3339.format(micros: $0.term.expiresAtMicros),
                 newExpiresAt: RFC3339.format(micros: $0.newExpiresAtMicros), amount: MoneyFormat.format($0.amountMinor))
        }, total: MoneyFormat.format(lines.reduce(0) { $0 + $1.amountMinor })))
    }

    /// O7: the renewal orders for it (unpaid, valid for a day); pay them with `order-payments`.
    @Sendable func unify(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let key = try request.idempotencyKey()
        let b = try await JSON.decode(UnifiedBody.self, from: request)
        let (orders, replayed) = try await engine.orders.unifyExpiry(accountId: accountId, day: b.day, resourceIds: b.resourceIds, idempotencyKey: key)
        return try JSON.response(["orders": orders.map { OrderView($0) }], status: replayed ? .ok : .created, replayed: replayed)
    }

    struct RefundBody: Decodable { let reason: String? }

    /// O8: 退订 — the provider's key, or the customer where the provider allows self-service refunds.
    @Sendable func refundResource(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await routes.authorize(request, context, .finance)
        guard principal.isOperator || engine.selfServiceRefunds else {
            throw CofferError(.forbidden, "Refunds are made by the provider here; ask your provider to refund this resource.")
        }
        let key = try request.idempotencyKey()
        var reason: String?
        if request.headers[.contentLength].map({ $0 != "0" }) ?? (request.headers[.transferEncoding] != nil) {
            reason = try await JSON.decode(RefundBody.self, from: request).reason
        }
        let (record, replayed) = try await engine.orders.refundResource(accountId: accountId, resourceId: try context.param("resourceId"),
                                                                        reason: reason, idempotencyKey: key, actor: principal.actor)
        return try JSON.response(ResourceRefundView(record), status: replayed ? .ok : .created, replayed: replayed)
    }

    /// O8: 退订记录.
    @Sendable func resourceRefunds(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        return try JSON.response(["items": try await engine.store.resourceRefunds(accountId: accountId).map(ResourceRefundView.init)])
    }

    struct PaymentBody: Decodable { let orderIds: [String]; let couponIds: [String]? }

    /// W7, C8: pays one or more unpaid orders, with coupons.
    @Sendable func pay(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await routes.authorize(request, context, .finance)
        let key = try request.idempotencyKey()
        let b = try await JSON.decode(PaymentBody.self, from: request)
        let (result, replayed) = try await engine.orders.pay(accountId: accountId, orderIds: b.orderIds, couponIds: b.couponIds ?? [],
                                                             idempotencyKey: key, actor: principal.actor)
        return try JSON.response(PaymentView(result), status: replayed ? .ok : .created, replayed: replayed)
    }

    /// C6, C8: what the payment would do, and which of the account's coupons apply (or which condition fails). Writes nothing.
    @Sendable func preview(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let b = try await JSON.decode(PaymentBody.self, from: request)
        let p = try await engine.orders.preview(accountId: accountId, orderIds: b.orderIds, couponIds: b.couponIds ?? [])
        return try JSON.response(PreviewView(p, now: engine.clock.nowMicros()))
    }

    @Sendable func coupons(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let states = try request.uri.queryParameters["state"].map { v throws(CofferError) in try parseEnumList(CouponState.self, String(v), field: "state") }
        let now = engine.clock.nowMicros()
        let items = try await engine.coupons.coupons(accountId: accountId).filter { states?.contains($0.state(at: now)) ?? true }
        return try JSON.response(["items": items.map { CouponView($0, now: now) }])
    }

    struct RedeemBody: Decodable { let code: String }

    @Sendable func redeem(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let key = try request.idempotencyKey()
        let b = try await JSON.decode(RedeemBody.self, from: request)
        let (coupon, replayed) = try await engine.coupons.redeem(accountId: accountId, typed: b.code, idempotencyKey: key)
        return try JSON.response(CouponView(coupon, now: engine.clock.nowMicros()), status: replayed ? .ok : .created, replayed: replayed)
    }

    struct GrantBody: Decodable {
        struct Conditions: Decodable {
            let productsIncluded: [String]?, productsExcluded: [String]?, paymentType: String?, scenarios: [String]?
            let threshold: String?, minMonths: Int?, maxMonths: Int?
        }
        let kind: String, value: String?, percentOff: Int?, maxDiscount: String?, singleUse: Bool?
        let conditions: Conditions?
        let validFrom: String?, validUntil: String
        let accountIds: [String]?, codeCount: Int?
    }

    /// C6: operators grant coupons to accounts or print a batch of codes (audited).
    @Sendable func grant(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await routes.authenticate(request)
        try Access.requireOperator(principal)
        let key = try request.idempotencyKey()
        let b = try await JSON.decode(GrantBody.self, from: request)
        let c = b.conditions
        let input = CouponInput(kind: b.kind, value: b.value, percentOff: b.percentOff, maxDiscount: b.maxDiscount,
                                singleUse: b.singleUse ?? true, productsIncluded: c?.productsIncluded ?? [],
                                productsExcluded: c?.productsExcluded ?? [], paymentType: c?.paymentType ?? "prepaid",
                                scenarios: c?.scenarios ?? [], threshold: c?.threshold, minMonths: c?.minMonths, maxMonths: c?.maxMonths,
                                validFromMicros: try b.validFrom.map { v throws(CofferError) in try Time.parse(v, field: "validFrom") },
                                validUntilMicros: try Time.parse(b.validUntil, field: "validUntil"))
        let (result, replayed) = try await engine.coupons.grant(input, accountIds: b.accountIds ?? [], codeCount: b.codeCount,
                                                                idempotencyKey: key, actor: principal.actor)
        struct Out: Encodable { let coupons: [CouponView]; let batchId: String?; let codes: [String] }
        let now = engine.clock.nowMicros()
        return try JSON.response(Out(coupons: result.coupons.map { CouponView($0, now: now) }, batchId: result.batchId, codes: result.codes),
                                 status: replayed ? .ok : .created, replayed: replayed)
    }
}

struct OrderView: Encodable {
    struct Use: Encodable { let couponId: String; let amount: String; let returned: Bool }
    let id: String, accountId: String, type: String, productId: String, productVersion: Int64, specification: String
    let durationMonths: Int, resourceId: String?, listPrice: String, discount: String, amountDue: String, couponsAllowed: Bool
    let state: String, expiresAt: String, createdAt: String, paymentId: String?, paidByCoupon: String, frozen: String
    let paidByCash: String, paidByGift: String, paidAt: String?, resolvedAt: String?, reference: String?
    let couponUses: [Use]?
    init(_ o: OrderRecord, uses: [CouponUseRecord]? = nil) {
        (id, accountId, type, productId, productVersion, specification) = (o.id, o.accountId, o.type.rawValue, o.productId, o.productVersion, o.specification)
        (durationMonths, resourceId, couponsAllowed, state, reference) = (o.durationMonths, o.resourceId, o.couponsAllowed, o.state.rawValue, o.reference)
        (listPrice, discount, amountDue) = (MoneyFormat.format(o.listPriceMinor), MoneyFormat.format(o.discountMinor), MoneyFormat.format(o.dueMinor))
        (paidByCoupon, frozen) = (MoneyFormat.format(o.couponMinor), MoneyFormat.format(o.frozenMinor))
        (paidByCash, paidByGift) = (MoneyFormat.format(o.cashMinor), MoneyFormat.format(o.giftMinor))
        (expiresAt, createdAt, paymentId) = (RFC3339.format(micros: o.expiresAtMicros), RFC3339.format(micros: o.createdAtMicros), o.paymentId)
        paidAt = o.paidAtMicros.map { RFC3339.format(micros: $0) }
        resolvedAt = o.resolvedAtMicros.map { RFC3339.format(micros: $0) }
        couponUses = uses?.map { Use(couponId: $0.couponId, amount: MoneyFormat.format($0.amountMinor), returned: $0.returnedAtMicros != nil) }
    }
}

struct ResourceRefundView: Encodable {
    struct Line: Encodable { let orderId: String; let cash: String; let gift: String; let cashCoupon: String }
    let id: String, accountId: String, resourceId: String, productId: String, specification: String, cash: String, gift: String
    let cashCoupon: String, lines: [Line], reason: String?, createdAt: String
    init(_ r: ResourceRefundRecord) {
        (id, accountId, resourceId, productId, specification, reason) = (r.id, r.accountId, r.resourceId, r.productId, r.specification, r.reason)
        (cash, gift, cashCoupon) = (MoneyFormat.format(r.cashMinor), MoneyFormat.format(r.giftMinor), MoneyFormat.format(r.cashCouponMinor))
        lines = r.lines.map { Line(orderId: $0.orderId, cash: MoneyFormat.format($0.cashMinor), gift: MoneyFormat.format($0.giftMinor),
                                   cashCoupon: MoneyFormat.format($0.cashCouponMinor)) }
        createdAt = RFC3339.format(micros: r.createdAtMicros)
    }
}

struct CouponView: Encodable {
    struct Conditions: Encodable {
        let productsIncluded: [String], productsExcluded: [String], paymentType: String, scenarios: [String]
        let threshold: String, minMonths: Int?, maxMonths: Int?
    }
    let id: String, accountId: String, kind: String, value: String?, percentOff: Int?, maxDiscount: String?, remaining: String?
    let singleUse: Bool, conditions: Conditions, validFrom: String, validUntil: String, state: String, source: String
    let createdAt: String, usedAt: String?
    init(_ c: CouponRecord, now: Int64) {
        (id, accountId, kind, percentOff, singleUse, source) = (c.id, c.accountId, c.kind.rawValue, c.percentOff, c.singleUse, c.source)
        let money = c.valueMinor.map(MoneyFormat.format)
        (value, maxDiscount) = c.kind == .discount ? (nil, money) : (money, nil)
        remaining = c.kind == .discount ? nil : MoneyFormat.format(c.remainingMinor)
        let k = c.conditions
        conditions = Conditions(productsIncluded: k.productsIncluded, productsExcluded: k.productsExcluded, paymentType: k.paymentType.rawValue,
                                scenarios: k.scenarios.map(\.rawValue), threshold: MoneyFormat.format(k.thresholdMinor),
                                minMonths: k.minMonths, maxMonths: k.maxMonths)
        (validFrom, validUntil) = (RFC3339.format(micros: c.validFromMicros), RFC3339.format(micros: c.validUntilMicros))
        state = c.state(at: now).rawValue
        createdAt = RFC3339.format(micros: c.createdAtMicros)
        usedAt = c.usedAtMicros.map { RFC3339.format(micros: $0) }
    }
}

struct PaymentView: Encodable {
    let id: String, accountId: String, orderIds: [String], couponIds: [String], amountDue: String, paidByCoupon: String
    let frozen: String, createdAt: String, orders: [OrderView], wallet: WalletView
    init(_ r: PaymentResult) {
        let p = r.payment
        (id, accountId, orderIds, couponIds) = (p.id, p.accountId, p.orderIds, p.couponIds)
        (amountDue, paidByCoupon, frozen) = (MoneyFormat.format(p.dueMinor), MoneyFormat.format(p.couponMinor), MoneyFormat.format(p.frozenMinor))
        createdAt = RFC3339.format(micros: p.createdAtMicros)
        orders = r.orders.map { OrderView($0) }
        wallet = WalletView(accountId: p.accountId, r.wallet)
    }
}

struct PreviewView: Encodable {
    struct Line: Encodable { let orderId: String; let amountDue: String; let byCoupon: String; let byWallet: String }
    struct Refusal: Encodable { let code: String; let detail: String; let parameters: [String: String] }
    struct Offer: Encodable { let coupon: CouponView; let applies: Bool; let failedCondition: String?; let parameters: [String: String]? }
    let payable: Bool, amountDue: String, byCoupon: String, byWallet: String, byGift: String, byCash: String
    let lines: [Line], refusal: Refusal?, coupons: [Offer]
    init(_ p: PaymentPreview, now: Int64) {
        let due = p.orders.reduce(Int64(0)) { $0 + $1.dueMinor }
        payable = p.refusal == nil
        amountDue = MoneyFormat.format(due)
        byCoupon = MoneyFormat.format(p.plan?.couponMinor ?? 0)
        byWallet = MoneyFormat.format(p.plan?.walletMinor ?? due)
        (byGift, byCash) = (MoneyFormat.format(p.giftMinor), MoneyFormat.format(p.cashMinor))
        lines = p.orders.map { o in
            let l = p.plan?.lines.first { $0.orderId == o.id }
            return Line(orderId: o.id, amountDue: MoneyFormat.format(o.dueMinor), byCoupon: MoneyFormat.format(l?.couponMinor ?? 0),
                        byWallet: MoneyFormat.format(l?.walletMinor ?? o.dueMinor))
        }
        refusal = p.refusal.map { Refusal(code: $0.code.rawValue, detail: $0.detail, parameters: $0.parameters) }
        coupons = p.offers.map { Offer(coupon: CouponView($0.coupon, now: now), applies: $0.failure == nil,
                                       failedCondition: $0.failure?.condition.rawValue, parameters: $0.failure.map { $0.parameters }) }
    }
}
