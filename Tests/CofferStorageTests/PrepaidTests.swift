import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

/// Prepaid resources on both databases (O3–O6): terms made and extended by deliveries, auto-renewal at the price of the
/// day, reminders, suspension and reclaim, walked through with the Clock port.
@Suite("Prepaid resources: renewals, reminders, suspension, reclaim")
struct PrepaidTests {
    static let day: Int64 = 86_400_000_000

    /// A resource bought for one month and delivered; answers the account and the resource.
    static func bought(_ env: TestEnvironment, cashMinor: Int64, autoRenew: Bool) async throws -> (String, String) {
        let account = try await OrderTests.setUp(env, cashMinor: cashMinor)
        let o = try await OrderTests.order(env, account)
        _ = try await OrderTests.pay(env, account, [o.id])
        _ = try await env.engine.orders.resolve(accountId: account, orderId: o.id, delivered: true, idempotencyKey: "d-" + o.id, actor: "test",
                                                resourceId: "vm-1", resourceName: "web-1")
        if autoRenew { _ = try await env.engine.prepaid.setAutoRenew(accountId: account, resourceId: "vm-1", autoRenew: true) }
        return (account, "vm-1")
    }

    static func term(_ env: TestEnvironment, _ account: String) async throws -> PrepaidTermRecord {
        try #require(try await env.store.prepaidTerm(accountId: account, resourceId: "vm-1"))
    }

    static func messages(_ env: TestEnvironment, _ account: String) async throws -> [String] {
        try await env.store.siteMessages(accountId: account, limit: 100).map(\.kind).filter { $0.hasPrefix("resource_") }
    }

    @Test("O3 a delivered new order makes the term (one calendar month in the account's zone); a renewal extends it from the expiry; an upgrade changes the specification only",
          arguments: Backend.available)
    func terms(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let start = env.clock.nowMicros()
            let (account, resource) = try await Self.bought(env, cashMinor: 100_000, autoRenew: false)
            var t = try await Self.term(env, account)
            #expect(t.state == .active && !t.autoRenew && t.specification == "2c4g")
            #expect(t.expiresAtMicros == SettlementCalendar.addMonths(start, 1, timeZone: "Asia/Shanghai"))
            #expect(try await env.store.resource(accountId: account, id: resource)?.name == "web-1")
            // A renewal for 2 months, paid by the customer: Coffer delivers it at once.
            let renewal = try await env.engine.orders.create(accountId: account, OrderInput(type: "renewal", productId: "cvm", specification: "2c4g",
                                                                                           durationMonths: 2, resourceId: resource), idempotencyKey: "r").0
            let paid = try await OrderTests.pay(env, account, [renewal.id])
            #expect(paid.orders[0].state == .delivered)
            let before = t.expiresAtMicros
            t = try await Self.term(env, account)
            #expect(t.expiresAtMicros == SettlementCalendar.addMonths(before, 2, timeZone: "Asia/Shanghai"))
            // An upgrade: the provider delivers; the expiry stays.
            let upgrade = try await env.engine.orders.create(accountId: account, OrderInput(type: "upgrade", productId: "cvm", specification: "4c8g",
                                                                                           durationMonths: 1, resourceId: resource), idempotencyKey: "u").0
            _ = try await OrderTests.pay(env, account, [upgrade.id])
            _ = try await env.engine.orders.resolve(accountId: account, orderId: upgrade.id, delivered: true, idempotencyKey: "du", actor: "test")
            let upgraded = try await Self.term(env, account)
            #expect(upgraded.specification == "4c8g" && upgraded.expiresAtMicros == t.expiresAtMicros)
            // A renewal of an unknown resource is refused when it is ordered.
            #expect(await OrderTests.refusal { try await env.engine.orders.create(accountId: account, OrderInput(
                type: "renewal", productId: "cvm", specification: "2c4g", durationMonths: 1, resourceId: "nope"), idempotencyKey: "s") } == .resourceNotFound)
        }
    }

    @Test("O3 O4 on the expiry day the auto-renewal charges the catalog price of that day, once, even when two job runs race",
          arguments: Backend.available)
    func autoRenew(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, _) = try await Self.bought(env, cashMinor: 100_000, autoRenew: true)
            let t = try await Self.term(env, account)
            // The price changes before the expiry: the renewal uses the new one.
            _ = try await env.engine.products.put(id: "cvm", ProductInput(
                nameZh: "云服务器", nameEn: "Cloud server", settlementCycle: "hourly", taxCategory: "cloud_service",
                plans: [(specification: "2c4g", monthlyPrice: "110.00"), (specification: "4c8g", monthlyPrice: "180.00")]), actor: "test")
            env.clock.advance(seconds: (t.expiresAtMicros - env.clock.nowMicros()) / 1_000_000 - 60)
            #expect(try await env.engine.prepaid.runDue().renewed == 0)
            env.clock.advance(seconds: 60)
            let before = try await env.wallet(account)
            async let a = env.engine.prepaid.runDue()
            async let b = env.engine.prepaid.runDue()
            let (ra, rb) = try await (a, b)
            #expect(ra.renewed + rb.renewed >= 1)
            let after = try await Self.term(env, account)
            #expect(after.expiresAtMicros == SettlementCalendar.addMonths(t.expiresAtMicros, 1, timeZone: "Asia/Shanghai"))
            #expect(try await env.wallet(account).cashMinor == before.cashMinor - 11_000)
            let renewals = try await env.store.orders(OrderQuery(accountId: account)).filter { $0.type == .renewal }
            #expect(renewals.count == 1 && renewals[0].state == .delivered && renewals[0].dueMinor == 11_000)
            #expect(try await env.engine.prepaid.runDue().renewed == 0)
            // No reminder for a term whose auto-renewal succeeded.
            #expect(try await Self.messages(env, account).isEmpty)
        }
    }

    @Test("O4 O5 O6 without money: reminders from 7 days before, one a day; the failed auto-renewal retried daily; suspended after 7 days, no more tries; reclaimed 7 days later",
          arguments: Backend.available)
    func lifecycle(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, resource) = try await Self.bought(env, cashMinor: 10_000, autoRenew: true)
            let t = try await Self.term(env, account)
            #expect(try await env.wallet(account).cashMinor == 0)
            // 8 days before: nothing; 7 days before: a reminder, once that day.
            env.clock.advance(seconds: (t.expiresAtMicros - 8 * Self.day - env.clock.nowMicros()) / 1_000_000)
            #expect(try await env.engine.prepaid.runDue().reminded == 0)
            env.clock.advance(seconds: 86_400)
            #expect(try await env.engine.prepaid.runDue().reminded == 1)
            #expect(try await env.engine.prepaid.runDue().reminded == 0)
            env.clock.advance(seconds: 86_400)
            #expect(try await env.engine.prepaid.runDue().reminded == 1)
            // The expiry day: the auto-renewal is refused (no money) and says so, once a day.
            env.clock.advance(seconds: (t.expiresAtMicros - env.clock.nowMicros()) / 1_000_000)
            let day0 = try await env.engine.prepaid.runDue()
            #expect(day0.renewed == 0 && day0.renewalsRefused == 1)
            #expect(try await env.engine.prepaid.runDue().renewalsRefused == 0)
            env.clock.advance(seconds: 86_400)
            #expect(try await env.engine.prepaid.runDue().renewalsRefused == 1)
            #expect(try await Self.messages(env, account).contains("resource_renewal_failed"))
            // 7 days after expiry: suspended; no more auto-renewal attempts.
            env.clock.advance(seconds: 6 * 86_400)
            let suspension = try await env.engine.prepaid.runDue()
            #expect(suspension.suspended == 1 && suspension.renewalsRefused == 0)
            #expect(try await Self.term(env, account).state == .suspended)
            env.clock.advance(seconds: 86_400)
            #expect(try await env.engine.prepaid.runDue().renewalsRefused == 0)
            // 7 days after the suspension: reclaimed; then renewing is refused.
            env.clock.advance(seconds: 6 * 86_400)
            #expect(try await env.engine.prepaid.runDue().reclaimed == 1)
            #expect(try await Self.term(env, account).state == .reclaimed)
            _ = try await env.submit(.adjust(accountId: account, bucket: .cash, deltaMinor: 50_000, reason: "late money"))
            let late = try await env.engine.orders.create(accountId: account, OrderInput(type: "renewal", productId: "cvm", specification: "2c4g",
                                                                                        durationMonths: 1, resourceId: resource), idempotencyKey: "late").0
            #expect(await OrderTests.refusal { try await OrderTests.pay(env, account, [late.id]) } == .resourceTermChanged)
            let kinds = try await Self.messages(env, account)
            #expect(kinds.contains("resource_suspended") && kinds.contains("resource_reclaimed") && kinds.contains("resource_expiring"))
            let events = try await env.engine.webhooks.deliveries(endpointId: nil, state: nil, limit: 10)
            #expect(events.isEmpty)  // no endpoint registered: events are kept, nothing is delivered
        }
    }

    @Test("B6 O4 next month's estimate counts the auto-renewals that fall due in it at today's catalog price; none once auto-renew is off",
          arguments: Backend.available)
    func estimate(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            // Bought today for a month: the expiry is in next month, and one renewal of 100.00 falls due there.
            let (account, resource) = try await Self.bought(env, cashMinor: 100_000, autoRenew: true)
            let on = try await env.engine.bills.costEstimate(accountId: account)
            #expect(on.prepaidRenewalsMinor == 10_000 && on.totalMinor == on.postpaidMinor + 10_000)
            _ = try await env.engine.prepaid.setAutoRenew(accountId: account, resourceId: resource, autoRenew: false)
            #expect(try await env.engine.bills.costEstimate(accountId: account).prepaidRenewalsMinor == 0)
        }
    }

    @Test("O4 a manual renewal of a suspended resource revives it, from now", arguments: Backend.available)
    func revive(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (account, resource) = try await Self.bought(env, cashMinor: 10_000, autoRenew: false)
            let t = try await Self.term(env, account)
            env.clock.advance(seconds: (t.expiresAtMicros + 7 * Self.day - env.clock.nowMicros()) / 1_000_000 + 60)
            #expect(try await env.engine.prepaid.runDue().suspended == 1)
            _ = try await env.submit(.adjust(accountId: account, bucket: .cash, deltaMinor: 10_000, reason: "money"))
            let renewal = try await env.engine.orders.create(accountId: account, OrderInput(type: "renewal", productId: "cvm", specification: "2c4g",
                                                                                           durationMonths: 1, resourceId: resource), idempotencyKey: "r").0
            _ = try await OrderTests.pay(env, account, [renewal.id])
            let revived = try await Self.term(env, account)
            #expect(revived.state == .active && revived.suspendedAtMicros == nil)
            #expect(revived.expiresAtMicros == SettlementCalendar.addMonths(env.clock.nowMicros(), 1, timeZone: "Asia/Shanghai"))
        }
    }
}

/// O7 on both databases.
@Suite("Unified expiry date")
struct UnifiedExpiryTests {
    @Test("O7 two resources are brought to the 15th: each renewed by the prorated price (monthly × 12 / 365 a day), shown before confirming, extended on payment",
          arguments: Backend.available)
    func unify(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let account = try await OrderTests.setUp(env, cashMinor: 100_000)
            var ids: [String] = []
            for (i, months) in [1, 2].enumerated() {
                let o = try await OrderTests.order(env, account, months: months)
                _ = try await OrderTests.pay(env, account, [o.id])
                _ = try await env.engine.orders.resolve(accountId: account, orderId: o.id, delivered: true, idempotencyKey: "d\(i)", actor: "t",
                                                        resourceId: "vm-\(i)")
                ids.append("vm-\(i)")
            }
            let preview = try await env.engine.prepaid.unifiedExpiry(accountId: account, day: 15, resourceIds: ids)
            for line in preview {
                #expect(SettlementCalendar.day(of: line.newExpiresAtMicros, timeZone: "Asia/Shanghai").hasSuffix("-15"))
                #expect(line.newExpiresAtMicros >= line.term.expiresAtMicros && line.newExpiresAtMicros - line.term.expiresAtMicros < 31 * 86_400_000_000)
                let seconds = (line.newExpiresAtMicros - line.term.expiresAtMicros) / 1_000_000
                let expected = try UnifiedExpiry.proratedMinor(monthlyMinor: 10_000, extensionSeconds: seconds)
                #expect(line.amountMinor == expected)
            }
            // 30 days of a 100.00 plan: 100 × 12 × 30 / 365 = 98.630… → 98.63; 1 second: 0.00004 → 0.00.
            #expect(try UnifiedExpiry.proratedMinor(monthlyMinor: 10_000, extensionSeconds: 30 * 86_400) == 9_863)
            #expect(try UnifiedExpiry.proratedMinor(monthlyMinor: 10_000, extensionSeconds: 1) == 0)
            let (orders, _) = try await env.engine.orders.unifyExpiry(accountId: account, day: 15, resourceIds: ids, idempotencyKey: "u")
            let ordered: Int64 = orders.reduce(0) { $0 + $1.dueMinor }
            let previewed: Int64 = preview.reduce(0) { $0 + $1.amountMinor }
            #expect(ordered == previewed)
            _ = try await OrderTests.pay(env, account, orders.map(\.id))
            for line in preview where line.amountMinor > 0 {
                #expect(try await env.store.prepaidTerm(accountId: account, resourceId: line.term.resourceId)?.expiresAtMicros == line.newExpiresAtMicros)
            }
            #expect(await OrderTests.refusal { try await env.engine.prepaid.unifiedExpiry(accountId: account, day: 29, resourceIds: ids) } == .invalidField)
            #expect(await OrderTests.refusal { try await env.engine.prepaid.unifiedExpiry(accountId: account, day: 1, resourceIds: ["nope"]) } == .resourceNotFound)
        }
    }
}
