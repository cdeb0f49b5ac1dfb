import CofferCore
import CofferServices
import Hummingbird

/// N2: the operator's webhook endpoints and the delivery log (platform key).
struct WebhookRoutes: Sendable {
    let routes: Routes
    var engine: CofferEngine { routes.engine }

    func register(on v1: RouterGroup<CofferContext>) {
        v1.post("operator/webhook-endpoints", use: create)
        v1.get("operator/webhook-endpoints", use: list)
        v1.post("operator/webhook-endpoints/:endpointId/disable", use: disable)
        v1.post("operator/webhook-endpoints/:endpointId/enable", use: enable)
        v1.get("operator/webhook-deliveries", use: deliveries)
    }

    struct Body: Decodable { let url: String; let events: [String]; let description: String? }

    /// The secret is in this answer (and its replay) only.
    @Sendable func create(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await routes.authenticate(request)
        try Access.requireOperator(principal)
        let key = try request.idempotencyKey()
        let b = try await JSON.decode(Body.self, from: request)
        let (e, replayed) = try await engine.webhooks.register(url: b.url, events: b.events, description: b.description,
                                                               idempotencyKey: key, actor: principal.actor)
        return try JSON.response(EndpointView(e, withSecret: true), status: replayed ? .ok : .created, replayed: replayed)
    }

    @Sendable func list(_ request: Request, _ context: CofferContext) async throws -> Response {
        try Access.requireOperator(try await routes.authenticate(request))
        return try JSON.response(["items": try await engine.webhooks.endpoints().map { EndpointView($0, withSecret: false) }])
    }

    @Sendable func disable(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await setEnabled(request, context, false)
    }

    @Sendable func enable(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await setEnabled(request, context, true)
    }

    func setEnabled(_ request: Request, _ context: CofferContext, _ enabled: Bool) async throws -> Response {
        let principal = try await routes.authenticate(request)
        try Access.requireOperator(principal)
        let e = try await engine.webhooks.setEnabled(id: try context.param("endpointId"), enabled: enabled, actor: principal.actor)
        return try JSON.response(EndpointView(e, withSecret: false))
    }

    @Sendable func deliveries(_ request: Request, _ context: CofferContext) async throws -> Response {
        try Access.requireOperator(try await routes.authenticate(request))
        let q = request.uri.queryParameters
        let state = try q["state"].map { v throws(CofferError) in try parseEnum(WebhookDeliveryState.self, String(v), field: "state") }
        var limit = 100
        if let v = q["limit"] {
            guard let n = Int(v), (1...Limits.maxPageSize).contains(n) else {
                throw CofferError.invalidField("limit", "must be a whole number from 1 to \(Limits.maxPageSize)")
            }
            limit = n
        }
        let endpointId = q["endpointId"].map(String.init)
        if let e = endpointId, !(1...100).contains(e.utf8.count) || !e.utf8.allSatisfy({ $0 > 32 && $0 < 127 }) {
            throw CofferError.invalidField("endpointId", "is 1–100 visible ASCII characters")
        }
        let items = try await engine.webhooks.deliveries(endpointId: endpointId, state: state, limit: limit)
        return try JSON.response(["items": items.map(DeliveryView.init)])
    }
}

struct EndpointView: Encodable {
    let id: String, url: String, events: [String], enabled: Bool, description: String?, createdAt: String, secret: String?
    init(_ e: WebhookEndpointRecord, withSecret: Bool) {
        (id, url, events, enabled, description) = (e.id, e.url, e.events, e.enabled, e.description)
        createdAt = RFC3339.format(micros: e.createdAtMicros)
        secret = withSecret ? e.secret : nil
    }
}

struct DeliveryView: Encodable {
    let accountId: String, eventId: String, endpointId: String, eventType: String, state: String, attempts: Int
    let nextAttemptAt: String?, lastStatus: Int?, lastError: String?, createdAt: String, deliveredAt: String?
    init(_ d: WebhookDeliveryRecord) {
        (accountId, eventId, endpointId, eventType, state, attempts) = (d.accountId, d.eventId, d.endpointId, d.eventType, d.state.rawValue, d.attempts)
        nextAttemptAt = d.state == .pending ? RFC3339.format(micros: d.nextAttemptAtMicros) : nil
        (lastStatus, lastError) = (d.lastStatus, d.lastError)
        createdAt = RFC3339.format(micros: d.createdAtMicros)
        deliveredAt = d.deliveredAtMicros.map { RFC3339.format(micros: $0) }
    }
}
