import CofferCore
import CofferServices
import Testing

@Suite("M — money format and arithmetic")
struct MoneyTests {
    static let valid: [(String, Int64)] = [
        ("0", 0), ("0.01", 1), ("1", 100), ("1.5", 150), ("12.30", 1230), ("-5.00", -500), ("9999999.00", 999_999_900),
        ("1234.50", 123_450), ("9000000000000.00", 900_000_000_000_000),
    ]

    @Test("M1 decimal strings parse to exact minor units", arguments: valid)
    func m1Parse(text: String, minor: Int64) throws {
        #expect(try MoneyFormat.parse(text) == minor)
    }

    @Test("M1 minor units format with exactly two decimals",
          arguments: [(Int64(0), "0.00"), (1, "0.01"), (150, "1.50"), (-5, "-0.05"), (-123_456, "-1234.56"), (123_450, "1234.50")])
    func m1Format(minor: Int64, text: String) {
        #expect(MoneyFormat.format(minor) == text)
    }

    static let refused: [(String, String)] = [
        ("1.234", "amount_too_many_decimals"), ("0.001", "amount_too_many_decimals"), ("1e3", "amount_invalid"),
        ("1.", "amount_invalid"), (".5", "amount_invalid"), ("+1", "amount_invalid"), ("1,000", "amount_invalid"),
        (" 1", "amount_invalid"), ("", "amount_invalid"), ("-", "amount_invalid"), ("NaN", "amount_invalid"),
        ("１２", "amount_invalid"), ("99999999999999999999", "amount_out_of_range"), ("9000000000000.01", "amount_out_of_range"),
        ("0x10", "amount_invalid"), ("1.2.3", "amount_invalid"), ("007", "amount_invalid"), ("00.50", "amount_invalid"),
    ]

    @Test("M4 malformed, over-precise and out-of-range amounts are errors, never rounded", arguments: refused)
    func m4Refused(text: String, code: String) {
        #expect(throws: CofferError.self) { try MoneyFormat.parse(text) }
        do { _ = try MoneyFormat.parse(text) } catch { #expect(error.code.rawValue == code, "\(text)") }
    }

    @Test("M4 checked arithmetic refuses overflow")
    func m4Overflow() {
        #expect(throws: CofferError.arithmeticOverflow) { try Checked.add(MoneyFormat.maxAbsMinor, 1) }
        #expect(throws: CofferError.arithmeticOverflow) { try Checked.sub(-MoneyFormat.maxAbsMinor, 1) }
        #expect(throws: CofferError.arithmeticOverflow) { try Checked.add(Int64.max, 1) }
    }

    @Test("R1 recharge range 0.01–9,999,999.00", arguments: [("0.00", false), ("0.01", true), ("9999999.00", true), ("9999999.01", false), ("-1.00", false)])
    func r1Range(text: String, ok: Bool) {
        let result = Result { () throws(CofferError) in try MoneyFormat.parsePositive(text, minMinor: 1, maxMinor: 999_999_900) }
        #expect(((try? result.get()) != nil) == ok)
    }

    @Test("M1 round trip: format then parse returns the same minor units")
    func m1RoundTrip() throws {
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<10_000 {
            let minor = Int64.random(in: -MoneyFormat.maxAbsMinor...MoneyFormat.maxAbsMinor, using: &rng)
            #expect(try MoneyFormat.parse(MoneyFormat.format(minor)) == minor)
        }
    }
}

@Suite("R4 fee rules")
struct FeeRuleTests {
    static let cases: [(FeeRule, Int64, Int64)] = [
        (FeeRule(), 1_000_000, 0),
        (FeeRule(aboveMinor: 20_000, rateBasisPoints: 60), 20_000, 0),
        (FeeRule(aboveMinor: 20_000, rateBasisPoints: 60), 20_001, 120),
        (FeeRule(aboveMinor: 20_000, rateBasisPoints: 60), 30_000, 180),
        (FeeRule(rateBasisPoints: 60), 25, 0),          // 0.15 cents rounds down
        (FeeRule(rateBasisPoints: 60), 84, 1),          // 0.504 cents rounds up (half up)
        (FeeRule(rateBasisPoints: 10_000), 999_999_900, 999_999_900),
        (FeeRule(rateBasisPoints: 100, fixedMinor: 50), 10_000, 150),
        (FeeRule(rateBasisPoints: 10, minMinor: 100), 10_000, 100),
        (FeeRule(rateBasisPoints: 1_000, maxMinor: 500), 1_000_000, 500),
    ]

    @Test("R4 fees: threshold, rate rounded half up, fixed part, minimum and maximum", arguments: cases)
    func r4Fee(rule: FeeRule, amountMinor: Int64, feeMinor: Int64) throws {
        #expect(try rule.fee(forMinor: amountMinor) == feeMinor)
    }

    @Test("R4 a rule outside the allowed range is refused when configured", arguments: [
        FeeRule(rateBasisPoints: 10_001), FeeRule(rateBasisPoints: -1), FeeRule(minMinor: 200, maxMinor: 100), FeeRule(fixedMinor: -5),
    ])
    func r4InvalidRule(rule: FeeRule) {
        let error = #expect(throws: CofferError.self) { try rule.validated(channel: "wechatpay") }
        #expect(error?.code == .feeRuleInvalid)
    }
}
