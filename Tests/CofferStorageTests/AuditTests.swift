import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

/// Z3, Z4 on both databases: the audit log is a hash chain committed with the action it records; `coffer verify`
/// recomputes it and names a changed, removed or cut-off record.
@Suite("Audit log: a hash chain checked by verify")
struct AuditTests {
    /// Three audited actions: an operator adjustment and a gift (ledger batches) and a coupon grant (a service transaction),
    /// the first two from a request whose origin the records keep.
    static func actions(_ env: TestEnvironment) async throws -> String {
        let account = try await env.createAccount().accountId
        let origin = RequestOrigin(requestId: "req-audit-1", ip: "203.0.113.7", userAgent: "curl/8.5")
        try await RequestOrigin.$current.withValue(origin) {
            _ = try await env.submit(.adjust(accountId: account, bucket: .cash, deltaMinor: 5_000, reason: "opening balance")).get()
            _ = try await env.submit(.grantGift(accountId: account, amountMinor: 800, memo: "welcome")).get()
        }
        _ = try await env.engine.coupons.grant(CouponInput(kind: "voucher", value: "5.00", validUntilMicros: env.clock.nowMicros() + 86_400_000_000),
                                               accountIds: [account], codeCount: nil, idempotencyKey: UUID().uuidString, actor: "operator:alice")
        return account
    }

    @Test("Z3 Z4 each audited action is chained in commit order with who, what and from where; verify recomputes the chain and the head",
          arguments: Backend.available)
    func chain(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let account = try await Self.actions(env)
            var q = AuditQuery()
            q.accountId = account
            let records = try await env.store.auditEvents(q)
            let mine = records.filter { $0.action.hasPrefix("wallet.") }
            #expect(mine.count == 2 && mine.allSatisfy { $0.ip == "203.0.113.7" && $0.userAgent == "curl/8.5" && $0.requestId == "req-audit-1" })
            // Before and after, as fields: the adjustment moved cash from 0.00 to 50.00, the gift then moved gift credit.
            let adjustment = try #require(mine.first { $0.action == "wallet.adjustment" })
            #expect(adjustment.before == ["cash": "0.00", "gift": "0.00", "frozen": "0.00", "advanceOutstanding": "0.00"])
            #expect(adjustment.after == ["cash": "50.00", "gift": "0.00", "frozen": "0.00", "advanceOutstanding": "0.00"])
            let gift = try #require(mine.first { $0.action == "wallet.gift_grant" })
            #expect(gift.before?["gift"] == "0.00" && gift.after?["gift"] == "8.00" && gift.after?["cash"] == "50.00")
            // Newest first, seq without gaps, and the head is the newest record's hash.
            let all = try await env.store.auditEvents(AuditQuery())
            let seqs = all.compactMap(\.seq)
            #expect(seqs == Array((1...Int64(seqs.count)).reversed()))
            let head = try await env.store.auditChainHead()
            #expect(head.seq == seqs.first && head.hash == all.first?.hash)
            var byAction = AuditQuery()
            byAction.actionPrefix = "wallet."
            #expect(try await env.store.auditEvents(byAction).allSatisfy { $0.action.hasPrefix("wallet.") })
            // Recomputed from the genesis, the chain gives the stored hashes.
            var hash = AuditChain.genesis
            for r in all.reversed() {
                hash = AuditChain.hash(previous: hash, seq: r.seq!, r)
                #expect(r.hash == hash)
            }
        }
    }

    /// (what the tamperer does, what verify says)
    static let tampering: [(String, @Sendable (String) -> String, String)] = [
        ("a changed detail", { _ in "UPDATE audit_log SET detail = 'nothing happened' WHERE seq = 2" }, "audit record 2"),
        ("a changed actor", { _ in "UPDATE audit_log SET actor = 'operator:mallory' WHERE seq = 1" }, "audit record 1"),
        ("a changed after state", { _ in #"UPDATE audit_log SET after_state = '{"cash":"9999.00"}' WHERE seq = 2"# }, "audit record 2"),
        ("a removed before state", { _ in "UPDATE audit_log SET before_state = NULL WHERE seq = 3" }, "audit record 3"),
        ("a removed record", { _ in "DELETE FROM audit_log WHERE seq = 2" }, "audit record 2 is missing"),
        ("a cut-off tail", { _ in "DELETE FROM audit_log WHERE seq = (SELECT MAX(seq) FROM audit_log)" }, "records were removed from the end"),
        ("a record slipped in outside the chain", { a in
            "INSERT INTO audit_log (id, account_id, actor, action, detail, created_at) VALUES ('aud_forged', '\(a)', 'operator:mallory', 'wallet.adjustment', 'x', 1)"
        }, "outside the hash chain"),
    ]

    @Test("Z4 tampering with the audit log is seen by verify: a changed record or state, a removed, cut-off or slipped-in record",
          arguments: Backend.available)
    func tamper(backend: Backend) async throws {
        for (name, sql, expected) in Self.tampering {
            let env = try await TestEnvironment.make(backend)
            do {
                let account = try await Self.actions(env)
                #expect(try await env.store.verify().isEmpty, "\(name): clean before")
                try await env.store.executeRawForTests(sql(account))
                let problems = try await env.store.verify().map(\.description)
                #expect(problems.count == 1 && problems.first?.contains(expected) == true, "\(name): \(problems)")
            } catch {
                Issue.record("\(name): \(error)")
            }
            await env.close()
        }
    }
}

/// Z2 (rate limits across instances): failed sign-ins are counted in the database, so two servers on one database throttle
/// an address together, and the window forgets them.
@Suite("Sign-in throttle kept in the database")
struct SignInThrottleTests {
    @Test("Z2 five failures spread over two instances throttle the address on both; after the window it signs in again",
          arguments: Backend.available)
    func acrossInstances(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let (accountId, ownerId) = try await env.createAccount()
            let email = try #require(try await env.store.user(accountId: accountId, id: ownerId)).email
            var settings = CofferEngine.Settings()
            settings.bcryptCost = 4
            // A second server on the same database (its ledger writer never runs: only sign-ins are asked of it).
            let other = CofferEngine(store: env.store, clock: env.clock, channels: [env.sandbox], settings: settings)
            for (i, console) in [env.engine.console, other.console, env.engine.console, other.console, env.engine.console].enumerated() {
                let code = await refusalCode { try await console.signIn(email: email, password: "wrong \(i)", as: .user, client: "198.51.100.\(i)") }
                #expect(code == .signInFailed)
            }
            for console in [env.engine.console, other.console] {
                let code = await refusalCode { try await console.signIn(email: email, password: "correct horse battery", as: .user, client: "198.51.100.9") }
                #expect(code == .signInThrottled)
            }
            env.clock.advance(seconds: env.engine.console.settings.failureWindowSeconds + 1)
            let (session, _) = try await other.console.signIn(email: email, password: "correct horse battery", as: .user, client: "198.51.100.9")
            #expect(session.principal.accountId == accountId)
        }
    }
}
