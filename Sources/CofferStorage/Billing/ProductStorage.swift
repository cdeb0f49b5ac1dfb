import CofferCore
import CofferServices
import SQLKit

extension SQLStore {
    public func product(id: String) async throws -> ProductRecord? {
        try await read { db in try await Self.products(db, id: id).first }
    }

    public func products() async throws -> [ProductRecord] {
        try await read { db in try await Self.products(db, id: nil) }
    }

    public func productCount() async throws -> Int {
        try await read { db in try await db.raw("SELECT COUNT(*) AS n FROM products").first()!.decode(column: "n", as: Int.self) }
    }

    static func products(_ db: any SQLDatabase, id: String?) async throws -> [ProductRecord] {
        var sql: SQLQueryString = "SELECT * FROM products"
        if let id { sql += " WHERE id = \(bind: id)" }
        sql += " ORDER BY id"
        var products: [ProductRecord] = []
        for row in try await db.raw(sql).all() {
            let r = Rows.Reader(row: row)
            products.append(ProductRecord(
                id: try r.text("id"), nameZh: try r.text("name_zh"), nameEn: try r.text("name_en"),
                settlementCycle: SettlementCycle(rawValue: try r.text("settlement_cycle"))!,
                taxCategory: TaxCategory(rawValue: try r.text("tax_category"))!, plans: [], version: try r.int("version"),
                createdAtMicros: try r.int("created_at"), updatedAtMicros: try r.int("updated_at")))
        }
        guard !products.isEmpty else { return [] }
        var plans: SQLQueryString = "SELECT * FROM product_plans"
        if let id { plans += " WHERE product_id = \(bind: id)" }
        plans += " ORDER BY product_id, seq"
        var byProduct: [String: [PrepaidPlan]] = [:]
        for row in try await db.raw(plans).all() {
            let r = Rows.Reader(row: row)
            byProduct[try r.text("product_id"), default: []].append(
                PrepaidPlan(specification: try r.text("specification"), monthlyPriceMinor: try r.int("monthly_price_minor")))
        }
        return products.map { p in
            var p = p
            p.plans = byProduct[p.id] ?? []
            return p
        }
    }
}

extension SQLTransaction {
    /// The version guard makes a lost race visible: the loser updates (or inserts) no row and reads again.
    func saveProduct(_ p: ProductRecord, expectedVersion: Int64?) async throws -> Bool {
        if let expectedVersion {
            let rows = try await db.raw("""
                UPDATE products SET name_zh = \(bind: p.nameZh), name_en = \(bind: p.nameEn),
                  settlement_cycle = \(bind: p.settlementCycle.rawValue), tax_category = \(bind: p.taxCategory.rawValue),
                  version = \(bind: p.version), updated_at = \(bind: p.updatedAtMicros)
                WHERE id = \(bind: p.id) AND version = \(bind: expectedVersion) RETURNING id
                """).all()
            guard rows.count == 1 else { return false }
            _ = try await db.raw("DELETE FROM product_plans WHERE product_id = \(bind: p.id)").all()
        } else {
            let rows = try await db.raw("""
                INSERT INTO products (id, name_zh, name_en, settlement_cycle, tax_category, version, created_at, updated_at)
                VALUES (\(bind: p.id), \(bind: p.nameZh), \(bind: p.nameEn), \(bind: p.settlementCycle.rawValue),
                        \(bind: p.taxCategory.rawValue), \(bind: p.version), \(bind: p.createdAtMicros), \(bind: p.updatedAtMicros))
                ON CONFLICT (id) DO NOTHING RETURNING id
                """).all()
            guard rows.count == 1 else { return false }
        }
        for (seq, plan) in p.plans.enumerated() {
            _ = try await db.raw("""
                INSERT INTO product_plans (product_id, seq, specification, monthly_price_minor)
                VALUES (\(bind: p.id), \(bind: seq), \(bind: plan.specification), \(bind: plan.monthlyPriceMinor))
                """).all()
        }
        return true
    }
}
