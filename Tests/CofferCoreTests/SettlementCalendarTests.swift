import CofferCore
import CofferServices
import Foundation
import Testing

/// B2 cycles in the account's time zone: every instant in exactly one cycle, neighbours touching, month ends, 29 February
/// and DST days (23 and 25 hours; Lord Howe's half-hour change) included.
@Suite("B2 settlement cycles in the account's time zone")
struct SettlementCalendarTests {
    /// "2026-03-08T12:00:00Z" in microseconds.
    static func micros(_ text: String) throws -> Int64 {
        let n = text.split(whereSeparator: { "-T:Z".contains($0) }).compactMap { Int64($0) }
        try #require(n.count == 6)
        return ((RFC3339.days(fromCivil: n[0], n[1], n[2]) * 24 + n[3]) * 60 + n[4]) * 60_000_000 + n[5] * 1_000_000
    }
    static let hour: Int64 = 3_600_000_000

    @Test("B2 cycles of a year follow each other with no gap or overlap, in every zone and cycle",
          arguments: ["Asia/Shanghai", "America/New_York", "Europe/Berlin", "Asia/Kolkata", "Australia/Lord_Howe", "UTC"],
          SettlementCycle.allCases)
    func contiguous(zone: String, cycle: SettlementCycle) throws {
        var window = try SettlementCalendar.window(containing: try Self.micros("2027-12-31T12:00:00Z"), cycle: cycle, timeZone: zone)
        let end = try Self.micros("2029-01-02T00:00:00Z")
        var count = 0
        while window.startMicros < end {
            #expect(window.endMicros > window.startMicros)
            let next = try SettlementCalendar.next(after: window, cycle: cycle, timeZone: zone)
            #expect(next.startMicros == window.endMicros, "gap or overlap after \(window)")
            // The last microsecond of a cycle belongs to it; the first of the next does not.
            #expect(try SettlementCalendar.window(containing: window.endMicros - 1, cycle: cycle, timeZone: zone) == window)
            window = next
            count += 1
        }
        #expect(count > 0)
    }

    @Test("B2 a day of a DST change has 23 or 25 hours in New York; every day in Shanghai has 24")
    func dstDays() throws {
        let spring = try SettlementCalendar.window(containing: try Self.micros("2026-03-08T12:00:00Z"), cycle: .daily, timeZone: "America/New_York")
        let fall = try SettlementCalendar.window(containing: try Self.micros("2026-11-01T12:00:00Z"), cycle: .daily, timeZone: "America/New_York")
        #expect(spring.endMicros - spring.startMicros == 23 * Self.hour)
        #expect(fall.endMicros - fall.startMicros == 25 * Self.hour)
        #expect(spring.startMicros == (try Self.micros("2026-03-08T05:00:00Z")))
        let shanghai = try SettlementCalendar.window(containing: try Self.micros("2026-03-08T12:00:00Z"), cycle: .daily, timeZone: "Asia/Shanghai")
        #expect(shanghai == CycleWindow(startMicros: try Self.micros("2026-03-07T16:00:00Z"), endMicros: try Self.micros("2026-03-08T16:00:00Z")))
        // Lord Howe steps forward half an hour (02:00 → 02:30 on 4 October 2026): its local hour 02 lasts 30 minutes.
        let short = try SettlementCalendar.window(containing: try Self.micros("2026-10-03T15:45:00Z"), cycle: .hourly, timeZone: "Australia/Lord_Howe")
        #expect(short == CycleWindow(startMicros: try Self.micros("2026-10-03T15:30:00Z"), endMicros: try Self.micros("2026-10-03T16:00:00Z")))
    }

    @Test("B2 months end where the account's calendar says: 29 February 2028, 31 December in Shanghai")
    func months() throws {
        let feb = try SettlementCalendar.window(containing: try Self.micros("2028-02-29T15:59:59Z"), cycle: .monthly, timeZone: "Asia/Shanghai")
        #expect(feb == CycleWindow(startMicros: try Self.micros("2028-01-31T16:00:00Z"), endMicros: try Self.micros("2028-02-29T16:00:00Z")))
        // 2028-02-29T16:00Z is already 1 March in Shanghai.
        let march = try SettlementCalendar.window(containing: try Self.micros("2028-02-29T16:00:00Z"), cycle: .monthly, timeZone: "Asia/Shanghai")
        #expect(march.startMicros == feb.endMicros)
        let leapDay = try SettlementCalendar.window(containing: try Self.micros("2028-02-29T12:00:00Z"), cycle: .daily, timeZone: "UTC")
        #expect(leapDay.endMicros - leapDay.startMicros == 24 * Self.hour)
    }

    @Test("B2 hourly cycles follow local hours: a half-hour zone starts them at :30 UTC")
    func localHours() throws {
        let h = try SettlementCalendar.window(containing: try Self.micros("2026-12-01T04:40:00Z"), cycle: .hourly, timeZone: "Asia/Kolkata")
        #expect(h == CycleWindow(startMicros: try Self.micros("2026-12-01T04:30:00Z"), endMicros: try Self.micros("2026-12-01T05:30:00Z")))
    }

    @Test("B2 an unknown time zone is refused with its field")
    func unknownZone() {
        #expect(throws: CofferError.invalidField("timeZone", "is not an IANA time zone such as Asia/Shanghai")) {
            try SettlementCalendar.window(containing: 0, cycle: .daily, timeZone: "Mars/Olympus")
        }
    }
}
