import CofferCore
import Crypto
import Foundation
import Logging

public struct BankTransferSettings: Sendable {
    /// T1: the platform's collection account, shown on the recharge page. The 15-digit account number is also the prefix
    /// of every dedicated account (T2).
    public var payeeName = "示例云计算有限公司"
    public var bankName = "招商银行北京分行营业部"
    public var collectionAccount = "110912345610601"
    /// T1: what the customer writes in the transfer memo; `{accountId}` is replaced.
    public var memoFormat = "云服务费 {accountId}"
    /// T2: a memo holding one of these is held for manual handling (*default* 保证金, a deposit is not a top-up).
    public var blockedKeywords = ["保证金"]
    /// Where receipt files are kept (created with owner-only permissions).
    public var receiptDirectory = "./coffer-data/receipts"
    public var maxReceiptBytes = 5 * 1_024 * 1_024
    public var maxStatementLines = 5_000
    public init() {}
}

/// One statement line as the bank reports it (from the CSV file or the bank's push).
public struct StatementLineInput: Sendable, Equatable {
    public var bankSerial: String
    public var bookedOn: String
    public var amountText: String
    public var currency: String
    public var payerName: String
    public var payerAccount: String
    public var payeeAccount: String
    public var memo: String
    public init(bankSerial: String, bookedOn: String, amountText: String, currency: String, payerName: String,
                payerAccount: String, payeeAccount: String, memo: String) {
        (self.bankSerial, self.bookedOn, self.amountText, self.currency) = (bankSerial, bookedOn, amountText, currency)
        (self.payerName, self.payerAccount, self.payeeAccount, self.memo) = (payerName, payerAccount, payeeAccount, memo)
    }
}

/// What happened to one imported line.
public struct StatementLineResult: Codable, Sendable, Equatable {
    public var line: Int
    public var bankSerial: String
    /// The line's state after the import, or "invalid" (nothing stored) with the reason in `note`.
    public var state: String
    public var accountId: String?
    public var note: String?
    /// True when the serial number was imported before: the line was not processed again.
    public var duplicate: Bool
}

public struct RemittanceInput: Sendable {
    public var payerName: String
    public var payerAccount: String
    public var payerBank: String
    public var amountText: String
    public var remittedOn: String
    public var bankSerial: String?
    public var receipt: [UInt8]
    public var resubmissionOf: String?
    public init(payerName: String, payerAccount: String, payerBank: String, amountText: String, remittedOn: String,
                bankSerial: String?, receipt: [UInt8], resubmissionOf: String?) {
        (self.payerName, self.payerAccount, self.payerBank, self.amountText) = (payerName, payerAccount, payerBank, amountText)
        (self.remittedOn, self.bankSerial, self.receipt, self.resubmissionOf) = (remittedOn, bankSerial, receipt, resubmissionOf)
    }
}

/// Bank remittance (对公汇款): the legacy submit-and-review flow (T1) and dedicated accounts with statement matching (T2).
/// Every credit goes through the ledger writer and so follows R9 (T3).
public struct BankTransferService: Sendable {
    let store: any CofferStore
    let writer: LedgerWriter
    let clock: any Clock
    let ids: IdGenerator
    public let settings: BankTransferSettings
    let logger: Logger

    public init(store: any CofferStore, writer: LedgerWriter, clock: any Clock, ids: IdGenerator,
                settings: BankTransferSettings, logger: Logger) {
        self.store = store
        self.writer = writer
        self.clock = clock
        self.ids = ids
        self.settings = settings
        self.logger = logger
    }

    // MARK: dedicated accounts (T2)

    /// Luhn check digit over the 9-digit identifier body: catches every single-digit typo and most swapped neighbours.
    public static func checkDigit(_ digits: some StringProtocol) -> Character {
        var sum = 0
        for (i, c) in digits.reversed().enumerated() {
            var d = Int(c.asciiValue! - 48)
            if i % 2 == 0 { d *= 2; if d > 9 { d -= 9 } }
            sum += d
        }
        return Character(String((10 - sum % 10) % 10))
    }

    public enum PayeeMatch: Equatable {
        case dedicated(identifier: String)
        /// The platform's prefix, but the identifier's check digit is wrong or the account is the bare collection account.
        case platformUnknown(String)
        case notPlatform
    }

    public func classifyPayee(_ payee: String) -> PayeeMatch {
        let digits = payee.filter { !$0.isWhitespace && $0 != "-" }
        let prefix = settings.collectionAccount
        guard digits.hasPrefix(prefix), digits.allSatisfy(\.isNumber) else { return .notPlatform }
        let rest = digits.dropFirst(prefix.count)
        guard rest.count == 10 else { return .platformUnknown("the payee account is not a 25-digit dedicated account") }
        guard Self.checkDigit(rest.prefix(9)) == rest.last else { return .platformUnknown("the check digit does not match") }
        return .dedicated(identifier: String(rest))
    }

    /// The account's 25-digit receiving account, made on first use.
    public func dedicatedAccount(accountId: String) async throws -> DedicatedAccountRecord {
        if let existing = try await store.dedicatedAccount(accountId: accountId) { return existing }
        guard try await store.account(id: accountId) != nil else { throw CofferError.notFound(.accountNotFound, accountId) }
        var rng = SystemRandomNumberGenerator()
        for _ in 0..<20 {
            let body = String(format: "%09d", Int(rng.next(upperBound: UInt32(1_000_000_000))))
            let identifier = body + String(Self.checkDigit(body))
            let record = DedicatedAccountRecord(accountId: accountId, identifier: identifier,
                                                number: settings.collectionAccount + identifier, createdAtMicros: clock.nowMicros())
            do {
                try await store.transaction { tx in try await tx.insertDedicatedAccount(record) }
                return record
            } catch {
                // Another request made this account's number first, or the random identifier is taken: look again.
                if let existing = try await store.dedicatedAccount(accountId: accountId) { return existing }
            }
        }
        throw CofferError(.dedicatedAccountUnavailable, "No free dedicated account number was found; try again.")
    }

    // MARK: payer names (T2)

    public func registerPayer(accountId: String, name: String, thirdParty: Bool, actor: String) async throws -> [StatementLineResult] {
        let trimmed = try TextRules.required(name, field: "name", max: 200)
        let record = PayerNameRecord(accountId: accountId, name: trimmed, thirdParty: thirdParty, createdAtMicros: clock.nowMicros())
        let audit = AuditRecord(id: ids.make("aud"), accountId: accountId, actor: actor, action: "bank.payer_registered",
                                detail: "\(trimmed)\(thirdParty ? " (third party)" : "")", createdAtMicros: clock.nowMicros())
        try await store.transaction { tx in
            try await tx.upsertPayerName(record)
            try await tx.insertAudit(audit)
        }
        return try await recheckHeldLines(accountId: accountId)
    }

    /// The third-party payment agreement (第三方代付协议) for a registered payer; held lines are verified again.
    public func signAgreement(accountId: String, name: String, actor: String) async throws -> [StatementLineResult] {
        let now = clock.nowMicros()
        let audit = AuditRecord(id: ids.make("aud"), accountId: accountId, actor: actor, action: "bank.agreement_signed",
                                detail: name, createdAtMicros: now)
        let signed = try await store.transaction { tx in
            let ok = try await tx.signAgreement(accountId: accountId, name: name, actor: actor, nowMicros: now)
            if ok { try await tx.insertAudit(audit) }
            return ok
        }
        guard signed else { throw CofferError.notFound(.payerNameNotFound, name) }
        return try await recheckHeldLines(accountId: accountId)
    }

    enum PayerCheck { case accepted, unregistered, unsigned }

    func checkPayer(_ name: String, account: AccountRecord, payers: [PayerNameRecord]) -> PayerCheck {
        if name == account.entityName { return .accepted }
        guard let payer = payers.first(where: { $0.name == name }) else { return .unregistered }
        return payer.thirdParty && payer.agreementSignedAtMicros == nil ? .unsigned : .accepted
    }

    /// T2: lines waiting for a payer name or an agreement are checked again and credited once they pass.
    func recheckHeldLines(accountId: String) async throws -> [StatementLineResult] {
        guard let account = try await store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        let payers = try await store.payerNames(accountId: accountId)
        var results: [StatementLineResult] = []
        for line in try await store.statementLines(accountId: accountId, states: [.toBeConfirmed, .toBeSigned], limit: 1_000) {
            let next: StatementLineState = switch checkPayer(line.payerName, account: account, payers: payers) {
            case .accepted: .matched
            case .unsigned: .toBeSigned
            case .unregistered: .toBeConfirmed
            }
            guard next != line.state else { continue }
            let moved = try await store.transaction { tx in
                try await tx.updateStatementLine(id: line.id, from: line.state, to: next, accountId: accountId, note: line.note,
                                                 actor: nil, nowMicros: nil)
            }
            guard moved else { continue }
            var current = line
            current.state = next
            current.accountId = accountId
            results.append(next == .matched
                ? try await credit(current, accountId: accountId, actor: "system:statement-match")
                : StatementLineResult(line: 0, bankSerial: line.bankSerial, state: next.rawValue, accountId: accountId,
                                      note: nil, duplicate: false))
        }
        return results
    }

    // MARK: statement import (T2)

    /// Parses the documented CSV (see README): a header row naming the columns, UTF-8, optional BOM.
    public func parseStatementCSV(_ text: String) throws(CofferError) -> [StatementLineInput] {
        try StatementCSV.parse(text, maxLines: settings.maxStatementLines)
    }

    /// Imports statement lines; each is matched, stored once by its bank serial number, and credited when it can be.
    public func importStatement(_ lines: [StatementLineInput], source: String, actor: String) async throws -> [StatementLineResult] {
        guard lines.count <= settings.maxStatementLines else {
            throw CofferError.invalidField("lines", "at most \(settings.maxStatementLines) lines per import")
        }
        // Lines matched by an earlier import that stopped before their credit are finished first.
        try await creditMatchedLines()
        var results: [StatementLineResult] = []
        for (index, input) in lines.enumerated() {
            results.append(try await importLine(input, number: index + 1, source: source, actor: actor))
        }
        let audit = AuditRecord(id: ids.make("aud"), accountId: nil, actor: actor, action: "bank.statement_imported",
                                detail: "\(source): \(lines.count) lines, \(results.filter { $0.state == "credited" && !$0.duplicate }.count) credited",
                                createdAtMicros: clock.nowMicros())
        try await store.transaction { tx in try await tx.insertAudit(audit) }
        return results
    }

    func importLine(_ input: StatementLineInput, number: Int, source: String, actor: String) async throws -> StatementLineResult {
        var result = StatementLineResult(line: number, bankSerial: input.bankSerial, state: "invalid", accountId: nil, note: nil,
                                         duplicate: false)
        let amount: Int64
        do {
            guard !input.bankSerial.isEmpty, input.bankSerial.count <= 64 else { throw CofferError.invalidField("bank_serial", "is required (at most 64 characters)") }
            guard Self.isDate(input.bookedOn) else { throw CofferError.invalidField("booked_on", "must be a date yyyy-MM-dd") }
            guard input.currency.count == 3, input.currency.allSatisfy({ $0.isASCII && $0.isUppercase }) else {
                throw CofferError.invalidField("currency", "must be a three-letter code such as CNY")
            }
            amount = try MoneyFormat.parsePositive(input.amountText, field: "amount")
        } catch let error as CofferError {
            result.note = error.detail
            return result
        }
        if let existing = try await store.statementLine(bankSerial: input.bankSerial) {
            return StatementLineResult(line: number, bankSerial: input.bankSerial, state: existing.state.rawValue,
                                       accountId: existing.accountId, note: existing.note, duplicate: true)
        }
        var state: StatementLineState
        var accountId: String?
        var note: String?
        var message: (String, String, String)?
        switch classifyPayee(input.payeeAccount) {
        case .notPlatform:
            state = .unmatched
            note = "the payee account \(input.payeeAccount) is not the platform's"
        case .platformUnknown(let why):
            state = .unmatched
            note = why
        case .dedicated(let identifier):
            if let dedicated = try await store.dedicatedAccount(identifier: identifier),
               let account = try await store.account(id: dedicated.accountId) {
                accountId = account.id
                switch checkPayer(input.payerName, account: account, payers: try await store.payerNames(accountId: account.id)) {
                case .accepted:
                    state = .matched
                case .unregistered:
                    state = .toBeConfirmed
                    note = "payer name not registered"
                    message = ("remittance_to_confirm", "汇款待确认 Remittance to be confirmed",
                               "收到 \(input.payerName) 汇入的 \(MoneyFormat.format(amount)) 元（银行流水 \(input.bankSerial)），付款户名未登记。请在“对公汇款”中登记付款户名后自动入账。")
                case .unsigned:
                    state = .toBeSigned
                    note = "third-party payer without a signed agreement"
                    message = ("remittance_to_sign", "汇款待签署 Agreement to be signed",
                               "\(input.payerName) 为第三方付款人，签署代付协议后 \(MoneyFormat.format(amount)) 元将自动入账。")
                }
            } else {
                state = .unmatched
                note = "no account has the dedicated identifier \(identifier)"
            }
        }
        // Holds win over matching: the money is kept out of the wallet until an operator decides.
        if let keyword = settings.blockedKeywords.first(where: { input.memo.contains($0) }) {
            state = .heldKeyword
            note = "memo contains \"\(keyword)\""
            message = nil
        }
        if input.currency != "CNY" {
            state = .heldCurrency
            note = "foreign currency \(input.currency)"
            message = nil
        }
        let now = clock.nowMicros()
        let line = StatementLineRecord(id: ids.make("stl"), bankSerial: input.bankSerial, bookedOn: input.bookedOn, amountMinor: amount,
                                       currency: input.currency, payerName: input.payerName, payerAccount: input.payerAccount,
                                       payeeAccount: input.payeeAccount, memo: input.memo, state: state,
                                       accountId: accountId, note: note, source: source, importedAtMicros: now)
        let notice = message.flatMap { m in accountId.map {
            SiteMessageRecord(id: ids.make("msg"), accountId: $0, kind: m.0, title: m.1, body: m.2, createdAtMicros: now,
                              parameters: ["payer": input.payerName, "amount": MoneyFormat.format(amount), "serial": input.bankSerial])
        } }
        let inserted = try await store.transaction { tx in
            let ok = try await tx.insertStatementLine(line)
            if ok, let notice { try await tx.insertMessages([notice]) }
            return ok
        }
        guard inserted else {
            // A concurrent import stored the same serial number first.
            let existing = try await store.statementLine(bankSerial: input.bankSerial)
            return StatementLineResult(line: number, bankSerial: input.bankSerial, state: existing?.state.rawValue ?? "invalid",
                                       accountId: existing?.accountId, note: existing?.note, duplicate: true)
        }
        if state == .matched, let accountId {
            return try await credit(line, accountId: accountId, actor: "system:statement-match", lineNumber: number)
        }
        result.state = state.rawValue
        result.accountId = accountId
        result.note = note
        return result
    }

    /// Credits a line through the ledger writer, keyed by the bank serial number. `line.state` is the state its row is in.
    func credit(_ line: StatementLineRecord, accountId: String, actor: String, lineNumber: Int = 0) async throws -> StatementLineResult {
        var result = StatementLineResult(line: lineNumber, bankSerial: line.bankSerial, state: line.state.rawValue,
                                         accountId: accountId, note: nil, duplicate: false)
        let outcome = try await writer.submit(LedgerRequest(
            .creditStatementLine(accountId: accountId, lineId: line.id, amountMinor: line.amountMinor),
            idempotencyKey: "statement:\(line.bankSerial)", actor: actor))
        switch outcome.result {
        case .success:
            result.state = StatementLineState.credited.rawValue
        case .failure(let error):
            logger.warning("statement line \(line.bankSerial) not credited: \(error.code)")
            result.note = error.detail
            // A matched line that can never be credited (its transfer was credited as a remittance) goes to the operator's
            // pool instead of being retried by every import.
            if line.state == .matched {
                let moved = try await store.transaction { tx in
                    try await tx.updateStatementLine(id: line.id, from: .matched, to: .unmatched, accountId: accountId,
                                                     note: error.detail, actor: nil, nowMicros: nil)
                }
                if moved { result.state = StatementLineState.unmatched.rawValue }
            }
        }
        return result
    }

    /// Lines left `matched` by an import that stopped between storing and crediting them.
    public func creditMatchedLines() async throws {
        for line in try await store.statementLines(accountId: nil, states: [.matched], limit: 1_000) {
            guard let accountId = line.accountId else { continue }
            _ = try await credit(line, accountId: accountId, actor: "system:statement-match")
        }
    }

    /// Operator: credit an unmatched or held line to an account (a held foreign-currency line can only be refunded).
    public func assignLine(id: String, accountId: String, actor: String) async throws -> StatementLineResult {
        guard let line = try await store.statementLine(id: id) else { throw CofferError.notFound(.statementLineNotFound, id) }
        guard line.currency == "CNY" else {
            throw CofferError(.statementLineForeignCurrency, "A \(line.currency) line cannot be credited; refund it.")
        }
        guard [.unmatched, .heldKeyword, .toBeConfirmed, .toBeSigned].contains(line.state) else {
            throw CofferError(.statementLineNotCreditable, "Statement line \(line.bankSerial) is \(line.state.rawValue).")
        }
        guard try await store.account(id: accountId) != nil else { throw CofferError.notFound(.accountNotFound, accountId) }
        if line.state == .heldKeyword {
            // An operator's decision releases the hold; the ledger writer still guards the state it credits from.
            let released = try await store.transaction { tx in
                try await tx.updateStatementLine(id: line.id, from: .heldKeyword, to: .unmatched, accountId: nil,
                                                 note: "hold released by \(actor)", actor: actor, nowMicros: clock.nowMicros())
            }
            guard released else { throw CofferError(.statementLineChanged, "The line changed meanwhile; reload it.") }
        }
        let result = try await credit(line, accountId: accountId, actor: actor)
        guard result.state == StatementLineState.credited.rawValue else {
            throw CofferError(.statementLineNotCredited, result.note ?? "The line was not credited.")
        }
        return result
    }

    /// Operator: the money goes back to the payer through the bank; Coffer records the decision and credits nothing.
    public func refundLine(id: String, reason: String, actor: String) async throws -> StatementLineRecord {
        guard let line = try await store.statementLine(id: id) else { throw CofferError.notFound(.statementLineNotFound, id) }
        let reason = try TextRules.required(reason, field: "reason", max: 500)
        guard [.unmatched, .heldKeyword, .heldCurrency, .toBeConfirmed, .toBeSigned].contains(line.state) else {
            throw CofferError(.statementLineNotRefundable, "Statement line \(line.bankSerial) is \(line.state.rawValue).")
        }
        let now = clock.nowMicros()
        let audit = AuditRecord(id: ids.make("aud"), accountId: line.accountId, actor: actor, action: "bank.line_refunded",
                                detail: "\(line.bankSerial) \(MoneyFormat.format(line.amountMinor)) \(line.currency): \(reason)",
                                createdAtMicros: now)
        let moved = try await store.transaction { tx in
            let ok = try await tx.updateStatementLine(id: id, from: line.state, to: .refunded, accountId: line.accountId,
                                                      note: reason, actor: actor, nowMicros: now)
            if ok { try await tx.insertAudit(audit) }
            return ok
        }
        guard moved else { throw CofferError(.statementLineChanged, "The line changed meanwhile; reload it.") }
        return try await store.statementLine(id: id) ?? line
    }

    static func isDate(_ text: String) -> Bool {
        let parts = text.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 3, parts[0].count == 4, parts[1].count == 2, parts[2].count == 2,
              let y = Int(parts[0]), let m = Int(parts[1]), let d = Int(parts[2]) else { return false }
        return (2000...2100).contains(y) && (1...12).contains(m) && (1...31).contains(d)
    }
}
