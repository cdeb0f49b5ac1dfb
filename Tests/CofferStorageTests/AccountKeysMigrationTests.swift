import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Testing

/// Migration 9 rebuilds users, code attempts, remittances, site messages, channel refunds, recharges and dedicated
/// accounts keyed by account, and moves the values unique across accounts (and ids named without their account) to
/// `lookups`. A database made by schema 8 keeps every row, every lookup by a global id, and every uniqueness guard.
@Suite("Account-keyed schema: migration 9 on SQLite and PostgreSQL")
struct AccountKeysMigrationTests {
    static let a = "acc_m9a", b = "acc_m9b"
    static let digest = String(repeating: "d", count: 64)

    static let rows: [String] = [
        "INSERT INTO users (id, account_id, email, name, role, password_hash, created_at) VALUES ('usr_m9', '\(a)', 'owner@m9.example', 'Owner', 'owner', 'hash', 2)",
        "INSERT INTO api_keys (id, kind, account_id, user_id, name, digest, created_at) VALUES ('key_m9', 'account', '\(a)', 'usr_m9', 'ci', '\(digest)', 3)",
        "INSERT INTO web_sessions (token_digest, subject, subject_id, csrf_token, created_at, expires_at) VALUES ('sess_m9', 'user', 'usr_m9', 'csrf', 4, 999999999)",
        "INSERT INTO code_attempts (id, account_id, created_at) VALUES ('att_m9', '\(a)', 5)",
        OldSchemaRows.recharge(RechargeRecord(id: "rch_m9_paid", accountId: a, channel: "wechatpay", amountMinor: 900, state: .paid,
                                              channelTradeNo: "T-m9", expiresAtMicros: 99, paidAtMicros: 7, createdAtMicros: 6)),
        OldSchemaRows.recharge(RechargeRecord(id: "rch_m9_open", accountId: b, channel: "alipay", amountMinor: 100, state: .pending,
                                              expiresAtMicros: 99, createdAtMicros: 8)),
        """
        INSERT INTO remittances (id, account_id, payer_name, payer_account, payer_bank, amount_minor, remitted_on, bank_serial, receipt_path,
          receipt_type, receipt_bytes, receipt_sha256, state, reject_reason, resubmission_of, reviewed_by, reviewed_at, created_at)
        VALUES ('rem_m9_1', '\(b)', '某公司', '6222', '工行', 5000, '2026-11-30', 'SER-1', 'r/1', 'image/png', 10, 'x', 'rejected', 'blurry',
                NULL, 'user:op', 9, 9)
        """,
        """
        INSERT INTO remittances (id, account_id, payer_name, payer_account, payer_bank, amount_minor, remitted_on, bank_serial, receipt_path,
          receipt_type, receipt_bytes, receipt_sha256, state, reject_reason, resubmission_of, reviewed_by, reviewed_at, created_at)
        VALUES ('rem_m9_2', '\(b)', '某公司', '6222', '工行', 5000, '2026-11-30', 'SER-1', 'r/2', 'image/png', 10, 'x', 'approved', NULL,
                'rem_m9_1', 'user:op', 11, 10)
        """,
        """
        INSERT INTO statement_lines (id, bank_serial, booked_on, amount_minor, currency, payer_name, payer_account, payee_account, memo,
          state, account_id, source, imported_at, resolved_at)
        VALUES ('stl_m9', 'SER-2', '2026-11-30', 700, 'CNY', 'Payer', '6222', '1234567890123456789012345', '', 'credited', '\(a)', 'csv', 12, 12)
        """,
        "INSERT INTO dedicated_accounts (account_id, identifier, number, created_at) VALUES ('\(a)', 'ABCDE12345', '1234567890123456789012345', 13)",
        "INSERT INTO site_messages (id, account_id, kind, title, body, created_at, parameters) VALUES ('msg_m9', '\(a)', 'recharge_credited', 't', 'b', 14, '{\"amount\":\"9.00\"}')",
        """
        INSERT INTO channel_refunds (id, account_id, recharge_id, channel, channel_trade_no, purpose, amount_minor, order_total_minor, state,
          attempts, next_attempt_at, created_at)
        VALUES ('crf_m9', '\(a)', 'rch_m9_paid', 'wechatpay', 'T-m9', 'payer_limit', 900, 900, 'pending', 0, 15, 15)
        """,
    ]

    static func expectUniqueViolation(_ body: () async throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) async throws {
        do {
            try await body()
            Issue.record("the write was accepted", sourceLocation: sourceLocation)
        } catch where SQLStore.isUniqueViolation(error) {
        }
    }

    @Test("Migration 9 keeps every row and every lookup by a global id or unique value, and the guards still hold",
          arguments: Backend.available)
    func migrationKeysByAccount(backend: Backend) async throws {
        let (_, location, cleanup) = try TestEnvironment.freshDatabase(backend)
        defer { cleanup() }
        let old = try await SQLStore.open(location)
        try await old.migrate(upTo: 8)
        for id in [Self.a, Self.b] {
            for row in OldSchemaRows.account(AccountRecord(id: id, type: .personal, entityName: "迁移", contactEmail: "\(id)@example.com",
                                                           currency: "CNY", timeZone: "Asia/Shanghai", createdAtMicros: 1)) {
                try await old.executeRawForTests(row)
            }
        }
        for row in Self.rows { try await old.executeRawForTests(row) }
        await old.shutdown()

        let store = try await SQLStore.open(location)
        try await store.closingForTests(backend) { store in
            try await store.migrate()
            let owner = try #require(try await store.user(email: "owner@m9.example"))
            #expect(owner.accountId == Self.a && owner.id == "usr_m9" && owner.role == .owner)
            #expect(try await store.user(accountId: Self.a, id: "usr_m9") == owner)
            #expect(try await store.user(accountId: Self.b, id: "usr_m9") == nil)
            #expect(try await store.apiKey(digest: Self.digest)?.userId == "usr_m9")
            #expect(try await store.webSession(digest: "sess_m9")?.accountId == Self.a, "a user's session learns its account")
            #expect(try await store.recharge(id: "rch_m9_paid")?.channelTradeNo == "T-m9")
            #expect(try await store.recharge(id: "rch_m9_open")?.accountId == Self.b)
            #expect(try await store.recharge(accountId: Self.a, id: "rch_m9_open") == nil)
            #expect(try await store.remittance(id: "rem_m9_2")?.resubmissionOf == "rem_m9_1")
            #expect(try await store.remittance(id: "rem_m9_1")?.state == .rejected)
            #expect(try await store.bankSerialCredited("SER-1"), "an approved remittance's serial")
            #expect(try await store.bankSerialCredited("SER-2"), "a credited statement line's serial")
            #expect(try await !store.bankSerialCredited("SER-3"))
            #expect(try await store.dedicatedAccount(identifier: "ABCDE12345")?.accountId == Self.a)
            #expect(try await store.channelRefund(id: "crf_m9")?.rechargeId == "rch_m9_paid")
            #expect(try await store.siteMessages(accountId: Self.a, limit: 10).map(\.parameters) == [["amount": "9.00"]])
            #expect(try await store.verify().map(\.description) == [])
            // The guards moved to the lookups and still refuse: one e-mail across accounts, one credit per channel trade,
            // one dedicated number.
            let twinUser = UserRecord(id: "usr_m9b", accountId: Self.b, email: "owner@m9.example", name: "Twin", role: .owner,
                                      passwordHash: "h", createdAtMicros: 20)
            try await Self.expectUniqueViolation { try await store.transaction { tx in try await tx.insertUser(twinUser) } }
            let twinTrade = RechargeRecord(id: "rch_m9_twin", accountId: Self.b, channel: "wechatpay", amountMinor: 900, state: .paid,
                                           channelTradeNo: "T-m9", expiresAtMicros: 99, paidAtMicros: 21, createdAtMicros: 21)
            try await Self.expectUniqueViolation { try await store.transaction { tx in try await tx.insertRecharge(twinTrade) } }
            let twinNumber = DedicatedAccountRecord(accountId: Self.b, identifier: "ZZZZZ99999", number: "1234567890123456789012345",
                                                    createdAtMicros: 22)
            try await Self.expectUniqueViolation { try await store.transaction { tx in try await tx.insertDedicatedAccount(twinNumber) } }
            #expect(try await store.user(email: "owner@m9.example")?.accountId == Self.a, "the refused writes left nothing")
            #expect(try await store.recharge(id: "rch_m9_twin") == nil)
            // `coffer verify` sees a row its lookup no longer finds.
            try await store.executeRawForTests("DELETE FROM lookups WHERE kind = 'recharge' AND value = 'rch_m9_open'")
            #expect(try await store.verify().map(\.description) == ["\(Self.b): recharges row rch_m9_open has no recharge lookup"])
        }
    }
}
