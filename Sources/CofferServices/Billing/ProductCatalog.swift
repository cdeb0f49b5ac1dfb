import CofferCore

/// I3: the tax category a product's invoices carry.
public enum TaxCategory: String, Codable, Sendable, CaseIterable {
    /// 信息技术服务 / cloud service, 6 % VAT.
    case cloudService = "cloud_service"
    /// 软件产品 / software, 13 % VAT.
    case software

    public var vatBasisPoints: Int64 { self == .cloudService ? 600 : 1_300 }
}

/// A prepaid plan of a product: a specification and its monthly price (the orders issue prices orders from it).
public struct PrepaidPlan: Codable, Sendable, Equatable {
    public var specification: String
    public var monthlyPriceMinor: Int64
    public init(specification: String, monthlyPriceMinor: Int64) {
        (self.specification, self.monthlyPriceMinor) = (specification, monthlyPriceMinor)
    }
}

/// A product of the catalog (shared by postpaid billing and orders). `version` grows with every change, so that an order
/// or a bill line can say which version priced it.
public struct ProductRecord: Codable, Sendable, Equatable {
    public var id: String
    public var nameZh: String
    public var nameEn: String
    public var settlementCycle: SettlementCycle
    public var taxCategory: TaxCategory
    public var plans: [PrepaidPlan]
    public var version: Int64
    public var createdAtMicros: Int64
    public var updatedAtMicros: Int64
    public init(id: String, nameZh: String, nameEn: String, settlementCycle: SettlementCycle, taxCategory: TaxCategory,
                plans: [PrepaidPlan], version: Int64, createdAtMicros: Int64, updatedAtMicros: Int64) {
        (self.id, self.nameZh, self.nameEn, self.settlementCycle, self.taxCategory) = (id, nameZh, nameEn, settlementCycle, taxCategory)
        (self.plans, self.version, self.createdAtMicros, self.updatedAtMicros) = (plans, version, createdAtMicros, updatedAtMicros)
    }
}

/// What an operator sends for a product, before validation.
public struct ProductInput: Sendable {
    public var nameZh: String
    public var nameEn: String
    public var settlementCycle: String
    public var taxCategory: String
    public var plans: [(specification: String, monthlyPrice: String)]
    public init(nameZh: String, nameEn: String, settlementCycle: String, taxCategory: String,
                plans: [(specification: String, monthlyPrice: String)]) {
        (self.nameZh, self.nameEn, self.settlementCycle, self.taxCategory, self.plans) = (nameZh, nameEn, settlementCycle, taxCategory, plans)
    }
}

public protocol ProductReads: Sendable {
    func product(id: String) async throws -> ProductRecord?
    /// Every product, by id (the catalog is small: at most `ProductCatalog.maxProducts`).
    func products() async throws -> [ProductRecord]
    func productCount() async throws -> Int
}

public protocol ProductWrites: Sendable {
    /// Inserts or replaces the product and its plans; `expectedVersion` guards against a concurrent change (nil: new).
    func saveProduct(_ product: ProductRecord, expectedVersion: Int64?) async throws -> Bool
}

/// The operator's product catalog (postpaid-billing issue item 1): `PUT` a product by id, read the catalog.
public struct ProductCatalog: Sendable {
    public static let maxProducts = 1_000
    public static let maxPlans = 50
    let store: any CofferStore
    let clock: any Clock
    let ids: IdGenerator

    public init(store: any CofferStore, clock: any Clock, ids: IdGenerator) {
        (self.store, self.clock, self.ids) = (store, clock, ids)
    }

    /// `^[a-z0-9][a-z0-9_.-]{0,63}$`: a product id is the provider's own name for it ("cvm", "cos.standard").
    public static func validId(_ id: String) -> Bool {
        let scalars = Array(id.unicodeScalars)
        func allowed(_ s: Unicode.Scalar) -> Bool { ("a"..."z").contains(s) || ("0"..."9").contains(s) }
        return (1...64).contains(scalars.count) && allowed(scalars[0]) && scalars.dropFirst().allSatisfy { allowed($0) || "_.-".unicodeScalars.contains($0) }
    }

    /// Creates the product or replaces it (the same body twice leaves one product, unchanged: PUT is idempotent by
    /// itself). Audited. Answers the product and whether it was created.
    public func put(id: String, _ input: ProductInput, actor: String) async throws -> (ProductRecord, created: Bool) {
        guard Self.validId(id) else {
            throw CofferError.invalidField("productId", "must be 1–64 of a–z, 0–9, '_', '.', '-', starting with a letter or digit")
        }
        let nameZh = try TextRules.required(input.nameZh, field: "name.zh", max: 100)
        let nameEn = try TextRules.required(input.nameEn, field: "name.en", max: 100)
        guard let cycle = SettlementCycle(rawValue: input.settlementCycle) else {
            throw CofferError.invalidField("settlementCycle", "must be hourly, daily or monthly")
        }
        guard let tax = TaxCategory(rawValue: input.taxCategory) else {
            throw CofferError.invalidField("taxCategory", "must be cloud_service (6 %) or software (13 %)")
        }
        guard input.plans.count <= Self.maxPlans else { throw CofferError.invalidField("plans", "at most \(Self.maxPlans) plans") }
        var plans: [PrepaidPlan] = []
        for (i, p) in input.plans.enumerated() {
            // Kept as written: the specification is the plan's name in orders and bills.
            let spec = p.specification
            _ = try TextRules.required(spec, field: "plans[\(i)].specification", max: 100)
            guard !plans.contains(where: { $0.specification == spec }) else {
                throw CofferError.invalidField("plans[\(i)].specification", "is given twice")
            }
            plans.append(PrepaidPlan(specification: spec, monthlyPriceMinor: try MoneyFormat.parsePositive(p.monthlyPrice, field: "plans[\(i)].monthlyPrice")))
        }
        let now = clock.nowMicros()
        for _ in 0..<3 {
            let existing = try await store.product(id: id)
            if existing == nil, try await store.productCount() >= Self.maxProducts {
                throw CofferError.invalidField("productId", "the catalog holds at most \(Self.maxProducts) products")
            }
            let product = ProductRecord(id: id, nameZh: nameZh, nameEn: nameEn, settlementCycle: cycle, taxCategory: tax, plans: plans,
                                        version: (existing?.version ?? 0) + 1, createdAtMicros: existing?.createdAtMicros ?? now,
                                        updatedAtMicros: now)
            if let existing, Self.sameContent(existing, product) { return (existing, false) }
            let audit = AuditRecord(id: ids.make("aud"), accountId: nil, actor: actor, action: existing == nil ? "product.create" : "product.update",
                                    detail: "\(id) v\(product.version): \(cycle.rawValue), \(tax.rawValue), \(plans.count) plans", createdAtMicros: now)
            let saved = try await store.transaction { tx in
                guard try await tx.saveProduct(product, expectedVersion: existing?.version) else { return false }
                try await tx.insertAudit(audit)
                return true
            }
            if saved { return (product, existing == nil) }
            // A concurrent change won: read it again and apply this one on top.
        }
        throw CofferError(.productChanged, "The product \(id) is being changed by another request; send it again.")
    }

    static func sameContent(_ a: ProductRecord, _ b: ProductRecord) -> Bool {
        (a.nameZh, a.nameEn, a.settlementCycle, a.taxCategory, a.plans) == (b.nameZh, b.nameEn, b.settlementCycle, b.taxCategory, b.plans)
    }
}
