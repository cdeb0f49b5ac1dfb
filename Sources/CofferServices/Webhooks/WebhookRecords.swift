import CofferCore

/// N2: an operator's endpoint: where events go, which ones, and the secret that signs them (shown once, when it is made;
/// kept to sign every delivery).
public struct WebhookEndpointRecord: Sendable, Equatable {
    public var id: String
    public var url: String
    /// Event types, or ["*"] for every one.
    public var events: [String]
    public var secret: String
    public var enabled: Bool
    public var description: String?
    public var createdBy: String
    public var createdAtMicros: Int64
    public init(id: String, url: String, events: [String], secret: String, enabled: Bool, description: String?, createdBy: String,
                createdAtMicros: Int64) {
        (self.id, self.url, self.events, self.secret, self.enabled) = (id, url, events, secret, enabled)
        (self.description, self.createdBy, self.createdAtMicros) = (description, createdBy, createdAtMicros)
    }

    public func wants(_ type: String) -> Bool { enabled && (events.contains("*") || events.contains(type)) }
}

/// One event in the outbox, written in the transaction of what it tells.
public struct WebhookEventRecord: Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var type: String
    public var data: [String: String]
    public var createdAtMicros: Int64
    public init(id: String, accountId: String, type: String, data: [String: String], createdAtMicros: Int64) {
        (self.id, self.accountId, self.type, self.data, self.createdAtMicros) = (id, accountId, type, data, createdAtMicros)
    }
}

public enum WebhookDeliveryState: String, Codable, Sendable, CaseIterable { case pending, delivered, failed }

/// One event for one endpoint: its attempts and their outcome (the delivery log).
public struct WebhookDeliveryRecord: Sendable, Equatable {
    public var accountId: String
    public var eventId: String
    public var endpointId: String
    public var eventType: String
    public var state: WebhookDeliveryState
    public var attempts: Int
    public var nextAttemptAtMicros: Int64
    public var lastStatus: Int?
    public var lastError: String?
    public var createdAtMicros: Int64
    public var deliveredAtMicros: Int64?
    public init(accountId: String, eventId: String, endpointId: String, eventType: String, state: WebhookDeliveryState, attempts: Int,
                nextAttemptAtMicros: Int64, lastStatus: Int?, lastError: String?, createdAtMicros: Int64, deliveredAtMicros: Int64?) {
        (self.accountId, self.eventId, self.endpointId, self.eventType, self.state) = (accountId, eventId, endpointId, eventType, state)
        (self.attempts, self.nextAttemptAtMicros, self.lastStatus, self.lastError) = (attempts, nextAttemptAtMicros, lastStatus, lastError)
        (self.createdAtMicros, self.deliveredAtMicros) = (createdAtMicros, deliveredAtMicros)
    }
}

public protocol WebhookReads: Sendable {
    func webhookEndpoints() async throws -> [WebhookEndpointRecord]
    /// Newest first, optionally of one endpoint or state.
    func webhookDeliveries(endpointId: String?, state: WebhookDeliveryState?, limit: Int) async throws -> [WebhookDeliveryRecord]
    /// The stored event (its payload is rebuilt from it for every attempt, so every attempt sends the same bytes).
    func webhookEvent(accountId: String, id: String) async throws -> WebhookEventRecord?
}

public protocol WebhookWrites: Sendable {
    func insertWebhookEndpoint(_ endpoint: WebhookEndpointRecord) async throws
    func setWebhookEndpointEnabled(id: String, enabled: Bool) async throws -> Bool
    func insertWebhookEvents(_ events: [WebhookEventRecord]) async throws
    /// Gives up to `limit` events that have not been fanned out a delivery row for each endpoint that wants them.
    func fanOutWebhookEvents(endpoints: [WebhookEndpointRecord], nowMicros: Int64, limit: Int) async throws -> Int
    /// Claims due deliveries with a lease (their next attempt moved to `leaseUntilMicros`, attempts counted), so that
    /// another instance does not send them at the same time.
    func claimWebhookDeliveries(nowMicros: Int64, leaseUntilMicros: Int64, limit: Int) async throws -> [WebhookDeliveryRecord]
    func finishWebhookDelivery(_ delivery: WebhookDeliveryRecord) async throws
}

/// The outbound HTTP port: POST a body, answer the status (an error when nothing answered).
public protocol WebhookTransport: Sendable {
    func post(url: String, headers: [(String, String)], body: [UInt8], timeoutSeconds: Int64) async throws -> Int
}
