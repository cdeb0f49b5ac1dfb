import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

@Suite("R3 channel limits on SQLite and PostgreSQL")
struct RechargeLimitTests {
    /// The international-card defaults of R3 (6,000 per payment, 10,000 per day, 50,000 per month) on the sandbox channel.
    static var settings: CofferEngine.Settings {
        var s = CofferEngine.Settings()
        s.recharge.channelLimits["sandbox"] = ChannelLimits(perPaymentMinor: 600_000, perDayMinor: 1_000_000, perMonthMinor: 5_000_000)
        s.recharge.maxOrdersPerWindow = 1_000
        return s
    }

    func order(_ env: TestEnvironment, _ account: String, _ amount: String) async throws -> CofferError? {
        do {
            _ = try await env.engine.recharges.create(accountId: account, amountText: amount, channelName: "sandbox",
                                                      idempotencyKey: env.engine.ids.make("k"), actor: "t")
            return nil
        } catch let error as CofferError { return error }
    }

    @Test("R3 per payment, per day (Asia/Shanghai days) and per month; the refusal names the limit and suggests bank remittance",
          arguments: Backend.available)
    func r3Limits(backend: Backend) async throws {
        try await TestEnvironment.with(backend, settings: Self.settings) { env in
            let a = try await env.createAccount().accountId
            let tooBig = try await order(env, a, "6000.01")
            #expect(tooBig?.code == .rechargeLimitExceeded && tooBig?.detail.contains("6000.00 per payment") == true)
            #expect(tooBig?.detail.contains("对公汇款") == true)
            #expect(try await order(env, a, "6000.00") == nil)
            #expect(try await order(env, a, "4000.00") == nil)
            let day = try await order(env, a, "0.01")
            #expect(day?.code == .rechargeLimitExceeded && day?.detail.contains("per day") == true)
            // The next Beijing day starts afresh.
            let (dayStart, _) = RechargeService.periodStarts(nowMicros: env.clock.nowMicros(), timeZone: "Asia/Shanghai")
            let secondsToNextDay = (dayStart + 86_400_000_000 - env.clock.nowMicros()) / 1_000_000 + 1
            env.clock.advance(seconds: secondsToNextDay)
            #expect(try await order(env, a, "6000.00") == nil)
            // Month: 50,000 in all (unless the test clock crossed into a new month, which it does not: 2026-09-21).
            for _ in 0..<3 {
                env.clock.advance(seconds: 86_400)
                #expect(try await order(env, a, "6000.00") == nil)
                #expect(try await order(env, a, "4000.00") == nil)
            }
            env.clock.advance(seconds: 86_400)
            let month = try await order(env, a, "6000.00")
            #expect(month?.code == .rechargeLimitExceeded && month?.detail.contains("per month") == true)
            #expect(try await order(env, a, "4000.00") == nil)
        }
    }
}

