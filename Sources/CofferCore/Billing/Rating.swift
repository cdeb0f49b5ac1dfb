/// M2 rating: usage quantities and unit prices are decimal strings with up to 8 decimals, held as integers of 1e-8. A
/// record's rated amount is quantity × unit price kept with 8 decimals (the 16-decimal product rounded half-up at the 8th,
/// the one rounding before money); totals of rated amounts are exact sums in 128-bit integers. A cycle's total becomes one
/// deduction rounded half-up to fen, and its remainder — what the platform charged over (positive) or under (negative)
/// the exact total — joins the account's monthly "billing precision difference" (月度计费精度差异).
public enum Rating {
    /// Units per one: values are integers of 1e-8.
    public static let scale: Int64 = 100_000_000
    /// 1e-8 units per fen.
    public static let unitsPerMinor: Int128 = 1_000_000
    /// Largest quantity or unit price: 9,999,999,999.99999999 (10 integer digits).
    public static let maxUnits: Int64 = 9_999_999_999_99999999

    /// Parses a non-negative decimal with at most 8 decimals and 10 integer digits, no sign, exponent or leading zeros.
    public static func parse(_ text: String, field: String) throws(CofferError) -> Int64 {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0], fraction = parts.count > 1 ? parts[1] : ""
        guard !whole.isEmpty, whole.allSatisfy(\.isASCIIDigit), whole.count == 1 || whole.first != "0",
              parts.count == 1 || !fraction.isEmpty, fraction.allSatisfy(\.isASCIIDigit) else {
            throw .invalidField(field, "must be a decimal number such as 12.5 (no sign, exponent or leading zeros)")
        }
        guard fraction.count <= 8 else { throw .invalidField(field, "may have at most 8 decimals") }
        guard whole.count <= 10 else { throw .invalidField(field, "must be below 10000000000") }
        var units: Int64 = 0
        for c in whole { units = units * 10 + Int64(c.asciiValue! - 48) }
        for c in fraction { units = units * 10 + Int64(c.asciiValue! - 48) }
        for _ in fraction.count..<8 { units *= 10 }
        return units
    }

    /// "12.5" for 1_250_000_000: the shortest decimal that says the exact value (at most 8 decimals); negative with "-".
    public static func format(_ units: Int128) -> String {
        let magnitude = units.magnitude
        let whole = magnitude / UInt128(scale), fraction = magnitude % UInt128(scale)
        var text = String(whole)
        if fraction != 0 {
            var digits = String(fraction)
            digits = String(repeating: "0", count: 8 - digits.count) + digits
            while digits.last == "0" { digits.removeLast() }
            text += "." + digits
        }
        return (units < 0 ? "-" : "") + text
    }

    /// quantity × unit price in 1e-8 units, half-up at the 8th decimal. Both inputs are within `maxUnits`, so the
    /// 128-bit product cannot overflow; the check stays as the guard of that reasoning.
    public static func rate(quantityUnits: Int64, unitPriceUnits: Int64) throws(CofferError) -> Int128 {
        guard (0...maxUnits).contains(quantityUnits), (0...maxUnits).contains(unitPriceUnits) else { throw .arithmeticOverflow }
        let (product, overflow) = Int128(quantityUnits).multipliedReportingOverflow(by: Int128(unitPriceUnits))
        guard !overflow else { throw .arithmeticOverflow }
        return (product + Int128(scale / 2)) / Int128(scale)
    }

    /// Adds rated amounts, checked.
    public static func sum(_ amounts: some Sequence<Int128>) throws(CofferError) -> Int128 {
        var total: Int128 = 0
        for a in amounts {
            let (s, overflow) = total.addingReportingOverflow(a)
            guard !overflow else { throw .arithmeticOverflow }
            total = s
        }
        return total
    }

    /// One cycle's deduction: the total rounded half-up (away from zero) to fen, and the remainder in 1e-8 units
    /// (deduction − exact total: positive when the platform charged more). The deduction must fit the ledger.
    public static func settle(totalUnits: Int128) throws(CofferError) -> (deductionMinor: Int64, remainderUnits: Int128) {
        let magnitude = (totalUnits.magnitude + UInt128(unitsPerMinor / 2)) / UInt128(unitsPerMinor)
        guard magnitude <= UInt128(MoneyFormat.maxAbsMinor) else { throw .arithmeticOverflow }
        let deduction = totalUnits < 0 ? -Int64(magnitude) : Int64(magnitude)
        return (deduction, Int128(deduction) * unitsPerMinor - totalUnits)
    }
}
