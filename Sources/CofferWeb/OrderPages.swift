import CofferCore
import CofferHTTP
import CofferServices
import Foundation
import HTTPTypes
import Hummingbird

/// 订单 / Orders and 优惠券 / Coupons for owner and finance users (O1, O2, W7, C1–C8): orders by state, paying one or
/// several with coupons after a preview, cancelling; coupons by state and redeeming a code. At the desk: an account's
/// orders and coupon grants, webhook endpoints and deliveries (N2). Thin handlers over OrderService, CouponService and
/// WebhookService.
struct OrderPages: Sendable {
    let console: WebConsole
    var engine: CofferEngine { console.engine }
    typealias Visit = WebConsole.Visit

    func register(on web: RouterGroup<CofferContext>) {
        web.get("/orders", use: orders)
        web.get("/orders/checkout", use: checkout)
        web.post("/orders/pay", use: pay)
        web.post("/orders/:orderId/cancel", use: cancel)
        web.get("/renewals", use: renewals)
        web.post("/renewals/:resourceId/auto-renew", use: autoRenew)
        web.post("/renewals/:resourceId/renew", use: renew)
        web.get("/renewals/unify", use: unifyPreview)
        web.post("/renewals/unify", use: unify)
        web.get("/refund-records", use: refundRecords)
        web.post("/renewals/:resourceId/refund", use: refund)
        web.get("/coupons", use: coupons)
        web.post("/coupons/redeem", use: redeem)
        web.get("/desk/accounts/:accountId/orders", use: deskOrders)
        web.post("/desk/accounts/:accountId/coupons", use: deskGrant)
        web.get("/desk/webhooks", use: deskWebhooks)
        web.post("/desk/webhooks", use: deskRegister)
        web.post("/desk/webhooks/:endpointId/toggle", use: deskToggle)
    }

    func params(_ request: Request) -> [String: String] { console.query(request) }
    func timeZone(_ accountId: String) async throws -> String { try await console.timeZone(accountId) }
    func productNames(_ v: Visit) async throws -> [String: String] { try await console.productNames(v) }

    func orderRow(_ o: OrderRecord, _ v: Visit, _ names: [String: String], _ tz: String) -> [String: Any] {
        ["id": o.id, "product": names[o.productId] ?? o.productId, "spec": o.specification,
         // O8: a refund order has no duration; its amount went back to the customer.
         "months": o.type == .refund ? (o.resourceId ?? "") : console.t(v, "order_months", ["n": String(o.durationMonths)]),
         "type": console.t(v, "order_type_" + o.type.rawValue),
         "list": Display.money(o.listPriceMinor), "discount": Display.money(o.discountMinor),
         "due": Display.money(o.type == .refund ? -o.dueMinor : o.dueMinor),
         "coupon": Display.money(o.couponMinor), "cash": Display.money(o.cashMinor), "gift": Display.money(o.giftMinor),
         "frozen": Display.money(o.frozenMinor), "state": console.t(v, "order_state_" + o.state.rawValue), "stateCode": o.state.rawValue,
         "created": Display.time(o.createdAtMicros, timeZone: tz), "expires": Display.time(o.expiresAtMicros, timeZone: tz),
         "payable": o.payable(at: engine.clock.nowMicros()), "reference": o.reference ?? "", "cancelIdem": console.formKey(),
         "hasDiscount": o.discountMinor > 0]
    }

    func couponRow(_ c: CouponRecord, _ v: Visit, _ names: [String: String], _ tz: String) -> [String: Any] {
        let k = c.conditions
        // Lists read in the page's language: 、 and ； are Chinese punctuation.
        let (listSeparator, termSeparator) = v.lang == .zh ? ("、", "；") : (", ", "; ")
        var terms: [String] = []
        if !k.productsIncluded.isEmpty { terms.append(console.t(v, "coupon_term_products", ["products": k.productsIncluded.map { names[$0] ?? $0 }.joined(separator: listSeparator)])) }
        if !k.productsExcluded.isEmpty { terms.append(console.t(v, "coupon_term_excluded", ["products": k.productsExcluded.map { names[$0] ?? $0 }.joined(separator: listSeparator)])) }
        if !k.scenarios.isEmpty { terms.append(k.scenarios.map { console.t(v, "order_type_" + $0.rawValue) }.joined(separator: "/")) }
        if k.thresholdMinor > 0 { terms.append(console.t(v, "coupon_term_threshold", ["amount": Display.money(k.thresholdMinor)])) }
        if k.minMonths != nil || k.maxMonths != nil {
            terms.append(console.t(v, "coupon_term_months", ["min": String(k.minMonths ?? 1), "max": String(k.maxMonths ?? OrderService.maxDurationMonths)]))
        }
        if k.paymentType == .postpaid { terms.append(console.t(v, "coupon_term_postpaid")) }
        terms.append(console.t(v, c.singleUse ? "coupon_term_single" : "coupon_term_multi"))
        let value: String = c.kind == .discount
            ? console.t(v, "coupon_percent_off", ["percent": String(c.percentOff ?? 0)]) + (c.valueMinor.map { " · " + console.t(v, "coupon_cap", ["amount": Display.money($0)]) } ?? "")
            : Display.money(c.valueMinor ?? 0)
        let now = engine.clock.nowMicros()
        return ["id": c.id, "kind": console.t(v, "coupon_kind_" + c.kind.rawValue), "value": value,
                "remaining": c.kind == .discount ? "" : Display.money(c.remainingMinor), "terms": terms.joined(separator: termSeparator),
                "valid": Display.day(c.validFromMicros, timeZone: tz) + " – " + Display.day(c.validUntilMicros, timeZone: tz),
                "state": console.t(v, "coupon_state_" + c.state(at: now).rawValue)]
    }

    // MARK: orders

    func ordersPage(_ v: Visit, _ accountId: String, state: String?, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        var q = OrderQuery(accountId: accountId)
        q.limit = 100
        if let state, let s = OrderState(rawValue: state) { q.states = [s] }
        let tz = try await timeZone(accountId)
        let names = try await productNames(v)
        let rows = try await engine.orders.orders(q).map { orderRow($0, v, names, tz) }
        let filters = [("", "order_filter_all")] + OrderState.allCases.map { ($0.rawValue, "order_state_" + $0.rawValue) }
        return console.page("orders", v, title: console.t(v, "orders_title"), model: [
            "orders": rows, "hasOrders": !rows.isEmpty, "hasPayable": rows.contains { $0["payable"] as? Bool == true },
            "filters": filters.map { ["value": $0.0, "label": console.t(v, $0.1), "current": ($0.0.isEmpty ? nil : $0.0) == state] },
        ], status: status, error: error)
    }

    @Sendable func orders(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        return try await ordersPage(v, accountId, state: params(request)["state"])
    }

    /// The chosen orders and coupons of a checkout form (`order_<id>`, `coupon_<id>`), in a stable order.
    static func chosen(_ fields: [String: String]) -> (orders: [String], coupons: [String]) {
        let orders = fields.keys.filter { $0.hasPrefix("order_") }.map { String($0.dropFirst(6)) }.sorted()
        let coupons = fields.keys.filter { $0.hasPrefix("coupon_") }.map { String($0.dropFirst(7)) }.sorted()
        return (orders, coupons)
    }

    func checkoutPage(_ v: Visit, _ accountId: String, orders: [String], coupons: [String], error: String? = nil,
                      status: HTTPResponse.Status = .ok) async throws -> Response {
        let tz = try await timeZone(accountId)
        let names = try await productNames(v)
        let p = try await engine.orders.preview(accountId: accountId, orderIds: orders, couponIds: coupons)
        let plan = p.plan
        let offers = p.offers.map { o -> [String: Any] in
            var row = couponRow(o.coupon, v, names, tz)
            row["applies"] = o.failure == nil
            row["checked"] = coupons.contains(o.coupon.id)
            row["reason"] = o.failure.map { console.t(v, "coupon_condition_" + $0.condition.rawValue) } ?? ""
            return row
        }
        let due = p.orders.reduce(Int64(0)) { $0 + $1.dueMinor }
        return console.page("checkout", v, title: console.t(v, "checkout_title"), model: [
            "orders": p.orders.map { o -> [String: Any] in
                var row = orderRow(o, v, names, tz)
                let line = plan?.lines.first { $0.orderId == o.id }
                row["lineCoupon"] = Display.money(line?.couponMinor ?? 0)
                row["lineWallet"] = Display.money(line?.walletMinor ?? o.dueMinor)
                return row
            },
            "offers": offers, "hasOffers": !offers.isEmpty, "selectedCoupons": coupons.map { ["id": $0] },
            "due": Display.money(due), "byCoupon": Display.money(plan?.couponMinor ?? 0),
            "byWallet": Display.money(plan?.walletMinor ?? due), "byGift": Display.money(p.giftMinor), "byCash": Display.money(p.cashMinor),
            "payable": p.refusal == nil, "refusal": p.refusal.map { console.message($0, v) } ?? "", "idem": console.formKey(),
        ], status: status, error: error)
    }

    @Sendable func checkout(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let (orders, coupons) = Self.chosen(params(request))
        guard !orders.isEmpty else { throw WebFlow.redirect("/orders?state=unpaid") }
        return try await console.orShow(v, { e, s in try await ordersPage(v, accountId, state: "unpaid", error: e, status: s) }) {
            try await checkoutPage(v, accountId, orders: orders, coupons: coupons)
        }
    }

    @Sendable func pay(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        let (orders, coupons) = Self.chosen(f)
        return try await console.orShow(v, { e, s in try await ordersPage(v, accountId, state: nil, error: e, status: s) }) {
            _ = try await engine.orders.pay(accountId: accountId, orderIds: orders, couponIds: coupons, idempotencyKey: f["idem"] ?? "",
                                            actor: console.actor(v))
            throw WebFlow.redirect("/orders?notice=notice_orders_paid")
        }
    }

    @Sendable func cancel(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        let id = try context.param("orderId")
        return try await console.orShow(v, { e, s in try await ordersPage(v, accountId, state: nil, error: e, status: s) }) {
            _ = try await engine.orders.cancel(accountId: accountId, orderId: id, idempotencyKey: f["idem"] ?? console.formKey())
            throw WebFlow.redirect("/orders?notice=notice_order_cancelled")
        }
    }

    // MARK: renewals (O3–O6)

    func renewalsPage(_ v: Visit, _ accountId: String, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let tz = try await timeZone(accountId)
        let names = try await productNames(v)
        let resources = Dictionary(uniqueKeysWithValues: try await engine.store.resources(accountId: accountId).map { ($0.id, $0.name) })
        let now = engine.clock.nowMicros()
        let rows = try await engine.prepaid.terms(accountId: accountId).map { t -> [String: Any] in
            let daysLeft = (t.expiresAtMicros - now) / PrepaidLifecycle.day
            return ["id": t.resourceId, "name": resources[t.resourceId] ?? t.resourceId, "product": names[t.productId] ?? t.productId,
                    "spec": t.specification, "expires": Display.time(t.expiresAtMicros, timeZone: tz),
                    "state": console.t(v, "term_state_" + t.state.rawValue), "stateCode": t.state.rawValue,
                    "soon": t.state == .active && daysLeft < 7, "autoRenew": t.autoRenew, "renewable": t.state != .reclaimed,
                    "autoLabel": console.t(v, t.autoRenew ? "renewal_auto_on" : "renewal_auto_off"),
                    "toggleLabel": console.t(v, t.autoRenew ? "renewal_auto_turn_off" : "renewal_auto_turn_on"),
                    "renewIdem": console.formKey()]
        }
        return console.page("renewals", v, title: console.t(v, "renewals_title"), model: [
            "terms": rows, "hasTerms": !rows.isEmpty, "selfService": engine.selfServiceRefunds, "idem": console.formKey(),
            "days": (1...28).map { ["value": $0] }, "hasActive": rows.contains { $0["stateCode"] as? String == "active" }, "months": [1, 3, 6, 12].map { ["value": $0, "label": console.t(v, "order_months", ["n": String($0)])] },
        ], status: status, error: error)
    }

    @Sendable func renewals(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        return try await renewalsPage(v, accountId)
    }

    @Sendable func autoRenew(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        let id = try context.param("resourceId")
        return try await console.orShow(v, { e, s in try await renewalsPage(v, accountId, error: e, status: s) }) {
            _ = try await engine.prepaid.setAutoRenew(accountId: accountId, resourceId: id, autoRenew: f["on"] == "1")
            throw WebFlow.redirect("/renewals?notice=notice_auto_renew_changed")
        }
    }

    /// A manual renewal: a renewal order at today's catalog price, then the checkout (coupons may apply).
    @Sendable func renew(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        let id = try context.param("resourceId")
        return try await console.orShow(v, { e, s in try await renewalsPage(v, accountId, error: e, status: s) }) {
            guard let t = try await engine.store.prepaidTerm(accountId: accountId, resourceId: id) else { throw CofferError.notFound(.resourceNotFound, id) }
            let months = Int(f["months"] ?? "") ?? 1
            let (order, _) = try await engine.orders.create(accountId: accountId, OrderInput(
                type: "renewal", productId: t.productId, specification: t.specification, durationMonths: months, resourceId: id),
                idempotencyKey: f["idem"] ?? console.formKey())
            throw WebFlow.redirect("/orders/checkout?order_\(order.id)=on")
        }
    }

    // MARK: unified expiry (O7)

    static func unifyChoice(_ fields: [String: String]) -> (day: Int, resources: [String]) {
        (Int(fields["day"] ?? "") ?? 0, fields.keys.filter { $0.hasPrefix("res_") }.map { String($0.dropFirst(4)) }.sorted())
    }

    @Sendable func unifyPreview(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let (day, resources) = Self.unifyChoice(params(request))
        return try await console.orShow(v, { e, s in try await renewalsPage(v, accountId, error: e, status: s) }) {
            let tz = try await timeZone(accountId)
            let lines = try await engine.prepaid.unifiedExpiry(accountId: accountId, day: day, resourceIds: resources)
            return console.page("unify", v, title: console.t(v, "unify_title"), model: [
                "day": day, "lines": lines.map { ["id": $0.term.resourceId, "from": Display.time($0.term.expiresAtMicros, timeZone: tz),
                                                   "to": Display.time($0.newExpiresAtMicros, timeZone: tz), "amount": Display.money($0.amountMinor)] },
                "resources": resources.map { ["id": $0] }, "total": Display.money(lines.reduce(0) { $0 + $1.amountMinor }), "idem": console.formKey(),
            ])
        }
    }

    @Sendable func unify(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        let (day, resources) = Self.unifyChoice(f)
        return try await console.orShow(v, { e, s in try await renewalsPage(v, accountId, error: e, status: s) }) {
            let (orders, _) = try await engine.orders.unifyExpiry(accountId: accountId, day: day, resourceIds: resources, idempotencyKey: f["idem"] ?? "")
            throw WebFlow.redirect("/orders/checkout?" + orders.map { "order_\($0.id)=on" }.joined(separator: "&"))
        }
    }

    // MARK: refunds (O8)

    @Sendable func refundRecords(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let tz = try await timeZone(accountId)
        let names = try await productNames(v)
        let rows = try await engine.store.resourceRefunds(accountId: accountId).map { r -> [String: Any] in
            ["id": r.id, "resource": r.resourceId, "product": (names[r.productId] ?? r.productId) + " · " + r.specification,
             "cash": Display.money(r.cashMinor), "gift": Display.money(r.giftMinor), "coupon": Display.money(r.cashCouponMinor),
             "total": Display.money(r.cashMinor + r.giftMinor), "reason": r.reason ?? "", "time": Display.time(r.createdAtMicros, timeZone: tz)]
        }
        return console.page("refund_records", v, title: console.t(v, "refund_records_title"), model: ["records": rows, "hasRecords": !rows.isEmpty])
    }

    /// O8 where the provider allows self-service refunds.
    @Sendable func refund(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        let id = try context.param("resourceId")
        return try await console.orShow(v, { e, s in try await renewalsPage(v, accountId, error: e, status: s) }) {
            guard engine.selfServiceRefunds else {
                throw CofferError(.forbidden, "Refunds are made by the provider here; ask your provider to refund this resource.")
            }
            _ = try await engine.orders.refundResource(accountId: accountId, resourceId: id, reason: f["reason"].flatMap { $0.isEmpty ? nil : $0 },
                                                       idempotencyKey: f["idem"] ?? console.formKey(), actor: console.actor(v))
            throw WebFlow.redirect("/refund-records?notice=notice_resource_refunded")
        }
    }

    // MARK: coupons

    func couponsPage(_ v: Visit, _ accountId: String, state: String?, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let tz = try await timeZone(accountId)
        let names = try await productNames(v)
        let now = engine.clock.nowMicros()
        let wanted = CouponState(rawValue: state ?? "") ?? .unused
        let rows = try await engine.coupons.coupons(accountId: accountId).filter { $0.state(at: now) == wanted }.map { couponRow($0, v, names, tz) }
        return console.page("coupons", v, title: console.t(v, "coupons_title"), model: [
            "coupons": rows, "hasCoupons": !rows.isEmpty, "idem": console.formKey(),
            "tabs": CouponState.allCases.map { ["value": $0.rawValue, "label": console.t(v, "coupon_state_" + $0.rawValue), "current": $0 == wanted] },
        ], status: status, error: error)
    }

    @Sendable func coupons(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        return try await couponsPage(v, accountId, state: params(request)["state"])
    }

    @Sendable func redeem(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await couponsPage(v, accountId, state: nil, error: e, status: s) }) {
            _ = try await engine.coupons.redeem(accountId: accountId, typed: f["code"] ?? "", idempotencyKey: f["idem"] ?? "")
            throw WebFlow.redirect("/coupons?notice=notice_coupon_redeemed")
        }
    }

    // MARK: desk

    func deskOrdersPage(_ v: Visit, _ accountId: String, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        guard let a = try await engine.store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        var q = OrderQuery(accountId: accountId)
        q.limit = 100
        let names = try await productNames(v)
        let orders = try await engine.orders.orders(q).map { orderRow($0, v, names, a.timeZone) }
        let coupons = try await engine.coupons.coupons(accountId: accountId).map { couponRow($0, v, names, a.timeZone) }
        return console.page("desk/orders", v, title: a.entityName, model: [
            "titleIsData": true,
            "id": a.id, "name": a.entityName, "orders": orders, "hasOrders": !orders.isEmpty, "coupons": coupons,
            "hasCoupons": !coupons.isEmpty, "idem": console.formKey(),
            "defaultUntil": Display.day(engine.clock.nowMicros() + 30 * 86_400_000_000, timeZone: a.timeZone),
            "kinds": CouponKind.allCases.map { ["value": $0.rawValue, "label": console.t(v, "coupon_kind_" + $0.rawValue)] },
            "paymentTypes": [ChargeMode.prepaid, .postpaid].map { ["value": $0.rawValue, "label": console.t(v, "bill_" + $0.rawValue)] },
        ], status: status, error: error)
    }

    @Sendable func deskOrders(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        return try await deskOrdersPage(v, try context.param("accountId"))
    }

    /// C6: one coupon for this account, audited by the service.
    @Sendable func deskGrant(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let accountId = try context.param("accountId")
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await deskOrdersPage(v, accountId, error: e, status: s) }) {
            let tz = try await timeZone(accountId)
            guard let day = Display.parseDay(f["validUntil"] ?? "", timeZone: tz) else {
                throw CofferError.invalidField("validUntil", "is a date like 2027-01-31")
            }
            func blankIsNil(_ s: String?) -> String? { s.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0.trimmingCharacters(in: .whitespaces) } }
            let kind = f["kind"] ?? ""
            let products = (blankIsNil(f["products"]) ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            let input = CouponInput(kind: kind, value: kind == "discount" ? nil : blankIsNil(f["value"]),
                                    percentOff: kind == "discount" ? blankIsNil(f["percentOff"]).flatMap { Int($0) } ?? 0 : nil,
                                    maxDiscount: kind == "discount" ? blankIsNil(f["value"]) : nil, singleUse: f["singleUse"] != nil,
                                    productsIncluded: products, paymentType: f["paymentType"] ?? "prepaid", threshold: blankIsNil(f["threshold"]),
                                    validUntilMicros: day + 86_400_000_000 - 1)
            _ = try await engine.coupons.grant(input, accountIds: [accountId], codeCount: nil, idempotencyKey: f["idem"] ?? "", actor: console.actor(v))
            throw WebFlow.redirect("/desk/accounts/\(accountId)/orders?notice=notice_coupon_granted")
        }
    }

    func webhooksPage(_ v: Visit, secret: String? = nil, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        let endpoints = try await engine.webhooks.endpoints()
        let deliveries = try await engine.webhooks.deliveries(endpointId: nil, state: nil, limit: 100)
        let tz = "Asia/Shanghai"
        return console.page("desk/webhooks", v, title: console.t(v, "desk_webhooks_title"), model: [
            "endpoints": endpoints.map { e -> [String: Any] in
                ["id": e.id, "url": e.url, "events": e.events.joined(separator: ", "), "enabled": e.enabled,
                 "state": console.t(v, e.enabled ? "webhook_enabled" : "webhook_disabled"),
                 "toggle": console.t(v, e.enabled ? "webhook_disable" : "webhook_enable"), "description": e.description ?? ""]
            },
            "hasEndpoints": !endpoints.isEmpty, "secret": secret ?? "", "idem": console.formKey(),
            "eventTypes": WebhookService.eventTypes.map { ["value": $0] },
            "deliveries": deliveries.map { d -> [String: Any] in
                ["time": Display.time(d.createdAtMicros, timeZone: tz, withSeconds: true), "event": d.eventId, "type": d.eventType,
                 "endpoint": d.endpointId, "state": console.t(v, "webhook_delivery_" + d.state.rawValue), "attempts": d.attempts,
                 "status": d.lastStatus.map(String.init) ?? "", "error": d.lastError ?? "",
                 "next": d.state == .pending ? Display.time(d.nextAttemptAtMicros, timeZone: tz, withSeconds: true) : ""]
            },
            "hasDeliveries": !deliveries.isEmpty,
        ], status: status, error: error)
    }

    @Sendable func deskWebhooks(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await webhooksPage(try await console.staff(request, context))
    }

    /// The secret is shown on the page that answers the registration, once.
    @Sendable func deskRegister(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await webhooksPage(v, error: e, status: s) }) {
            let events = f.keys.filter { $0.hasPrefix("event_") }.map { String($0.dropFirst(6)) }.sorted()
            let (e, _) = try await engine.webhooks.register(url: f["url"] ?? "", events: events.isEmpty ? ["*"] : events,
                                                            description: f["description"].flatMap { $0.isEmpty ? nil : $0 },
                                                            idempotencyKey: f["idem"] ?? "", actor: console.actor(v))
            return try await webhooksPage(v, secret: e.secret, status: .created)
        }
    }

    @Sendable func deskToggle(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let f = try await console.form(request, v)
        let id = try context.param("endpointId")
        return try await console.orShow(v, { e, s in try await webhooksPage(v, error: e, status: s) }) {
            _ = try await engine.webhooks.setEnabled(id: id, enabled: f["enable"] == "1", actor: console.actor(v))
            throw WebFlow.redirect("/desk/webhooks?notice=notice_webhook_changed")
        }
    }
}
