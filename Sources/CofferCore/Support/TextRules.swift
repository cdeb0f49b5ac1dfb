/// The rules of free text in requests, written so that the OpenAPI document can state them exactly (JSON Schema counts
/// Unicode code points and matches patterns character by character): lengths in code points, "blank" as Unicode
/// White_Space listed scalar by scalar (the document's `Text…` patterns name the same list), e-mail addresses by one
/// pattern. Text is trimmed of that white space after it is checked.
public enum TextRules {
    /// Unicode White_Space, as the document's `[^…]` class lists it.
    public static let whitespace: Set<Unicode.Scalar> = {
        var set: Set<Unicode.Scalar> = ["\u{20}", "\u{85}", "\u{A0}", "\u{1680}", "\u{2028}", "\u{2029}", "\u{202F}", "\u{205F}", "\u{3000}"]
        for v in 0x09...0x0D { set.insert(Unicode.Scalar(UInt8(v))) }
        for v in 0x2000...0x200A { set.insert(Unicode.Scalar(UInt32(v))!) }
        return set
    }()

    public static func length(_ text: String) -> Int { text.unicodeScalars.count }

    public static func trimmed(_ text: String) -> String {
        let scalars = Array(text.unicodeScalars)
        guard let first = scalars.firstIndex(where: { !whitespace.contains($0) }),
              let last = scalars.lastIndex(where: { !whitespace.contains($0) }) else { return "" }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[first...last])
        return String(out)
    }

    /// 1…max code points with a character that is not white space; returned trimmed.
    public static func required(_ text: String, field: String, max: Int) throws(CofferError) -> String {
        let t = trimmed(text)
        guard length(text) <= max, !t.isEmpty else {
            throw .invalidField(field, "is required: 1–\(max) characters, not only spaces")
        }
        return t
    }

    /// At most max code points; nil when absent or blank, else trimmed.
    public static func optional(_ text: String?, field: String, max: Int) throws(CofferError) -> String? {
        guard let text else { return nil }
        guard length(text) <= max else { throw .invalidField(field, "must be at most \(max) characters") }
        let t = trimmed(text)
        return t.isEmpty ? nil : t
    }

    /// `^[^@\x00-\x20\x7f]+@[^@\x00-\x20\x7f]+\.[^@\x00-\x20\x7f]+$`, at most 254 code points; returned in lower case.
    public static func email(_ text: String, field: String = "email") throws(CofferError) -> String {
        let scalars = Array(text.unicodeScalars)
        let invalid = CofferError.invalidField(field, "must be an email address like name@example.com")
        guard scalars.count <= 254, !scalars.contains(where: { $0.value <= 0x20 || $0.value == 0x7F }),
              scalars.filter({ $0 == "@" }).count == 1, let at = scalars.firstIndex(of: "@"), at > 0 else { throw invalid }
        let domain = scalars[(at + 1)...]
        guard domain.indices.contains(where: { domain[$0] == "." && $0 > domain.startIndex && $0 < domain.endIndex - 1 }) else {
            throw invalid
        }
        return text.lowercased()
    }
}
