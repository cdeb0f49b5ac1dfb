import CofferCore
import Foundation

/// T1: the legacy remittance flow. The customer transfers to the collection account and submits the remittance with its
/// receipt; an operator approves (credited through the ledger writer) or rejects with a reason; a rejected remittance may
/// be corrected and submitted again.
extension BankTransferService {
    public struct CollectionDetails: Codable, Sendable, Equatable {
        public var payeeName: String
        public var bankName: String
        public var accountNumber: String
        public var memo: String
        public var dedicatedAccountNumber: String
    }

    public func collectionDetails(accountId: String) async throws -> CollectionDetails {
        let dedicated = try await dedicatedAccount(accountId: accountId)
        return CollectionDetails(payeeName: settings.payeeName, bankName: settings.bankName, accountNumber: settings.collectionAccount,
                                 memo: settings.memoFormat.replacingOccurrences(of: "{accountId}", with: accountId),
                                 dedicatedAccountNumber: dedicated.number)
    }

    /// The receipt's type from its first bytes, never from a name or a header the client chose.
    public static func receiptType(_ bytes: [UInt8]) -> (mime: String, ext: String)? {
        if bytes.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return ("image/png", "png") }
        if bytes.starts(with: [0xFF, 0xD8, 0xFF]) { return ("image/jpeg", "jpg") }
        if bytes.starts(with: Array("%PDF-".utf8)) { return ("application/pdf", "pdf") }
        return nil
    }

    public func submitRemittance(accountId: String, _ input: RemittanceInput, idempotencyKey: String,
                                 actor: String) async throws -> (RemittanceRecord, replayed: Bool) {
        func text(_ value: String, _ field: String, max: Int = 200) throws(CofferError) -> String {
            guard !value.contains("\0") else { throw CofferError.invalidField(field, "may not contain NUL characters") }
            return try TextRules.required(value, field: field, max: max)
        }
        let payerName = try text(input.payerName, "payerName")
        let payerAccount = try text(input.payerAccount, "payerAccount", max: 40)
        let payerBank = try text(input.payerBank, "payerBank")
        let amount = try MoneyFormat.parsePositive(input.amountText)
        guard Self.isDate(input.remittedOn) else { throw CofferError.invalidField("remittedOn", "must be a date yyyy-MM-dd") }
        let serial = try TextRules.optional(input.bankSerial, field: "bankSerial", max: 64)
        guard !input.receipt.isEmpty else { throw CofferError.invalidField("receipt", "a PNG, JPG or PDF receipt is required") }
        guard input.receipt.count <= settings.maxReceiptBytes else {
            throw CofferError(.receiptTooLarge, "The receipt must be at most 5 MB.")
        }
        guard let type = Self.receiptType(input.receipt) else {
            throw CofferError(.receiptTypeUnsupported, "The receipt must be a PNG, JPG or PDF file.")
        }
        let digest = Secrets.sha256Hex(bytes: input.receipt)
        let ctx = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint:
            "remittance|\(payerName)|\(payerAccount)|\(payerBank)|\(amount)|\(input.remittedOn)|\(serial ?? "")|\(digest)|\(input.resubmissionOf ?? "")")
        if let earlier: RemittanceRecord = try await Idempotent.replay(store, ctx) { return (earlier, true) }
        guard let account = try await store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        // A transfer reported for a day that has not come yet (in the account's time zone) is a typo.
        let today = Self.localDate(nowMicros: clock.nowMicros(), timeZone: account.timeZone)
        guard input.remittedOn <= today else {
            throw CofferError.invalidField("remittedOn", "must not be after today (\(today)); give the day of the transfer")
        }
        if let serial {
            if try await store.bankSerialCredited(serial) {
                throw CofferError(.bankSerialAlreadyCredited, "A transfer with bank serial number \(serial) has already been credited; it cannot be submitted again.")
            }
            if try await store.remittances(bankSerial: serial).contains(where: { $0.state == .pendingReview }) {
                throw CofferError(.remittanceAlreadyPending, "A remittance with bank serial number \(serial) is already waiting for review.")
            }
        }
        if let earlierId = input.resubmissionOf {
            guard let earlier = try await store.remittance(accountId: accountId, id: earlierId) else {
                throw CofferError.notFound(.remittanceNotFound, earlierId)
            }
            guard earlier.state == .rejected else {
                throw CofferError(.remittanceNotRejected, "Only a rejected remittance can be corrected and submitted again.")
            }
        }
        let now = clock.nowMicros()
        let id = ids.make("rmt")
        let path = try storeReceipt(input.receipt, name: "\(id).\(type.ext)")
        let record = RemittanceRecord(id: id, accountId: accountId, payerName: payerName, payerAccount: payerAccount,
                                      payerBank: payerBank, amountMinor: amount, remittedOn: input.remittedOn, bankSerial: serial,
                                      receiptPath: path, receiptType: type.mime, receiptBytes: input.receipt.count,
                                      receiptSHA256: digest, state: .pendingReview, resubmissionOf: input.resubmissionOf,
                                      createdAtMicros: now)
        return try await Idempotent.write(store, ctx, record, at: now) { tx in try await tx.insertRemittance(record) }
    }

    /// yyyy-MM-dd of a moment in a time zone (Asia/Shanghai when the zone is unknown): the UTC date of the local time.
    static func localDate(nowMicros: Int64, timeZone: String) -> String {
        let zone = TimeZone(identifier: timeZone) ?? TimeZone(identifier: "Asia/Shanghai")!
        let offsetSeconds = Int64(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(nowMicros / 1_000_000))))
        return String(RFC3339.format(micros: nowMicros + offsetSeconds * 1_000_000).prefix(10))
    }

    /// Written to a temporary name, flushed and renamed: a crash leaves no half file under a name the database points to.
    func storeReceipt(_ bytes: [UInt8], name: String) throws -> String {
        let directory = URL(fileURLWithPath: settings.receiptDirectory, isDirectory: true)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        let final = directory.appendingPathComponent(name)
        let temporary = directory.appendingPathComponent(".\(name).partial")
        guard FileManager.default.createFile(atPath: temporary.path, contents: Data(bytes), attributes: [.posixPermissions: 0o600]) else {
            throw CofferError(.receiptNotStored, "The receipt could not be stored; try again.")
        }
        let handle = try FileHandle(forWritingTo: temporary)
        try handle.synchronize()
        try handle.close()
        try FileManager.default.moveItem(at: temporary, to: final)
        return name
    }

    public func receipt(_ remittance: RemittanceRecord) throws -> [UInt8] {
        let url = URL(fileURLWithPath: settings.receiptDirectory, isDirectory: true).appendingPathComponent(remittance.receiptPath)
        guard let data = FileManager.default.contents(atPath: url.path) else {
            throw CofferError(.receiptMissing, "The receipt file of \(remittance.id) is missing from the receipt store.")
        }
        return Array(data)
    }

    public func reviewQueue(limit: Int) async throws -> [RemittanceRecord] {
        try await store.remittances(accountId: nil, state: .pendingReview, limit: limit)
    }

    /// Credits the remittance through the ledger writer (R9); a replay with the same key returns the same receipt.
    public func approve(remittanceId: String, idempotencyKey: String, actor: String) async throws -> LedgerOutcome {
        guard let r = try await store.remittance(id: remittanceId) else { throw CofferError.notFound(.remittanceNotFound, remittanceId) }
        return try await writer.submit(LedgerRequest(.creditRemittance(accountId: r.accountId, remittanceId: r.id, amountMinor: r.amountMinor),
                                                     idempotencyKey: idempotencyKey, actor: actor))
    }

    public func reject(remittanceId: String, reason: String, actor: String) async throws -> RemittanceRecord {
        let reason = try TextRules.required(reason, field: "reason", max: 500)
        guard let r = try await store.remittance(id: remittanceId) else { throw CofferError.notFound(.remittanceNotFound, remittanceId) }
        let now = clock.nowMicros()
        let notice = SiteMessageRecord(id: ids.make("msg"), accountId: r.accountId, kind: "remittance_rejected",
                                       title: "汇款未通过审核 Remittance rejected",
                                       body: "您于 \(r.remittedOn) 提交的汇款 \(MoneyFormat.format(r.amountMinor)) 元未通过审核：\(reason)。请修改后重新提交。",
                                       createdAtMicros: now,
                                       parameters: ["date": r.remittedOn, "amount": MoneyFormat.format(r.amountMinor), "reason": reason])
        let audit = AuditRecord(id: ids.make("aud"), accountId: r.accountId, actor: actor, action: "bank.remittance_rejected",
                                detail: "\(r.id): \(reason)", createdAtMicros: now)
        let rejected = try await store.transaction { tx in
            let ok = try await tx.rejectRemittance(accountId: r.accountId, id: remittanceId, reason: reason, actor: actor, nowMicros: now)
            if ok {
                try await tx.insertMessages([notice])
                try await tx.insertAudit(audit)
            }
            return ok
        }
        guard rejected else {
            throw CofferError(.remittanceAlreadyReviewed, "Remittance \(remittanceId) is already \(r.state.rawValue).")
        }
        return try await store.remittance(accountId: r.accountId, id: remittanceId) ?? r
    }
}
