import CofferCore
import CofferServices
import Foundation
import SQLKit

/// Orders, merged payments and coupons (migration 12).
enum OrderRows {
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = .sortedKeys
        return e
    }()

    static func json<T: Encodable>(_ value: T) -> String { String(decoding: try! encoder.encode(value), as: UTF8.self) }
    static func decode<T: Decodable>(_ type: T.Type, _ text: String) throws -> T { try JSONDecoder().decode(type, from: Data(text.utf8)) }

    static func order(_ row: any SQLRow) throws -> OrderRecord {
        let r = Rows.Reader(row: row)
        var o = OrderRecord(id: try r.text("id"), accountId: try r.text("account_id"), type: OrderType(rawValue: try r.text("type"))!,
                            productId: try r.text("product_id"), productVersion: try r.int("product_version"),
                            specification: try r.text("specification"), durationMonths: Int(try r.int("duration_months")),
                            resourceId: try r.optionalText("resource_id"), listPriceMinor: try r.int("list_price_minor"),
                            discountMinor: try r.int("discount_minor"), couponsAllowed: try r.bool("coupons_allowed"),
                            expiresAtMicros: try r.int("expires_at"), createdAtMicros: try r.int("created_at"),
                            reference: try r.optionalText("reference"))
        o.state = OrderState(rawValue: try r.text("state"))!
        o.paymentId = try r.optionalText("payment_id")
        o.couponMinor = try r.int("coupon_minor")
        o.frozenMinor = try r.int("frozen_minor")
        o.freezeId = try r.optionalText("freeze_id")
        o.cashMinor = try r.int("cash_minor")
        o.giftMinor = try r.int("gift_minor")
        o.paidAtMicros = try r.optionalInt("paid_at")
        o.resolvedAtMicros = try r.optionalInt("resolved_at")
        o.termFromMicros = try r.optionalInt("term_from")
        o.termToMicros = try r.optionalInt("term_to")
        return o
    }

    static func coupon(_ row: any SQLRow) throws -> CouponRecord {
        let r = Rows.Reader(row: row)
        var c = CouponRecord(id: try r.text("id"), accountId: try r.text("account_id"), kind: CouponKind(rawValue: try r.text("kind"))!,
                             valueMinor: try r.optionalInt("value_minor"), percentOff: try r.optionalInt("percent_off").map { Int($0) },
                             singleUse: try r.bool("single_use"), conditions: try decode(CouponConditions.self, try r.text("conditions")),
                             validFromMicros: try r.int("valid_from"), validUntilMicros: try r.int("valid_until"),
                             source: try r.text("source"), createdAtMicros: try r.int("created_at"))
        c.remainingMinor = try r.int("remaining_minor")
        c.storedState = CouponStoredState(rawValue: try r.text("state"))!
        c.usedAtMicros = try r.optionalInt("used_at")
        return c
    }

    static func refund(_ row: any SQLRow) throws -> ResourceRefundRecord {
        let r = Rows.Reader(row: row)
        return ResourceRefundRecord(id: try r.text("id"), accountId: try r.text("account_id"), resourceId: try r.text("resource_id"),
                                    productId: try r.text("product_id"), specification: try r.text("specification"),
                                    lines: try decode([ResourceRefundRecord.Line].self, try r.text("lines")), reason: try r.optionalText("reason"),
                                    actor: try r.text("actor"), createdAtMicros: try r.int("created_at"))
    }

    static func use(_ row: any SQLRow) throws -> CouponUseRecord {
        let r = Rows.Reader(row: row)
        return CouponUseRecord(accountId: try r.text("account_id"), paymentId: try r.text("payment_id"), orderId: try r.text("order_id"),
                               couponId: try r.text("coupon_id"), amountMinor: try r.int("amount_minor"),
                               returnedAtMicros: try r.optionalInt("returned_at"))
    }

    static func payment(_ row: any SQLRow) throws -> OrderPaymentRecord {
        let r = Rows.Reader(row: row)
        func list(_ c: String) throws -> [String] { try r.text(c).split(separator: ",").map(String.init) }
        return OrderPaymentRecord(id: try r.text("id"), accountId: try r.text("account_id"), orderIds: try list("order_ids"),
                                  couponIds: try list("coupon_ids"), dueMinor: try r.int("due_minor"), couponMinor: try r.int("coupon_minor"),
                                  frozenMinor: try r.int("frozen_minor"), createdAtMicros: try r.int("created_at"))
    }

    static func insertCoupon(_ db: any SQLDatabase, _ c: CouponRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO coupons (account_id, id, kind, value_minor, percent_off, remaining_minor, single_use, conditions, payment_type,
              valid_from, valid_until, state, source, created_at, used_at)
            VALUES (\(bind: c.accountId), \(bind: c.id), \(bind: c.kind.rawValue), \(bind: c.valueMinor), \(bind: c.percentOff.map { Int64($0) }),
              \(bind: c.remainingMinor), \(bind: c.singleUse), \(bind: json(c.conditions)), \(bind: c.conditions.paymentType.rawValue),
              \(bind: c.validFromMicros),
              \(bind: c.validUntilMicros), \(bind: c.storedState.rawValue), \(bind: c.source), \(bind: c.createdAtMicros), \(bind: c.usedAtMicros))
            """).all()
    }
}

extension SQLStore {
    public func order(accountId: String, id: String) async throws -> OrderRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM orders WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(OrderRows.order)
        }
    }

    public func orders(_ q: OrderQuery) async throws -> [OrderRecord] {
        try await read { db in
            var sql: SQLQueryString = "SELECT * FROM orders WHERE account_id = \(bind: q.accountId)"
            if !q.states.isEmpty { sql += " AND state IN (\(binds: q.states.map { $0.rawValue as any Encodable & Sendable }))" }
            if let p = q.productId { sql += " AND product_id = \(bind: p)" }
            if let f = q.fromMicros { sql += " AND created_at >= \(bind: f)" }
            if let t = q.toMicros { sql += " AND created_at < \(bind: t)" }
            if let (at, id) = q.before { sql += " AND (created_at < \(bind: at) OR (created_at = \(bind: at) AND id < \(bind: id)))" }
            sql += " ORDER BY created_at DESC, id DESC LIMIT \(bind: Int64(q.limit))"
            return try await db.raw(sql).all().map(OrderRows.order)
        }
    }

    public func orderPayment(accountId: String, id: String) async throws -> OrderPaymentRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM order_payments WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(OrderRows.payment)
        }
    }

    public func coupon(accountId: String, id: String) async throws -> CouponRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM coupons WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(OrderRows.coupon)
        }
    }

    public func coupons(accountId: String) async throws -> [CouponRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM coupons WHERE account_id = \(bind: accountId) ORDER BY created_at DESC, id DESC LIMIT 1000").all().map(OrderRows.coupon)
        }
    }

    public func couponUses(accountId: String, orderId: String) async throws -> [CouponUseRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM coupon_uses WHERE account_id = \(bind: accountId) AND order_id = \(bind: orderId) ORDER BY coupon_id").all().map(OrderRows.use)
        }
    }
}

extension SQLStore {
    public func resourceRefunds(accountId: String) async throws -> [ResourceRefundRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM resource_refunds WHERE account_id = \(bind: accountId) ORDER BY created_at DESC, id DESC LIMIT 1000")
                .all().map(OrderRows.refund)
        }
    }

    public func resourceRefund(accountId: String, id: String) async throws -> ResourceRefundRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM resource_refunds WHERE account_id = \(bind: accountId) AND id = \(bind: id)").first().map(OrderRows.refund)
        }
    }

    public func couponCount(accountId: String) async throws -> Int {
        try await read { db in
            Int(try await db.raw("SELECT COUNT(*) AS n FROM coupons WHERE account_id = \(bind: accountId)").first()!.decode(column: "n", as: Int64.self))
        }
    }
}

extension SQLTransaction {
    /// Orders made inside a ledger batch (auto-renewals), in one typed multi-row insert.
    func insertOrders(_ orders: [OrderRecord]) async throws {
        guard !orders.isEmpty else { return }
        try await driver.run(BatchInsert("orders", [
            ("account_id", .text(orders.map(\.accountId))), ("id", .text(orders.map(\.id))), ("type", .text(orders.map(\.type.rawValue))),
            ("product_id", .text(orders.map(\.productId))), ("product_version", .bigint(orders.map(\.productVersion))),
            ("specification", .text(orders.map(\.specification))), ("duration_months", .bigint(orders.map { Int64($0.durationMonths) })),
            ("resource_id", .optionalText(orders.map(\.resourceId))), ("list_price_minor", .bigint(orders.map(\.listPriceMinor))),
            ("discount_minor", .bigint(orders.map(\.discountMinor))), ("due_minor", .bigint(orders.map(\.dueMinor))),
            ("coupons_allowed", .bool(orders.map(\.couponsAllowed))), ("state", .text(orders.map(\.state.rawValue))),
            ("expires_at", .bigint(orders.map(\.expiresAtMicros))), ("created_at", .bigint(orders.map(\.createdAtMicros))),
            ("payment_id", .optionalText(orders.map(\.paymentId))), ("coupon_minor", .bigint(orders.map(\.couponMinor))),
            ("frozen_minor", .bigint(orders.map(\.frozenMinor))), ("freeze_id", .optionalText(orders.map(\.freezeId))),
            ("cash_minor", .bigint(orders.map(\.cashMinor))), ("gift_minor", .bigint(orders.map(\.giftMinor))),
            ("paid_at", .optionalBigint(orders.map(\.paidAtMicros))), ("resolved_at", .optionalBigint(orders.map(\.resolvedAtMicros))),
            ("reference", .optionalText(orders.map(\.reference))), ("term_from", .optionalBigint(orders.map(\.termFromMicros))),
            ("term_to", .optionalBigint(orders.map(\.termToMicros))),
        ]))
    }

    func insertOrder(_ o: OrderRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO orders (account_id, id, type, product_id, product_version, specification, duration_months, resource_id,
              list_price_minor, discount_minor, due_minor, coupons_allowed, state, expires_at, created_at, payment_id, coupon_minor,
              frozen_minor, freeze_id, cash_minor, gift_minor, paid_at, resolved_at, reference, term_from, term_to)
            VALUES (\(bind: o.accountId), \(bind: o.id), \(bind: o.type.rawValue), \(bind: o.productId), \(bind: o.productVersion),
              \(bind: o.specification), \(bind: Int64(o.durationMonths)), \(bind: o.resourceId), \(bind: o.listPriceMinor),
              \(bind: o.discountMinor), \(bind: o.dueMinor), \(bind: o.couponsAllowed), \(bind: o.state.rawValue), \(bind: o.expiresAtMicros),
              \(bind: o.createdAtMicros), \(bind: o.paymentId), \(bind: o.couponMinor), \(bind: o.frozenMinor), \(bind: o.freezeId),
              \(bind: o.cashMinor), \(bind: o.giftMinor), \(bind: o.paidAtMicros), \(bind: o.resolvedAtMicros), \(bind: o.reference),
              \(bind: o.termFromMicros), \(bind: o.termToMicros))
            """).all()
    }

    func cancelOrder(accountId: String, id: String, nowMicros: Int64) async throws -> Bool {
        try await db.raw("""
            UPDATE orders SET state = 'cancelled', resolved_at = \(bind: nowMicros)
            WHERE account_id = \(bind: accountId) AND id = \(bind: id) AND state = 'unpaid' RETURNING id
            """).all().count == 1
    }

    func expireOrders(dueBeforeMicros: Int64, limit: Int) async throws -> [OrderRecord] {
        // Through the key list, so that one statement touches at most `limit` rows on both databases.
        let due = try await db.raw("""
            SELECT account_id, id FROM orders WHERE state = 'unpaid' AND expires_at <= \(bind: dueBeforeMicros)
            ORDER BY expires_at LIMIT \(bind: Int64(limit))
            """).all()
        var expired: [OrderRecord] = []
        for row in due {
            let r = Rows.Reader(row: row)
            expired += try await db.raw("""
                UPDATE orders SET state = 'expired', resolved_at = \(bind: dueBeforeMicros)
                WHERE account_id = \(bind: try r.text("account_id")) AND id = \(bind: try r.text("id")) AND state = 'unpaid' RETURNING *
                """).all().map(OrderRows.order)
        }
        return expired
    }

    func insertCoupons(_ coupons: [CouponRecord]) async throws {
        for c in coupons { try await OrderRows.insertCoupon(db, c) }
    }

    func insertCouponBatch(_ batch: CouponBatchRecord, codes: [String]) async throws {
        _ = try await db.raw("""
            INSERT INTO coupon_batches (id, template, code_count, created_by, created_at)
            VALUES (\(bind: batch.id), \(bind: OrderRows.json(batch.template)), \(bind: Int64(batch.count)), \(bind: batch.createdBy),
              \(bind: batch.createdAtMicros))
            """).all()
        for chunk in codes.chunked(500) {
            var sql: SQLQueryString = "INSERT INTO coupon_codes (code_digest, batch_id) VALUES "
            for (i, code) in chunk.enumerated() {
                if i > 0 { sql += ", " }
                sql += "(\(bind: Secrets.sha256Hex(code)), \(bind: batch.id))"
            }
            _ = try await db.raw(sql).all()
        }
    }

    func redeemCouponCode(_ code: String, accountId: String, nowMicros: Int64,
                          make: @escaping @Sendable (CouponBatchRecord) -> CouponRecord) async throws -> CouponCodeRedemption? {
        let digest = Secrets.sha256Hex(code)
        guard let row = try await db.raw("""
            SELECT c.redeemed_account_id, c.redeemed_coupon_id, b.* FROM coupon_codes c JOIN coupon_batches b ON b.id = c.batch_id
            WHERE c.code_digest = \(bind: digest)
            """).first() else { return nil }
        let r = Rows.Reader(row: row)
        if let by = try r.optionalText("redeemed_account_id") {
            return .alreadyRedeemed(byAccountId: by, couponId: try r.text("redeemed_coupon_id"))
        }
        let batch = CouponBatchRecord(id: try r.text("id"), template: try OrderRows.decode(CouponTemplate.self, try r.text("template")),
                                      count: Int(try r.int("code_count")), createdBy: try r.text("created_by"),
                                      createdAtMicros: try r.int("created_at"))
        let coupon = make(batch)
        // The guard on the code makes a concurrent redemption of the same code lose here (and roll back its coupon).
        let claimed = try await db.raw("""
            UPDATE coupon_codes SET redeemed_account_id = \(bind: accountId), redeemed_coupon_id = \(bind: coupon.id),
              redeemed_at = \(bind: nowMicros)
            WHERE code_digest = \(bind: digest) AND redeemed_account_id IS NULL RETURNING code_digest
            """).all().count == 1
        guard claimed else {
            // A concurrent redemption took it first (PostgreSQL waited on its row lock): answer as if it had been seen.
            let now = try await db.raw("SELECT redeemed_account_id, redeemed_coupon_id FROM coupon_codes WHERE code_digest = \(bind: digest)").first()
            let n = now.map { Rows.Reader(row: $0) }
            return .alreadyRedeemed(byAccountId: try n?.optionalText("redeemed_account_id") ?? "", couponId: try n?.optionalText("redeemed_coupon_id") ?? "")
        }
        try await OrderRows.insertCoupon(db, coupon)
        return .redeemed(coupon)
    }

    // MARK: ledger batch

    func lockOrders(_ keys: [ObjectKey]) async throws -> [ObjectKey: OrderRecord] {
        try await lockAccountRows("orders", keys, OrderRows.order) { ObjectKey($0.accountId, $0.id) }
    }

    func lockCoupons(_ keys: [ObjectKey]) async throws -> [ObjectKey: CouponRecord] {
        try await lockAccountRows("coupons", keys, OrderRows.coupon) { ObjectKey($0.accountId, $0.id) }
    }

    func couponUses(couponKeys: [ObjectKey]) async throws -> [ObjectKey: [CouponUseRecord]] {
        var out: [ObjectKey: [CouponUseRecord]] = [:]
        for key in couponKeys {
            out[key] = try await db.raw("""
                SELECT * FROM coupon_uses WHERE account_id = \(bind: key.accountId) AND coupon_id = \(bind: key.id)
                ORDER BY payment_id, order_id
                """).all().map(OrderRows.use)
        }
        return out
    }

    func couponKeys(usedByOrders keys: [ObjectKey]) async throws -> [ObjectKey] {
        var out: Set<ObjectKey> = []
        for key in keys {
            for row in try await db.raw("""
                SELECT coupon_id FROM coupon_uses WHERE account_id = \(bind: key.accountId) AND order_id = \(bind: key.id)
                """).all() {
                out.insert(ObjectKey(key.accountId, try row.decode(column: "coupon_id", as: String.self)))
            }
        }
        return out.sorted()
    }

    func usableCouponKeys(accountId: String, paymentType: ChargeMode, atMicros: Int64, limit: Int) async throws -> [ObjectKey] {
        try await db.raw("""
            SELECT id FROM coupons WHERE account_id = \(bind: accountId) AND payment_type = \(bind: paymentType.rawValue)
              AND state = 'unused' AND valid_from <= \(bind: atMicros) AND valid_until > \(bind: atMicros)
            ORDER BY valid_until, id LIMIT \(literal: limit)
            """).all().map { ObjectKey(accountId, try $0.decode(column: "id", as: String.self)) }
    }

    func lockDeliveredOrders(ofResource key: ObjectKey) async throws -> [ObjectKey: OrderRecord] {
        var out: [ObjectKey: OrderRecord] = [:]
        for o in try await db.raw("""
            SELECT * FROM orders WHERE account_id = \(bind: key.accountId) AND resource_id = \(bind: key.id) AND state = 'delivered'
            ORDER BY id\(unsafeRaw: postgres ? " FOR UPDATE" : "")
            """).all().map(OrderRows.order) { out[ObjectKey(o.accountId, o.id)] = o }
        return out
    }

    /// The order side of a ledger batch, each change guarded by the state it was decided from.
    func applyOrders(_ batch: LedgerBatchWrite) async throws {
        let payments = batch.newPayments
        try await driver.run(BatchInsert("order_payments", [
            ("account_id", .text(payments.map(\.accountId))), ("id", .text(payments.map(\.id))),
            ("order_ids", .text(payments.map { $0.orderIds.joined(separator: ",") })), ("coupon_ids", .text(payments.map { $0.couponIds.joined(separator: ",") })),
            ("due_minor", .bigint(payments.map(\.dueMinor))), ("coupon_minor", .bigint(payments.map(\.couponMinor))),
            ("frozen_minor", .bigint(payments.map(\.frozenMinor))), ("created_at", .bigint(payments.map(\.createdAtMicros))),
        ]))
        for r in batch.newResourceRefunds {
            _ = try await db.raw("""
                INSERT INTO resource_refunds (account_id, id, resource_id, product_id, specification, cash_minor, gift_minor, cash_coupon_minor,
                  lines, reason, actor, created_at)
                VALUES (\(bind: r.accountId), \(bind: r.id), \(bind: r.resourceId), \(bind: r.productId), \(bind: r.specification),
                  \(bind: r.cashMinor), \(bind: r.giftMinor), \(bind: r.cashCouponMinor), \(bind: OrderRows.json(r.lines)), \(bind: r.reason),
                  \(bind: r.actor), \(bind: r.createdAtMicros))
                """).all()
        }
        // A batch may change one order or coupon twice (paid, then delivered): each is written once, as it ends, guarded
        // by the state it had before the batch — one statement per chunk instead of one per row.
        var orderFrom: [ObjectKey: OrderState] = [:], orderLast: [ObjectKey: OrderRecord] = [:], orderKeys: [ObjectKey] = []
        for (o, from) in batch.orderChanges {
            let key = ObjectKey(o.accountId, o.id)
            if orderFrom[key] == nil { orderFrom[key] = from; orderKeys.append(key) }
            orderLast[key] = o
        }
        for chunk in orderKeys.chunked(300) {
            var sql: SQLQueryString = """
                WITH v(account_id, id, from_state, state, payment_id, coupon_minor, frozen_minor, freeze_id, cash_minor, gift_minor, paid_at,
                       resolved_at, resource_id, term_from, term_to) AS (VALUES
                """
            for (i, key) in chunk.enumerated() {
                let o = orderLast[key]!
                if i > 0 { sql += ", " }
                sql += "(\(bind: o.accountId), \(bind: o.id), \(bind: orderFrom[key]!.rawValue), \(bind: o.state.rawValue), CAST(\(bind: o.paymentId) AS TEXT), "
                sql += "CAST(\(bind: o.couponMinor) AS BIGINT), CAST(\(bind: o.frozenMinor) AS BIGINT), CAST(\(bind: o.freezeId) AS TEXT), "
                sql += "CAST(\(bind: o.cashMinor) AS BIGINT), CAST(\(bind: o.giftMinor) AS BIGINT), CAST(\(bind: o.paidAtMicros) AS BIGINT), "
                sql += "CAST(\(bind: o.resolvedAtMicros) AS BIGINT), CAST(\(bind: o.resourceId) AS TEXT), CAST(\(bind: o.termFromMicros) AS BIGINT), "
                sql += "CAST(\(bind: o.termToMicros) AS BIGINT))"
            }
            sql += """
                ) UPDATE orders SET state = v.state, payment_id = v.payment_id, coupon_minor = v.coupon_minor, frozen_minor = v.frozen_minor,
                  freeze_id = v.freeze_id, cash_minor = v.cash_minor, gift_minor = v.gift_minor, paid_at = v.paid_at, resolved_at = v.resolved_at,
                  resource_id = v.resource_id, term_from = v.term_from, term_to = v.term_to
                FROM v WHERE orders.account_id = v.account_id AND orders.id = v.id AND orders.state = v.from_state RETURNING orders.id
                """
            let updated = try await db.raw(sql).all().count
            guard updated == chunk.count else { throw StoreError("orders changed concurrently (\(updated) of \(chunk.count))") }
        }
        var couponBefore: [ObjectKey: CouponRecord] = [:], couponLast: [ObjectKey: CouponRecord] = [:], couponKeys: [ObjectKey] = []
        for (c, before) in batch.couponChanges {
            let key = ObjectKey(c.accountId, c.id)
            if couponBefore[key] == nil { couponBefore[key] = before; couponKeys.append(key) }
            couponLast[key] = c
        }
        for chunk in couponKeys.chunked(500) {
            var sql: SQLQueryString = "WITH v(account_id, id, remaining, state, used_at, before_remaining, before_state) AS (VALUES "
            for (i, key) in chunk.enumerated() {
                let c = couponLast[key]!, before = couponBefore[key]!
                if i > 0 { sql += ", " }
                sql += "(\(bind: c.accountId), \(bind: c.id), CAST(\(bind: c.remainingMinor) AS BIGINT), \(bind: c.storedState.rawValue), "
                sql += "CAST(\(bind: c.usedAtMicros) AS BIGINT), CAST(\(bind: before.remainingMinor) AS BIGINT), \(bind: before.storedState.rawValue))"
            }
            sql += """
                ) UPDATE coupons SET remaining_minor = v.remaining, state = v.state, used_at = v.used_at
                FROM v WHERE coupons.account_id = v.account_id AND coupons.id = v.id AND coupons.remaining_minor = v.before_remaining
                  AND coupons.state = v.before_state RETURNING coupons.id
                """
            let updated = try await db.raw(sql).all().count
            guard updated == chunk.count else { throw StoreError("coupons changed concurrently (\(updated) of \(chunk.count))") }
        }
        let uses = batch.newCouponUses
        try await driver.run(BatchInsert("coupon_uses", [
            ("account_id", .text(uses.map(\.accountId))), ("coupon_id", .text(uses.map(\.couponId))), ("payment_id", .text(uses.map(\.paymentId))),
            ("order_id", .text(uses.map(\.orderId))), ("amount_minor", .bigint(uses.map(\.amountMinor))),
        ]))
        for u in batch.returnedCouponUses {
            let rows = try await db.raw("""
                UPDATE coupon_uses SET returned_at = \(bind: u.returnedAtMicros)
                WHERE account_id = \(bind: u.accountId) AND coupon_id = \(bind: u.couponId) AND payment_id = \(bind: u.paymentId)
                  AND order_id = \(bind: u.orderId) AND returned_at IS NULL RETURNING order_id
                """).all()
            guard rows.count == 1 else { throw StoreError("coupon use of \(u.orderId) returned concurrently") }
        }
    }
}

// MARK: prepaid terms (migration 14)

extension OrderRows {
    static func term(_ row: any SQLRow) throws -> PrepaidTermRecord {
        let r = Rows.Reader(row: row)
        var t = PrepaidTermRecord(accountId: try r.text("account_id"), resourceId: try r.text("resource_id"), productId: try r.text("product_id"),
                                  specification: try r.text("specification"), autoRenew: try r.bool("auto_renew"),
                                  startsAtMicros: try r.int("starts_at"), expiresAtMicros: try r.int("expires_at"), createdAtMicros: try r.int("created_at"))
        t.state = PrepaidTermState(rawValue: try r.text("state"))!
        t.suspendedAtMicros = try r.optionalInt("suspended_at")
        t.reclaimedAtMicros = try r.optionalInt("reclaimed_at")
        t.renewAttemptDay = try r.optionalText("renew_attempt_day")
        t.remindedDay = try r.optionalText("reminded_day")
        t.updatedAtMicros = try r.int("updated_at")
        return t
    }
}

extension SQLStore {
    public func prepaidTerm(accountId: String, resourceId: String) async throws -> PrepaidTermRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM prepaid_terms WHERE account_id = \(bind: accountId) AND resource_id = \(bind: resourceId)").first().map(OrderRows.term)
        }
    }

    public func prepaidTerms(accountId: String) async throws -> [PrepaidTermRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM prepaid_terms WHERE account_id = \(bind: accountId) ORDER BY expires_at, resource_id LIMIT 10000").all().map(OrderRows.term)
        }
    }

    public func dueTerms(expiringBeforeMicros: Int64, after: ObjectKey?, limit: Int) async throws -> [(PrepaidTermRecord, timeZone: String)] {
        try await read { db in
            var sql: SQLQueryString = """
                SELECT t.*, a.time_zone FROM prepaid_terms t JOIN accounts a ON a.id = t.account_id
                WHERE t.state <> 'reclaimed' AND t.expires_at < \(bind: expiringBeforeMicros)
                """
            if let after { sql += " AND (t.account_id > \(bind: after.accountId) OR (t.account_id = \(bind: after.accountId) AND t.resource_id > \(bind: after.id)))" }
            sql += " ORDER BY t.account_id, t.resource_id LIMIT \(bind: Int64(limit))"
            return try await db.raw(sql).all().map { (try OrderRows.term($0), try $0.decode(column: "time_zone", as: String.self)) }
        }
    }
}

extension SQLTransaction {
    /// In key order, one statement per chunk (IN × IN, the extra rows dropped here), like the ledger's other locks.
    func lockPrepaidTerms(_ keys: [ObjectKey]) async throws -> [ObjectKey: PrepaidTermRecord] {
        let wanted = Set(keys)
        var found: [ObjectKey: PrepaidTermRecord] = [:]
        for chunk in wanted.sorted().chunked(250) {
            let accounts = Array(Set(chunk.map(\.accountId))).sorted().map { $0 as any Encodable & Sendable }
            let ids = Array(Set(chunk.map(\.id))).sorted().map { $0 as any Encodable & Sendable }
            for row in try await db.raw("""
                SELECT * FROM prepaid_terms WHERE account_id IN (\(binds: accounts)) AND resource_id IN (\(binds: ids))
                ORDER BY account_id, resource_id\(unsafeRaw: postgres ? " FOR UPDATE" : "")
                """).all() {
                let t = try OrderRows.term(row)
                let key = ObjectKey(t.accountId, t.resourceId)
                if wanted.contains(key) { found[key] = t }
            }
        }
        return found
    }

    func insertPrepaidTerms(_ terms: [PrepaidTermRecord]) async throws {
        for chunk in terms.chunked(500) {
            var sql: SQLQueryString = """
                INSERT INTO prepaid_terms (account_id, resource_id, product_id, specification, state, auto_renew, starts_at, expires_at, suspended_at,
                  created_at, updated_at) VALUES
                """
            for (i, t) in chunk.enumerated() {
                if i > 0 { sql += ", " }
                sql += """
                    (\(bind: t.accountId), \(bind: t.resourceId), \(bind: t.productId), \(bind: t.specification), \(bind: t.state.rawValue),
                     \(bind: t.autoRenew), \(bind: t.startsAtMicros), \(bind: t.expiresAtMicros), \(bind: t.suspendedAtMicros),
                     \(bind: t.createdAtMicros), \(bind: t.updatedAtMicros))
                    """
            }
            _ = try await db.raw(sql).all()
        }
    }

    func setAutoRenew(accountId: String, resourceId: String, autoRenew: Bool, nowMicros: Int64) async throws -> Bool {
        try await db.raw("""
            UPDATE prepaid_terms SET auto_renew = \(bind: autoRenew), updated_at = \(bind: nowMicros)
            WHERE account_id = \(bind: accountId) AND resource_id = \(bind: resourceId) AND state <> 'reclaimed' RETURNING resource_id
            """).all().count == 1
    }

    func updateTermLifecycle(_ t: PrepaidTermRecord, expectedState: PrepaidTermState, expectedExpiresAtMicros: Int64) async throws -> Bool {
        try await db.raw("""
            UPDATE prepaid_terms SET state = \(bind: t.state.rawValue), suspended_at = \(bind: t.suspendedAtMicros), reclaimed_at = \(bind: t.reclaimedAtMicros),
              renew_attempt_day = \(bind: t.renewAttemptDay), reminded_day = \(bind: t.remindedDay), updated_at = \(bind: t.updatedAtMicros)
            WHERE account_id = \(bind: t.accountId) AND resource_id = \(bind: t.resourceId) AND state = \(bind: expectedState.rawValue)
              AND expires_at = \(bind: expectedExpiresAtMicros) RETURNING resource_id
            """).all().count == 1
    }

    /// The term side of a ledger batch: inserted, or updated where it is still as decided from.
    func applyTerms(_ batch: LedgerBatchWrite) async throws {
        try await insertOrders(batch.newOrders)
        // Extensions of many terms (a renewal day's batch) in one guarded statement; the rest one by one.
        let extended = batch.termChanges.compactMap { c in c.before.map { (c.term, $0) } }
        if extended.count > 1 {
            for chunk in extended.chunked(500) {
                var sql: SQLQueryString = "WITH v(account_id, resource_id, specification, state, expires_at, suspended_at, reclaimed_at, before_expires, before_state, updated_at) AS (VALUES "
                for (i, (t, before)) in chunk.enumerated() {
                    if i > 0 { sql += ", " }
                    sql += "(\(bind: t.accountId), \(bind: t.resourceId), \(bind: t.specification), \(bind: t.state.rawValue), \(bind: t.expiresAtMicros), "
                    sql += "CAST(\(bind: t.suspendedAtMicros) AS BIGINT), CAST(\(bind: t.reclaimedAtMicros) AS BIGINT), \(bind: before.expiresAtMicros), \(bind: before.state.rawValue), \(bind: t.updatedAtMicros))"
                }
                sql += """
                    ) UPDATE prepaid_terms SET specification = v.specification, state = v.state, expires_at = v.expires_at,
                      suspended_at = v.suspended_at, reclaimed_at = v.reclaimed_at, renew_attempt_day = NULL, reminded_day = NULL, updated_at = v.updated_at
                    FROM v WHERE prepaid_terms.account_id = v.account_id AND prepaid_terms.resource_id = v.resource_id
                      AND prepaid_terms.expires_at = v.before_expires AND prepaid_terms.state = v.before_state
                    RETURNING prepaid_terms.resource_id
                    """
                let updated = try await db.raw(sql).all().count
                guard updated == chunk.count else { throw StoreError("prepaid terms changed concurrently (\(updated) of \(chunk.count))") }
            }
        }
        for (t, before) in batch.termChanges where extended.count <= 1 || before == nil {
            if let before {
                let rows = try await db.raw("""
                    UPDATE prepaid_terms SET specification = \(bind: t.specification), state = \(bind: t.state.rawValue), expires_at = \(bind: t.expiresAtMicros),
                      suspended_at = \(bind: t.suspendedAtMicros), reclaimed_at = \(bind: t.reclaimedAtMicros),
                      renew_attempt_day = \(bind: t.renewAttemptDay), reminded_day = \(bind: t.remindedDay),
                      updated_at = \(bind: t.updatedAtMicros)
                    WHERE account_id = \(bind: t.accountId) AND resource_id = \(bind: t.resourceId) AND expires_at = \(bind: before.expiresAtMicros)
                      AND state = \(bind: before.state.rawValue) RETURNING resource_id
                    """).all()
                guard rows.count == 1 else { throw StoreError("prepaid term of \(t.resourceId) changed concurrently") }
            } else {
                _ = try await db.raw("""
                    INSERT INTO prepaid_terms (account_id, resource_id, product_id, specification, state, auto_renew, starts_at, expires_at, created_at, updated_at)
                    VALUES (\(bind: t.accountId), \(bind: t.resourceId), \(bind: t.productId), \(bind: t.specification), \(bind: t.state.rawValue),
                      \(bind: t.autoRenew), \(bind: t.startsAtMicros), \(bind: t.expiresAtMicros), \(bind: t.createdAtMicros), \(bind: t.updatedAtMicros))
                    """).all()
            }
        }
    }
}
