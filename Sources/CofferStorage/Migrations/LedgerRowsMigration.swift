import CofferCore
import CofferServices
import Foundation
import SQLKit

/// Migration 7's data step: the old journal (an entry row, a row per posting, a row per W11 record, and the stored JSON
/// answer) becomes one `ledger_entries` row per W11 record. Record and entry ids are kept (customers hold them). Each
/// record gets the books its type moves; whatever the entry posted beyond that (a recharge's R4 fee) goes on its first
/// row, so every entry still posts exactly what it posted, which is checked before anything is written. One account's
/// journal is loaded at a time.
enum LedgerRowsMigration {
    struct Failure: Error, CustomStringConvertible { let description: String }

    static func run(_ db: any SQLDatabase, _ driver: DriverConnection) async throws {
        let accounts = try await db.raw("SELECT DISTINCT account_id FROM journal_entries ORDER BY account_id").all()
            .map { try $0.decode(column: "account_id", as: String.self) }
        for account in accounts {
            let rows = try await rows(of: account, db)
            for chunk in rows.chunked(1_000) { try await driver.run(LedgerRows.insert(Array(chunk))) }
        }
    }

    static func rows(of account: String, _ db: any SQLDatabase) async throws -> [LedgerRowRecord] {
        var posted: [String: BookAmounts] = [:]
        for row in try await db.raw("SELECT entry_id, book, amount_minor FROM postings WHERE account_id = \(bind: account)").all() {
            guard let book = Book(rawValue: try row.decode(column: "book", as: String.self)) else {
                throw Failure(description: "unknown book in account \(account)")
            }
            posted[try row.decode(column: "entry_id", as: String.self), default: .zero][book] += try row.decode(column: "amount_minor", as: Int64.self)
        }
        var records: [String: [TransactionRecord]] = [:]
        for row in try await db.raw("SELECT * FROM transactions WHERE account_id = \(bind: account) ORDER BY id").all() {
            let t = try Rows.transaction(row)
            records[t.entryId, default: []].append(t)
        }
        var answers: [String: (hash: String, receipt: LedgerReceipt?)] = [:]
        for row in try await db.raw("SELECT idem_key, request_hash, response_json FROM idempotency_keys WHERE account_id = \(bind: account)").all() {
            let json = try row.decode(column: "response_json", as: String.self)
            answers[try row.decode(column: "idem_key", as: String.self)] =
                (try row.decode(column: "request_hash", as: String.self), try? JSONDecoder().decode(LedgerReceipt.self, from: Data(json.utf8)))
        }
        var wallet = WalletBalances.zero
        var out: [LedgerRowRecord] = []
        for row in try await db.raw("SELECT * FROM journal_entries WHERE account_id = \(bind: account) ORDER BY id").all() {
            let e = try Rows.entry(row)
            let total = posted[e.id] ?? .zero
            wallet.cashMinor += total.cash
            wallet.giftMinor += total.gift
            wallet.shareMinor += total.share
            wallet.frozenMinor += total.frozen
            wallet.advanceOutstandingMinor -= total.advance
            guard let movements = records[e.id], !movements.isEmpty else {
                throw Failure(description: "entry \(e.id) of \(account) has no transaction record")
            }
            var books = movements.map { Self.books(of: $0.movement) }
            var residual = total
            for b in books { for book in Book.allCases { residual[book] -= b[book] } }
            for book in Book.allCases { books[0][book] += residual[book] }
            guard residual.sum == 0, books.allSatisfy({ $0.sum == 0 }) else {
                throw Failure(description: "entry \(e.id) of \(account) does not balance")
            }
            let answer = answers[e.idempotencyKey]
            for (seq, t) in movements.enumerated() {
                var movement = t.movement
                movement.books = books[seq]
                guard movement.cashDeltaMinor == books[seq].cash, movement.giftDeltaMinor == books[seq].gift,
                      movement.frozenDeltaMinor == books[seq].frozen else {
                    throw Failure(description: "record \(t.id) of \(account) moves other wallet books than its entry posted")
                }
                let head = seq == 0 ? LedgerRowRecord.Head(
                    idempotencyKey: e.idempotencyKey, requestHash: answer?.hash ?? "migrated-without-request-hash",
                    walletAfter: answer?.receipt?.wallet ?? wallet) : nil
                out.append(LedgerRowRecord(
                    accountId: account, id: t.id, entryId: e.id, seq: seq, kind: e.kind, actor: e.actor, movement: movement,
                    relatedType: t.relatedType, relatedId: t.relatedId, detailId: answer?.receipt?.refund?.id,
                    channelTradeNo: t.channelTradeNo, memo: t.memo, createdAtMicros: t.createdAtMicros, head: head))
            }
        }
        return out
    }

    /// The books a W11 record of this type moves: its wallet deltas and the counter-book the ledger always used for it.
    static func books(of m: Movement) -> BookAmounts {
        var b = BookAmounts()
        b.cash = m.cashDeltaMinor
        b.gift = m.giftDeltaMinor
        b.frozen = m.frozenDeltaMinor
        if m.type == .advance || m.type == .advanceRepayment { b.advance = -m.cashDeltaMinor }
        let counter: Book? = switch m.type {
        case .recharge, .remittance: .channelClearing
        case .codeRedemption: m.cashDeltaMinor != 0 ? .channelClearing : .giftExpense
        case .giftGrant: .giftExpense
        case .freeze, .unfreeze: .holdControl
        case .deduction, .refund: .revenue
        // Types born after migration 7: no schema-6 row has them.
        case .advance, .advanceRepayment, .couponUse, .couponReturn, .orderDelivery: nil
        case .adjustment, .withdrawal, .withdrawalReversal, .transferIn, .transferOut: .adjustment
        }
        if let counter { b[counter] -= b.sum }
        return b
    }
}
