import CofferCore
import Foundation
import Testing

func wallet(cash: Int64 = 0, gift: Int64 = 0, frozen: Int64 = 0, advance: Int64 = 0) -> WalletBalances {
    WalletBalances(cashMinor: cash, giftMinor: gift, shareMinor: 0, frozenMinor: frozen, advanceOutstandingMinor: advance)
}

func sum(_ p: [Posting]) -> Int64 { p.reduce(0) { $0 + $1.amountMinor } }

@Suite("W — wallet rules")
struct LedgerRulesTests {
    @Test("W2 balance, available and arrears",
          arguments: [(wallet(cash: 100, gift: 50, frozen: 30), Int64(150), Int64(120), false),
                      (wallet(cash: -10), -10, -10, true),
                      (wallet(cash: 0, gift: 0, frozen: 0), 0, 0, false)])
    func w2(w: WalletBalances, balance: Int64, available: Int64, arrears: Bool) {
        #expect(w.balanceMinor == balance)
        #expect(w.availableMinor == available)
        #expect(w.inArrears == arrears)
    }

    // (cash, gift, amount) → (from cash, from gift)
    @Test("W4 gift is spent before cash",
          arguments: [((Int64(100), Int64(30), Int64(50)), (Int64(20), Int64(30))),
                      ((100, 0, 50), (50, 0)), ((0, 80, 50), (0, 50)), ((100, 50, 150), (100, 50))])
    func w4GiftFirst(input: (Int64, Int64, Int64), expected: (Int64, Int64)) throws {
        let (effect, split) = try LedgerRules.charge(wallet(cash: input.0, gift: input.1), amountMinor: input.2, mode: .prepaid, reserveMinor: 0)
        #expect(split == SpendSplit(cashMinor: expected.0, giftMinor: expected.1))
        #expect(effect.wallet.cashMinor == input.0 - expected.0)
        #expect(effect.wallet.giftMinor == input.1 - expected.1)
        #expect(sum(effect.postings) == 0)
    }

    @Test("W4 prepaid never goes below zero; postpaid may go into arrears")
    func w4PrepaidVsPostpaid() throws {
        let w = wallet(cash: 100, gift: 20)
        #expect(throws: CofferError.insufficientBalance(shortfallMinor: 30)) {
            try LedgerRules.charge(w, amountMinor: 150, mode: .prepaid, reserveMinor: 0)
        }
        let (effect, split) = try LedgerRules.charge(w, amountMinor: 150, mode: .postpaid, reserveMinor: 0)
        #expect(split == SpendSplit(cashMinor: 130, giftMinor: 20))
        #expect(effect.wallet.cashMinor == -30)
        #expect(effect.wallet.inArrears)
    }

    @Test("W3 a new purchase is refused in arrears, and below amount + operable reserve with the shortfall named")
    func w3() {
        #expect(throws: CofferError.accountInArrears(balanceMinor: -1)) {
            try LedgerRules.freeze(wallet(cash: -1, gift: 0), amountMinor: 1, reserveMinor: 0)
        }
        #expect(throws: CofferError.insufficientBalance(shortfallMinor: 25)) {
            try LedgerRules.freeze(wallet(cash: 100, frozen: 20), amountMinor: 95, reserveMinor: 10)
        }
        #expect((try? LedgerRules.freeze(wallet(cash: 100), amountMinor: 90, reserveMinor: 10)) != nil)
    }

    @Test("W5 a freeze reserves available without moving balance; capture deducts and releases the rest")
    func w5Capture() throws {
        let frozen = try LedgerRules.freeze(wallet(cash: 100, gift: 10), amountMinor: 60, reserveMinor: 0)
        #expect(frozen.wallet.balanceMinor == 110)
        #expect(frozen.wallet.availableMinor == 50)
        #expect(sum(frozen.postings) == 0)
        let (captured, split) = try LedgerRules.capture(frozen.wallet, frozenMinor: 60, captureMinor: 25)
        #expect(split == SpendSplit(cashMinor: 15, giftMinor: 10))
        #expect(captured.wallet == wallet(cash: 85, gift: 0, frozen: 0))
        #expect(captured.movements.map(\.type) == [.unfreeze, .deduction])
        #expect(throws: CofferError.captureExceedsFreeze(frozenMinor: 60)) {
            try LedgerRules.capture(frozen.wallet, frozenMinor: 60, captureMinor: 61)
        }
    }

    @Test("W5 coupons never cover a freeze: a freeze is funded by cash and gift only")
    func w5FundedByCashAndGift() {
        #expect(throws: CofferError.insufficientBalance(shortfallMinor: 1)) {
            try LedgerRules.freeze(wallet(cash: 5, gift: 5), amountMinor: 11, reserveMinor: 0)
        }
    }

    @Test("R9 example 1: advance 50,000, balance ≥ 0, remittance 80,000 → advance repaid, balance 30,000")
    func r9Example1() throws {
        let w = try LedgerRules.recordAdvance(.zero, amountMinor: 5_000_000).wallet
        let spent = try LedgerRules.charge(w, amountMinor: 5_000_000, mode: .prepaid, reserveMinor: 0).0.wallet
        #expect(spent.balanceMinor == 0 && spent.advanceOutstandingMinor == 5_000_000)
        let e = try LedgerRules.creditIncoming(spent, amountMinor: 8_000_000, type: .remittance)
        #expect(e.wallet.balanceMinor == 3_000_000)
        #expect(e.wallet.advanceOutstandingMinor == 0)
        #expect(e.movements.map(\.type) == [.remittance, .advanceRepayment])
        #expect(e.movements.map(\.amountMinor) == [8_000_000, -5_000_000])
        #expect(sum(e.postings) == 0)
    }

    @Test("R9 example 2: advance 50,000, balance −10,000, remittance 80,000 → 70,000, then 20,000 after repaying")
    func r9Example2() throws {
        let w = wallet(cash: -1_000_000, advance: 5_000_000)
        let e = try LedgerRules.creditIncoming(w, amountMinor: 8_000_000, type: .remittance)
        #expect(e.movements[0].balanceAfterMinor == 7_000_000)
        #expect(e.wallet.balanceMinor == 2_000_000)
        #expect(e.wallet.advanceOutstandingMinor == 0)
    }

    @Test("R9 incoming money smaller than the arrears repays no advance")
    func r9SmallCredit() throws {
        let e = try LedgerRules.creditIncoming(wallet(cash: -1_000, advance: 500), amountMinor: 800, type: .recharge)
        #expect(e.wallet == wallet(cash: -200, advance: 500))
    }

    @Test("W9 refunds follow the charge's cash/gift split and add up exactly, whatever the partial amounts")
    func w9RefundNoDrift() throws {
        var rng = SeededRandom.forTest(#function, environment: ProcessInfo.processInfo.environment)
        for _ in 0..<500 {
            let cash = Int64.random(in: 0...10_000, using: &rng)
            let gift = Int64.random(in: (cash == 0 ? 1 : 0)...10_000, using: &rng)
            let charge = SpendSplit(cashMinor: cash, giftMinor: gift)
            var refunded = SpendSplit(cashMinor: 0, giftMinor: 0)
            var w = wallet()
            var left = cash + gift
            while left > 0 {
                let part = Int64.random(in: 1...left, using: &rng)
                let (e, s) = try LedgerRules.refund(w, charge: charge, refunded: refunded, amountMinor: part)
                #expect(s.cashMinor >= 0 && s.giftMinor >= 0)
                #expect(sum(e.postings) == 0)
                refunded = SpendSplit(cashMinor: refunded.cashMinor + s.cashMinor, giftMinor: refunded.giftMinor + s.giftMinor)
                w = e.wallet
                left -= part
            }
            #expect(refunded == charge)
            #expect(throws: CofferError.refundExceedsCharge(refundableMinor: 0)) {
                try LedgerRules.refund(w, charge: charge, refunded: refunded, amountMinor: 1)
            }
        }
    }

    @Test("W9 property: random operations always produce balanced entries and wallets equal to their postings")
    func w9Property() throws {
        var rng = SeededRandom.forTest(#function, environment: ProcessInfo.processInfo.environment)
        for _ in 0..<200 {
            var w = WalletBalances.zero
            var books: [Book: Int64] = [:]
            var openFreezes: [Int64] = []
            for _ in 0..<60 {
                let amount = Int64.random(in: 1...5_000, using: &rng)
                let effect: LedgerEffect?
                switch Int.random(in: 0..<8, using: &rng) {
                case 0: effect = try? LedgerRules.creditIncoming(w, amountMinor: amount, type: .recharge)
                case 1: effect = try? LedgerRules.grantGift(w, amountMinor: amount)
                case 2: effect = try? LedgerRules.charge(w, amountMinor: amount, mode: .prepaid, reserveMinor: 0).0
                case 3: effect = try? LedgerRules.charge(w, amountMinor: amount, mode: .postpaid, reserveMinor: 0).0
                case 4:
                    effect = try? LedgerRules.freeze(w, amountMinor: amount, reserveMinor: 0)
                    if effect != nil { openFreezes.append(amount) }
                case 5:
                    if let f = openFreezes.popLast() {
                        effect = try? LedgerRules.capture(w, frozenMinor: f, captureMinor: Int64.random(in: 1...f, using: &rng)).0
                    } else { effect = nil }
                case 6:
                    if let f = openFreezes.popLast() { effect = try? LedgerRules.release(w, frozenMinor: f) } else { effect = nil }
                default: effect = try? LedgerRules.recordAdvance(w, amountMinor: amount)
                }
                guard let effect else { continue }
                #expect(sum(effect.postings) == 0)
                for p in effect.postings { books[p.book, default: 0] += p.amountMinor }
                w = effect.wallet
                #expect(w.cashMinor == books[.cash, default: 0])
                #expect(w.giftMinor == books[.gift, default: 0])
                #expect(w.frozenMinor == books[.frozen, default: 0])
                #expect(w.frozenMinor == openFreezes.reduce(0, +))
                #expect(w.advanceOutstandingMinor == -books[.advance, default: 0])
                #expect(w.invariantViolation == nil)
            }
        }
    }
}
