import CofferCore
import Foundation
import Testing

@Suite("B1 B4 M2 usage rules: times, record limits, cycle totals, statistic-period months")
struct UsageRulesTests {
    @Test("B1 RFC 3339 times parse to microseconds, offsets applied; anything else is refused",
          arguments: [("2026-11-01T00:00:00Z", Int64(1_793_491_200_000_000)), ("2026-11-01T08:00:00+08:00", 1_793_491_200_000_000),
                      ("2026-11-01T00:00:00.5Z", 1_793_491_200_500_000), ("2024-02-29T23:59:59.1234567z", 1_709_251_199_123_456),
                      ("2026-10-31T19:30:00-04:30", 1_793_491_200_000_000)] as [(String, Int64)])
    func parsesTimes(text: String, micros: Int64) {
        #expect(RFC3339.parse(text) == micros)
    }

    @Test("B1 malformed times are refused",
          arguments: ["2026-11-01", "2026-11-01T00:00:00", "2026-02-29T00:00:00Z", "2026-13-01T00:00:00Z", "2026-11-01T24:00:00Z",
                      "2026-11-01T00:00:00.Z", "2026-11-01T00:00:00+0800", "2026-11-01T00:00:00+08:00x", "２０２６-11-01T00:00:00Z"])
    func refusesTimes(text: String) {
        #expect(RFC3339.parse(text) == nil)
    }

    @Test("B1 RFC 3339 parse is the inverse of format on seeded random instants")
    func roundTrip() {
        var rng = SeededRandom.forTest("rfc3339 round trip", environment: ProcessInfo.processInfo.environment)
        for _ in 0..<2_000 {
            let micros = Int64.random(in: 0...4_102_444_800_000_000, using: &rng) / 1_000 * 1_000
            #expect(RFC3339.parse(RFC3339.format(micros: micros)) == micros, "seed \(rng.seed)")
        }
    }

    @Test("M2 a cycle's deduction is its exact total half-up to fen; deduction − remainder = total", arguments: [
        ([99_999_999], 100, 1), ([50_000_000, 49_999_999], 100, 1), ([499_999], 0, -499_999), ([500_000], 1, 500_000),
        ([0], 0, 0), ([210_000_000], 210, 0),
    ] as [([Int64], Int64, Int64)])
    func cycleTotals(amounts: [Int64], deduction: Int64, remainder: Int64) throws {
        var line = UsageLineTotal(component: "cpu", unit: "h")
        for a in amounts { try line.add(quantityUnits: 1, amountUnits: a, listAmountUnits: nil) }
        let s = try CycleSettlement(lines: [line])
        #expect(s.deductionMinor == deduction && s.remainderUnits == remainder)
        #expect(Int128(s.deductionMinor) * Rating.unitsPerMinor - Int128(s.remainderUnits) == s.totalUnits)
    }

    @Test("M2 a cycle whose list total passes the BIGINT limit is refused, never trapped or wrapped")
    func listTotalLimit() throws {
        var line = UsageLineTotal(component: "cpu", unit: "h")
        for _ in 0..<2 { try line.add(quantityUnits: 1, amountUnits: 1, listAmountUnits: Int64.max) }
        #expect(throws: CofferError.arithmeticOverflow) { try CycleSettlement(lines: [line]) }
    }

    @Test("M2 B1 a record rated above 92233720368.54775807 is refused, never wrapped")
    func recordLimit() throws {
        let big = try Rating.parse("9999999999", field: "q")
        #expect(throws: CofferError.self) { try UsageRules.rate(quantityUnits: big, unitPriceUnits: big, listUnitPriceUnits: nil) }
        let ok = try UsageRules.rate(quantityUnits: try Rating.parse("2", field: "q"), unitPriceUnits: try Rating.parse("0.5", field: "p"),
                                     listUnitPriceUnits: try Rating.parse("0.75", field: "l"))
        #expect(ok.amountUnits == 100_000_000 && ok.listAmountUnits == 150_000_000)
    }

    @Test("B4 every line is in exactly one month: deduction month before the switch, billing month (not before the switch) after",
          arguments: [("2026-10", "2026-10", nil, "2026-10"), ("2026-11", "2026-10", nil, "2026-11"),
                      ("2026-10", "2026-09", "2026-11", "2026-10"), ("2026-11", "2026-10", "2026-11", "2026-11"),
                      ("2026-12", "2026-11", "2026-11", "2026-11"), ("2026-12", "2026-12", "2026-11", "2026-12")]
                      as [(String, String, String?, String)])
    func statisticMonth(deducted: String, billed: String, switchMonth: String?, month: String) {
        #expect(StatisticPeriod.month(deductionMonth: deducted, billingMonth: billed, switchedFrom: switchMonth) == month)
    }

    @Test("B4 months are YYYY-MM", arguments: [("2026-11", true), ("2026-1", false), ("2026-13", false), ("2026/11", false), ("26-11-", false)])
    func months(text: String, valid: Bool) {
        #expect((StatisticPeriod.parseMonth(text) != nil) == valid)
    }
}
