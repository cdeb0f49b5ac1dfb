import CofferCore
import Foundation
import Testing

@Suite("M2 rating: 8-decimal quantities and prices, exact totals, half-up deductions")
struct RatingTests {
    @Test("M2 B1 quantities and unit prices: up to 8 decimals, no sign, exponent or leading zeros",
          arguments: [("0", 0), ("1", 100_000_000), ("0.5", 50_000_000), ("12.34567891", 1_234_567_891),
                      ("0.00000001", 1), ("9999999999.99999999", 999_999_999_999_999_999)] as [(String, Int64)])
    func parses(text: String, units: Int64) throws {
        #expect(try Rating.parse(text, field: "quantity") == units)
        #expect(Rating.format(Int128(units)) == text)
    }

    @Test("M2 B1 refused: 9 decimals, negative, exponent, leading zeros, too large",
          arguments: ["1.123456789", "-1", "1e3", "01", "00.5", "1.", ".5", "", "10000000000", "１", "1,5", " 1"])
    func refuses(text: String) {
        #expect(throws: CofferError.self) { try Rating.parse(text, field: "quantity") }
        do { _ = try Rating.parse(text, field: "quantity") } catch { #expect(error.code == .invalidField) }
    }

    @Test("M2 a record's rated amount is the product kept with 8 decimals, half-up",
          arguments: [("3", "0.33333333", "0.99999999"), ("0.5", "0.00000001", "0.00000001"), ("0.4", "0.00000001", "0"),
                      ("2.5", "0.1", "0.25"), ("9999999999.99999999", "9999999999.99999999", "99999999999999999800")]
                      as [(String, String, String)])
    func rates(quantity: String, price: String, rated: String) throws {
        let units = try Rating.rate(quantityUnits: Rating.parse(quantity, field: "quantity"),
                                    unitPriceUnits: Rating.parse(price, field: "unitPrice"))
        #expect(Rating.format(units) == rated)
    }

    @Test("M2 a cycle's total is deducted half-up to fen; the remainder is what was charged over the exact total",
          arguments: [("0.99999999", 100, "0.00000001"), ("0.00499999", 0, "-0.00499999"), ("0.005", 1, "0.005"),
                      ("12.344", 1234, "-0.004"), ("0", 0, "0")] as [(String, Int64, String)])
    func settles(total: String, deduction: Int64, remainder: String) throws {
        let s = try Rating.settle(totalUnits: Int128(Rating.parse(total, field: "total")))
        #expect(s.deductionMinor == deduction)
        #expect(Rating.format(s.remainderUnits) == remainder)
    }

    @Test("M4 a deduction beyond the ledger's range is an overflow, never a wrap")
    func overflow() {
        #expect(throws: CofferError.arithmeticOverflow) { try Rating.settle(totalUnits: Int128(Int64.max) * 1_000_000) }
        #expect(throws: CofferError.arithmeticOverflow) { try Rating.rate(quantityUnits: -1, unitPriceUnits: 1) }
    }

    @Test("M2 property: Σ deductions − Σ precision difference = Σ exact rated amounts, and no cycle is off by half a fen or more")
    func conservation() throws {
        var rng = SeededRandom.forTest(#function, environment: ProcessInfo.processInfo.environment)
        for _ in 0..<200 {
            var deducted: Int128 = 0, difference: Int128 = 0, exact: Int128 = 0
            for _ in 0..<Int(1 + rng.next(upperBound: UInt64(20))) {   // cycles
                var rated: [Int128] = []
                for _ in 0..<Int(1 + rng.next(upperBound: UInt64(30))) {   // records of the cycle
                    let q = Int64(rng.next(upperBound: UInt64(1_000_000_000_000)))      // up to 10,000 units
                    let p = Int64(rng.next(upperBound: UInt64(100_000_000_000)))        // up to 1,000 per unit
                    rated.append(try Rating.rate(quantityUnits: q, unitPriceUnits: p))
                }
                let total = try Rating.sum(rated)
                let s = try Rating.settle(totalUnits: total)
                #expect(s.remainderUnits.magnitude <= UInt128(Rating.unitsPerMinor / 2), "seed \(rng.seed)")
                deducted += Int128(s.deductionMinor) * Rating.unitsPerMinor
                difference += s.remainderUnits
                exact += total
            }
            #expect(deducted - difference == exact, "seed \(rng.seed)")
        }
    }
}
