import CofferCore
import CofferHTTP
import Foundation
import Testing

/// The server's text rules and the OpenAPI document's patterns say the same thing (schemathesis holds the server to the
/// document; these hold the document's patterns to TextRules character by character, seeded).
@Suite("API contract: text rules agree with the document's patterns")
struct TextRulesTests {
    /// The `pattern:` of a schema in components, read from the document as served.
    static func pattern(_ schema: String) throws -> String {
        let text = OpenAPIDocument.text
        let start = try #require(text.range(of: "\n    \(schema):"))
        let rest = text[start.upperBound...]
        let p = try #require(rest.range(of: "pattern: '"))
        let end = try #require(rest[p.upperBound...].firstIndex(of: "'"))
        return String(rest[p.upperBound..<end])
    }

    static func matches(_ pattern: String, _ s: String) throws -> Bool {
        let regex = try NSRegularExpression(pattern: pattern)
        return regex.firstMatch(in: s, range: NSRange(s.startIndex..., in: s)) != nil
    }

    /// Edge cases first, then random strings over an alphabet of the characters the rules turn on.
    static func samples(_ name: String, fixed: [String]) -> [String] {
        var rng = SeededRandom.forTest(name, environment: ProcessInfo.processInfo.environment)
        let alphabet: [Unicode.Scalar] = ["a", "Z", "0", "@", ".", " ", "\t", "\u{85}", "\u{A0}", "\u{2003}", "\u{3000}", "\u{7F}",
                                          "\u{1F}", "\u{200B}", "é", "中", "\u{1F600}", "-", "_"]
        var out = fixed
        for _ in 0..<2_000 {
            var s = String.UnicodeScalarView()
            for _ in 0..<Int(rng.next(upperBound: UInt64(9))) { s.append(alphabet[Int(rng.next(upperBound: UInt64(alphabet.count)))]) }
            out.append(String(s))
        }
        return out
    }

    @Test("E-mail: TextRules.email accepts exactly what the Email pattern matches")
    func email() throws {
        let pattern = try Self.pattern("Email")
        for s in Self.samples("email", fixed: ["a@b.c", "a@b.", "a@.b", "a@.b.c", "@b.c", "a@@b.c", "a b@c.d", "A@B.CD", "a@b..c",
                                              "a@b.c@", "中@文.网", "a@b\u{7F}.c"]) {
            let accepted = (try? TextRules.email(s)) != nil
            let documented = try Self.matches(pattern, s) && s.unicodeScalars.count <= 254
            #expect(accepted == documented, "\(s.debugDescription)")
        }
    }

    @Test("Required text: TextRules.required accepts exactly what Text100 allows (length in code points, not blank)")
    func requiredText() throws {
        let pattern = try Self.pattern("Text100")
        for s in Self.samples("text", fixed: ["", " ", "\u{3000}", "\u{200B}", " a ", String(repeating: "é", count: 100),
                                             String(repeating: "e\u{301}", count: 50), String(repeating: "x", count: 101)]) {
            let accepted = (try? TextRules.required(s, field: "name", max: 100)) != nil
            let documented = try (1...100).contains(s.unicodeScalars.count) && Self.matches(pattern, s)
            #expect(accepted == documented, "\(s.debugDescription)")
        }
    }

    @Test("M4 Money: the positive pattern matches exactly what parsePositive accepts")
    func money() throws {
        let pattern = try Self.pattern("Money")
        var rng = SeededRandom.forTest("money", environment: ProcessInfo.processInfo.environment)
        var cases = ["0", "0.0", "0.00", "0.01", "0.1", "007", "1", "9000000000000", "9000000000000.00", "9000000000000.01",
                     "8999999999999.99", "10000000000000", "1.234", "-1", "1.", ".5", "12.30"]
        let digits = Array("0123456789.-")
        for _ in 0..<3_000 {
            cases.append(String((0..<Int(1 + rng.next(upperBound: UInt64(15)))).map { _ in digits[Int(rng.next(upperBound: UInt64(digits.count)))] }))
        }
        for s in cases {
            let accepted = (try? MoneyFormat.parsePositive(s)) != nil
            let documented = try Self.matches(pattern, s)
            #expect(accepted == documented, "\(s)")
        }
    }
}
