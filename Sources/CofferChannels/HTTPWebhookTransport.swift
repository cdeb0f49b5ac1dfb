import AsyncHTTPClient
import CofferServices
import NIOCore
import NIOHTTP1

/// N2's outbound port over AsyncHTTPClient: one POST, the status back; the answer's body is read (up to 64 KiB) and dropped.
public struct HTTPWebhookTransport: WebhookTransport {
    let http: HTTPClient
    public init(http: HTTPClient = .shared) { self.http = http }

    public func post(url: String, headers: [(String, String)], body: [UInt8], timeoutSeconds: Int64) async throws -> Int {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "User-Agent", value: "Coffer-Webhooks")
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await http.execute(request, timeout: .seconds(timeoutSeconds))
        _ = try? await response.body.collect(upTo: 64 * 1024)
        return Int(response.status.code)
    }
}
