import CofferCore
import CofferServices

/// The overview's 30-day chart of recharges and spending, drawn on the server as SVG (no script, no chart library).
enum Chart {
    static let incoming: Set<TransactionType> = [.recharge, .remittance, .codeRedemption]
    static let spending: Set<TransactionType> = [.deduction]
    /// A bound on the rows read for one chart (TIGER_STYLE): beyond it the chart shows what it read.
    static let maxRows = 20_000

    static func thirtyDays(store: any CofferStore, accountId: String, timeZone: String, nowMicros: Int64,
                           labels: (String, String), title: String) async throws -> String {
        let today = Display.parseDay(Display.day(nowMicros, timeZone: timeZone), timeZone: timeZone) ?? nowMicros
        let start = today - 29 * 86_400_000_000
        var days: [String: (Int64, Int64)] = [:]
        var q = TransactionQuery(accountId: accountId)
        q.types = Array(incoming.union(spending))
        q.fromMicros = start
        q.limit = 500
        var read = 0
        while read < maxRows {
            let page = try await store.transactions(q)
            for t in page {
                let day = Display.day(t.createdAtMicros, timeZone: timeZone)
                var (inMinor, outMinor) = days[day] ?? (0, 0)
                if incoming.contains(t.movement.type) { inMinor = try Checked.add(inMinor, t.movement.amountMinor) }
                if spending.contains(t.movement.type) { outMinor = try Checked.add(outMinor, -t.movement.amountMinor) }
                days[day] = (inMinor, outMinor)
            }
            read += page.count
            guard page.count == q.limit, let last = page.last else { break }
            q.beforeId = last.id
        }
        let series = (0..<30).map { i -> (String, Int64, Int64) in
            // Noon of each day, so that a daylight-saving change never lands two days on one date.
            let day = Display.day(start + Int64(i) * 86_400_000_000 + 43_200_000_000, timeZone: timeZone)
            let v = days[day] ?? (0, 0)
            return (day, max(0, v.0), max(0, v.1))
        }
        return svg(series, labels: labels, title: title)
    }

    static func svg(_ series: [(String, Int64, Int64)], labels: (String, String), title: String) -> String {
        let width = 720, height = 220, left = 70, bottom = 30, top = 24
        let plotHeight = height - bottom - top
        let maxValue = niceCeiling(series.map { max($0.1, $0.2) }.max() ?? 0)
        let slot = Double(width - left - 10) / Double(series.count)
        func y(_ v: Int64) -> Double { Double(top) + Double(plotHeight) * (1 - Double(v) / Double(maxValue)) }
        var out = """
            <svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 \(width) \(height)" role="img" aria-labelledby="chart-title" class="chart">\
            <title id="chart-title">\(escape(title))</title>
            """
        for step in 0...4 {
            let v = maxValue * Int64(step) / 4
            let yy = y(v)
            out += "<line x1=\"\(left)\" x2=\"\(width - 10)\" y1=\"\(f(yy))\" y2=\"\(f(yy))\" class=\"grid\"/>"
            out += "<text x=\"\(left - 6)\" y=\"\(f(yy + 4))\" text-anchor=\"end\" class=\"axis\">\(escape(Display.money(v)))</text>"
        }
        for (i, (day, inMinor, outMinor)) in series.enumerated() {
            let x = Double(left) + Double(i) * slot
            let bar = max(1, slot / 2 - 1)
            for (j, (value, cls, label)) in [(inMinor, "in", labels.0), (outMinor, "out", labels.1)].enumerated() where value > 0 {
                let top = y(value)
                out += "<rect x=\"\(f(x + Double(j) * bar + 1))\" y=\"\(f(top))\" width=\"\(f(bar))\" height=\"\(f(Double(top.distance(to: Double(height - bottom)))))\" class=\"\(cls)\">"
                out += "<title>\(escape(day)) \(escape(label)) \(escape(Display.money(value)))</title></rect>"
            }
            if i % 5 == 0 || i == series.count - 1 {
                out += "<text x=\"\(f(x + slot / 2))\" y=\"\(height - 10)\" text-anchor=\"middle\" class=\"axis\">\(escape(String(day.suffix(5))))</text>"
            }
        }
        out += "<rect x=\"\(left)\" y=\"4\" width=\"10\" height=\"10\" class=\"in\"/><text x=\"\(left + 14)\" y=\"13\" class=\"axis\">\(escape(labels.0))</text>"
        out += "<rect x=\"\(left + 120)\" y=\"4\" width=\"10\" height=\"10\" class=\"out\"/><text x=\"\(left + 134)\" y=\"13\" class=\"axis\">\(escape(labels.1))</text>"
        return out + "</svg>"
    }

    /// The smallest 1, 2 or 5 × 10ⁿ yuan at or above the largest bar (at least ¥100), so the grid lines read well.
    static func niceCeiling(_ minor: Int64) -> Int64 {
        var unit: Int64 = 10_000
        while true {
            for step: Int64 in [1, 2, 5] where unit * step >= minor { return unit * step }
            guard unit < Int64.max / 100 else { return minor }
            unit *= 10
        }
    }

    static func f(_ d: Double) -> String { String(Double(Int((d * 10).rounded())) / 10) }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
