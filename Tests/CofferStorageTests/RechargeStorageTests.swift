import CofferChannels
import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

@Suite("Recharge through the sandbox channel on SQLite and PostgreSQL")
struct RechargeStorageTests {
    func pending(_ env: TestEnvironment, _ account: String, _ amount: String = "100.00") async throws -> RechargeRecord {
        try await env.engine.recharges.create(accountId: account, amountText: amount, channelName: "sandbox",
                                              idempotencyKey: env.engine.ids.make("k"), actor: "t").0.recharge
    }

    @Test("R4 a channel fee is paid on top, never credited: the channel must collect amount + fee, the fee goes to revenue",
          arguments: Backend.available)
    func r4Fee(backend: Backend) async throws {
        var settings = CofferEngine.Settings()
        settings.recharge.feeRules["sandbox"] = FeeRule(aboveMinor: 20_000, rateBasisPoints: 60)
        try await TestEnvironment.with(backend, settings: settings) { env in
            let a = try await env.createAccount().accountId
            let small = try await pending(env, a, "200.00")
            #expect(small.feeMinor == nil && small.totalMinor == 20_000)
            let r = try await pending(env, a, "300.00")
            #expect(r.feeMinor == 180 && r.totalMinor == 30_180)
            #expect(try await env.store.recharge(id: r.id)?.feeMinor == 180)
            // Paying only the amount is a different amount from the order's total: refused, nothing credited.
            let (h1, b1) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "F-1", amountMinor: 30_000,
                                                              nowMicros: env.clock.nowMicros())
            let short = await #expect(throws: CofferError.self) {
                try await env.engine.recharges.handleNotification(channelName: "sandbox", headers: h1, body: b1)
            }
            #expect(short?.code == .amountMismatch)
            #expect(try await env.wallet(a).cashMinor == 0)
            let (h2, b2) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "F-1", amountMinor: 30_180,
                                                              nowMicros: env.clock.nowMicros())
            _ = try await env.engine.recharges.handleNotification(channelName: "sandbox", headers: h2, body: b2)
            #expect(try await env.wallet(a).cashMinor == 30_000)
            let entry = try #require(try await env.store.entries(accountId: a).last)
            #expect(entry.postings.contains(Posting(.revenue, 180)))
            // The channel collected amount + fee: one row of the journal posts both on its channel-clearing book.
            #expect(BookAmounts(entry.postings).channelClearing == -30_180 && BookAmounts(entry.postings).sum == 0)
            var q = TransactionQuery(accountId: a)
            q.types = [.recharge]
            #expect(try await env.store.transactions(q).map(\.movement.amountMinor) == [30_000])
        }
    }

    @Test("R5 a signed notification credits cash exactly once, keyed by the channel trade number", arguments: Backend.available)
    func r5ExactlyOnce(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            let r = try await pending(env, a)
            let (headers, body) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "T-1", amountMinor: 10_000,
                                                                     nowMicros: env.clock.nowMicros())
            let results = try await withThrowingTaskGroup(of: NotificationResult.self) { group in
                for _ in 0..<10 {
                    group.addTask { try await env.engine.recharges.handleNotification(channelName: "sandbox", headers: headers, body: body) }
                }
                var all: [NotificationResult] = []
                for try await r in group { all.append(r) }
                return all
            }
            #expect(results.filter { if case .credited = $0 { true } else { false } }.count == 1)
            #expect(try await env.wallet(a).cashMinor == 10_000)
            let paid = try await env.store.recharge(id: r.id)
            #expect(paid?.state == .paid && paid?.channelTradeNo == "T-1")
            // A second, different trade for the same order is refused, not credited.
            let (h2, b2) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "T-2", amountMinor: 10_000,
                                                              nowMicros: env.clock.nowMicros())
            let second = await #expect(throws: CofferError.self) {
                try await env.engine.recharges.handleNotification(channelName: "sandbox", headers: h2, body: b2)
            }
            #expect(second?.code == .rechargeAlreadyPaid)
            #expect(try await env.wallet(a).cashMinor == 10_000)
        }
    }

    @Test("R5 bad signatures, other amounts and stale notifications are refused and the order stays pending",
          arguments: Backend.available)
    func r5Refusals(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            let r = try await pending(env, a)
            let now = env.clock.nowMicros()
            let (headers, body) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "T", amountMinor: 10_000, nowMicros: now)
            var tampered = body
            tampered[tampered.count - 3] ^= 1
            let forged = SandboxChannel(secret: "another-secret-of-16-bytes")
            let (fh, fb) = try forged.signedNotification(rechargeId: r.id, tradeNo: "T", amountMinor: 10_000, nowMicros: now)
            let (wh, wb) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "T", amountMinor: 9_999, nowMicros: now)
            let (sh, sb) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "T", amountMinor: 10_000,
                                                              nowMicros: now - 301 * 1_000_000)
            let cases: [([String: String], [UInt8], String)] = [
                (headers, tampered, "notification_signature_invalid"), (fh, fb, "notification_signature_invalid"),
                ([:], body, "notification_signature_invalid"), (wh, wb, "amount_mismatch"), (sh, sb, "notification_stale"),
            ]
            for (h, b, code) in cases {
                do {
                    _ = try await env.engine.recharges.handleNotification(channelName: "sandbox", headers: h, body: b)
                    Issue.record("accepted a notification that should fail with \(code)")
                } catch let e as CofferError {
                    #expect(e.code.rawValue == code)
                }
            }
            #expect(try await env.store.recharge(id: r.id)?.state == .pending)
            #expect(try await env.wallet(a) == .zero)
        }
    }

    @Test("R5 pending orders expire after 2 hours; a late payment is still credited, never lost", arguments: Backend.available)
    func r5Expiry(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            let r = try await pending(env, a, "12.34")
            env.clock.advance(seconds: 7_199)
            #expect(try await env.engine.jobs.runOnce().rechargesExpired == 0)
            env.clock.advance(seconds: 1)
            #expect(try await env.engine.jobs.runOnce().rechargesExpired == 1)
            #expect(try await env.store.recharge(id: r.id)?.state == .expired)
            let (h, b) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "LATE", amountMinor: 1_234,
                                                            nowMicros: env.clock.nowMicros())
            _ = try await env.engine.recharges.handleNotification(channelName: "sandbox", headers: h, body: b)
            #expect(try await env.wallet(a).cashMinor == 1_234)
        }
    }

    @Test("R9 a recharge first makes good arrears, then repays advance outstanding (both examples)", arguments: Backend.available)
    func r9Examples(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            // Example 1: advance 50,000, balance ≥ 0, 80,000 in → advance repaid, balance 30,000.
            let one = try await env.createAccount().accountId
            _ = try await env.submit(.advance(accountId: one, amountMinor: 5_000_000, memo: nil)).get()
            _ = try await env.submit(.charge(accountId: one, chargeId: "c", amountMinor: 5_000_000, mode: .prepaid, reference: nil)).get()
            try await pay(env, one, 8_000_000)
            #expect(try await env.wallet(one) == WalletBalances(cashMinor: 3_000_000, advanceOutstandingMinor: 0))
            // Example 2: advance 50,000, balance −10,000, 80,000 in → 70,000, then 20,000 after repaying.
            let two = try await env.createAccount().accountId
            _ = try await env.submit(.advance(accountId: two, amountMinor: 5_000_000, memo: nil)).get()
            _ = try await env.submit(.charge(accountId: two, chargeId: "c", amountMinor: 6_000_000, mode: .postpaid, reference: nil)).get()
            #expect(try await env.wallet(two).balanceMinor == -1_000_000)
            try await pay(env, two, 8_000_000)
            #expect(try await env.wallet(two) == WalletBalances(cashMinor: 2_000_000, advanceOutstandingMinor: 0))
            let records = try await env.store.transactions(TransactionQuery(accountId: two))
            #expect(records.prefix(2).map(\.movement.type) == [.advanceRepayment, .recharge])
            #expect(records[1].movement.balanceAfterMinor == 7_000_000)
        }
    }

    func pay(_ env: TestEnvironment, _ account: String, _ amountMinor: Int64) async throws {
        var settings = RechargeSettings()
        settings.maxMinor = 999_999_900
        let r = try await pending(env, account, MoneyFormat.format(amountMinor))
        let (h, b) = try env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "T-\(r.id)", amountMinor: amountMinor,
                                                        nowMicros: env.clock.nowMicros())
        _ = try await env.engine.recharges.handleNotification(channelName: "sandbox", headers: h, body: b)
    }

    @Test("R7 more than 10 recharge orders in 10 minutes are refused", arguments: Backend.available)
    func r7FrequencyLimit(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            for _ in 0..<10 { _ = try await pending(env, a, "1.00") }
            do {
                _ = try await pending(env, a, "1.00")
                Issue.record("the 11th order was accepted")
            } catch let e as CofferError {
                #expect(e.code == .rechargeRateLimited)
            }
            env.clock.advance(seconds: 601)
            _ = try await pending(env, a, "1.00")
        }
    }

    @Test("R1 recharge amounts outside 0.01–9,999,999.00 are refused", arguments: Backend.available)
    func r1Range(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            for (bad, code) in [("0.00", ErrorCode.amountNotPositive), ("10000000.00", .amountOutOfRange),
                                ("-1.00", .amountNotPositive), ("1.001", .amountTooManyDecimals)] {
                let error = await #expect(throws: CofferError.self, "\(bad)") { try await pending(env, a, bad) }
                #expect(error?.code == code, "\(bad)")
            }
        }
    }
}
