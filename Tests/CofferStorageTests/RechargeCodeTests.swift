import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

@Suite("R8 recharge codes on SQLite and PostgreSQL")
struct RechargeCodeTests {
    static func batch(_ env: TestEnvironment, amount: String = "100.00", bucket: WalletBucket = .cash, count: Int = 3,
                      validSeconds: Int64 = 86_400) async throws -> [RechargeCodeRecord] {
        let (batch, _) = try await env.engine.codes.createBatch(
            amountText: amount, bucket: bucket, validUntilMicros: env.clock.nowMicros() + validSeconds * 1_000_000, count: count,
            memo: "双十一", idempotencyKey: env.engine.ids.make("k"), actor: "user:operator")
        return try await env.engine.codes.export(batchId: batch.id, actor: "user:operator").1
    }

    func redeem(_ env: TestEnvironment, _ account: String, _ code: String) async throws -> LedgerOutcome {
        try await env.engine.codes.redeem(accountId: account, typed: code, idempotencyKey: env.engine.ids.make("k"), actor: "user:c")
    }

    @Test("R8 codes are 16 unguessable symbols, unique in a batch; typing is forgiving about case, spaces and dashes")
    func r8CodeShape() {
        let codes = (0..<2_000).map { _ in RechargeCodeService.newCode() }
        #expect(Set(codes).count == codes.count)
        for code in codes.prefix(50) {
            #expect(code.count == 19 && code.split(separator: "-").count == 4)
            #expect(RechargeCodeService.normalize(code.lowercased().replacingOccurrences(of: "-", with: " ")) == code)
        }
        #expect(RechargeCodeService.normalize("0000-1111-OOOO-IIII") == nil)
        #expect(RechargeCodeService.normalize("ABCD") == nil)
    }

    @Test("R8 a cash code credits cash once and follows R9; a gift code credits gift", arguments: Backend.available)
    func r8CashAndGift(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            _ = try await env.submit(.charge(accountId: a, chargeId: "c1", amountMinor: 3_000, mode: .postpaid, reference: nil)).get()
            let cash = try await Self.batch(env)
            let receipt = try await redeem(env, a, cash[0].code.lowercased()).get()
            #expect(receipt.wallet.cashMinor == 7_000)
            let again = try await redeem(env, a, cash[0].code)
            #expect(throws: CofferError.self) { try again.get() }
            #expect(again.result.failureCode == "code_already_redeemed")
            let gift = try await Self.batch(env, amount: "20.00", bucket: .gift, count: 1)
            _ = try await redeem(env, a, gift[0].code).get()
            let w = try await env.wallet(a)
            #expect(w.cashMinor == 7_000 && w.giftMinor == 2_000)
            var query = TransactionQuery(accountId: a)
            query.types = [.codeRedemption]
            let lines = try await env.store.transactions(query)
            #expect(lines.count == 2)
            let stored = try await env.store.codes(batchId: cash[0].batchId)
            #expect(stored.filter { $0.state == .redeemed }.map(\.redeemedBy) == [a])
        }
    }

    @Test("R8 voiding a batch withdraws its unused codes; redeemed codes stay redeemed; a repeat voids nothing more",
          arguments: Backend.available)
    func r8VoidBatch(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            let codes = try await Self.batch(env, count: 3)
            _ = try await redeem(env, a, codes[0].code).get()
            let noReason = await #expect(throws: CofferError.self) {
                _ = try await env.engine.codes.voidBatch(batchId: codes[0].batchId, reason: "  ", actor: "user:operator")
            }
            #expect(noReason?.code == .invalidField)
            #expect(try await env.engine.codes.voidBatch(batchId: codes[0].batchId, reason: "一箱卡片遗失", actor: "user:operator") == 2)
            #expect(try await env.engine.codes.voidBatch(batchId: codes[0].batchId, reason: "again", actor: "user:operator") == 0)
            let refused = try await redeem(env, a, codes[1].code)
            #expect(refused.result.failureCode == "code_voided")
            let states = try await env.store.codes(batchId: codes[0].batchId).map(\.state)
            #expect(states.filter { $0 == .redeemed }.count == 1 && states.filter { $0 == .voided }.count == 2)
            #expect(try await env.wallet(a).cashMinor == 10_000)
        }
    }

    @Test("R8 concurrent redemption of one code by 50 callers credits once", arguments: Backend.available)
    func r8FiftyRedeemers(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let code = try await Self.batch(env, amount: "500.00", count: 1)[0].code
            var accounts: [String] = []
            for _ in 0..<50 { accounts.append(try await env.createAccount().accountId) }
            let outcomes = try await withThrowingTaskGroup(of: (String, Bool).self) { group in
                for account in accounts {
                    group.addTask {
                        let outcome = try await env.engine.codes.redeem(accountId: account, typed: code,
                                                                        idempotencyKey: "redeem-1", actor: "user:\(account)")
                        if case .success = outcome.result { return (account, true) }
                        #expect(outcome.result.failureCode == "code_already_redeemed")
                        return (account, false)
                    }
                }
                var all: [(String, Bool)] = []
                for try await o in group { all.append(o) }
                return all
            }
            let winners = outcomes.filter(\.1).map(\.0)
            #expect(winners.count == 1)
            var total: Int64 = 0
            for account in accounts { total += try await env.wallet(account).cashMinor }
            #expect(total == 50_000)
            #expect(try await env.wallet(winners[0]).cashMinor == 50_000)
        }
    }

    @Test("R8 expired codes are refused and nothing is credited", arguments: Backend.available)
    func r8Expired(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            let code = try await Self.batch(env, count: 1, validSeconds: 60)[0].code
            env.clock.advance(seconds: 61)
            #expect(try await redeem(env, a, code).result.failureCode == "code_expired")
            #expect(try await env.wallet(a).cashMinor == 0)
        }
    }

    @Test("R8 five failed attempts per hour, then even a right code is refused until the hour has passed", arguments: Backend.available)
    func r8AttemptLimit(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            let good = try await Self.batch(env, count: 1)[0].code
            for _ in 0..<5 {
                let wrong = await #expect(throws: CofferError.self) { try await redeem(env, a, RechargeCodeService.newCode()) }
                #expect(wrong?.code == .codeNotFound)
            }
            let limited = await #expect(throws: CofferError.self) { try await redeem(env, a, good) }
            #expect(limited?.code == .codeAttemptsExceeded)
            env.clock.advance(seconds: 3_601)
            #expect(try await redeem(env, a, good).result.failureCode == nil)
            // A successful redemption does not count against the account.
            let other = try await Self.batch(env, count: 1)[0].code
            #expect(try await redeem(env, a, other).result.failureCode == nil)
        }
    }

    @Test("R8 batches are validated: count, amount and deadline")
    func r8BatchValidation() async throws {
        try await TestEnvironment.with(.sqlite) { env in
            for (amount, count, seconds, code) in [("0.00", 1, Int64(60), "amount_not_positive"), ("1.001", 1, 60, "amount_too_many_decimals"),
                                                   ("10.00", 0, 60, "invalid_field"), ("10.00", 10_001, 60, "invalid_field"),
                                                   ("10.00", 1, -1, "invalid_field")] {
                let error = await #expect(throws: CofferError.self) {
                    try await env.engine.codes.createBatch(amountText: amount, bucket: .cash,
                                                           validUntilMicros: env.clock.nowMicros() + seconds * 1_000_000, count: count,
                                                           memo: nil, idempotencyKey: env.engine.ids.make("k"), actor: "op")
                }
                #expect(error?.code.rawValue == code)
            }
        }
    }
}

extension Result where Failure == CofferError {
    /// The refusal code, or nil on success.
    var failureCode: String? {
        if case .failure(let e) = self { return e.code.rawValue }
        return nil
    }
}
