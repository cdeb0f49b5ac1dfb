import CofferCore
import Foundation

/// B2: how often a postpaid product settles.
public enum SettlementCycle: String, Codable, Sendable, CaseIterable {
    case hourly, daily, monthly
}

/// One settlement cycle, [start, end) in UTC microseconds.
public struct CycleWindow: Codable, Sendable, Equatable, Hashable {
    public var startMicros: Int64
    public var endMicros: Int64
    public init(startMicros: Int64, endMicros: Int64) {
        (self.startMicros, self.endMicros) = (startMicros, endMicros)
    }
}

/// Cycle boundaries in the account's time zone (B2): local hours, days and months, so that a day of 23 or 25 hours
/// (a DST change), 29 February and every month end are one cycle each, with no gap or overlap between neighbours.
/// Pure: the instant is an input (the Clock port's reading), the zone an IANA name.
public enum SettlementCalendar {
    /// A cycle is the longest run of instants whose local label is the same: (year, month) for monthly, (year, month,
    /// day) for daily, (…, hour) for hourly. So an hour that a DST change shortens (Lord Howe's half-hour step) or repeats
    /// (a fall-back hour is one cycle of 90 or 120 minutes) is still one cycle, and neighbours always touch.
    public static func window(containing micros: Int64, cycle: SettlementCycle, timeZone: String) throws(CofferError) -> CycleWindow {
        guard let zone = TimeZone(identifier: timeZone) else { throw .invalidField("timeZone", "is not an IANA time zone such as Asia/Shanghai") }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = zone
        let components: Set<Calendar.Component> = switch cycle {
        case .hourly: [.year, .month, .day, .hour]
        case .daily: [.year, .month, .day]
        case .monthly: [.year, .month]
        }
        // Whole seconds: every boundary is one, and integer seconds convert to Date exactly.
        func label(_ second: Int64) -> DateComponents {
            calendar.dateComponents(components, from: Date(timeIntervalSince1970: TimeInterval(second)))
        }
        let t = micros >= 0 ? micros / 1_000_000 : (micros - 999_999) / 1_000_000
        let own = label(t)
        // Foundation's interval is the first guess; the label decides where the cycle really starts and ends.
        let component: Calendar.Component = cycle == .hourly ? .hour : cycle == .daily ? .day : .month
        let guess = calendar.dateInterval(of: component, for: Date(timeIntervalSince1970: TimeInterval(t)))
        let step: Int64 = 1_800
        var end = guess.map { Int64($0.end.timeIntervalSince1970.rounded()) } ?? t + step
        if end <= t || label(end - 1) != own {
            end = firstSecond(from: t + 1, to: max(end, t + 1)) { label($0) != own }
        } else if label(end) == own {
            var hi = end + step
            while label(hi) == own { hi += step }
            end = firstSecond(from: end + 1, to: hi) { label($0) != own }
        }
        var start = guess.map { Int64($0.start.timeIntervalSince1970.rounded()) } ?? t - step
        if start > t || label(start) != own {
            start = firstSecond(from: min(start, t), to: t) { label($0) == own }
        } else if label(start - 1) == own {
            var lo = start - step
            while label(lo) == own { lo -= step }
            start = firstSecond(from: lo, to: start) { label($0) == own }
        }
        return CycleWindow(startMicros: start * 1_000_000, endMicros: end * 1_000_000)
    }

    /// The smallest second in [lo, hi] where `holds` (false before it, true from it on); hi when none earlier.
    private static func firstSecond(from lo: Int64, to hi: Int64, _ holds: (Int64) -> Bool) -> Int64 {
        var (lo, hi) = (lo, hi)
        while lo < hi {
            let mid = lo + (hi - lo) / 2
            if holds(mid) { hi = mid } else { lo = mid + 1 }
        }
        return lo
    }

    /// The cycle right after `window`.
    public static func next(after window: CycleWindow, cycle: SettlementCycle, timeZone: String) throws(CofferError) -> CycleWindow {
        try Self.window(containing: window.endMicros, cycle: cycle, timeZone: timeZone)
    }
}
