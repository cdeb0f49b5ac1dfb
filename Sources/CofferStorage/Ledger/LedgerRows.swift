import CofferCore
import CofferServices
import SQLKit

/// The journal's one table, `ledger_entries`: written by the batch writer, read for W11 records, replays and `verify`.
enum LedgerRows {
    static let bookColumns: [(Book, String)] = [
        (.cash, "cash_minor"), (.gift, "gift_minor"), (.share, "share_minor"), (.frozen, "frozen_minor"),
        (.advance, "advance_minor"), (.channelClearing, "channel_clearing_minor"), (.revenue, "revenue_minor"),
        (.giftExpense, "gift_expense_minor"), (.adjustment, "adjustment_minor"), (.holdControl, "hold_control_minor"),
    ]

    /// One multi-row statement for the whole batch (typed arrays on PostgreSQL).
    static func insert(_ rows: [LedgerRowRecord]) -> BatchInsert {
        var columns: [(String, ColumnValues)] = [
            ("account_id", .text(rows.map(\.accountId))), ("id", .text(rows.map(\.id))), ("entry_id", .text(rows.map(\.entryId))),
            ("seq", .bigint(rows.map { Int64($0.seq) })), ("kind", .text(rows.map(\.kind))),
            ("type", .text(rows.map(\.movement.type.rawValue))), ("actor", .text(rows.map(\.actor))),
            ("amount_minor", .bigint(rows.map(\.movement.amountMinor))),
            ("balance_after_minor", .bigint(rows.map(\.movement.balanceAfterMinor))),
            ("available_after_minor", .bigint(rows.map(\.movement.availableAfterMinor))),
        ]
        for (book, column) in bookColumns { columns.append((column, .bigint(rows.map { $0.movement.books[book] }))) }
        columns += [
            ("related_type", .optionalText(rows.map(\.relatedType))), ("related_id", .optionalText(rows.map(\.relatedId))),
            ("detail_id", .optionalText(rows.map(\.detailId))), ("channel_trade_no", .optionalText(rows.map(\.channelTradeNo))),
            ("memo", .optionalText(rows.map(\.memo))), ("created_at", .bigint(rows.map(\.createdAtMicros))),
            ("idempotency_key", .optionalText(rows.map { $0.head?.idempotencyKey })),
            ("request_hash", .optionalText(rows.map { $0.head?.requestHash })),
            ("wallet_cash_minor", .optionalBigint(rows.map { $0.head?.walletAfter.cashMinor })),
            ("wallet_gift_minor", .optionalBigint(rows.map { $0.head?.walletAfter.giftMinor })),
            ("wallet_share_minor", .optionalBigint(rows.map { $0.head?.walletAfter.shareMinor })),
            ("wallet_frozen_minor", .optionalBigint(rows.map { $0.head?.walletAfter.frozenMinor })),
            ("wallet_advance_minor", .optionalBigint(rows.map { $0.head?.walletAfter.advanceOutstandingMinor })),
        ]
        return BatchInsert("ledger_entries", columns)
    }

    static func row(_ r: any SQLRow) throws -> LedgerRowRecord {
        var books = BookAmounts()
        for (book, column) in bookColumns { books[book] = try r.decode(column: column, as: Int64.self) }
        let movement = Movement(type: TransactionType(rawValue: try r.decode(column: "type", as: String.self)) ?? .adjustment,
                                amountMinor: try r.decode(column: "amount_minor", as: Int64.self),
                                cashDeltaMinor: books.cash, giftDeltaMinor: books.gift, frozenDeltaMinor: books.frozen,
                                balanceAfterMinor: try r.decode(column: "balance_after_minor", as: Int64.self),
                                availableAfterMinor: try r.decode(column: "available_after_minor", as: Int64.self), books: books)
        var head: LedgerRowRecord.Head?
        if let key = try r.decode(column: "idempotency_key", as: String?.self) {
            head = .init(idempotencyKey: key, requestHash: try r.decode(column: "request_hash", as: String.self),
                         walletAfter: WalletBalances(cashMinor: try r.decode(column: "wallet_cash_minor", as: Int64.self),
                                                     giftMinor: try r.decode(column: "wallet_gift_minor", as: Int64.self),
                                                     shareMinor: try r.decode(column: "wallet_share_minor", as: Int64.self),
                                                     frozenMinor: try r.decode(column: "wallet_frozen_minor", as: Int64.self),
                                                     advanceOutstandingMinor: try r.decode(column: "wallet_advance_minor", as: Int64.self)))
        }
        return LedgerRowRecord(
            accountId: try r.decode(column: "account_id", as: String.self), id: try r.decode(column: "id", as: String.self),
            entryId: try r.decode(column: "entry_id", as: String.self), seq: try r.decode(column: "seq", as: Int.self),
            kind: try r.decode(column: "kind", as: String.self), actor: try r.decode(column: "actor", as: String.self),
            movement: movement, relatedType: try r.decode(column: "related_type", as: String?.self),
            relatedId: try r.decode(column: "related_id", as: String?.self),
            detailId: try r.decode(column: "detail_id", as: String?.self),
            channelTradeNo: try r.decode(column: "channel_trade_no", as: String?.self),
            memo: try r.decode(column: "memo", as: String?.self),
            createdAtMicros: try r.decode(column: "created_at", as: Int64.self), head: head)
    }

    /// What the keys of a batch already stand for: one query over both kinds of key, then the objects of the ledger
    /// entries found (replays are rare; the common batch finds nothing and pays one round trip).
    static func storedKeys(_ db: any SQLDatabase, _ pairs: [IdempotencyKeyPair]) async throws -> [IdempotencyKeyPair: StoredKey] {
        guard !pairs.isEmpty else { return [:] }
        var found: [IdempotencyKeyPair: StoredKey] = [:]
        var heads: [LedgerRowRecord] = []
        for chunk in Array(Set(pairs)).chunked(500) {
            // A join on the exact (account, key) pairs, so that both sides use their unique index on the pair; an
            // IN × IN filter let PostgreSQL scan every row of the accounts instead (7–10 ms per batch in the profile).
            var pairs: SQLQueryString = ""
            for (i, p) in chunk.enumerated() { pairs += i == 0 ? "(\(bind: p.scope), \(bind: p.key))" : ", (\(bind: p.scope), \(bind: p.key))" }
            let rows = try await db.raw("""
                WITH wanted(account_id, k) AS (VALUES \(pairs))
                SELECT l.account_id, l.idempotency_key AS k, 'ledger' AS source
                FROM wanted w JOIN ledger_entries l ON l.account_id = w.account_id AND l.idempotency_key = w.k
                UNION ALL
                SELECT i.account_id, i.idem_key AS k, 'other' AS source
                FROM wanted w JOIN idempotency_keys i ON i.account_id = w.account_id AND i.idem_key = w.k
                """).all()
            for row in rows {
                let pair = IdempotencyKeyPair(scope: try row.decode(column: "account_id", as: String.self),
                                              key: try row.decode(column: "k", as: String.self))
                if try row.decode(column: "source", as: String.self) == "other" {
                    found[pair] = .other
                } else if let head = try await db.raw("""
                    SELECT * FROM ledger_entries WHERE account_id = \(bind: pair.scope) AND idempotency_key = \(bind: pair.key)
                    """).first().map({ try LedgerRows.row($0) }) {
                    heads.append(head)
                }
            }
        }
        for head in heads {
            let pair = IdempotencyKeyPair(scope: head.accountId, key: head.head!.idempotencyKey)
            var freeze: FreezeRecord?, charge: ChargeRecord?, recharge: RechargeRecord?
            if let id = head.relatedId {
                switch head.relatedType {
                case "freeze":
                    freeze = try await db.raw("SELECT * FROM freezes WHERE account_id = \(bind: head.accountId) AND id = \(bind: id)").first().map(Rows.freeze)
                case "charge":
                    charge = try await db.raw("SELECT * FROM charges WHERE account_id = \(bind: head.accountId) AND id = \(bind: id)").first().map(Rows.charge)
                case "recharge":
                    recharge = try await db.raw("SELECT * FROM recharges WHERE account_id = \(bind: head.accountId) AND id = \(bind: id)").first().map(Rows.recharge)
                default:
                    break
                }
            }
            found[pair] = .ledger(head, freeze: freeze, charge: charge, recharge: recharge)
        }
        return found
    }

    static func keyUsed(_ db: any SQLDatabase, scope: String, key: String) async throws -> Bool {
        try await db.raw("SELECT 1 AS x FROM ledger_entries WHERE account_id = \(bind: scope) AND idempotency_key = \(bind: key)").first() != nil
    }
}
