import CofferCore
import CofferHTTP
import Testing

@Suite("Stable error codes")
struct ErrorCodeTests {
    /// The `ErrorCode` schema's enum in the OpenAPI document, in document order.
    static func documentedCodes() -> [String] {
        let text = OpenAPIDocument.text
        guard let problem = text.range(of: "    ErrorCode:"),
              let start = text.range(of: "enum: [", range: problem.upperBound..<text.endIndex),
              let end = text.range(of: "]", range: start.upperBound..<text.endIndex) else { return [] }
        return text[start.upperBound..<end.lowerBound]
            .split(whereSeparator: { $0 == "," || $0.isWhitespace }).map(String.init)
    }

    @Test("The OpenAPI document lists exactly the codes of ErrorCode")
    func openAPIListsEveryCode() {
        let documented = Self.documentedCodes()
        #expect(documented.count == Set(documented).count, "a code is listed twice")
        let declared = Set(ErrorCode.allCases.map(\.rawValue))
        #expect(declared.subtracting(documented).sorted() == [], "missing from the OpenAPI document")
        #expect(Set(documented).subtracting(declared).sorted() == [], "documented but not in ErrorCode")
    }

    @Test("Codes are snake_case words, with no spaces")
    func codesAreSnakeCase() {
        for code in ErrorCode.allCases {
            #expect(code.rawValue.allSatisfy { $0 == "_" || ($0.isASCII && ($0.isLowercase || $0.isNumber)) }, "\(code)")
            #expect(!code.rawValue.hasPrefix("_") && !code.rawValue.hasSuffix("_") && !code.rawValue.contains("__"))
        }
    }

    @Test("Every not-found code answers 404 and says what it looked for")
    func notFoundCodes() {
        for code in ErrorCode.allCases where code.rawValue.hasSuffix("_not_found") {
            let error = CofferError.notFound(code, "42")
            #expect(error.kind == .notFound)
            #expect(error.detail.hasPrefix("No ") && error.detail.hasSuffix(" 42 exists for this caller.")
                    && !error.detail.contains("_"), "\(error.detail)")
        }
        #expect(CofferError.notFound(.statementLineNotFound, "sl_1").detail == "No statement line sl_1 exists for this caller.")
    }
}
