import CofferCore
import CofferServices
import Foundation

/// The console's two languages. Chinese is the default: Coffer's customers are customers of Chinese providers.
public enum Language: String, CaseIterable, Sendable {
    case zh, en

    /// The language a browser asks for, by the q-values of Accept-Language; Chinese when it asks for neither.
    static func negotiate(acceptLanguage: String?) -> Language {
        guard let header = acceptLanguage else { return .zh }
        var best: (Language, Double)?
        for part in header.split(separator: ",").prefix(20) {
            let pieces = part.split(separator: ";")
            let tag = pieces[0].trimmingCharacters(in: .whitespaces).lowercased()
            var q = 1.0
            for p in pieces.dropFirst() {
                let kv = p.trimmingCharacters(in: .whitespaces)
                if kv.hasPrefix("q="), let v = Double(kv.dropFirst(2)) { q = v }
            }
            let lang: Language? = tag.hasPrefix("zh") ? .zh : tag.hasPrefix("en") ? .en : nil
            if let lang, q > 0, q > (best?.1 ?? -1) { best = (lang, q) }
        }
        return best?.0 ?? .zh
    }

    var htmlTag: String { self == .zh ? "zh-CN" : "en" }
    var other: Language { self == .zh ? .en : .zh }
}

/// Message catalogs: every label the console shows comes from Resources/locales/<lang>.json.
public struct Catalogs: Sendable {
    let messages: [Language: [String: String]]

    static func load() throws -> Catalogs {
        var messages: [Language: [String: String]] = [:]
        for lang in Language.allCases {
            guard let url = Bundle.module.url(forResource: lang.rawValue, withExtension: "json", subdirectory: "locales") else {
                throw CofferError(.catalogMissing, "The \(lang.rawValue) message catalog is not in the bundle.")
            }
            messages[lang] = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: url))
        }
        return Catalogs(messages: messages)
    }

    func table(_ lang: Language) -> [String: String] { messages[lang] ?? [:] }

    /// A site message in a language: from the catalogs when it came from an event (`message_<kind>_title` / `_body` with
    /// the event's parameters), else the text it was written with.
    func messageText(_ m: SiteMessageRecord, _ lang: Language) -> (title: String, body: String) {
        guard var parameters = m.parameters, table(lang)["message_\(m.kind)_title"] != nil else { return (m.title, m.body) }
        // Amounts are stored plain (1234.50) and read grouped, as on every page (1,234.50); the text carries the ¥.
        for key in Self.moneyParameters {
            if let plain = parameters[key], let minor = try? MoneyFormat.parse(plain) { parameters[key] = Display.grouped(minor) }
        }
        return (text(lang, "message_\(m.kind)_title", parameters), text(lang, "message_\(m.kind)_body", parameters))
    }

    static let moneyParameters = ["amount", "balance", "shortfall"]

    /// A message with `{name}` placeholders filled; the key itself when missing, so a gap shows instead of hiding.
    func text(_ lang: Language, _ key: String, _ args: [String: String] = [:]) -> String {
        var s = messages[lang]?[key] ?? key
        for (k, v) in args { s = s.replacingOccurrences(of: "{\(k)}", with: v) }
        return s
    }
}

/// Money and time as a person reads them.
enum Display {
    /// ¥1,234.50 (grouped by thousands, exact: from integer minor units, never through a floating point number).
    /// A long account number as a person reads it out: groups of four.
    static func groupedInFours(_ digits: String) -> String {
        var out = ""
        for (i, c) in digits.enumerated() {
            if i > 0 && i % 4 == 0 { out.append(" ") }
            out.append(c)
        }
        return out
    }

    static func money(_ minor: Int64, currency: String = "CNY") -> String {
        let symbol = ["CNY": "¥", "USD": "US$", "HKD": "HK$"][currency] ?? currency + " "
        let text = grouped(minor)
        return text.hasPrefix("-") ? "-" + symbol + text.dropFirst() : symbol + text
    }

    /// 1,234.50 without a currency symbol.
    static func grouped(_ minor: Int64) -> String {
        let plain = MoneyFormat.format(minor)
        let negative = plain.hasPrefix("-")
        let digits = negative ? String(plain.dropFirst()) : plain
        let parts = digits.split(separator: ".")
        var whole = String(parts[0])
        var groups = ""
        while whole.count > 3 {
            groups = "," + whole.suffix(3) + groups
            whole = String(whole.dropLast(3))
        }
        return (negative ? "-" : "") + whole + groups + "." + parts[1]
    }

    static func time(_ micros: Int64, timeZone: String, withSeconds: Bool = false) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "Asia/Shanghai")
        f.dateFormat = withSeconds ? "yyyy-MM-dd HH:mm:ss" : "yyyy-MM-dd HH:mm"
        return f.string(from: Date(timeIntervalSince1970: Double(micros / 1_000) / 1_000))
    }

    static func day(_ micros: Int64, timeZone: String) -> String {
        String(time(micros, timeZone: timeZone).prefix(10))
    }

    /// Microseconds at local midnight of a yyyy-MM-dd date in the time zone.
    static func parseDay(_ text: String, timeZone: String) -> Int64? {
        guard text.count == 10 else { return nil }
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "Asia/Shanghai")
        f.dateFormat = "yyyy-MM-dd"
        guard let d = f.date(from: text) else { return nil }
        return Int64(d.timeIntervalSince1970) * 1_000_000
    }
}

/// E-mail notices in the account's language, from the console's catalogs.
public struct CatalogNoticeRenderer: NoticeRenderer {
    let catalogs: Catalogs
    public init() throws { catalogs = try Catalogs.load() }

    public func render(_ message: SiteMessageRecord, language: AccountLanguage) -> (subject: String, body: String) {
        let text = catalogs.messageText(message, Language(rawValue: language.rawValue) ?? .zh)
        return (text.title, text.body)
    }
}
