import CofferCore
import CofferServices
import Foundation
import HTTPTypes
import Hummingbird

/// W11: 收支明细 with filters, cursor pagination and CSV export (UTF-8 with BOM).
struct TransactionRoutes: Sendable {
    let routes: Routes

    static func query(accountId: String, _ params: [String: String]) throws(CofferError) -> TransactionQuery {
        var q = TransactionQuery(accountId: accountId)
        if let types = params["type"] {
            q.types = try parseEnumList(TransactionType.self, types, field: "type")
        }
        let window = try Self.window(params)
        (q.fromMicros, q.toMicros) = (window.from, window.to)
        if let limit = window.limit { q.limit = limit }
        if let v = params["minAmount"] { q.minAmountMinor = try MoneyFormat.parse(v, field: "minAmount") }
        if let v = params["maxAmount"] { q.maxAmountMinor = try MoneyFormat.parse(v, field: "maxAmount") }
        if let v = params["cursor"] {
            guard v.hasPrefix("txn_"), v.count <= 40, v.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else {
                throw .invalidField("cursor", "is not a cursor this API returned")
            }
            q.beforeId = v
        }
        return q
    }

    /// `from`, `to` (from before to) and `limit` of a list, as every list route reads them.
    static func window(_ params: [String: String]) throws(CofferError) -> (from: Int64?, to: Int64?, limit: Int?) {
        let from = try params["from"].map { v throws(CofferError) in try Time.parse(v, field: "from") }
        let to = try params["to"].map { v throws(CofferError) in try Time.parse(v, field: "to") }
        if let from, let to, from >= to { throw .invalidField("from", "must be before 'to'") }
        var limit: Int?
        if let v = params["limit"] {
            guard let n = Int(v), (1...Limits.maxPageSize).contains(n) else {
                throw .invalidField("limit", "must be a whole number from 1 to \(Limits.maxPageSize)")
            }
            limit = n
        }
        return (from, to, limit)
    }

    @Sendable func list(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let params = request.queryDictionary
        let q = try Self.query(accountId: accountId, params)
        if params["format"] == "csv" { return try await Exports.transactions(routes.engine.store, q) }
        if let format = params["format"], format != "json" { throw CofferError.invalidField("format", "must be json or csv") }
        let page = try await routes.engine.store.transactions(q)
        struct Page: Encodable { let items: [TransactionView]; let nextCursor: String? }
        return try JSON.response(Page(items: page.map(TransactionView.init),
                                      nextCursor: page.count == q.limit ? page.last?.id : nil))
    }
}

/// CSV downloads: UTF-8 with BOM so that spreadsheet programs read Chinese right; the API and the console send the same files.
public enum Exports {
    public static let csvColumns = ["id", "time", "type", "amount", "cash", "gift", "frozen", "balance_after", "available_after",
                                    "related_type", "related_id", "channel_trade_no", "memo"]

    /// The API's file keeps the stable column names and type codes; the console's speaks its page's language (`header`,
    /// `typeName`).
    public static func transactions(_ store: any CofferStore, _ query: TransactionQuery, header: [String] = csvColumns,
                                    typeName: @Sendable (String) -> String = { $0 }) async throws -> Response {
        precondition(header.count == csvColumns.count)
        var q = query
        q.limit = 1_000
        var out = "\u{FEFF}" + header.map { csvField($0, text: true) }.joined(separator: ",") + "\r\n"
        var rows = 0
        while rows < Limits.maxCSVRows {
            let page = try await store.transactions(q)
            for t in page {
                let v = TransactionView(t)
                let fields = [v.id, v.time, typeName(v.type), v.amount, v.cash, v.gift, v.frozen, v.balanceAfter, v.availableAfter,
                              v.relatedType ?? "", v.relatedId ?? "", v.channelTradeNo ?? "", v.memo ?? ""]
                out += fields.enumerated().map { csvField($0.element, text: $0.offset >= 9) }.joined(separator: ",") + "\r\n"
            }
            rows += page.count
            guard page.count == q.limit, let last = page.last else { break }
            q.beforeId = last.id
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/csv; charset=utf-8"
        headers[.contentDisposition] = "attachment; filename=\"transactions-\(query.accountId).csv\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: out)))
    }

    /// Quotes where needed, and defuses spreadsheet formulas in free text (CSV injection).
    static func csvField(_ value: String, text: Bool) -> String {
        var v = value
        if text, let first = v.first, "=+-@\t\r".contains(first) { v = "'" + v }
        if v.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            return "\"" + v.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return v
    }

    /// A remittance receipt, shown inline and never run: no script may execute inside a PDF or image, nothing is cached.
    public static func receipt(_ r: RemittanceRecord, bytes: [UInt8]) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = r.receiptType
        headers[HTTPField.Name("X-Content-Type-Options")!] = "nosniff"
        headers[.contentDisposition] = "inline; filename=\"receipt-\(r.id)\""
        headers[.cacheControl] = "private, no-store"
        headers[HTTPField.Name("Content-Security-Policy")!] = "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; sandbox"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: bytes)))
    }

    /// For printing recharge codes; the caller audits the export.
    public static let codeColumns = ["code", "amount", "credit", "valid_until", "state", "redeemed_by", "redeemed_at"]

    /// A batch's codes for printing. The API's file has the stable names; the desk passes its page's language: `header`
    /// for the columns, `codeName` for a cell's code (`cash`, `gift`, `unused`, `redeemed`, `voided`).
    public static func codes(_ batch: CodeBatchRecord, _ codes: [RechargeCodeRecord], header: [String] = codeColumns,
                             codeName: (String) -> String = { $0 }) -> Response {
        precondition(header.count == codeColumns.count)
        var out = "\u{FEFF}" + header.map { csvField($0, text: false) }.joined(separator: ",") + "\r\n"
        for c in codes {
            out += [c.code, MoneyFormat.format(c.amountMinor), codeName(c.bucket.rawValue), RFC3339.format(micros: c.validUntilMicros),
                    codeName(c.state.rawValue), c.redeemedBy ?? "", c.redeemedAtMicros.map { RFC3339.format(micros: $0) } ?? ""]
                .map { csvField($0, text: false) }.joined(separator: ",") + "\r\n"
        }
        var headers = HTTPFields()
        headers[.contentType] = "text/csv; charset=utf-8"
        headers[.contentDisposition] = "attachment; filename=\"codes-\(batch.id).csv\""
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: out)))
    }
}
