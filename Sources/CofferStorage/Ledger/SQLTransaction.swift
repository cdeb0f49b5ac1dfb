import CofferCore
import CofferServices
import SQLKit

/// One open write transaction.
struct SQLTransaction: StoreTransaction {
    let db: any SQLDatabase
    let driver: DriverConnection
    let postgres: Bool
    /// Z4: audit records are chained and inserted at the end of the transaction (`SQLStore.writeTransaction`).
    let audits = AuditBuffer()

    /// SQLite already holds the database write lock for the whole transaction (BEGIN IMMEDIATE).
    private var forUpdate: String { postgres ? " FOR UPDATE" : "" }

    func idempotency(scope: String, key: String) async throws -> StoredIdempotency? {
        try await Self.idempotency(db, scope: scope, key: key)
    }

    /// Shared by the transaction and by the store's plain read.
    static func idempotency(_ db: any SQLDatabase, scope: String, key: String) async throws -> StoredIdempotency? {
        try await db.raw("SELECT request_hash, response_json FROM idempotency_keys WHERE account_id = \(bind: scope) AND idem_key = \(bind: key)")
            .first().map { StoredIdempotency(requestHash: try $0.decode(column: "request_hash", as: String.self),
                                             responseJSON: try $0.decode(column: "response_json", as: String.self)) }
    }

    func storedKeys(_ pairs: [IdempotencyKeyPair]) async throws -> [IdempotencyKeyPair: StoredKey] {
        try await LedgerRows.storedKeys(db, pairs)
    }

    func ledgerKeyUsed(scope: String, key: String) async throws -> Bool {
        try await LedgerRows.keyUsed(db, scope: scope, key: key)
    }

    /// Claims the key for this transaction: on PostgreSQL a concurrent claim of the same key waits here until the first
    /// transaction ends, then finds the key taken (and reads its answer) or free (the first rolled back).
    func claimIdempotency(scope: String, key: String, _ stored: StoredIdempotency, nowMicros: Int64) async throws -> Bool {
        try await db.raw("""
            INSERT INTO idempotency_keys (account_id, idem_key, request_hash, response_json, created_at)
            VALUES (\(bind: scope), \(bind: key), \(bind: stored.requestHash), \(bind: stored.responseJSON), \(bind: nowMicros))
            ON CONFLICT (account_id, idem_key) DO NOTHING RETURNING account_id
            """).all().count == 1
    }

    func lockWallets(_ accountIds: [String]) async throws -> [String: WalletBalances] {
        guard !accountIds.isEmpty else { return [:] }
        var result: [String: WalletBalances] = [:]
        for chunk in accountIds.chunked(500) {
            let rows = try await db.raw("SELECT * FROM wallets WHERE account_id IN (\(binds: chunk.map { $0 as any Encodable & Sendable })) ORDER BY account_id\(unsafeRaw: forUpdate)").all()
            for row in rows { result[try row.decode(column: "account_id", as: String.self)] = try Rows.wallet(row) }
        }
        return result
    }

    func lockFreezes(_ keys: [ObjectKey]) async throws -> [ObjectKey: FreezeRecord] {
        try await lockAccountRows("freezes", keys, Rows.freeze) { ObjectKey($0.accountId, $0.id) }
    }

    func lockCharges(_ keys: [ObjectKey]) async throws -> [ObjectKey: ChargeRecord] {
        try await lockAccountRows("charges", keys, Rows.charge) { ObjectKey($0.accountId, $0.id) }
    }

    /// Rows keyed by (account_id, id), locked in key order with one statement per chunk. Ids are random per object, so
    /// the IN × IN filter matches only the wanted rows in practice; the rest are dropped here.
    func lockAccountRows<T>(_ table: String, _ keys: [ObjectKey], _ map: (any SQLRow) throws -> T,
                                    key: (T) -> ObjectKey) async throws -> [ObjectKey: T] {
        let wanted = Set(keys)
        var found: [ObjectKey: T] = [:]
        for chunk in wanted.sorted().chunked(250) {
            let accounts = Array(Set(chunk.map(\.accountId))).sorted().map { $0 as any Encodable & Sendable }
            let ids = Array(Set(chunk.map(\.id))).sorted().map { $0 as any Encodable & Sendable }
            let rows = try await db.raw("""
                SELECT * FROM \(ident: table) WHERE account_id IN (\(binds: accounts)) AND id IN (\(binds: ids))
                ORDER BY account_id, id\(unsafeRaw: forUpdate)
                """).all()
            for row in rows {
                let record = try map(row)
                if wanted.contains(key(record)) { found[key(record)] = record }
            }
        }
        return found
    }

    /// Writes a whole batch with one typed multi-row statement per table (see BatchInsert), then the state-guarded updates
    /// and one UPDATE for every wallet of the batch.
    func apply(_ batch: LedgerBatchWrite) async throws {
        // Every row of a batch has the batch's time (the Clock port's, read once by the writer).
        let now = batch.rows.first?.createdAtMicros ?? 0
        try await driver.run(LedgerRows.insert(batch.rows))
        let freezes = batch.newFreezes
        try await driver.run(BatchInsert("freezes", [
            ("account_id", .text(freezes.map(\.accountId))), ("id", .text(freezes.map(\.id))),
            ("amount_minor", .bigint(freezes.map(\.amountMinor))), ("captured_minor", .bigint(freezes.map(\.capturedMinor))),
            ("state", .text(freezes.map(\.state.rawValue))), ("expires_at", .optionalBigint(freezes.map(\.expiresAtMicros))),
            ("reference", .optionalText(freezes.map(\.reference))), ("created_at", .bigint(freezes.map(\.createdAtMicros))),
            ("resolved_at", .optionalBigint(freezes.map(\.resolvedAtMicros))),
        ]))
        let charges = batch.newCharges
        try await driver.run(BatchInsert("charges", [
            ("account_id", .text(charges.map(\.accountId))), ("id", .text(charges.map(\.id))),
            ("mode", .text(charges.map(\.mode.rawValue))), ("amount_minor", .bigint(charges.map(\.amountMinor))),
            ("cash_minor", .bigint(charges.map(\.cashMinor))), ("gift_minor", .bigint(charges.map(\.giftMinor))),
            ("coupon_minor", .bigint(charges.map(\.couponMinor))),
            ("refunded_cash_minor", .bigint(charges.map(\.refundedCashMinor))),
            ("refunded_gift_minor", .bigint(charges.map(\.refundedGiftMinor))),
            ("reference", .optionalText(charges.map(\.reference))), ("created_at", .bigint(charges.map(\.createdAtMicros))),
        ]))
        for f in batch.updatedFreezes {
            // The state guard makes a lost race visible: resolving a freeze twice updates no row and fails the batch.
            let rows = try await db.raw("""
                UPDATE freezes SET state = \(bind: f.state.rawValue), captured_minor = \(bind: f.capturedMinor),
                  resolved_at = \(bind: f.resolvedAtMicros) WHERE account_id = \(bind: f.accountId) AND id = \(bind: f.id) AND state = 'active'
                RETURNING id
                """).all()
            guard rows.count == 1 else { throw StoreError("freeze \(f.id) changed concurrently") }
        }
        for c in batch.updatedCharges {
            _ = try await db.raw("""
                UPDATE charges SET refunded_cash_minor = \(bind: c.refundedCashMinor), refunded_gift_minor = \(bind: c.refundedGiftMinor)
                WHERE account_id = \(bind: c.accountId) AND id = \(bind: c.id)
                """).all()
        }
        for r in batch.paidRecharges {
            let rows = try await db.raw("""
                UPDATE recharges SET state = 'paid', channel_trade_no = \(bind: r.channelTradeNo), paid_at = \(bind: r.paidAtMicros),
                       payer_id = \(bind: r.payerId)
                WHERE account_id = \(bind: r.accountId) AND id = \(bind: r.id) AND state IN ('pending','expired') RETURNING id
                """).all()
            guard rows.count == 1 else { throw StoreError("recharge \(r.id) was paid concurrently") }
            if let tradeNo = r.channelTradeNo {
                try await Lookups.insert(db, .channelTrade, Lookups.channelTrade(r.channel, tradeNo), accountId: r.accountId, targetId: r.id)
            }
        }
        try await applyMoneyIn(batch)
        try await applyTerms(batch)
        try await applyOrders(batch)
        try await insertWebhookEvents(batch.webhookEvents)
        // One statement for every wallet of the batch (UPDATE … FROM a VALUES list: PostgreSQL, and SQLite ≥ 3.33).
        for chunk in Array(batch.wallets).chunked(1_000) {
            var sql: SQLQueryString = "WITH v(account_id, cash, gift, share, frozen, advance) AS (VALUES "
            for (i, (accountId, w)) in chunk.enumerated() {
                if i > 0 { sql += ", " }
                sql += "(\(bind: accountId), \(bind: w.cashMinor), \(bind: w.giftMinor), \(bind: w.shareMinor), \(bind: w.frozenMinor), \(bind: w.advanceOutstandingMinor))"
            }
            sql += """
                ) UPDATE wallets SET cash_minor = v.cash, gift_minor = v.gift, share_minor = v.share, frozen_minor = v.frozen,
                  advance_minor = v.advance, updated_at = \(bind: now)
                FROM v WHERE wallets.account_id = v.account_id RETURNING wallets.account_id
                """
            let updated = try await db.raw(sql).all().count
            guard updated == chunk.count else { throw StoreError("updated \(updated) of \(chunk.count) wallets") }
        }
        for a in batch.audits { try await insertAudit(a) }
    }

    func insertAccount(_ a: AccountRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO accounts (id, type, entity_name, tax_id, contact_email, currency, time_zone, created_at, language)
            VALUES (\(bind: a.id), \(bind: a.type.rawValue), \(bind: a.entityName), \(bind: a.taxId), \(bind: a.contactEmail),
                    \(bind: a.currency), \(bind: a.timeZone), \(bind: a.createdAtMicros), \(bind: a.language.rawValue))
            """).all()
        _ = try await db.raw("INSERT INTO wallets (account_id, currency, updated_at) VALUES (\(bind: a.id), \(bind: a.currency), \(bind: a.createdAtMicros))").all()
    }

    func insertUser(_ u: UserRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO users (id, account_id, email, name, role, password_hash, created_at)
            VALUES (\(bind: u.id), \(bind: u.accountId), \(bind: u.email), \(bind: u.name), \(bind: u.role.rawValue),
                    \(bind: u.passwordHash), \(bind: u.createdAtMicros))
            """).all()
        try await Lookups.insert(db, .email, u.email, accountId: u.accountId, targetId: u.id)
    }

    func userExists(email: String) async throws -> Bool {
        try await !Lookups.present(db, .email, [email]).isEmpty
    }

    func insertApiKey(_ k: ApiKeyRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO api_keys (id, kind, account_id, user_id, name, digest, created_at)
            VALUES (\(bind: k.id), \(bind: k.kind.rawValue), \(bind: k.accountId), \(bind: k.userId), \(bind: k.name),
                    \(bind: k.digest), \(bind: k.createdAtMicros))
            """).all()
    }

    func revokeApiKey(accountId: String, id: String, atMicros: Int64) async throws -> Bool {
        try await db.raw("""
            UPDATE api_keys SET revoked_at = \(bind: atMicros)
            WHERE account_id = \(bind: accountId) AND id = \(bind: id) AND revoked_at IS NULL RETURNING id
            """).all().count == 1
    }

    func insertRecharge(_ r: RechargeRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO recharges (account_id, id, channel, amount_minor, state, channel_trade_no, expires_at, paid_at, created_at,
                                   payment_kind, payment_url, fee_minor)
            VALUES (\(bind: r.accountId), \(bind: r.id), \(bind: r.channel), \(bind: r.amountMinor), \(bind: r.state.rawValue),
                    \(bind: r.channelTradeNo), \(bind: r.expiresAtMicros), \(bind: r.paidAtMicros), \(bind: r.createdAtMicros),
                    \(bind: r.paymentKind), \(bind: r.paymentURL), \(bind: r.feeMinor ?? 0))
            """).all()
        // The channel names the order by its id alone.
        try await Lookups.insert(db, .recharge, r.id, accountId: r.accountId, targetId: r.id)
        if let tradeNo = r.channelTradeNo {
            try await Lookups.insert(db, .channelTrade, Lookups.channelTrade(r.channel, tradeNo), accountId: r.accountId, targetId: r.id)
        }
    }

    func expireRecharges(dueBeforeMicros: Int64, limit: Int) async throws -> Int {
        try await db.raw("""
            UPDATE recharges SET state = 'expired' WHERE (account_id, id) IN (
              SELECT account_id, id FROM recharges WHERE state = 'pending' AND expires_at <= \(bind: dueBeforeMicros) LIMIT \(literal: limit))
            RETURNING id
            """).all().count
    }

    func insertAudit(_ a: AuditRecord) async throws {
        audits.append(a)
    }

    func sumRechargeAmounts(accountId: String, channel: String, sinceMicros: Int64) async throws -> Int64 {
        try await db.raw("""
            SELECT CAST(COALESCE(SUM(amount_minor), 0) AS BIGINT) AS n FROM recharges
            WHERE account_id = \(bind: accountId) AND channel = \(bind: channel) AND state IN ('pending','paid') AND created_at >= \(bind: sinceMicros)
            """).first()!.decode(column: "n", as: Int64.self)
    }

    func countRecentRecharges(accountId: String, sinceMicros: Int64) async throws -> Int {
        try await db.raw("SELECT COUNT(*) AS n FROM recharges WHERE account_id = \(bind: accountId) AND created_at >= \(bind: sinceMicros)")
            .first()!.decode(column: "n", as: Int.self)
    }
}

extension Dictionary where Key == ObjectKey {
    /// For kinds whose snapshot is keyed by id (the decision checks the account).
    var byId: [String: Value] { Dictionary<String, Value>(uniqueKeysWithValues: map { ($0.key.id, $0.value) }) }
}

extension Array {
    func chunked(_ size: Int) -> [ArraySlice<Element>] {
        stride(from: 0, to: count, by: size).map { self[$0..<Swift.min($0 + size, count)] }
    }
}
