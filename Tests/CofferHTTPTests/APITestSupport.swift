import CofferChannels
import CofferCore
import CofferHTTP
import CofferServices
import CofferTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Metrics
import NIOCore
import Prometheus

struct APIResponse {
    let status: Int
    let headers: HTTPFields
    let text: String
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:] }
    var code: String? { json["code"] as? String }
    func string(_ path: String...) -> String? {
        var node: Any? = json
        for key in path { node = (node as? [String: Any])?[key] }
        return node as? String
    }
}

/// A running API over a fresh database, with a platform key, a customer account and keys for its owner, a finance user
/// and a member.
struct APIFixture {
    let env: TestEnvironment
    let client: any TestClientProtocol
    let platformKey: String
    let accountId: String
    let ownerKey: String
    let financeKey: String
    let memberKey: String
    var counter = 0

    func call(_ method: HTTPRequest.Method, _ path: String, key: String?, idempotencyKey: String? = nil,
              body: String? = nil, headers extra: [String: String] = [:]) async throws -> APIResponse {
        var headers = HTTPFields()
        if let key { headers[.authorization] = "Bearer \(key)" }
        if let idempotencyKey { headers[HTTPField.Name("Idempotency-Key")!] = idempotencyKey }
        if body != nil { headers[.contentType] = "application/json" }
        for (k, v) in extra { headers[HTTPField.Name(k)!] = v }
        let response = try await client.executeRequest(uri: path, method: method, headers: headers,
                                                       body: body.map { ByteBuffer(string: $0) })
        return APIResponse(status: response.status.code, headers: response.headers, text: String(buffer: response.body))
    }

    /// POST with a fresh idempotency key.
    func post(_ path: String, key: String?, _ body: String? = nil) async throws -> APIResponse {
        try await call(.post, path, key: key, idempotencyKey: env.engine.ids.make("idem"), body: body)
    }

    static func run(_ backend: Backend, sandbox: Bool = true, sandboxClock: Bool = true, settings: CofferEngine.Settings = .init(),
                    channels: (ManualClock) throws -> [any PaymentChannel] = { _ in [] },
                    _ test: @escaping @Sendable (APIFixture) async throws -> Void) async throws {
        try await TestEnvironment.with(backend, settings: settings, channels: channels) { env in
            let deps = HTTPDependencies(engine: env.engine, sandbox: sandbox ? env.sandbox : nil, sandboxClock: sandboxClock ? env.clock : nil,
                                        metrics: MetricsExport(registry: TestMetrics.registry, token: TestMetrics.token))
            // The environment already runs the ledger writer; the app here is the router alone.
            let app = Application(router: buildRouter(deps))
            try await app.test(.router) { client in
                let platform = try await env.engine.accounts.createPlatformKey(name: "test", actor: "test").secret
                var f = APIFixture(env: env, client: client, platformKey: platform, accountId: "", ownerKey: "",
                                   financeKey: "", memberKey: "")
                let tag = env.engine.ids.make("u").suffix(10)
                let created = try await f.post("/v1/accounts", key: platform, """
                    {"type":"enterprise","entityName":"上海示例云计算有限公司","taxId":"91310000MA1FL8XQ30",
                     "contactEmail":"finance@example.com",
                     "owner":{"email":"owner-\(tag)@example.com","name":"Owner","password":"correct horse battery"}}
                    """)
                guard created.status == 201, let accountId = created.string("account", "id"),
                      let ownerId = created.string("owner", "id") else {
                    throw TestFailure("account creation failed: \(created.text)")
                }
                func key(for userId: String) async throws -> String {
                    let r = try await f.post("/v1/accounts/\(accountId)/api-keys", key: platform, #"{"userId":"\#(userId)","name":"k"}"#)
                    guard let secret = r.string("secret") else { throw TestFailure("key creation failed: \(r.text)") }
                    return secret
                }
                let owner = try await key(for: ownerId)
                var others: [String] = []
                for role in ["finance", "member"] {
                    let r = try await f.post("/v1/accounts/\(accountId)/users", key: owner, """
                        {"email":"\(role)-\(tag)@example.com","name":"\(role)","role":"\(role)","password":"correct horse battery"}
                        """)
                    guard let id = r.string("id") else { throw TestFailure("user creation failed: \(r.text)") }
                    others.append(try await key(for: id))
                }
                f = APIFixture(env: env, client: client, platformKey: platform, accountId: accountId, ownerKey: owner,
                               financeKey: others[0], memberKey: others[1])
                try await test(f)
            }
        }
    }
}

/// One Prometheus registry for the test process: swift-metrics can be bootstrapped once per process.
enum TestMetrics {
    static let token = "metrics-test-token-0123456789"
    static let registry: PrometheusCollectorRegistry = {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }()
}
