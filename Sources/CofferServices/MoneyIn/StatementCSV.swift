import CofferCore
import SwiftCSV

/// The bank statement file an operator uploads (T2), parsed with SwiftCSV (RFC 4180 quoting). Columns are found by the
/// header row, so their order does not matter; extra columns are ignored:
///
///     bank_serial,booked_on,amount,currency,payer_name,payer_account,payee_account,memo
///     2026112300001,2026-11-23,80000.00,CNY,北京示例科技有限公司,110987654321,1109123456106010000012345,云服务费
public enum StatementCSV {
    public static let columns = ["bank_serial", "booked_on", "amount", "currency", "payer_name", "payer_account",
                                 "payee_account", "memo"]

    /// A file to fill in (the desk offers it): the header and one example line.
    public static let template = "\u{FEFF}" + columns.joined(separator: ",") + "\r\n"
        + "2026112300001,2026-11-23,80000.00,CNY,北京示例科技有限公司,110987654321,1109123456106010000012345,云服务费\r\n"

    public static func parse(_ text: String, maxLines: Int) throws(CofferError) -> [StatementLineInput] {
        var body = text
        if body.hasPrefix("\u{FEFF}") { body.removeFirst() }
        let csv: CSV<Enumerated>
        do { csv = try CSV<Enumerated>(string: body, delimiter: .comma, loadColumns: false) } catch {
            throw CofferError(.statementCsvInvalid, "The statement file is not valid CSV: \(error).")
        }
        let header = csv.header.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var position: [String: Int] = [:]
        for name in columns {
            guard let i = header.firstIndex(of: name) else {
                throw CofferError(.statementCsvInvalid, "The header row must name the columns \(columns.joined(separator: ",")); \(name) is missing.")
            }
            position[name] = i
        }
        let rows = csv.rows.filter { !$0.allSatisfy { $0.trimmingCharacters(in: .whitespaces).isEmpty } }
        guard rows.count <= maxLines else {
            throw CofferError(.statementTooLong, "At most \(maxLines) lines per file; split the statement.")
        }
        return rows.map { row in
            func field(_ name: String) -> String {
                let i = position[name]!
                return i < row.count ? row[i].trimmingCharacters(in: .whitespaces) : ""
            }
            return StatementLineInput(bankSerial: field("bank_serial"), bookedOn: field("booked_on"), amountText: field("amount"),
                                      currency: field("currency").uppercased(), payerName: field("payer_name"),
                                      payerAccount: field("payer_account"), payeeAccount: field("payee_account"), memo: field("memo"))
        }
    }
}
