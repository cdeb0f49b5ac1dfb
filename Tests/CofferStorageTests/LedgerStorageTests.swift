import CofferChannels
import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

@Suite("Ledger on SQLite and PostgreSQL")
struct LedgerStorageTests {
    @Test("PostgreSQL is configured whenever the test command requires it")
    func postgresPresentWhenRequired() {
        if Backend.postgresRequired { #expect(Backend.postgresURL != nil, "COFFER_TEST_POSTGRES_URL missing") }
    }

    @Test("W4 gift before cash, persisted", arguments: Backend.available)
    func w4Persisted(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.fundedAccount(cashMinor: 10_000, giftMinor: 3_000)
            let receipt = try await env.submit(.charge(accountId: a, chargeId: env.engine.wallets.newChargeId(),
                                                       amountMinor: 5_000, mode: .prepaid, reference: "vm-1")).get()
            #expect(receipt.charge?.giftMinor == 3_000)
            #expect(receipt.charge?.cashMinor == 2_000)
            #expect(try await env.wallet(a) == WalletBalances(cashMinor: 8_000, giftMinor: 0))
        }
    }

    @Test("W5 a freeze resolves exactly once: capture, then release or capture again is refused naming the state",
          arguments: Backend.available)
    func w5ExactlyOnce(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.fundedAccount(cashMinor: 10_000)
            let f = try await env.submit(.freeze(accountId: a, freezeId: env.engine.wallets.newFreezeId(), amountMinor: 4_000,
                                                 expiresInSeconds: nil, reference: nil)).get().freeze!
            #expect(try await env.wallet(a).availableMinor == 6_000)
            let captured = try await env.submit(.capture(accountId: a, freezeId: f.id, amountMinor: 1_500)).get()
            #expect(captured.wallet == WalletBalances(cashMinor: 8_500))
            let again = try await env.submit(.release(accountId: a, freezeId: f.id))
            #expect(throws: CofferError.freezeAlreadyResolved(f.id, state: "captured")) { try again.get() }
            let twice = try await env.submit(.capture(accountId: a, freezeId: f.id, amountMinor: nil))
            #expect(throws: CofferError.freezeAlreadyResolved(f.id, state: "captured")) { try twice.get() }
            #expect(try await env.store.freeze(accountId: a, id: f.id)?.state == .captured)
        }
    }

    @Test("W5 a freeze past its deadline is released by the background job, once", arguments: Backend.available)
    func w5Expiry(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.fundedAccount(cashMinor: 10_000)
            let f = try await env.submit(.freeze(accountId: a, freezeId: env.engine.wallets.newFreezeId(), amountMinor: 4_000,
                                                 expiresInSeconds: 3_600, reference: nil)).get().freeze!
            #expect(try await env.engine.jobs.runOnce().freezesExpired == 0)
            env.clock.advance(seconds: 3_601)
            #expect(try await env.engine.jobs.runOnce().freezesExpired == 1)
            #expect(try await env.engine.jobs.runOnce().freezesExpired == 0)
            #expect(try await env.store.freeze(accountId: a, id: f.id)?.state == .expired)
            #expect(try await env.wallet(a) == WalletBalances(cashMinor: 10_000))
        }
    }

    @Test("W10 same key and same request returns the first result and never moves money twice; a different request is 409",
          arguments: Backend.available)
    func w10Idempotency(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.fundedAccount(cashMinor: 10_000)
            let first = try await env.submit(.charge(accountId: a, chargeId: "chg_first", amountMinor: 700, mode: .prepaid,
                                                     reference: "r"), key: "k-1")
            let replay = try await env.submit(.charge(accountId: a, chargeId: "chg_other", amountMinor: 700, mode: .prepaid,
                                                      reference: "r"), key: "k-1")
            #expect(!first.replayed && replay.replayed)
            #expect(try first.get() == replay.get())
            #expect(try await env.wallet(a).cashMinor == 9_300)
            let conflict = try await env.submit(.charge(accountId: a, chargeId: "chg_x", amountMinor: 800, mode: .prepaid,
                                                        reference: "r"), key: "k-1")
            #expect(throws: CofferError.idempotencyConflict) { try conflict.get() }
            // Within one batch too: the same key twice in one group commit applies once.
            let both = try await env.engine.writer.submitAll((0..<2).map { _ in
                LedgerRequest(.grantGift(accountId: a, amountMinor: 100, memo: nil), idempotencyKey: "k-2", actor: "t")
            })
            #expect(both.filter(\.replayed).count == 1)
            #expect(try await env.wallet(a).giftMinor == 100)
            #expect(try await env.store.entries(accountId: a).count == 3)
        }
    }

    @Test("Z3 operator money actions are audited with who, what, and the balances before and after", arguments: Backend.available)
    func z3Audit(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            _ = try await env.engine.writer.submit(LedgerRequest(.grantGift(accountId: a, amountMinor: 500, memo: "welcome"),
                                                                 idempotencyKey: "g", actor: "operator-key:key_1")).get()
            _ = try await env.engine.writer.submit(LedgerRequest(.adjust(accountId: a, bucket: .cash, deltaMinor: 250, reason: "refund of ticket 42"),
                                                                 idempotencyKey: "a", actor: "operator-key:key_1")).get()
            let log = try await env.store.auditLog(accountId: a, limit: 10)
            #expect(log.map(\.action) == ["wallet.adjustment", "wallet.gift_grant", "account.create"])
            #expect(log[0].actor == "operator-key:key_1")
            #expect(log[0].detail.contains("cash 0.00 → 2.50") && log[0].detail.contains("refund of ticket 42"))
            #expect(log[1].detail.contains("gift 0.00 → 5.00"))
        }
    }

    @Test("W9 coffer verify names an account whose balance no longer equals its postings", arguments: Backend.available)
    func w9VerifyDetectsTampering(backend: Backend) async throws {
        let env = try await TestEnvironment.make(backend)
        let a = try await env.fundedAccount(cashMinor: 10_000)
        #expect(try await env.store.verify().isEmpty)
        try await env.store.executeRawForTests("UPDATE wallets SET cash_minor = cash_minor + 1 WHERE account_id = '\(a)'")
        let problems = try await env.store.verify()
        #expect(problems.count == 1)
        #expect(problems.first?.accountId == a)
        await env.close()
    }

    static let rowColumns = "account_id, id, entry_id, seq, kind, type, actor, amount_minor, balance_after_minor, available_after_minor, cash_minor, gift_minor, share_minor, frozen_minor, advance_minor, channel_clearing_minor, revenue_minor, gift_expense_minor, adjustment_minor, hold_control_minor, created_at, idempotency_key, request_hash, wallet_cash_minor, wallet_gift_minor, wallet_share_minor, wallet_frozen_minor, wallet_advance_minor"

    @Test("W9 database guards refuse what the code must never write", arguments: Backend.available)
    func w9DatabaseGuards(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.fundedAccount(cashMinor: 100)
            for sql in [
                "UPDATE wallets SET gift_minor = -1 WHERE account_id = '\(a)'",
                "UPDATE wallets SET frozen_minor = -5 WHERE account_id = '\(a)'",
                // W9 in the journal's one table: a row that does not balance, an amount that is not the change of
                // available, a first row without its key, a key used twice in one account, a second row with a key.
                "INSERT INTO ledger_entries (\(Self.rowColumns)) VALUES ('\(a)', 'txn_x1', 'ent_x1', 0, 'adjustment', 'adjustment', 't', 5, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 'kx1', 'h', 0, 0, 0, 0, 0)",
                "INSERT INTO ledger_entries (\(Self.rowColumns)) VALUES ('\(a)', 'txn_x2', 'ent_x2', 0, 'adjustment', 'adjustment', 't', 4, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, -5, 0, 1, 'kx2', 'h', 0, 0, 0, 0, 0)",
                "INSERT INTO ledger_entries (\(Self.rowColumns)) VALUES ('\(a)', 'txn_x3', 'ent_x3', 0, 'adjustment', 'adjustment', 't', 5, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, -5, 0, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
                "INSERT INTO ledger_entries (\(Self.rowColumns)) SELECT account_id, 'txn_x4', 'ent_x4', 0, kind, type, actor, amount_minor, balance_after_minor, available_after_minor, cash_minor, gift_minor, share_minor, frozen_minor, advance_minor, channel_clearing_minor, revenue_minor, gift_expense_minor, adjustment_minor, hold_control_minor, created_at, idempotency_key, request_hash, wallet_cash_minor, wallet_gift_minor, wallet_share_minor, wallet_frozen_minor, wallet_advance_minor FROM ledger_entries WHERE account_id = '\(a)' AND seq = 0",
                "INSERT INTO ledger_entries (\(Self.rowColumns)) VALUES ('\(a)', 'txn_x5.1', 'ent_x5', 1, 'adjustment', 'adjustment', 't', 5, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, -5, 0, 1, 'kx5', 'h', 0, 0, 0, 0, 0)",
                "INSERT INTO freezes (account_id, id, amount_minor, state, created_at) VALUES ('\(a)', 'f', 0, 'active', 1)",
                "INSERT INTO recharges (account_id, id, channel, amount_minor, state, expires_at, created_at) VALUES ('\(a)', 'r', 'sandbox', 100, 'paid', 1, 1)",
            ] {
                await #expect(throws: (any Error).self, "\(sql)") { try await env.store.executeRawForTests(sql) }
            }
        }
    }

    @Test("W9 a guard violated inside a batch write fails the whole transaction: nothing of it is kept",
          arguments: Backend.available)
    func w9BatchWriteSurfacesViolations(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.fundedAccount(cashMinor: 100)
            let entriesBefore = try await env.store.entries(accountId: a).count
            var write = LedgerBatchWrite()
            // A balanced row followed by one whose books do not sum to zero (CHECK on ledger_entries).
            func row(_ id: String, cash: Int64, adjustment: Int64) -> LedgerRowRecord {
                var books = BookAmounts()
                (books.cash, books.adjustment) = (cash, adjustment)
                return LedgerRowRecord(
                    accountId: a, id: "txn_" + id, entryId: "ent_" + id, seq: 0, kind: "adjustment", actor: "test",
                    movement: Movement(type: .adjustment, amountMinor: cash, cashDeltaMinor: cash, giftDeltaMinor: 0,
                                       frozenDeltaMinor: 0, balanceAfterMinor: 95, availableAfterMinor: 95, books: books),
                    relatedType: nil, relatedId: nil, detailId: nil, channelTradeNo: nil, memo: nil, createdAtMicros: 1,
                    head: .init(idempotencyKey: "k-" + id, requestHash: "h", walletAfter: WalletBalances(cashMinor: 95)))
            }
            write.rows = [row("ok", cash: -5, adjustment: 5), row("bad", cash: -5, adjustment: 4)]
            let batch = write
            await #expect(throws: (any Error).self) {
                try await env.store.transaction { tx in try await tx.apply(batch) }
            }
            #expect(try await env.store.entries(accountId: a).count == entriesBefore)
        }
    }

    @Test("W4 concurrency: 200 parallel prepaid charges of 1.00 against 100.00 — exactly 100 succeed, with 1 or 4 batch workers and with a batch wait",
          arguments: Backend.available, [(workers: 1, waitMicros: 0), (workers: 4, waitMicros: 0), (workers: 2, waitMicros: 2_000)])
    func w4ConcurrentChargesNeverOverspend(backend: Backend, writer: (workers: Int, waitMicros: Int)) async throws {
        var settings = CofferEngine.Settings()
        settings.ledger.workers = writer.workers
        settings.ledger.maxWaitMicros = writer.waitMicros
        try await TestEnvironment.with(backend, settings: settings) { env in
            let a = try await env.fundedAccount(cashMinor: 10_000)
            env.engine.writer.resetProfile()
            let outcomes = try await withThrowingTaskGroup(of: LedgerOutcome.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        try await env.submit(.charge(accountId: a, chargeId: env.engine.wallets.newChargeId(), amountMinor: 100,
                                                     mode: .prepaid, reference: nil))
                    }
                }
                var all: [LedgerOutcome] = []
                for try await o in group { all.append(o) }
                return all
            }
            let ok = outcomes.filter { if case .success = $0.result { true } else { false } }.count
            #expect(ok == 100)
            #expect(outcomes.allSatisfy { o in
                if case .failure(let e) = o.result { return e.code == .insufficientBalance } else { return true }
            })
            #expect(try await env.wallet(a) == WalletBalances(cashMinor: 0))
            // The writer's profile accounts for every operation, in at least one batch.
            let profile = env.engine.writer.profile
            #expect(profile.operations == 200)
            #expect(profile.batches >= 1 && profile.batches <= 200)
        }
    }

    @Test("W4 concurrency across two writers (two server instances) on one database never overspends",
          arguments: Backend.available)
    func w4TwoWritersNeverOverspend(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.fundedAccount(cashMinor: 5_000)
            let second = LedgerWriter(store: env.store, clock: env.clock, ids: env.engine.ids)
            let secondTask = Task { await second.run() }
            let outcomes = try await withThrowingTaskGroup(of: LedgerOutcome.self) { group in
                for i in 0..<100 {
                    let writer = i % 2 == 0 ? env.engine.writer : second
                    group.addTask {
                        try await writer.submit(LedgerRequest(.charge(accountId: a, chargeId: env.engine.ids.make("chg"),
                                                                      amountMinor: 100, mode: .prepaid, reference: nil),
                                                              idempotencyKey: "two-\(i)", actor: "t"))
                    }
                }
                var all: [LedgerOutcome] = []
                for try await o in group { all.append(o) }
                return all
            }
            second.stop()
            await secondTask.value
            #expect(outcomes.filter { if case .success = $0.result { true } else { false } }.count == 50)
            #expect(try await env.wallet(a).cashMinor == 0)
        }
    }

    @Test("W9 a refused operation leaves no trace and does not disturb its batch neighbours", arguments: Backend.available)
    func w9BatchIsolation(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.fundedAccount(cashMinor: 1_000)
            let b = try await env.fundedAccount(cashMinor: 1_000)
            let requests = [
                LedgerRequest(.charge(accountId: a, chargeId: "c1", amountMinor: 400, mode: .prepaid, reference: nil), idempotencyKey: "1", actor: "t"),
                LedgerRequest(.charge(accountId: a, chargeId: "c2", amountMinor: 5_000, mode: .prepaid, reference: nil), idempotencyKey: "2", actor: "t"),
                LedgerRequest(.capture(accountId: b, freezeId: "frz_missing", amountMinor: nil), idempotencyKey: "3", actor: "t"),
                LedgerRequest(.charge(accountId: b, chargeId: "c3", amountMinor: 300, mode: .prepaid, reference: nil), idempotencyKey: "4", actor: "t"),
                LedgerRequest(.charge(accountId: "acc_nope", chargeId: "c4", amountMinor: 1, mode: .prepaid, reference: nil), idempotencyKey: "5", actor: "t"),
            ]
            let outcomes = try await env.engine.writer.submitAll(requests)
            let codes = outcomes.map { o -> String in
                switch o.result { case .success: "ok"; case .failure(let e): e.code.rawValue }
            }
            #expect(codes == ["ok", "insufficient_balance", "freeze_not_found", "ok", "account_not_found"])
            // Out-of-range amounts from code that skipped the API's checks are refused, not trapped on.
            let odd = try await env.engine.writer.submitAll([
                LedgerRequest(.charge(accountId: a, chargeId: "c5", amountMinor: 0, mode: .prepaid, reference: nil), idempotencyKey: "6", actor: "t"),
                LedgerRequest(.grantGift(accountId: a, amountMinor: -5, memo: nil), idempotencyKey: "7", actor: "t"),
                LedgerRequest(.adjust(accountId: a, bucket: .cash, deltaMinor: Int64.min, reason: "x"), idempotencyKey: "8", actor: "t"),
                LedgerRequest(.freeze(accountId: a, freezeId: "f", amountMinor: 1, expiresInSeconds: Int64.max, reference: nil), idempotencyKey: "9", actor: "t"),
            ])
            #expect(odd.allSatisfy { if case .failure = $0.result { true } else { false } })
            #expect(try await env.wallet(a).cashMinor == 600)
            #expect(try await env.wallet(b).cashMinor == 700)
            // The refused charge can be retried under its key once money arrives: nothing was stored for it.
            _ = try await env.submit(.adjust(accountId: a, bucket: .cash, deltaMinor: 10_000, reason: "top up"))
            #expect(try await env.engine.writer.submit(requests[1]).get().wallet.cashMinor == 5_600)
        }
    }

    @Test("W9 property: random operation sequences keep every balance equal to its postings, available ≥ 0 outside arrears",
          arguments: Backend.available, [1, 4])
    func w9PropertyOnStorage(backend: Backend, workers: Int) async throws {
        var settings = CofferEngine.Settings()
        settings.ledger.workers = workers
        try await TestEnvironment.with(backend, settings: settings) { env in
            var rng = SeededRandom.forTest(#function, environment: ProcessInfo.processInfo.environment)
            var accounts: [String] = []
            for _ in 0..<4 { accounts.append(try await env.createAccount().accountId) }
            var freezes: [(String, String)] = []
            var charges: [(String, String)] = []
            var postpaidUsed = Set<String>()
            for round in 0..<25 {
                var requests: [LedgerRequest] = []
                for i in 0..<16 {
                    let a = accounts.randomElement(using: &rng)!
                    let amount = Int64.random(in: 1...20_000, using: &rng)
                    let key = "p-\(round)-\(i)"
                    let command: LedgerCommand
                    switch Int.random(in: 0..<10, using: &rng) {
                    case 0: command = .adjust(accountId: a, bucket: .cash, deltaMinor: amount, reason: "fund")
                    case 1: command = .grantGift(accountId: a, amountMinor: amount, memo: nil)
                    case 2: command = .charge(accountId: a, chargeId: env.engine.ids.make("chg"), amountMinor: amount, mode: .prepaid, reference: nil)
                    case 3:
                        postpaidUsed.insert(a)
                        command = .charge(accountId: a, chargeId: env.engine.ids.make("chg"), amountMinor: amount / 4 + 1, mode: .postpaid, reference: nil)
                    case 4:
                        let id = env.engine.ids.make("frz")
                        freezes.append((a, id))
                        command = .freeze(accountId: a, freezeId: id, amountMinor: amount, expiresInSeconds: 60, reference: nil)
                    case 5:
                        guard let (fa, f) = freezes.randomElement(using: &rng) else { continue }
                        command = .capture(accountId: fa, freezeId: f, amountMinor: Bool.random(using: &rng) ? nil : 1)
                    case 6:
                        guard let (fa, f) = freezes.randomElement(using: &rng) else { continue }
                        command = .release(accountId: fa, freezeId: f)
                    case 7:
                        guard let (ca, c) = charges.randomElement(using: &rng) else { continue }
                        command = .refund(accountId: ca, chargeId: c, refundId: env.engine.ids.make("rfd"), amountMinor: Int64.random(in: 1...500, using: &rng), reason: nil)
                    case 8: command = .advance(accountId: a, amountMinor: amount, memo: nil)
                    default: command = .creditRecharge(accountId: a, rechargeId: "rch_none", channelTradeNo: key, amountMinor: amount)
                    }
                    requests.append(LedgerRequest(command, idempotencyKey: key, actor: "prop"))
                }
                let outcomes = try await env.engine.writer.submitAll(requests)
                for (r, o) in zip(requests, outcomes) {
                    if case .charge(let a, let c, _, _, _) = r.command, case .success = o.result { charges.append((a, c)) }
                }
                if round % 5 == 4 { env.clock.advance(seconds: 61); _ = try await env.engine.jobs.runOnce() }
                #expect(try await env.store.verify().isEmpty)
                for a in accounts where !postpaidUsed.contains(a) {
                    let w = try await env.wallet(a)
                    #expect(w.availableMinor >= 0, "available went below zero outside arrears: \(w)")
                }
            }
        }
    }

    @Test("W11 records filter by type, time and amount, and page with a cursor", arguments: Backend.available)
    func w11Records(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.fundedAccount(cashMinor: 100_000)
            let start = env.clock.nowMicros()
            for i in 1...30 {
                env.clock.advance(seconds: 60)
                _ = try await env.submit(.charge(accountId: a, chargeId: env.engine.ids.make("chg"), amountMinor: Int64(i * 100),
                                                 mode: .postpaid, reference: "usage \(i)")).get()
            }
            var q = TransactionQuery(accountId: a)
            q.types = [.deduction]
            q.limit = 200
            #expect(try await env.store.transactions(q).count == 30)
            q.minAmountMinor = -1_000
            #expect(try await env.store.transactions(q).count == 10)
            q.minAmountMinor = nil
            q.fromMicros = start + 60 * 1_000_000
            q.toMicros = start + 5 * 60 * 1_000_000
            #expect(try await env.store.transactions(q).map(\.movement.amountMinor) == [-400, -300, -200, -100])
            var page = TransactionQuery(accountId: a)
            page.limit = 7
            var seen: [String] = []
            while true {
                let items = try await env.store.transactions(page)
                seen += items.map(\.id)
                guard items.count == page.limit else { break }
                page.beforeId = items.last!.id
            }
            #expect(seen.count == 31)
            #expect(Set(seen).count == 31)
            #expect(seen == seen.sorted(by: >))
        }
    }
}
