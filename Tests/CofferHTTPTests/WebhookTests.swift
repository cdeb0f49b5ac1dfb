import CofferChannels
import CofferCore
import CofferServices
import CofferTestSupport
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Synchronization
import Testing

/// N2 with a real HTTP server on loopback: the provider's receiver sees every event at least once, signed, with an
/// event id to de-duplicate by; a failed delivery is retried after its backoff with the same body.
@Suite("Webhooks to a loopback receiver")
struct WebhookTests {
    struct Received: Sendable { let id: String; let type: String; let signature: String; let body: [UInt8] }

    /// A receiver that answers 500 to the first attempt of every event and 204 afterwards.
    final class Receiver: Sendable {
        let log = Mutex<[Received]>([])
        func handle(_ request: Request) async throws -> Response {
            var request = request
            let body = Array(try await request.collectBody(upTo: 1 << 20).readableBytesView)
            let id = request.headers[HTTPField.Name("Coffer-Event-Id")!] ?? ""
            let firstTime = log.withLock { log in
                let seen = log.contains { $0.id == id }
                log.append(Received(id: id, type: request.headers[HTTPField.Name("Coffer-Event-Type")!] ?? "",
                                    signature: request.headers[HTTPField.Name("Coffer-Signature")!] ?? "", body: body))
                return !seen
            }
            return Response(status: firstTime ? .internalServerError : .noContent)
        }
    }

    /// What a provider would write: parse `t=` and `v1=`, recompute HMAC-SHA256 over "<t>.<body>".
    static func verify(_ header: String, body: [UInt8], secret: String) -> Int64? {
        var t: Int64?, v1: String?
        for part in header.split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            if kv[0] == "t" { t = Int64(kv[1]) }
            if kv[0] == "v1" { v1 = String(kv[1]) }
        }
        guard let t, let v1 else { return nil }
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(t).".utf8) + body, using: SymmetricKey(data: Array(secret.utf8)))
        return Data(mac).map { String(format: "%02x", $0) }.joined() == v1 ? t : nil
    }

    @Test("N2 events of a paid and delivered order reach the receiver signed, are retried with backoff after a 500, and carry one id per event",
          arguments: Backend.available)
    func delivery(backend: Backend) async throws {
        let receiver = Receiver()
        let router = Router()
        router.post("/hook") { request, _ in try await receiver.handle(request) }
        let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            var settings = CofferEngine.Settings()
            settings.webhookTransport = HTTPWebhookTransport()
            try await TestEnvironment.with(backend, settings: settings) { env in
                let (endpoint, _) = try await env.engine.webhooks.register(url: "http://127.0.0.1:\(port)/hook", events: ["order_paid", "order_delivered"],
                                                                           description: "provider", idempotencyKey: "wh-1", actor: "test")
                #expect(endpoint.secret.hasPrefix("whsec_"))
                _ = try await env.engine.products.put(id: "cvm", ProductInput(nameZh: "云服务器", nameEn: "Cloud server", settlementCycle: "hourly",
                                                                            taxCategory: "cloud_service", plans: [(specification: "2c4g", monthlyPrice: "100.00")]),
                                                      actor: "test")
                let account = try await env.fundedAccount(cashMinor: 50_000)
                let order = try await env.engine.orders.create(accountId: account, OrderInput(type: "new", productId: "cvm", specification: "2c4g",
                                                                                             durationMonths: 1), idempotencyKey: "o-1").0
                _ = try await env.engine.orders.pay(accountId: account, orderIds: [order.id], couponIds: [], idempotencyKey: "p-1", actor: "test")
                _ = try await env.engine.orders.resolve(accountId: account, orderId: order.id, delivered: true, idempotencyKey: "d-1", actor: "test")
                // An event the endpoint did not ask for is not sent.
                _ = try await env.engine.orders.create(accountId: account, OrderInput(type: "new", productId: "cvm", specification: "2c4g",
                                                                                     durationMonths: 1), idempotencyKey: "o-2")

                let first = try await env.engine.jobs.runOnce()
                #expect(first.webhooksDelivered == 0)
                let pending = try await env.engine.webhooks.deliveries(endpointId: endpoint.id, state: .pending, limit: 10)
                #expect(pending.count == 2 && pending.allSatisfy { $0.attempts == 1 && $0.lastStatus == 500 })
                // Not before the backoff (30 s): nothing is sent.
                #expect(try await env.engine.jobs.runOnce().webhooksDelivered == 0)
                env.clock.advance(seconds: 30)
                #expect(try await env.engine.jobs.runOnce().webhooksDelivered == 2)
                #expect(try await env.engine.jobs.runOnce().webhooksDelivered == 0)

                let received = receiver.log.withLock { $0 }
                #expect(received.count == 4)
                #expect(Set(received.map(\.id)).count == 2 && Set(received.map(\.type)) == ["order_paid", "order_delivered"])
                for r in received {
                    let t = Self.verify(r.signature, body: r.body, secret: endpoint.secret)
                    #expect(t != nil, "signature of \(r.id)")
                    #expect(Self.verify(r.signature, body: r.body, secret: "whsec_wrong") == nil)
                    let json = try #require(try JSONSerialization.jsonObject(with: Data(r.body)) as? [String: Any])
                    #expect(json["id"] as? String == r.id && json["accountId"] as? String == account)
                    #expect((json["data"] as? [String: String])?["order"] == order.id)
                }
                // Every attempt of an event sends the same bytes.
                for id in Set(received.map(\.id)) {
                    #expect(Set(received.filter { $0.id == id }.map(\.body)).count == 1)
                }
                let delivered = try await env.engine.webhooks.deliveries(endpointId: nil, state: .delivered, limit: 10)
                #expect(delivered.count == 2 && delivered.allSatisfy { $0.attempts == 2 && $0.lastStatus == 204 })

                // Disabled: events of that time are not sent to it (no delivery is made for them).
                _ = try await env.engine.webhooks.setEnabled(id: endpoint.id, enabled: false, actor: "test")
                let third = try await env.engine.orders.create(accountId: account, OrderInput(type: "new", productId: "cvm", specification: "2c4g",
                                                                                             durationMonths: 1), idempotencyKey: "o-3").0
                _ = try await env.engine.orders.pay(accountId: account, orderIds: [third.id], couponIds: [], idempotencyKey: "p-3", actor: "test")
                env.clock.advance(seconds: 3_600)
                #expect(try await env.engine.jobs.runOnce().webhooksDelivered == 0)
                #expect(receiver.log.withLock { $0.count } == 4)
                #expect(try await env.engine.webhooks.deliveries(endpointId: endpoint.id, state: .pending, limit: 10).isEmpty)
            }
        }
    }

    @Test("N2 a registration needs an http(s) URL and known events; the secret is shown once")
    func registration() async throws {
        try await TestEnvironment.with(.sqlite) { env in
            for (url, events) in [("ftp://example.com/x", ["*"]), ("not a url", ["*"]), ("https://example.com/h", ["order_shipped"]),
                                  ("https://example.com/h", [String]())] {
                await #expect(throws: CofferError.self) {
                    _ = try await env.engine.webhooks.register(url: url, events: events, description: nil, idempotencyKey: UUID().uuidString, actor: "t")
                }
            }
            let (e, _) = try await env.engine.webhooks.register(url: "https://example.com/h", events: ["*"], description: nil, idempotencyKey: "k", actor: "t")
            let (again, replayed) = try await env.engine.webhooks.register(url: "https://example.com/h", events: ["*"], description: nil, idempotencyKey: "k", actor: "t")
            #expect(replayed && again.id == e.id && again.secret == e.secret)
            #expect(try await env.engine.webhooks.endpoints().count == 1)
        }
    }
}
