import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import SQLKit
import Testing

/// Migration 7 turns the old journal (entries, postings, records, JSON answers) into one row per movement. A database made
/// by the old schema keeps every balance, every W11 record and every replayable answer.
@Suite("Ledger migration 7 on SQLite and PostgreSQL")
struct LedgerMigrationTests {
    struct OldEntry {
        let id: String, kind: String, key: String, fingerprint: String
        let postings: [Posting]
        let records: [(id: String, Movement, related: (String, String)?)]
        let receipt: LedgerReceipt
    }

    static let a = "acc_m7"
    static func movement(_ type: TransactionType, _ amount: Int64, cash: Int64 = 0, gift: Int64 = 0, frozen: Int64 = 0,
                         balance: Int64, available: Int64) -> Movement {
        Movement(type: type, amountMinor: amount, cashDeltaMinor: cash, giftDeltaMinor: gift, frozenDeltaMinor: frozen,
                 balanceAfterMinor: balance, availableAfterMinor: available)
    }
    static func wallet(cash: Int64, gift: Int64 = 0, frozen: Int64 = 0, advance: Int64 = 0) -> WalletBalances {
        WalletBalances(cashMinor: cash, giftMinor: gift, frozenMinor: frozen, advanceOutstandingMinor: advance)
    }

    static let freeze = FreezeRecord(id: "frz_m7", accountId: a, amountMinor: 3_000, capturedMinor: 1_250, state: .captured,
                                     reference: "vm-1", createdAtMicros: 20, resolvedAtMicros: 30)
    static let recharge = RechargeRecord(id: "rch_m7", accountId: a, channel: "wechatpay", amountMinor: 10_000, state: .paid,
                                         channelTradeNo: "T-m7", expiresAtMicros: 999, paidAtMicros: 60, createdAtMicros: 55,
                                         feeMinor: 60)
    static let charge = ChargeRecord(id: "chg_m7", accountId: a, mode: .prepaid, amountMinor: 500, cashMinor: 300, giftMinor: 200,
                                     refundedCashMinor: 120, refundedGiftMinor: 80, createdAtMicros: 70)

    /// The old writer's rows for: an adjustment, a gift, a freeze, its capture (two records), an advance, a recharge with
    /// an R4 fee that repays the advance (R9, two records), a charge and a partial refund.
    static let entries: [OldEntry] = {
        var frozenFreeze = freeze
        (frozenFreeze.state, frozenFreeze.capturedMinor, frozenFreeze.resolvedAtMicros) = (.active, 0, nil)
        var newCharge = charge
        (newCharge.refundedCashMinor, newCharge.refundedGiftMinor) = (0, 0)
        func receipt(_ id: String, _ kind: String, _ w: WalletBalances, freeze: FreezeRecord? = nil, charge: ChargeRecord? = nil,
                     refund: RefundInfo? = nil, recharge: RechargeRecord? = nil) -> LedgerReceipt {
            LedgerReceipt(entryId: id, accountId: a, kind: kind, createdAtMicros: 10, wallet: w, freeze: freeze, charge: charge,
                          refund: refund, recharge: recharge)
        }
        return [
            OldEntry(id: "ent_01", kind: "adjustment", key: "k-adj", fingerprint: "adjust|\(a)|cash|10000|opening",
                     postings: [Posting(.cash, 10_000), Posting(.adjustment, -10_000)],
                     records: [("txn_01", movement(.adjustment, 10_000, cash: 10_000, balance: 10_000, available: 10_000), nil)],
                     receipt: receipt("ent_01", "adjustment", wallet(cash: 10_000))),
            OldEntry(id: "ent_02", kind: "gift_grant", key: "k-gift", fingerprint: "gift|\(a)|500|",
                     postings: [Posting(.gift, 500), Posting(.giftExpense, -500)],
                     records: [("txn_02", movement(.giftGrant, 500, gift: 500, balance: 10_500, available: 10_500), nil)],
                     receipt: receipt("ent_02", "gift_grant", wallet(cash: 10_000, gift: 500))),
            OldEntry(id: "ent_03", kind: "freeze", key: "k-frz", fingerprint: "freeze|\(a)|3000||vm-1",
                     postings: [Posting(.frozen, 3_000), Posting(.holdControl, -3_000)],
                     records: [("txn_03", movement(.freeze, -3_000, frozen: 3_000, balance: 10_500, available: 7_500), ("freeze", "frz_m7"))],
                     receipt: receipt("ent_03", "freeze", wallet(cash: 10_000, gift: 500, frozen: 3_000), freeze: frozenFreeze)),
            OldEntry(id: "ent_04", kind: "capture", key: "k-cap", fingerprint: "capture|\(a)|frz_m7|1250",
                     postings: [Posting(.frozen, -3_000), Posting(.holdControl, 3_000), Posting(.cash, -750), Posting(.gift, -500),
                                Posting(.revenue, 1_250)],
                     records: [("txn_04a", movement(.unfreeze, 3_000, frozen: -3_000, balance: 10_500, available: 10_500), ("freeze", "frz_m7")),
                               ("txn_04b", movement(.deduction, -1_250, cash: -750, gift: -500, balance: 9_250, available: 9_250), ("freeze", "frz_m7"))],
                     receipt: receipt("ent_04", "capture", wallet(cash: 9_250), freeze: freeze)),
            OldEntry(id: "ent_05", kind: "advance", key: "k-adv", fingerprint: "advance|\(a)|5000|",
                     postings: [Posting(.cash, 5_000), Posting(.advance, -5_000)],
                     records: [("txn_05", movement(.advance, 5_000, cash: 5_000, balance: 14_250, available: 14_250), nil)],
                     receipt: receipt("ent_05", "advance", wallet(cash: 14_250, advance: 5_000))),
            OldEntry(id: "ent_06", kind: "recharge_credit", key: "k-rch", fingerprint: "credit|\(a)|rch_m7|T-m7|10060",
                     postings: [Posting(.cash, 10_000), Posting(.channelClearing, -10_000), Posting(.channelClearing, -60),
                                Posting(.revenue, 60), Posting(.cash, -5_000), Posting(.advance, 5_000)],
                     records: [("txn_06a", movement(.recharge, 10_000, cash: 10_000, balance: 24_250, available: 24_250), ("recharge", "rch_m7")),
                               ("txn_06b", movement(.advanceRepayment, -5_000, cash: -5_000, balance: 19_250, available: 19_250), ("recharge", "rch_m7"))],
                     receipt: receipt("ent_06", "recharge_credit", wallet(cash: 19_250), recharge: recharge)),
            OldEntry(id: "ent_07", kind: "charge", key: "k-chg", fingerprint: "charge|\(a)|500|prepaid|",
                     postings: [Posting(.cash, -500), Posting(.revenue, 500)],
                     records: [("txn_07", movement(.deduction, -500, cash: -500, balance: 18_750, available: 18_750), ("charge", "chg_m7"))],
                     receipt: receipt("ent_07", "charge", wallet(cash: 18_750), charge: newCharge)),
            OldEntry(id: "ent_08", kind: "refund", key: "k-rfd", fingerprint: "refund|\(a)|chg_m7|200|",
                     postings: [Posting(.cash, 200), Posting(.revenue, -200)],
                     records: [("txn_08", movement(.refund, 200, cash: 200, balance: 18_950, available: 18_950), ("charge", "chg_m7"))],
                     receipt: receipt("ent_08", "refund", wallet(cash: 18_950), charge: charge,
                                      refund: RefundInfo(id: "rfd_m7", chargeId: "chg_m7", amountMinor: 200, cashMinor: 200, giftMinor: 0))),
        ]
    }()

    static func sql(_ v: String?) -> String { v.map { "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" } ?? "NULL" }

    @Test("W9 W10 W11 migration 7 keeps every balance, record and replayable answer of a database made by schema 6",
          arguments: Backend.available)
    func migrationKeepsTheJournal(backend: Backend) async throws {
        let (_, location, cleanup) = try TestEnvironment.freshDatabase(backend)
        let old = try await SQLStore.open(location)
        try await old.migrate(upTo: 6)
        for row in OldSchemaRows.account(AccountRecord(id: Self.a, type: .personal, entityName: "迁移", contactEmail: "m7@example.com",
                                                       currency: "CNY", timeZone: "Asia/Shanghai", createdAtMicros: 1)) {
            try await old.executeRawForTests(row)
        }
        try await old.executeRawForTests(OldSchemaRows.recharge(Self.recharge))
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        var statements = [
            "UPDATE wallets SET cash_minor = 18950, gift_minor = 0, frozen_minor = 0, advance_minor = 0 WHERE account_id = '\(Self.a)'",
            "INSERT INTO freezes (account_id, id, amount_minor, captured_minor, state, reference, created_at, resolved_at) VALUES ('\(Self.a)', 'frz_m7', 3000, 1250, 'captured', 'vm-1', 20, 30)",
            "INSERT INTO charges (account_id, id, mode, amount_minor, cash_minor, gift_minor, refunded_cash_minor, refunded_gift_minor, created_at) VALUES ('\(Self.a)', 'chg_m7', 'prepaid', 500, 300, 200, 120, 80, 70)",
            // A key of a write outside the ledger stays where it is.
            "INSERT INTO idempotency_keys (account_id, idem_key, request_hash, response_json, created_at) VALUES ('\(Self.a)', 'k-user', 'h', '{}', 1)",
        ]
        for e in Self.entries {
            statements.append("INSERT INTO journal_entries (account_id, id, kind, idempotency_key, actor, memo, created_at) VALUES ('\(Self.a)', '\(e.id)', '\(e.kind)', '\(e.key)', 'test', NULL, 10)")
            for (seq, p) in e.postings.enumerated() {
                statements.append("INSERT INTO postings (account_id, entry_id, seq, book, amount_minor) VALUES ('\(Self.a)', '\(e.id)', \(seq), '\(p.book.rawValue)', \(p.amountMinor))")
            }
            for (id, m, related) in e.records {
                statements.append("""
                    INSERT INTO transactions (account_id, id, entry_id, type, amount_minor, cash_delta_minor, gift_delta_minor, frozen_delta_minor,
                      balance_after_minor, available_after_minor, related_type, related_id, channel_trade_no, memo, created_at)
                    VALUES ('\(Self.a)', '\(id)', '\(e.id)', '\(m.type.rawValue)', \(m.amountMinor), \(m.cashDeltaMinor), \(m.giftDeltaMinor),
                      \(m.frozenDeltaMinor), \(m.balanceAfterMinor), \(m.availableAfterMinor), \(Self.sql(related?.0)), \(Self.sql(related?.1)), NULL, NULL, 10)
                    """)
            }
            let json = String(decoding: try encoder.encode(e.receipt), as: UTF8.self)
            statements.append("INSERT INTO idempotency_keys (account_id, idem_key, request_hash, response_json, created_at) VALUES ('\(Self.a)', '\(e.key)', '\(Secrets.sha256Hex(e.fingerprint))', \(Self.sql(json)), 10)")
        }
        for s in statements { try await old.executeRawForTests(s) }
        await old.shutdown()

        let store = try await SQLStore.open(location)
        defer { cleanup() }
        try await store.closingForTests(backend) { store in
            try await store.migrate()
            #expect(try await store.verify().map(\.description) == [])
            #expect(try await store.wallet(accountId: Self.a) == Self.wallet(cash: 18_950))
            // Every W11 record, newest first, with its type, amount and balance after; ids kept.
            let records = try await store.transactions(TransactionQuery(accountId: Self.a))
            let expected = Self.entries.flatMap { e in e.records.map { ($0.id, $0.1) } }.reversed()
            #expect(records.map(\.id) == expected.map(\.0))
            #expect(records.map(\.movement.type) == expected.map(\.1.type))
            #expect(records.map(\.movement.amountMinor) == expected.map(\.1.amountMinor))
            #expect(records.map(\.movement.balanceAfterMinor) == expected.map(\.1.balanceAfterMinor))
            // Every entry posts what it posted, now one balanced row per record.
            let entries = try await store.entries(accountId: Self.a)
            #expect(entries.map(\.id) == Self.entries.map(\.id))
            for (new, old) in zip(entries, Self.entries) {
                #expect(BookAmounts(new.postings) == BookAmounts(old.postings), "\(old.id)")
                #expect(new.idempotencyKey == old.key)
            }
            // Every answer replays as it was given, rebuilt from the rows.
            let pairs = Self.entries.map { IdempotencyKeyPair(scope: Self.a, key: $0.key) } + [IdempotencyKeyPair(scope: Self.a, key: "k-user")]
            let stored = try await store.transaction { tx in try await tx.storedKeys(pairs) }
            for e in Self.entries {
                guard case let .ledger(head, freeze, charge, recharge) = stored[IdempotencyKeyPair(scope: Self.a, key: e.key)] else {
                    Issue.record("\(e.key) lost")
                    continue
                }
                #expect(head.head?.requestHash == Secrets.sha256Hex(e.fingerprint))
                var answer = LedgerReceipt(replaying: head, freeze: freeze, charge: charge, recharge: recharge)
                answer.createdAtMicros = e.receipt.createdAtMicros
                #expect(answer == e.receipt, "\(e.key)")
            }
            guard case .other = stored[IdempotencyKeyPair(scope: Self.a, key: "k-user")] else {
                Issue.record("the non-ledger key was lost")
                return
            }
            try await store.executeRawForTests("SELECT 1 FROM ledger_entries")
            for table in ["journal_entries", "postings", "transactions"] {
                await #expect(throws: (any Error).self, "\(table) is gone") { try await store.executeRawForTests("SELECT 1 FROM \(table)") }
            }
        }
    }
}
