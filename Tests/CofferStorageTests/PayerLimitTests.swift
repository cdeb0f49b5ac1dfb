import CofferChannels
import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

/// R7's distinct-payer limit on both databases, through the sandbox channel's named payers: the check runs under the
/// wallet lock, so payers arriving together cannot all slip under the limit; a refused payment is returned, not credited.
@Suite("R7 distinct payers on SQLite and PostgreSQL")
struct PayerLimitTests {
    func order(_ env: TestEnvironment, _ account: String, _ amount: String) async throws -> RechargeRecord {
        try await env.engine.recharges.create(accountId: account, amountText: amount, channelName: "sandbox",
                                              idempotencyKey: env.engine.ids.make("k"), actor: "t").0.recharge
    }

    func pay(_ env: TestEnvironment, _ r: RechargeRecord, payer: String?) async throws -> NotificationResult {
        let (headers, body) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "T-" + r.id, amountMinor: r.totalMinor,
                                                                 payer: payer, nowMicros: env.clock.nowMicros())
        return try await env.engine.recharges.handleNotification(channelName: "sandbox", headers: headers, body: body)
    }

    @Test("R7 eight new payers at once against a limit of 5: exactly five credited, three refused and returned",
          arguments: Backend.available)
    func r7ConcurrentPayers(backend: Backend) async throws {
        var settings = CofferEngine.Settings()
        settings.recharge.maxOrdersPerWindow = 50
        settings.ledger.maxWaitMicros = 2_000 // let concurrent credits share batches, the harder case for the check
        try await TestEnvironment.with(backend, settings: settings) { env in
            let a = try await env.createAccount().accountId
            var orders: [RechargeRecord] = []
            for _ in 0..<8 { orders.append(try await order(env, a, "10.00")) }
            let results = try await withThrowingTaskGroup(of: NotificationResult.self) { group in
                for (i, r) in orders.enumerated() { group.addTask { try await pay(env, r, payer: "p\(i)") } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let credited = results.filter { if case .credited = $0 { true } else { false } }.count
            let refused = results.filter { if case .refused = $0 { true } else { false } }.count
            #expect(credited == 5)
            #expect(refused == 3)
            #expect(try await env.wallet(a).cashMinor == 5_000)
            #expect(try await env.engine.recharges.refunds.processDue() == 3)
            let refunds = try await env.store.channelRefunds(accountId: a, states: [], limit: 10)
            #expect(refunds.count == 3)
            #expect(refunds.allSatisfy { $0.state == .succeeded && $0.amountMinor == 1_000 && $0.purpose == .payerLimit })
            var states: [RechargeState: Int] = [:]
            for r in orders { states[try #require(try await env.store.recharge(id: r.id)).state, default: 0] += 1 }
            #expect(states == [.paid: 5, .refused: 3])
        }
    }

    @Test("R7 a payment without a named payer is not counted; a refused order stays refused on a repeated notification and a query",
          arguments: Backend.available)
    func r7AnonymousAndRepeats(backend: Backend) async throws {
        var settings = CofferEngine.Settings()
        settings.recharge.maxPayersPerWindow = 1
        try await TestEnvironment.with(backend, settings: settings) { env in
            let a = try await env.createAccount().accountId
            guard case .credited = try await pay(env, try await order(env, a, "1.00"), payer: "first") else {
                Issue.record("the first payer must be credited"); return
            }
            guard case .credited = try await pay(env, try await order(env, a, "2.00"), payer: nil) else {
                Issue.record("a payment without a payer is not limited"); return
            }
            let second = try await order(env, a, "4.00")
            guard case .refused(let r, let refund) = try await pay(env, second, payer: "second") else {
                Issue.record("the second payer must be refused"); return
            }
            #expect(r.state == .refused && r.payerId == "second")
            #expect(refund?.state == .pending)
            #expect(try await env.engine.jobs.runOnce().refundsFinished == 1)
            #expect(try await env.store.channelRefund(id: try #require(refund?.id))?.state == .succeeded)
            guard case .refused(_, nil) = try await pay(env, second, payer: "second") else {
                Issue.record("a repeated notification answers refused without a new refund"); return
            }
            #expect(try await env.engine.recharges.sync(try #require(try await env.store.recharge(id: second.id))).state == .refused)
            #expect(try await env.store.channelRefunds(accountId: a, states: [], limit: 10).count == 1)
            #expect(try await env.wallet(a).cashMinor == 300)
            let audit = try await env.store.auditLog(accountId: a, limit: 20).map(\.action)
            #expect(audit.contains("recharge.refused") && audit.contains("channel_refund.succeeded"))
        }
    }

    @Test("R7 migration 6 rebuilds the recharges table without losing a row, and its constraints hold",
          arguments: Backend.available)
    func r7MigrationKeepsRecharges(backend: Backend) async throws {
        let (_, location, cleanup) = try TestEnvironment.freshDatabase(backend)
        func close(_ store: SQLStore) async {
            if backend == .postgres { try? await store.dropSchemaForTests() }
            await store.shutdown()
            cleanup()
        }
        let account = AccountRecord(id: "acc_m6", type: .personal, entityName: "迁移测试", contactEmail: "m6@example.com",
                                    currency: "CNY", timeZone: "Asia/Shanghai", createdAtMicros: 1)
        let pending = RechargeRecord(id: "rch_m6_pending", accountId: account.id, channel: "wechatpay", amountMinor: 1_234,
                                     state: .pending, expiresAtMicros: 99, createdAtMicros: 2, paymentKind: "qr",
                                     paymentURL: "weixin://wxpay/bizpayurl?pr=x", feeMinor: 7)
        let paid = RechargeRecord(id: "rch_m6_paid", accountId: account.id, channel: "alipay", amountMinor: 500, state: .paid,
                                  channelTradeNo: "2026-T-1", expiresAtMicros: 99, paidAtMicros: 50, createdAtMicros: 3)
        // A server of the version before: schema 5 and its rows.
        let old = try await SQLStore.open(location)
        try await old.migrate(upTo: 5)
        for row in OldSchemaRows.account(account) { try await old.executeRawForTests(row) }
        try await old.executeRawForTests(OldSchemaRows.recharge(pending))
        try await old.executeRawForTests(OldSchemaRows.recharge(paid))
        await old.shutdown()
        // The upgrade: the new version starts on the same database and migrates.
        let store = try await SQLStore.open(location)
        do {
            try await store.migrate()
            #expect(try await store.recharge(id: pending.id) == pending)
            #expect(try await store.recharge(id: paid.id) == paid)
            // The rebuilt table still refuses a second recharge for one trade, and a refused one without its trade.
            var twin = paid
            twin.id = "rch_m6_twin"
            var broken = pending
            broken.id = "rch_m6_broken"
            broken.state = .refused
            for bad in [twin, broken] {
                await #expect(throws: (any Error).self) { try await store.transaction { tx in try await tx.insertRecharge(bad) } }
            }
        } catch {
            await close(store)
            throw error
        }
        await close(store)
    }
}
