@testable import CofferHTTP
import Testing

/// Z2 and Z3 behind a load balancer: the sign-in throttle and the audit log need the client's address, which only a
/// trusted proxy may tell (X-Forwarded-For); anyone else could pick a new address per guess.
@Suite("The client's address behind a trusted proxy")
struct ClientAddressTests {
    struct Case: Sendable, CustomStringConvertible {
        let description: String
        let peer: String?
        let forwardedFor: [String]
        let expected: String?
    }

    static let trusted: Set<String> = ["127.0.0.1", "10.0.0.5"]

    static let cases: [Case] = [
        Case(description: "untrusted peer: its own address, the header ignored", peer: "198.51.100.7", forwardedFor: ["203.0.113.1"], expected: "198.51.100.7"),
        Case(description: "trusted peer without the header", peer: "127.0.0.1", forwardedFor: [], expected: "127.0.0.1"),
        Case(description: "trusted peer: the forwarded client", peer: "127.0.0.1", forwardedFor: ["203.0.113.1"], expected: "203.0.113.1"),
        Case(description: "a client's own forged entries on the left prove nothing", peer: "127.0.0.1",
             forwardedFor: ["1.2.3.4, 203.0.113.1"], expected: "203.0.113.1"),
        Case(description: "two trusted hops are skipped", peer: "127.0.0.1", forwardedFor: ["203.0.113.1, 10.0.0.5"], expected: "203.0.113.1"),
        Case(description: "repeated headers are read in order", peer: "127.0.0.1", forwardedFor: ["1.2.3.4", "2001:db8::1"], expected: "2001:db8::1"),
        Case(description: "not an address: the peer", peer: "127.0.0.1", forwardedFor: ["<script>"], expected: "127.0.0.1"),
        Case(description: "only trusted hops: the peer", peer: "127.0.0.1", forwardedFor: ["10.0.0.5"], expected: "127.0.0.1"),
        Case(description: "no peer (router tests)", peer: nil, forwardedFor: ["203.0.113.1"], expected: nil),
    ]

    @Test("Z2 Z3 the client's address", arguments: cases)
    func address(c: Case) {
        #expect(RequestOriginMiddleware.clientIP(peer: c.peer, forwardedFor: c.forwardedFor, trustedProxies: Self.trusted) == c.expected)
    }
}
