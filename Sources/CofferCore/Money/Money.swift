/// Money is an Int64 count of minor units (fen). The API and CSV carry it as a decimal string with two decimals (M1).
public enum MoneyFormat {
    /// Largest amount the ledger accepts in one field: 9,000,000,000,000.00. Far above any real amount, far below Int64.max,
    /// so that sums of many amounts cannot overflow unnoticed.
    public static let maxAbsMinor: Int64 = 900_000_000_000_000

    /// Parses "12", "12.3", "12.30", "-5.00". Anything else (exponents, spaces, "+", commas, three decimals) is refused (M4).
    public static func parse(_ text: String, field: String = "amount") throws(CofferError) -> Int64 {
        var chars = Substring(text)
        var negative = false
        if chars.first == "-" { negative = true; chars = chars.dropFirst() }
        guard !chars.isEmpty, chars.count <= 24 else { throw .amountInvalid(field, text) }
        let parts = chars.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        let whole = parts[0]
        let fraction = parts.count > 1 ? parts[1] : ""
        guard !whole.isEmpty, whole.allSatisfy(\.isASCIIDigit) else { throw .amountInvalid(field, text) }
        // One way to write each amount: "7", not "007" (the API document's pattern says the same).
        guard whole.count == 1 || whole.first != "0" else { throw .amountInvalid(field, text) }
        if parts.count > 1 && fraction.isEmpty { throw .amountInvalid(field, text) }
        guard fraction.allSatisfy(\.isASCIIDigit) else { throw .amountInvalid(field, text) }
        guard fraction.count <= 2 else { throw .amountTooManyDecimals(field, text) }
        guard whole.count <= 15 else { throw .amountOutOfRange(field, min: format(-maxAbsMinor), max: format(maxAbsMinor)) }
        var value: Int64 = 0
        for c in whole { value = value * 10 + Int64(c.asciiValue! - 48) }
        var cents: Int64 = 0
        for c in fraction { cents = cents * 10 + Int64(c.asciiValue! - 48) }
        if fraction.count == 1 { cents *= 10 }
        let minor = value * 100 + cents
        guard minor <= maxAbsMinor else { throw .amountOutOfRange(field, min: format(-maxAbsMinor), max: format(maxAbsMinor)) }
        return negative ? -minor : minor
    }

    /// Parses a strictly positive amount within [minMinor, maxMinor].
    public static func parsePositive(_ text: String, field: String = "amount",
                                     minMinor: Int64 = 1, maxMinor: Int64 = maxAbsMinor) throws(CofferError) -> Int64 {
        let minor = try parse(text, field: field)
        guard minor > 0 else { throw .amountNotPositive(field) }
        guard minor >= minMinor, minor <= maxMinor else {
            throw .amountOutOfRange(field, min: format(minMinor), max: format(maxMinor))
        }
        return minor
    }

    public static func format(_ minor: Int64) -> String {
        let negative = minor < 0
        let magnitude = minor.magnitude
        let whole = magnitude / 100
        let cents = magnitude % 100
        return (negative ? "-" : "") + String(whole) + "." + (cents < 10 ? "0" : "") + String(cents)
    }
}

extension Character {
    var isASCIIDigit: Bool { asciiValue.map { $0 >= 48 && $0 <= 57 } ?? false }
}

/// Checked arithmetic on minor units: overflow is an error, never a wrap (M4).
public enum Checked {
    public static func add(_ a: Int64, _ b: Int64) throws(CofferError) -> Int64 {
        let (r, o) = a.addingReportingOverflow(b)
        guard !o, r.magnitude <= UInt64(MoneyFormat.maxAbsMinor) else { throw .arithmeticOverflow }
        return r
    }
    public static func sub(_ a: Int64, _ b: Int64) throws(CofferError) -> Int64 {
        let (r, o) = a.subtractingReportingOverflow(b)
        guard !o, r.magnitude <= UInt64(MoneyFormat.maxAbsMinor) else { throw .arithmeticOverflow }
        return r
    }
}
