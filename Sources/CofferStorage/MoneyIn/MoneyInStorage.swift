import CofferCore
import CofferServices
import Foundation
import SQLKit

/// Storage of recharge codes, remittances, dedicated accounts, statement lines, payer names and site messages.
extension Rows {
    struct Reader {
        let row: any SQLRow
        func text(_ c: String) throws -> String { try row.decode(column: c, as: String.self) }
        func optionalText(_ c: String) throws -> String? { try row.decode(column: c, as: String?.self) }
        func int(_ c: String) throws -> Int64 { try row.decode(column: c, as: Int64.self) }
        func optionalInt(_ c: String) throws -> Int64? { try row.decode(column: c, as: Int64?.self) }
        func bool(_ c: String) throws -> Bool { try row.decode(column: c, as: Bool.self) }
    }

    static func codeBatch(_ row: any SQLRow) throws -> CodeBatchRecord {
        let r = Reader(row: row)
        return CodeBatchRecord(id: try r.text("id"), amountMinor: try r.int("amount_minor"),
                               bucket: WalletBucket(rawValue: try r.text("bucket"))!, validUntilMicros: try r.int("valid_until"),
                               count: Int(try r.int("code_count")), memo: try r.optionalText("memo"),
                               createdBy: try r.text("created_by"), createdAtMicros: try r.int("created_at"))
    }

    static func code(_ row: any SQLRow) throws -> RechargeCodeRecord {
        let r = Reader(row: row)
        return RechargeCodeRecord(id: try r.text("id"), batchId: try r.text("batch_id"), code: try r.text("code"),
                                  digest: try r.text("digest"), amountMinor: try r.int("amount_minor"),
                                  bucket: WalletBucket(rawValue: try r.text("bucket"))!, validUntilMicros: try r.int("valid_until"),
                                  state: CodeState(rawValue: try r.text("state"))!, redeemedBy: try r.optionalText("redeemed_by"),
                                  redeemedAtMicros: try r.optionalInt("redeemed_at"))
    }

    static func remittance(_ row: any SQLRow) throws -> RemittanceRecord {
        let r = Reader(row: row)
        return RemittanceRecord(
            id: try r.text("id"), accountId: try r.text("account_id"), payerName: try r.text("payer_name"),
            payerAccount: try r.text("payer_account"), payerBank: try r.text("payer_bank"), amountMinor: try r.int("amount_minor"),
            remittedOn: try r.text("remitted_on"), bankSerial: try r.optionalText("bank_serial"),
            receiptPath: try r.text("receipt_path"), receiptType: try r.text("receipt_type"),
            receiptBytes: Int(try r.int("receipt_bytes")), receiptSHA256: try r.text("receipt_sha256"),
            state: RemittanceState(rawValue: try r.text("state"))!, rejectReason: try r.optionalText("reject_reason"),
            resubmissionOf: try r.optionalText("resubmission_of"), reviewedBy: try r.optionalText("reviewed_by"),
            reviewedAtMicros: try r.optionalInt("reviewed_at"), createdAtMicros: try r.int("created_at"))
    }

    static func statementLine(_ row: any SQLRow) throws -> StatementLineRecord {
        let r = Reader(row: row)
        return StatementLineRecord(
            id: try r.text("id"), bankSerial: try r.text("bank_serial"), bookedOn: try r.text("booked_on"),
            amountMinor: try r.int("amount_minor"), currency: try r.text("currency"), payerName: try r.text("payer_name"),
            payerAccount: try r.text("payer_account"), payeeAccount: try r.text("payee_account"), memo: try r.text("memo"),
            state: StatementLineState(rawValue: try r.text("state"))!, accountId: try r.optionalText("account_id"),
            note: try r.optionalText("note"), source: try r.text("source"), importedAtMicros: try r.int("imported_at"),
            resolvedAtMicros: try r.optionalInt("resolved_at"), resolvedBy: try r.optionalText("resolved_by"))
    }

    static func payerName(_ row: any SQLRow) throws -> PayerNameRecord {
        let r = Reader(row: row)
        return PayerNameRecord(accountId: try r.text("account_id"), name: try r.text("name"), thirdParty: try r.bool("third_party"),
                               agreementSignedAtMicros: try r.optionalInt("agreement_signed_at"),
                               agreementSignedBy: try r.optionalText("agreement_signed_by"), createdAtMicros: try r.int("created_at"))
    }

    static func dedicatedAccount(_ row: any SQLRow) throws -> DedicatedAccountRecord {
        let r = Reader(row: row)
        return DedicatedAccountRecord(accountId: try r.text("account_id"), identifier: try r.text("identifier"),
                                      number: try r.text("number"), createdAtMicros: try r.int("created_at"))
    }

    static let jsonEncoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }()

    static func siteMessage(_ row: any SQLRow) throws -> SiteMessageRecord {
        let r = Reader(row: row)
        let parameters = try row.decode(column: "parameters", as: String?.self).flatMap {
            try? JSONDecoder().decode([String: String].self, from: Data($0.utf8))
        }
        return SiteMessageRecord(id: try r.text("id"), accountId: try r.text("account_id"), kind: try r.text("kind"),
                                 title: try r.text("title"), body: try r.text("body"), createdAtMicros: try r.int("created_at"),
                                 readAtMicros: try r.optionalInt("read_at"), deliveredAtMicros: try r.optionalInt("delivered_at"),
                                 parameters: parameters)
    }
}

extension SQLTransaction {
    private var lockClause: String { postgres ? " FOR UPDATE" : "" }

    private func lockRows<T>(_ table: String, _ ids: [String], _ map: (any SQLRow) throws -> T,
                             id: KeyPath<T, String>) async throws -> [String: T] {
        var found: [String: T] = [:]
        for chunk in ids.chunked(500) {
            let rows = try await db.raw("""
                SELECT * FROM \(ident: table) WHERE id IN (\(binds: chunk.map { $0 as any Encodable & Sendable })) ORDER BY id\(unsafeRaw: lockClause)
                """).all()
            for row in rows {
                let record = try map(row)
                found[record[keyPath: id]] = record
            }
        }
        return found
    }

    func voidUnusedCodes(batchId: String) async throws -> Int {
        try await db.raw("""
            UPDATE recharge_codes SET state = 'voided' WHERE batch_id = \(bind: batchId) AND state = 'unused' RETURNING id
            """).all().count
    }

    func lockCodes(_ ids: [String]) async throws -> [String: RechargeCodeRecord] {
        try await lockRows("recharge_codes", ids, Rows.code, id: \.id)
    }

    func lockRemittances(_ keys: [ObjectKey]) async throws -> [String: RemittanceRecord] {
        try await lockAccountRows("remittances", keys, Rows.remittance) { ObjectKey($0.accountId, $0.id) }.byId
    }

    func lockStatementLines(_ ids: [String]) async throws -> [String: StatementLineRecord] {
        try await lockRows("statement_lines", ids, Rows.statementLine, id: \.id)
    }

    func lockRecharges(_ keys: [ObjectKey]) async throws -> [String: RechargeRecord] {
        try await lockAccountRows("recharges", keys, Rows.recharge) { ObjectKey($0.accountId, $0.id) }.byId
    }

    func creditedBankSerials(_ serials: [String]) async throws -> Set<String> {
        try await Lookups.present(db, .bankSerial, serials)
    }

    /// The source rows a ledger batch credited, each guarded by its expected state: a lost race fails the whole batch.
    func applyMoneyIn(_ batch: LedgerBatchWrite) async throws {
        for c in batch.redeemedCodes {
            let rows = try await db.raw("""
                UPDATE recharge_codes SET state = 'redeemed', redeemed_by = \(bind: c.redeemedBy), redeemed_at = \(bind: c.redeemedAtMicros)
                WHERE id = \(bind: c.id) AND state = 'unused' RETURNING id
                """).all()
            guard rows.count == 1 else { throw StoreError("recharge code \(c.id) was redeemed concurrently") }
        }
        for r in batch.approvedRemittances {
            let rows = try await db.raw("""
                UPDATE remittances SET state = 'approved', reviewed_by = \(bind: r.reviewedBy), reviewed_at = \(bind: r.reviewedAtMicros)
                WHERE account_id = \(bind: r.accountId) AND id = \(bind: r.id) AND state = 'pending_review' RETURNING id
                """).all()
            guard rows.count == 1 else { throw StoreError("remittance \(r.id) was reviewed concurrently") }
            if let serial = r.bankSerial { try await Lookups.insert(db, .bankSerial, serial, accountId: r.accountId, targetId: r.id) }
        }
        let creditable = StatementLineState.creditable.map { $0.rawValue as any Encodable & Sendable }
        for l in batch.creditedLines {
            let rows = try await db.raw("""
                UPDATE statement_lines SET state = 'credited', account_id = \(bind: l.accountId), resolved_at = \(bind: l.resolvedAtMicros),
                  resolved_by = \(bind: l.resolvedBy)
                WHERE id = \(bind: l.id) AND state IN (\(binds: creditable)) RETURNING id
                """).all()
            guard rows.count == 1 else { throw StoreError("statement line \(l.bankSerial) was resolved concurrently") }
            guard let accountId = l.accountId else { throw StoreError("statement line \(l.bankSerial) credited to no account") }
            try await Lookups.insert(db, .bankSerial, l.bankSerial, accountId: accountId, targetId: l.id)
        }
        try await insertMessages(batch.messages)
    }

    func insertMessages(_ messages: [SiteMessageRecord]) async throws {
        for m in messages {
            let parameters = try m.parameters.map { String(decoding: try Rows.jsonEncoder.encode($0), as: UTF8.self) }
            _ = try await db.raw("""
                INSERT INTO site_messages (id, account_id, kind, title, body, created_at, parameters)
                VALUES (\(bind: m.id), \(bind: m.accountId), \(bind: m.kind), \(bind: m.title), \(bind: m.body), \(bind: m.createdAtMicros),
                        \(bind: parameters))
                """).all()
        }
    }

    func insertCodeBatch(_ batch: CodeBatchRecord, codes: [RechargeCodeRecord]) async throws {
        _ = try await db.raw("""
            INSERT INTO code_batches (id, amount_minor, bucket, valid_until, code_count, memo, created_by, created_at)
            VALUES (\(bind: batch.id), \(bind: batch.amountMinor), \(bind: batch.bucket.rawValue), \(bind: batch.validUntilMicros),
                    \(bind: batch.count), \(bind: batch.memo), \(bind: batch.createdBy), \(bind: batch.createdAtMicros))
            """).all()
        for chunk in codes.chunked(200) {
            var sql: SQLQueryString = "INSERT INTO recharge_codes (id, batch_id, code, digest, amount_minor, bucket, valid_until, state) VALUES "
            for (i, c) in chunk.enumerated() {
                if i > 0 { sql += ", " }
                sql += "(\(bind: c.id), \(bind: c.batchId), \(bind: c.code), \(bind: c.digest), \(bind: c.amountMinor), \(bind: c.bucket.rawValue), \(bind: c.validUntilMicros), 'unused')"
            }
            _ = try await db.raw(sql).all()
        }
    }

    /// R8: a redemption attempt counts against the account until it succeeds. The wallet row is locked first so that
    /// parallel attempts of one account are counted one after another.
    func reserveCodeAttempt(accountId: String, id: String, nowMicros: Int64, sinceMicros: Int64, limit: Int) async throws -> Bool {
        _ = try await lockWallets([accountId])
        let n = try await db.raw("""
            SELECT COUNT(*) AS n FROM code_attempts WHERE account_id = \(bind: accountId) AND created_at >= \(bind: sinceMicros)
            """).first()!.decode(column: "n", as: Int.self)
        guard n < limit else { return false }
        _ = try await db.raw("INSERT INTO code_attempts (id, account_id, created_at) VALUES (\(bind: id), \(bind: accountId), \(bind: nowMicros))").all()
        return true
    }

    func deleteCodeAttempt(accountId: String, id: String) async throws {
        _ = try await db.raw("DELETE FROM code_attempts WHERE account_id = \(bind: accountId) AND id = \(bind: id)").all()
    }

    func insertRemittance(_ r: RemittanceRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO remittances (id, account_id, payer_name, payer_account, payer_bank, amount_minor, remitted_on, bank_serial,
              receipt_path, receipt_type, receipt_bytes, receipt_sha256, state, resubmission_of, created_at)
            VALUES (\(bind: r.id), \(bind: r.accountId), \(bind: r.payerName), \(bind: r.payerAccount), \(bind: r.payerBank),
              \(bind: r.amountMinor), \(bind: r.remittedOn), \(bind: r.bankSerial), \(bind: r.receiptPath), \(bind: r.receiptType),
              \(bind: r.receiptBytes), \(bind: r.receiptSHA256), \(bind: r.state.rawValue), \(bind: r.resubmissionOf), \(bind: r.createdAtMicros))
            """).all()
        // The review queue names a remittance by its id alone.
        try await Lookups.insert(db, .remittance, r.id, accountId: r.accountId, targetId: r.id)
    }

    func rejectRemittance(accountId: String, id: String, reason: String, actor: String, nowMicros: Int64) async throws -> Bool {
        try await db.raw("""
            UPDATE remittances SET state = 'rejected', reject_reason = \(bind: reason), reviewed_by = \(bind: actor), reviewed_at = \(bind: nowMicros)
            WHERE account_id = \(bind: accountId) AND id = \(bind: id) AND state = 'pending_review' RETURNING id
            """).all().count == 1
    }

    func insertDedicatedAccount(_ d: DedicatedAccountRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO dedicated_accounts (account_id, identifier, number, created_at)
            VALUES (\(bind: d.accountId), \(bind: d.identifier), \(bind: d.number), \(bind: d.createdAtMicros))
            """).all()
        try await Lookups.insert(db, .dedicatedIdentifier, d.identifier, accountId: d.accountId, targetId: d.accountId)
        try await Lookups.insert(db, .dedicatedNumber, d.number, accountId: d.accountId, targetId: d.accountId)
    }

    /// False when a line with this bank serial number was imported before (T2: processed once).
    func insertStatementLine(_ l: StatementLineRecord) async throws -> Bool {
        try await db.raw("""
            INSERT INTO statement_lines (id, bank_serial, booked_on, amount_minor, currency, payer_name, payer_account, payee_account,
              memo, state, account_id, note, source, imported_at)
            VALUES (\(bind: l.id), \(bind: l.bankSerial), \(bind: l.bookedOn), \(bind: l.amountMinor), \(bind: l.currency),
              \(bind: l.payerName), \(bind: l.payerAccount), \(bind: l.payeeAccount), \(bind: l.memo), \(bind: l.state.rawValue),
              \(bind: l.accountId), \(bind: l.note), \(bind: l.source), \(bind: l.importedAtMicros))
            ON CONFLICT (bank_serial) DO NOTHING RETURNING id
            """).all().count == 1
    }

    /// Moves a line between non-credited states (a re-check after a payer registers, a refund), guarded by its state.
    func updateStatementLine(id: String, from: StatementLineState, to: StatementLineState, accountId: String?, note: String?,
                             actor: String?, nowMicros: Int64?) async throws -> Bool {
        try await db.raw("""
            UPDATE statement_lines SET state = \(bind: to.rawValue), account_id = \(bind: accountId), note = \(bind: note),
              resolved_by = \(bind: actor), resolved_at = \(bind: nowMicros)
            WHERE id = \(bind: id) AND state = \(bind: from.rawValue) RETURNING id
            """).all().count == 1
    }

    func upsertPayerName(_ p: PayerNameRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO payer_names (account_id, name, third_party, agreement_signed_at, agreement_signed_by, created_at)
            VALUES (\(bind: p.accountId), \(bind: p.name), \(bind: p.thirdParty), \(bind: p.agreementSignedAtMicros),
              \(bind: p.agreementSignedBy), \(bind: p.createdAtMicros))
            ON CONFLICT (account_id, name) DO UPDATE SET third_party = excluded.third_party
            """).all()
    }

    func signAgreement(accountId: String, name: String, actor: String, nowMicros: Int64) async throws -> Bool {
        try await db.raw("""
            UPDATE payer_names SET agreement_signed_at = COALESCE(agreement_signed_at, \(bind: nowMicros)),
              agreement_signed_by = COALESCE(agreement_signed_by, \(bind: actor))
            WHERE account_id = \(bind: accountId) AND name = \(bind: name) RETURNING name
            """).all().count == 1
    }
}

extension SQLStore {
    static func bankSerialCredited(_ db: any SQLDatabase, _ serial: String) async throws -> Bool {
        try await !Lookups.present(db, .bankSerial, [serial]).isEmpty
    }

    public func bankSerialCredited(_ serial: String) async throws -> Bool {
        try await read { db in try await SQLStore.bankSerialCredited(db, serial) }
    }

    public func code(digest: String) async throws -> RechargeCodeRecord? {
        try await read { db in try await db.raw("SELECT * FROM recharge_codes WHERE digest = \(bind: digest)").first().map(Rows.code) }
    }

    public func codeBatch(id: String) async throws -> CodeBatchRecord? {
        try await read { db in try await db.raw("SELECT * FROM code_batches WHERE id = \(bind: id)").first().map(Rows.codeBatch) }
    }

    public func codeBatches(limit: Int) async throws -> [CodeBatchRecord] {
        try await read { db in try await db.raw("SELECT * FROM code_batches ORDER BY id DESC LIMIT \(literal: limit)").all().map(Rows.codeBatch) }
    }

    public func codes(batchId: String) async throws -> [RechargeCodeRecord] {
        try await read { db in try await db.raw("SELECT * FROM recharge_codes WHERE batch_id = \(bind: batchId) ORDER BY id").all().map(Rows.code) }
    }

    public func remittance(id: String) async throws -> RemittanceRecord? {
        try await read { db in try await db.raw(Lookups.select("remittances", .remittance, id)).first().map(Rows.remittance) }
    }

    public func remittance(accountId: String, id: String) async throws -> RemittanceRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM remittances WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(Rows.remittance)
        }
    }

    public func remittances(accountId: String?, state: RemittanceState?, limit: Int) async throws -> [RemittanceRecord] {
        // The review queue is worked oldest first; a customer's list is newest first.
        let query = Self.select("remittances", accountId: accountId, states: state.map { [$0.rawValue] } ?? [],
                                orderBy: accountId == nil ? "created_at, id" : "created_at DESC, id DESC", limit: limit)
        return try await read { db in try await db.raw(query).all().map(Rows.remittance) }
    }

    /// `SELECT *` of a table, for one account or all, in some states or all, ordered and limited. Table and order are
    /// constants of the caller, never input.
    static func select(_ table: StaticString, accountId: String?, states: [String], orderBy: StaticString, limit: Int) -> SQLQueryString {
        var sql: SQLQueryString = "SELECT * FROM \(unsafeRaw: "\(table)") WHERE 1 = 1"
        if let accountId { sql += " AND account_id = \(bind: accountId)" }
        if !states.isEmpty { sql += " AND state IN (\(binds: states.map { $0 as any Encodable & Sendable }))" }
        sql += " ORDER BY \(unsafeRaw: "\(orderBy)") LIMIT \(literal: limit)"
        return sql
    }

    public func remittances(bankSerial: String) async throws -> [RemittanceRecord] {
        try await read { db in try await db.raw("SELECT * FROM remittances WHERE bank_serial = \(bind: bankSerial)").all().map(Rows.remittance) }
    }

    public func dedicatedAccount(accountId: String) async throws -> DedicatedAccountRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM dedicated_accounts WHERE account_id = \(bind: accountId)").first().map(Rows.dedicatedAccount)
        }
    }

    public func dedicatedAccount(identifier: String) async throws -> DedicatedAccountRecord? {
        try await read { db in
            try await db.raw(Lookups.select("dedicated_accounts", .dedicatedIdentifier, identifier, targetColumn: "account_id"))
                .first().map(Rows.dedicatedAccount)
        }
    }

    public func payerNames(accountId: String) async throws -> [PayerNameRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM payer_names WHERE account_id = \(bind: accountId) ORDER BY name").all().map(Rows.payerName)
        }
    }

    public func statementLine(id: String) async throws -> StatementLineRecord? {
        try await read { db in try await db.raw("SELECT * FROM statement_lines WHERE id = \(bind: id)").first().map(Rows.statementLine) }
    }

    public func statementLine(bankSerial: String) async throws -> StatementLineRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM statement_lines WHERE bank_serial = \(bind: bankSerial)").first().map(Rows.statementLine)
        }
    }

    public func statementLines(accountId: String?, states: [StatementLineState], limit: Int) async throws -> [StatementLineRecord] {
        let query = Self.select("statement_lines", accountId: accountId, states: states.map(\.rawValue), orderBy: "imported_at, id",
                                limit: limit)
        return try await read { db in try await db.raw(query).all().map(Rows.statementLine) }
    }

    public func siteMessages(accountId: String, limit: Int) async throws -> [SiteMessageRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM site_messages WHERE account_id = \(bind: accountId) ORDER BY id DESC LIMIT \(literal: limit)")
                .all().map(Rows.siteMessage)
        }
    }

    public func undeliveredMessages(limit: Int) async throws -> [SiteMessageRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM site_messages WHERE delivered_at IS NULL ORDER BY created_at LIMIT \(literal: limit)")
                .all().map(Rows.siteMessage)
        }
    }

    public func markDelivered(_ messages: [ObjectKey], atMicros: Int64) async throws {
        guard !messages.isEmpty else { return }
        try await connections.transaction { db, _ in
            for m in messages {
                _ = try await db.raw("""
                    UPDATE site_messages SET delivered_at = \(bind: atMicros)
                    WHERE account_id = \(bind: m.accountId) AND id = \(bind: m.id) AND delivered_at IS NULL
                    """).all()
            }
        }
    }
}
