import CofferCore
import Crypto
import Foundation
import Logging

public struct WebhookSettings: Sendable {
    /// Attempts before a delivery is given up (`failed`, visible at the desk): about 4 days with the backoff below.
    public var maxAttempts = 15
    public var firstRetrySeconds: Int64 = 30
    public var maxRetrySeconds: Int64 = 6 * 3_600
    public var timeoutSeconds: Int64 = 5
    /// Sends in flight at once, and at most this many per jobs run: two waves of timeouts at worst, so a slow endpoint
    /// delays the jobs loop (freeze expiry, renewals) by seconds, not minutes, and a shutdown is not held up long.
    public var concurrency = 16
    public var perRun = 32
    public init() {}
}

/// N2: webhooks to the provider. Events are written to an outbox in the transaction of what they tell; the jobs loop fans
/// each out to the endpoints that want it and delivers it at least once, signed (Stripe's scheme: `Coffer-Signature:
/// t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`), retried with exponential backoff; every attempt sends the same
/// body with the same event id, so a receiver de-duplicates by `id`.
public struct WebhookService: Sendable {
    /// Every event type an endpoint may ask for.
    public static let eventTypes: [String] = LedgerEvent.Kind.allCases.map(\.rawValue) + OrderService.plainEventTypes + PrepaidService.plainEventTypes
    public static let maxEndpoints = 50
    let store: any CofferStore
    let clock: any Clock
    let ids: IdGenerator
    let transport: (any WebhookTransport)?
    let settings: WebhookSettings
    let logger: Logger

    public init(store: any CofferStore, clock: any Clock, ids: IdGenerator, transport: (any WebhookTransport)?,
                settings: WebhookSettings = .init(), logger: Logger = Logger(label: "coffer.webhooks")) {
        (self.store, self.clock, self.ids, self.transport, self.settings, self.logger) = (store, clock, ids, transport, settings, logger)
    }

    /// The header a receiver checks.
    public static func signature(secret: String, timestamp: Int64, body: [UInt8]) -> String {
        var mac = HMAC<SHA256>(key: SymmetricKey(data: Array(secret.utf8)))
        mac.update(data: Array("\(timestamp).".utf8))
        mac.update(data: body)
        return "t=\(timestamp),v1=" + Data(mac.finalize()).map { String(format: "%02x", $0) }.joined()
    }

    /// The body of an event: the same bytes on every attempt (sorted keys).
    public static func payload(_ e: WebhookEventRecord) -> [UInt8] {
        struct Body: Encodable { let id: String; let type: String; let createdAt: String; let accountId: String; let data: [String: String] }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try! encoder.encode(Body(id: e.id, type: e.type, createdAt: RFC3339.format(micros: e.createdAtMicros),
                                              accountId: e.accountId, data: e.data)))
    }

    public func register(url rawURL: String, events: [String], description: String?, idempotencyKey: String,
                         actor: String) async throws -> (WebhookEndpointRecord, replayed: Bool) {
        let url = rawURL.trimmingCharacters(in: .whitespaces)
        guard url.count <= 500, let parsed = URL(string: url), let scheme = parsed.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = parsed.host, !host.isEmpty else {
            throw CofferError.invalidField("url", "must be an http(s) URL of at most 500 characters")
        }
        guard (1...20).contains(events.count), Set(events).count == events.count,
              events.allSatisfy({ $0 == "*" || Self.eventTypes.contains($0) }) else {
            throw CofferError.invalidField("events", "1–20 distinct event types from the list, or \"*\"")
        }
        let description = try TextRules.optional(description, field: "description", max: 200)
        let ctx = try IdempotencyContext(scope: "platform", key: idempotencyKey,
                                         fingerprint: "webhook|\(url)|\(events.joined(separator: ","))|\(description ?? "")")
        if let earlier: EndpointAnswer = try await Idempotent.replay(store, ctx) { return (earlier.record, true) }
        guard try await store.webhookEndpoints().count < Self.maxEndpoints else {
            throw CofferError.invalidField("url", "at most \(Self.maxEndpoints) endpoints")
        }
        let now = clock.nowMicros()
        let endpoint = WebhookEndpointRecord(id: ids.make("whe"), url: url, events: events, secret: Secrets.token(prefix: "whsec_"),
                                             enabled: true, description: description, createdBy: actor, createdAtMicros: now)
        let audit = AuditRecord(id: ids.make("aud"), accountId: nil, actor: actor, action: "webhook.endpoint_created",
                                detail: "\(endpoint.id): \(url) for \(events.joined(separator: ","))", createdAtMicros: now,
                                after: ["endpoint": endpoint.id, "url": url, "events": events.joined(separator: ","), "enabled": "true"])
        let (answer, replayed) = try await Idempotent.write(store, ctx, EndpointAnswer(endpoint), at: now) { tx in
            try await tx.insertWebhookEndpoint(endpoint)
            try await tx.insertAudit(audit)
        }
        return (answer.record, replayed)
    }

    public func endpoints() async throws -> [WebhookEndpointRecord] { try await store.webhookEndpoints() }

    /// Turns an endpoint off (no new deliveries; pending ones stop) or on again; audited. False when there is no such endpoint.
    public func setEnabled(id: String, enabled: Bool, actor: String) async throws -> WebhookEndpointRecord {
        let now = clock.nowMicros()
        let audit = AuditRecord(id: ids.make("aud"), accountId: nil, actor: actor, action: enabled ? "webhook.endpoint_enabled" : "webhook.endpoint_disabled",
                                detail: id, createdAtMicros: now)
        let found = try await store.transaction { tx in
            guard try await tx.setWebhookEndpointEnabled(id: id, enabled: enabled) else { return false }
            try await tx.insertAudit(audit)
            return true
        }
        guard found, let e = try await store.webhookEndpoints().first(where: { $0.id == id }) else {
            throw CofferError.notFound(.webhookEndpointNotFound, id)
        }
        return e
    }

    public func deliveries(endpointId: String?, state: WebhookDeliveryState?, limit: Int) async throws -> [WebhookDeliveryRecord] {
        try await store.webhookDeliveries(endpointId: endpointId, state: state, limit: limit)
    }

    /// One jobs-loop pass: fan new events out, then send what is due. Answers how many were delivered.
    public func dispatch(limit: Int = 200) async throws -> Int {
        let now = clock.nowMicros()
        let endpoints = try await store.webhookEndpoints()
        _ = try await store.transaction { tx in try await tx.fanOutWebhookEvents(endpoints: endpoints, nowMicros: now, limit: limit) }
        guard let transport else { return 0 }
        let lease = now + (settings.timeoutSeconds + 50) * 1_000_000
        let perRun = min(limit, settings.perRun)
        let due = try await store.transaction { tx in try await tx.claimWebhookDeliveries(nowMicros: now, leaseUntilMicros: lease, limit: perRun) }
        guard !due.isEmpty else { return 0 }
        let byId = Dictionary(uniqueKeysWithValues: endpoints.map { ($0.id, $0) })
        var delivered = 0
        for start in stride(from: 0, to: due.count, by: settings.concurrency) {
            let chunk = due[start..<min(start + settings.concurrency, due.count)]
            let finished = await withTaskGroup(of: WebhookDeliveryRecord.self) { group in
                for d in chunk {
                    group.addTask { await self.attempt(d, endpoint: byId[d.endpointId], transport: transport) }
                }
                return await group.reduce(into: []) { $0.append($1) }
            }
            for d in finished {
                try await store.transaction { tx in try await tx.finishWebhookDelivery(d) }
                if d.state == .delivered { delivered += 1 }
            }
        }
        return delivered
    }

    private func attempt(_ claimed: WebhookDeliveryRecord, endpoint: WebhookEndpointRecord?, transport: any WebhookTransport) async -> WebhookDeliveryRecord {
        var d = claimed
        let now = clock.nowMicros()
        func retryOrFail(_ error: String, status: Int?) -> WebhookDeliveryRecord {
            d.lastError = String(error.prefix(200))
            d.lastStatus = status
            if d.attempts >= settings.maxAttempts {
                d.state = .failed
            } else {
                let exponent = min(d.attempts - 1, 20)
                d.nextAttemptAtMicros = now + min(settings.firstRetrySeconds << exponent, settings.maxRetrySeconds) * 1_000_000
            }
            return d
        }
        guard let endpoint, endpoint.enabled else { return retryOrFail("endpoint disabled", status: nil) }
        do {
            guard let event = try await store.webhookEvent(accountId: d.accountId, id: d.eventId) else {
                d.state = .failed
                d.lastError = "event missing"
                return d
            }
            let body = Self.payload(event)
            let seconds = now / 1_000_000
            let status = try await transport.post(url: endpoint.url, headers: [
                ("Content-Type", "application/json"), ("Coffer-Event-Id", event.id), ("Coffer-Event-Type", event.type),
                ("Coffer-Signature", Self.signature(secret: endpoint.secret, timestamp: seconds, body: body)),
            ], body: body, timeoutSeconds: settings.timeoutSeconds)
            guard (200..<300).contains(status) else { return retryOrFail("HTTP \(status)", status: status) }
            d.state = .delivered
            d.lastStatus = status
            d.lastError = nil
            d.deliveredAtMicros = clock.nowMicros()
            return d
        } catch {
            // The URL's host is the operator's own; the error text never carries the secret (it is only in a header).
            logger.info("webhook delivery failed", metadata: ["event": "\(d.eventId)", "endpoint": "\(d.endpointId)", "attempt": "\(d.attempts)"])
            return retryOrFail("\(type(of: error))", status: nil)
        }
    }
}

/// What a registration answers (and a replay repeats): the endpoint with its secret.
struct EndpointAnswer: Codable, Sendable {
    let id: String, url: String, events: [String], secret: String, description: String?, createdBy: String, createdAtMicros: Int64
    init(_ e: WebhookEndpointRecord) {
        (id, url, events, secret, description, createdBy, createdAtMicros) = (e.id, e.url, e.events, e.secret, e.description, e.createdBy, e.createdAtMicros)
    }
    var record: WebhookEndpointRecord {
        WebhookEndpointRecord(id: id, url: url, events: events, secret: secret, enabled: true, description: description, createdBy: createdBy,
                              createdAtMicros: createdAtMicros)
    }
}
