import CofferCore
import CofferServices
import Foundation
import SQLKit

/// Webhooks (migration 13): endpoints, the event outbox, deliveries.
enum WebhookRows {
    static func endpoint(_ row: any SQLRow) throws -> WebhookEndpointRecord {
        let r = Rows.Reader(row: row)
        return WebhookEndpointRecord(id: try r.text("id"), url: try r.text("url"), events: try r.text("events").split(separator: ",").map(String.init),
                                     secret: try r.text("secret"), enabled: try r.bool("enabled"), description: try r.optionalText("description"),
                                     createdBy: try r.text("created_by"), createdAtMicros: try r.int("created_at"))
    }

    static func delivery(_ row: any SQLRow) throws -> WebhookDeliveryRecord {
        let r = Rows.Reader(row: row)
        return WebhookDeliveryRecord(accountId: try r.text("account_id"), eventId: try r.text("event_id"), endpointId: try r.text("endpoint_id"),
                                     eventType: try r.text("event_type"), state: WebhookDeliveryState(rawValue: try r.text("state"))!,
                                     attempts: Int(try r.int("attempts")), nextAttemptAtMicros: try r.int("next_attempt_at"),
                                     lastStatus: try r.optionalInt("last_status").map { Int($0) }, lastError: try r.optionalText("last_error"),
                                     createdAtMicros: try r.int("created_at"), deliveredAtMicros: try r.optionalInt("delivered_at"))
    }

    static func event(_ row: any SQLRow) throws -> WebhookEventRecord {
        let r = Rows.Reader(row: row)
        return WebhookEventRecord(id: try r.text("id"), accountId: try r.text("account_id"), type: try r.text("type"),
                                  data: try OrderRows.decode([String: String].self, try r.text("data")), createdAtMicros: try r.int("created_at"))
    }
}

extension SQLStore {
    public func webhookEndpoints() async throws -> [WebhookEndpointRecord] {
        try await read { db in try await db.raw("SELECT * FROM webhook_endpoints ORDER BY created_at, id").all().map(WebhookRows.endpoint) }
    }

    public func webhookDeliveries(endpointId: String?, state: WebhookDeliveryState?, limit: Int) async throws -> [WebhookDeliveryRecord] {
        try await read { db in
            var sql: SQLQueryString = "SELECT * FROM webhook_deliveries WHERE 1 = 1"
            if let endpointId { sql += " AND endpoint_id = \(bind: endpointId)" }
            if let state { sql += " AND state = \(bind: state.rawValue)" }
            sql += " ORDER BY created_at DESC, event_id DESC LIMIT \(bind: Int64(limit))"
            return try await db.raw(sql).all().map(WebhookRows.delivery)
        }
    }

    public func webhookEvent(accountId: String, id: String) async throws -> WebhookEventRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM webhook_events WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(WebhookRows.event)
        }
    }
}

extension SQLTransaction {
    func insertWebhookEndpoint(_ e: WebhookEndpointRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO webhook_endpoints (id, url, events, secret, enabled, description, created_by, created_at)
            VALUES (\(bind: e.id), \(bind: e.url), \(bind: e.events.joined(separator: ",")), \(bind: e.secret), \(bind: e.enabled),
              \(bind: e.description), \(bind: e.createdBy), \(bind: e.createdAtMicros))
            """).all()
    }

    func setWebhookEndpointEnabled(id: String, enabled: Bool) async throws -> Bool {
        try await db.raw("UPDATE webhook_endpoints SET enabled = \(bind: enabled) WHERE id = \(bind: id) RETURNING id").all().count == 1
    }

    /// One typed multi-row insert (the ledger batch writes an event for many of its entries).
    func insertWebhookEvents(_ events: [WebhookEventRecord]) async throws {
        try await driver.run(BatchInsert("webhook_events", [
            ("account_id", .text(events.map(\.accountId))), ("id", .text(events.map(\.id))), ("type", .text(events.map(\.type))),
            ("data", .text(events.map { OrderRows.json($0.data) })), ("created_at", .bigint(events.map(\.createdAtMicros))),
            ("fanned_out", .bool(events.map { _ in false })),
        ]))
    }

    func fanOutWebhookEvents(endpoints: [WebhookEndpointRecord], nowMicros: Int64, limit: Int) async throws -> Int {
        let rows = try await db.raw("""
            SELECT account_id, id, type FROM webhook_events WHERE NOT fanned_out ORDER BY created_at, id LIMIT \(bind: Int64(limit))\(unsafeRaw: postgres ? " FOR UPDATE SKIP LOCKED" : "")
            """).all()
        for row in rows {
            let r = Rows.Reader(row: row)
            let (accountId, id, type) = (try r.text("account_id"), try r.text("id"), try r.text("type"))
            for e in endpoints where e.wants(type) {
                // At most one delivery per event and endpoint, whoever fans it out.
                _ = try await db.raw("""
                    INSERT INTO webhook_deliveries (account_id, event_id, endpoint_id, event_type, state, attempts, next_attempt_at, created_at)
                    VALUES (\(bind: accountId), \(bind: id), \(bind: e.id), \(bind: type), 'pending', 0, \(bind: nowMicros), \(bind: nowMicros))
                    ON CONFLICT (account_id, event_id, endpoint_id) DO NOTHING
                    """).all()
            }
            _ = try await db.raw("UPDATE webhook_events SET fanned_out = \(bind: true) WHERE account_id = \(bind: accountId) AND id = \(bind: id)").all()
        }
        return rows.count
    }

    func claimWebhookDeliveries(nowMicros: Int64, leaseUntilMicros: Int64, limit: Int) async throws -> [WebhookDeliveryRecord] {
        let due = try await db.raw("""
            SELECT account_id, event_id, endpoint_id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= \(bind: nowMicros)
            ORDER BY next_attempt_at LIMIT \(bind: Int64(limit))\(unsafeRaw: postgres ? " FOR UPDATE SKIP LOCKED" : "")
            """).all()
        var claimed: [WebhookDeliveryRecord] = []
        for row in due {
            let r = Rows.Reader(row: row)
            claimed += try await db.raw("""
                UPDATE webhook_deliveries SET attempts = attempts + 1, next_attempt_at = \(bind: leaseUntilMicros)
                WHERE account_id = \(bind: try r.text("account_id")) AND event_id = \(bind: try r.text("event_id"))
                  AND endpoint_id = \(bind: try r.text("endpoint_id")) AND state = 'pending' RETURNING *
                """).all().map(WebhookRows.delivery)
        }
        return claimed
    }

    func finishWebhookDelivery(_ d: WebhookDeliveryRecord) async throws {
        _ = try await db.raw("""
            UPDATE webhook_deliveries SET state = \(bind: d.state.rawValue), next_attempt_at = \(bind: d.nextAttemptAtMicros),
              last_status = \(bind: d.lastStatus.map { Int64($0) }), last_error = \(bind: d.lastError), delivered_at = \(bind: d.deliveredAtMicros)
            WHERE account_id = \(bind: d.accountId) AND event_id = \(bind: d.eventId) AND endpoint_id = \(bind: d.endpointId) AND state = 'pending'
            """).all()
    }
}
