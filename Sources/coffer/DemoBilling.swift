import CofferCore
import CofferServices
import Foundation

/// `serve --demo`: a product catalog, resources in two projects, a month of usage, two unpaid orders and two coupons for
/// the demo account, so that a new user sees real bills and something to pay at once. Idempotent: record ids name their hour or day, so a restart adds only new usage. The
/// jobs loop settles it (a grace period after each cycle ends) through the ledger like any usage.
enum DemoBilling {
    static let products: [(id: String, zh: String, en: String, cycle: String, tax: String, plans: [(String, String)])] = [
        ("cvm", "云服务器", "Cloud server", "hourly", "cloud_service", [("2C4G", "120.00"), ("4C8G", "240.00")]),
        ("cos", "对象存储", "Object storage", "daily", "cloud_service", []),
        ("cdn", "内容分发网络", "Content delivery", "daily", "cloud_service", []),
    ]

    static func seed(engine: CofferEngine, accountId: String) async throws {
        for p in products {
            _ = try await engine.products.put(id: p.id, ProductInput(nameZh: p.zh, nameEn: p.en, settlementCycle: p.cycle, taxCategory: p.tax,
                                                                     plans: p.plans), actor: "system:demo")
        }
        let (web, _) = try await engine.resources.createProject(accountId: accountId, name: "官网 Website", idempotencyKey: "demo-project-web")
        let (data, _) = try await engine.resources.createProject(accountId: accountId, name: "数据平台 Data", idempotencyKey: "demo-project-data")
        let resources: [(id: String, product: String, name: String, project: String, region: String, tags: [String: String])] = [
            ("ins-web-1", "cvm", "web-1", web.id, "ap-shanghai", ["env": "prod", "team": "web"]),
            ("ins-web-2", "cvm", "web-2", web.id, "ap-shanghai", ["env": "staging", "team": "web"]),
            ("bucket-logs", "cos", "logs", data.id, "ap-beijing", ["env": "prod", "team": "data"]),
            ("cdn-site", "cdn", "www.example.com", web.id, "global", ["env": "prod", "team": "web"]),
        ]
        for r in resources {
            _ = try await engine.resources.putResource(accountId: accountId, id: r.id, .init(productId: r.product, name: r.name, region: r.region,
                                                                                           projectId: r.project, tags: r.tags))
        }
        // Cash for the demo to spend, once (its key makes a restart a replay). Queued now, applied when the writer starts.
        let wallets = engine.wallets
        let orders = engine.orders
        Task {
            _ = try? await wallets.submit(.adjust(accountId: accountId, bucket: .cash, deltaMinor: 200_000, reason: "演示资金 demo funds"),
                                          idempotencyKey: "demo-funds", actor: "system:demo")
            // A prepaid server bought, paid and delivered (O3): it shows on 资源与续费; move the sandbox clock 25 days to
            // see its reminders, 31 days for the expiry, 38 for the suspension.
            guard let (order, _) = try? await orders.create(accountId: accountId, OrderInput(type: "new", productId: "cvm", specification: "2C4G",
                                                                                             durationMonths: 1, reference: "demo-prepaid"),
                                                            idempotencyKey: "demo-order-prepaid"), order.state == .unpaid else { return }
            _ = try? await orders.pay(accountId: accountId, orderIds: [order.id], couponIds: [], idempotencyKey: "demo-pay-prepaid", actor: "system:demo")
            _ = try? await orders.resolve(accountId: accountId, orderId: order.id, delivered: true, idempotencyKey: "demo-deliver-prepaid",
                                          actor: "system:demo", resourceId: "vm-demo-1", resourceName: "demo-db-1")
        }
        let hour: Int64 = 3_600_000_000, day = 24 * hour
        let now = engine.clock.nowMicros()
        // Prepaid: two unpaid orders to pay together and two coupons, one of them for orders of 200.00 or more.
        for (key, spec) in [("demo-order-1", "2C4G"), ("demo-order-2", "4C8G")] {
            _ = try await engine.orders.create(accountId: accountId, OrderInput(type: "new", productId: "cvm", specification: spec, durationMonths: 1,
                                                                                reference: key), idempotencyKey: key)
        }
        // Once: a restart on the same data keeps the coupons it granted (their validity is counted from the first start).
        if try await engine.store.couponCount(accountId: accountId) == 0 {
            _ = try await engine.coupons.grant(CouponInput(kind: "cash", value: "50.00", productsIncluded: ["cvm"], threshold: "200.00",
                                                           validUntilMicros: now + 90 * day),
                                               accountIds: [accountId], codeCount: nil, idempotencyKey: "demo-coupon-cash-" + accountId, actor: "system:demo")
            _ = try await engine.coupons.grant(CouponInput(kind: "discount", percentOff: 10, maxDiscount: "100.00", validUntilMicros: now + 90 * day),
                                               accountIds: [accountId], codeCount: nil, idempotencyKey: "demo-coupon-discount-" + accountId, actor: "system:demo")
        }
        let thisHour = now - now % hour
        var records: [UsageRecordInput] = []
        func add(_ resource: String, _ component: String, _ unit: String, start: Int64, length: Int64, quantity: String, price: String, list: String?) {
            records.append(UsageRecordInput(id: "demo-\(resource)-\(component)-\(start / hour)", accountId: accountId, resourceId: resource,
                                            component: component, quantity: quantity, unit: unit, unitPrice: price, listUnitPrice: list,
                                            periodStart: RFC3339.format(micros: start), periodEnd: RFC3339.format(micros: start + length)))
        }
        // Two days of hourly server usage; thirty days of daily storage and traffic (varying, so the chart has a shape).
        for h in 1...48 {
            let start = thisHour - Int64(h) * hour
            add("ins-web-1", "cpu", "core-hour", start: start, length: hour, quantity: "2", price: "0.08", list: "0.1")
            add("ins-web-1", "memory", "GiB-hour", start: start, length: hour, quantity: "4", price: "0.015", list: "0.02")
            add("ins-web-2", "cpu", "core-hour", start: start, length: hour, quantity: "1", price: "0.08", list: "0.1")
        }
        for d in 1...30 {
            let start = thisHour - Int64(d) * day
            add("bucket-logs", "storage", "GiB-day", start: start, length: day, quantity: String(120 + d * 3), price: "0.0039", list: nil)
            add("cdn-site", "traffic", "GB", start: start, length: day, quantity: String(40 + (d * 37) % 60) + ".5", price: "0.21", list: "0.24")
        }
        _ = try await engine.usage.ingest(records)
    }
}
