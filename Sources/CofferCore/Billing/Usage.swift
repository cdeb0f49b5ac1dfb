/// B1, M2: the pure rules of usage records and of a settled cycle. No I/O, no clock: the services hand in parsed values.
public enum UsageRules {
    /// Most records in one ingestion request.
    public static let maxRecordsPerRequest = 10_000
    /// Largest rated amount of one record, and of one settled cycle of a resource, in 1e-8 units: what a BIGINT column
    /// holds (92,233,720,368.54775807). A limit on everything (TIGER_STYLE): a record or cycle above it is refused, never
    /// wrapped or rounded.
    public static let maxAmountUnits = Int128(Int64.max)

    /// One record's money: quantity × unit price (and × list unit price when the provider gives one), M2-rated.
    public static func rate(quantityUnits: Int64, unitPriceUnits: Int64,
                            listUnitPriceUnits: Int64?) throws(CofferError) -> (amountUnits: Int64, listAmountUnits: Int64?) {
        let amount = try Rating.rate(quantityUnits: quantityUnits, unitPriceUnits: unitPriceUnits)
        guard amount <= maxAmountUnits else {
            throw .invalidField("quantity", "quantity × unitPrice is above 92233720368.54775807, the most one record may rate")
        }
        guard let listUnitPriceUnits else { return (Int64(amount), nil) }
        let list = try Rating.rate(quantityUnits: quantityUnits, unitPriceUnits: listUnitPriceUnits)
        guard list <= maxAmountUnits else {
            throw .invalidField("listUnitPrice", "quantity × listUnitPrice is above 92233720368.54775807, the most one record may rate")
        }
        return (Int64(amount), Int64(list))
    }

    /// L3's discount rate: amount ÷ list amount with 4 decimals, half-up, as a decimal string ("0.625"); nil without a list
    /// price (a contract price, shown as "-").
    public static func discountRate(amountUnits: Int64, listAmountUnits: Int64?) -> String? {
        guard let list = listAmountUnits, list > 0 else { return nil }
        let rate = (Int128(amountUnits) * 20_000 + Int128(list)) / (Int128(list) * 2)
        return Rating.format(rate * 10_000)
    }

    /// Period checks: the end is not before the start, and usage is reported after it happened (a few minutes of clock
    /// skew allowed), so that a record cannot sit unsettled in the future.
    public static let futureSkewMicros: Int64 = 5 * 60 * 1_000_000
    public static func checkPeriod(startMicros: Int64, endMicros: Int64, nowMicros: Int64) throws(CofferError) {
        guard endMicros >= startMicros else { throw .invalidField("periodEnd", "is before periodStart") }
        guard endMicros <= nowMicros + futureSkewMicros else {
            throw .invalidField("periodEnd", "is in the future; report usage after it happened")
        }
    }
}

/// What the records of one cycle of one component add up to (an L3 line).
public struct UsageLineTotal: Sendable, Equatable {
    public var component: String
    public var unit: String
    public var quantityUnits: Int128 = 0
    public var amountUnits: Int128 = 0
    /// The list price of the line (刊例价), or nil when any record of it came without one ("-": a contract price).
    public var listAmountUnits: Int128? = 0
    public var recordCount: Int = 0
    public init(component: String, unit: String) { (self.component, self.unit) = (component, unit) }

    public mutating func add(quantityUnits q: Int64, amountUnits a: Int64, listAmountUnits l: Int64?) throws(CofferError) {
        quantityUnits = try Rating.sum([quantityUnits, Int128(q)])
        amountUnits = try Rating.sum([amountUnits, Int128(a)])
        if let current = listAmountUnits, let l { listAmountUnits = try Rating.sum([current, Int128(l)]) } else { listAmountUnits = nil }
        recordCount += 1
    }
}

/// B2, M2: a settled cycle of one resource — its exact total, the one deduction (half-up to fen) and the remainder that
/// joins the month's precision difference.
public struct CycleSettlement: Sendable, Equatable {
    public var lines: [UsageLineTotal]
    public var totalUnits: Int128
    public var deductionMinor: Int64
    /// deduction − exact total, in 1e-8 units: positive when the platform charged more.
    public var remainderUnits: Int64

    public init(lines: [UsageLineTotal]) throws(CofferError) {
        self.lines = lines.sorted { ($0.component, $0.unit) < ($1.component, $1.unit) }
        totalUnits = try Rating.sum(lines.map(\.amountUnits))
        // Lines are stored as BIGINTs of 1e-8: a list total may exceed the rated one, so both are held to the limit.
        guard totalUnits <= UsageRules.maxAmountUnits,
              lines.allSatisfy({ ($0.listAmountUnits ?? 0) <= UsageRules.maxAmountUnits }) else { throw .arithmeticOverflow }
        let (deduction, remainder) = try Rating.settle(totalUnits: totalUnits)
        (deductionMinor, remainderUnits) = (deduction, Int64(remainder))
        // Invariant: the deduction is the exact total plus the remainder, and the remainder is under half a fen.
        assert(Int128(deductionMinor) * Rating.unitsPerMinor - Int128(remainderUnits) == totalUnits)
        assert(remainderUnits.magnitude <= UInt64(Rating.unitsPerMinor / 2))
    }
}

/// B4: which month a bill line belongs to. Deduction period by default (the month it was deducted); an account may switch
/// once to billing period (the month the usage happened), effective from the month of the switch. A line deducted before
/// the switch month stays in its deduction month; from then on a line goes to its billing month, but never to a month
/// before the switch (those bills were already shown by deduction period) — so every line is in exactly one month.
public enum StatisticPeriod: String, Sendable, Codable, CaseIterable {
    case deduction, billing

    /// Months are "YYYY-MM" strings, which order as text.
    public static func month(deductionMonth: String, billingMonth: String, switchedFrom switchMonth: String?) -> String {
        guard let switchMonth, deductionMonth >= switchMonth else { return deductionMonth }
        return max(billingMonth, switchMonth)
    }

    /// "YYYY-MM" with a real month, or nil.
    public static func parseMonth(_ text: String) -> (year: Int, month: Int)? {
        let bytes = Array(text.utf8)
        guard bytes.count == 7, bytes[4] == UInt8(ascii: "-"),
              bytes.enumerated().allSatisfy({ $0.offset == 4 || (48...57).contains($0.element) }),
              let year = Int(text.prefix(4)), let month = Int(text.suffix(2)), (1...12).contains(month), year >= 1970 else { return nil }
        return (year, month)
    }
}
