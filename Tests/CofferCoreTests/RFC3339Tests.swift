import CofferCore
import Foundation
import Testing

@Suite("RFC 3339 timestamps")
struct RFC3339Tests {
    @Test("W11 record times: known instants", arguments: [
        (Int64(0), "1970-01-01T00:00:00.000Z"),
        (1_795_000_678_123_456, "2026-11-18T11:17:58.123Z"),
        (951_782_400_000_000, "2000-02-29T00:00:00.000Z"),
        (-1_000, "1969-12-31T23:59:59.999Z"),
        (4_102_444_799_999_000, "2099-12-31T23:59:59.999Z"),
    ])
    func known(micros: Int64, expected: String) {
        #expect(RFC3339.format(micros: micros) == expected)
    }

    /// Property: the arithmetic formatter agrees with Foundation's ISO 8601 formatter over random instants, 1900–2200.
    @Test("W11 record times agree with ISO8601DateFormatter over random instants")
    func agreesWithFoundation() {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let millis = Int64.random(in: -2_208_988_800_000...7_258_118_400_000, using: &rng)
            let micros = millis * 1_000 + Int64.random(in: 0...999, using: &rng)
            #expect(RFC3339.format(micros: micros) == f.string(from: Date(timeIntervalSince1970: Double(millis) / 1000)),
                    "micros \(micros)")
        }
    }
}
