import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Testing

/// The product catalog shared by postpaid billing and orders: PUT by id, versioned, audited, on both databases.
@Suite("Product catalog on SQLite and PostgreSQL")
struct ProductCatalogTests {
    static func input(price: String = "120.00", name: String = "云服务器") -> ProductInput {
        ProductInput(nameZh: name, nameEn: "Cloud server", settlementCycle: "hourly", taxCategory: "cloud_service",
                     plans: [("2C4G", price), ("4C8G", "240.00")])
    }

    @Test("B2 I3 a product is created once, unchanged by the same body, versioned by a change that replaces its plans",
          arguments: Backend.available)
    func putIsIdempotentAndVersioned(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let catalog = env.engine.products
            let (created, isNew) = try await catalog.put(id: "cvm", Self.input(), actor: "test")
            #expect(isNew && created.version == 1 && created.plans.map(\.monthlyPriceMinor) == [12_000, 24_000])
            let (again, isNewAgain) = try await catalog.put(id: "cvm", Self.input(), actor: "test")
            #expect(!isNewAgain && again == created)
            var changed = Self.input(price: "99.50")
            changed.plans.removeLast()
            let (v2, _) = try await catalog.put(id: "cvm", changed, actor: "test")
            #expect(v2.version == 2 && v2.plans == [PrepaidPlan(specification: "2C4G", monthlyPriceMinor: 9_950)])
            #expect(try await env.store.product(id: "cvm") == v2)
            _ = try await catalog.put(id: "cos.standard", ProductInput(nameZh: "对象存储", nameEn: "Object storage",
                                                                      settlementCycle: "monthly", taxCategory: "software", plans: []),
                                      actor: "test")
            #expect(try await env.store.products().map(\.id) == ["cos.standard", "cvm"])
        }
    }

    @Test("B2 I3 refused products write nothing, each with its field",
          arguments: [("CVM", nil, "productId"), ("cvm", "blank name", "name.zh"), ("cvm", "weekly", "settlementCycle"),
                      ("cvm", "food", "taxCategory"), ("cvm", "zero price", "plans[0].monthlyPrice"), ("cvm", "51 plans", "plans")]
                      as [(String, String?, String)])
    func refusals(id: String, fault: String?, field: String) async throws {
        try await TestEnvironment.with(.sqlite) { env in
            var input = Self.input()
            switch fault {
            case "blank name": input.nameZh = " \u{3000}"
            case "weekly": input.settlementCycle = "weekly"
            case "food": input.taxCategory = "food"
            case "zero price": input.plans = [("2C4G", "0")]
            case "51 plans": input.plans = (0...50).map { ("p\($0)", "1.00") }
            default: break
            }
            do {
                _ = try await env.engine.products.put(id: id, input, actor: "test")
                Issue.record("accepted")
            } catch let error as CofferError {
                #expect(error.code == (field == "plans[0].monthlyPrice" ? .amountNotPositive : .invalidField))
                #expect(error.code != .invalidField || error.parameters["field"] == field, "\(error.parameters)")
            }
            #expect(try await env.store.products() == [])
        }
    }

    @Test("B2 twenty concurrent PUTs of one new product create it once", arguments: Backend.available)
    func concurrentCreate(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let catalog = env.engine.products
            let created = try await withThrowingTaskGroup(of: Bool.self) { group in
                for _ in 0..<20 { group.addTask { try await catalog.put(id: "cbs", Self.input(), actor: "test").created } }
                return try await group.reduce(0) { $0 + ($1 ? 1 : 0) }
            }
            #expect(created == 1)
            #expect(try await env.store.product(id: "cbs")?.version == 1)
        }
    }
}
