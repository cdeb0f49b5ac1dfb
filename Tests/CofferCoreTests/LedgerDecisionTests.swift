import CofferCore
import Testing

/// Every lifecycle of the ledger as `LedgerDecisions.decide` runs it, with no database: a starting snapshot, a sequence of
/// commands, and for each the exact outcome — the wallet after and the object state, or the refusal's code.
@Suite("Ledger decisions (pure, no database)")
struct LedgerDecisionTests {
    static let a = "acc_a"
    static let now: Int64 = 1_800_000_000_000_000

    enum Expect: Sendable, CustomStringConvertible {
        /// Accepted: cash, gift, frozen, advance of the wallet after.
        case wallet(Int64, Int64, Int64, Int64)
        case refused(ErrorCode)
        var description: String {
            switch self {
            case let .wallet(c, g, f, adv): "wallet(cash \(c), gift \(g), frozen \(f), advance \(adv))"
            case let .refused(code): "refused(\(code.rawValue))"
            }
        }
    }

    struct Lifecycle: Sendable, CustomTestStringConvertible {
        let name: String
        let start: LedgerSnapshot
        let steps: [(LedgerCommand, Int64, Expect)]  // command, time offset in seconds, expected outcome
        var testDescription: String { name }
    }

    static func snapshot(cash: Int64 = 0, gift: Int64 = 0, advance: Int64 = 0,
                         _ more: (inout LedgerSnapshot) -> Void = { _ in }) -> LedgerSnapshot {
        var s = LedgerSnapshot()
        s.wallets[a] = WalletBalances(cashMinor: cash, giftMinor: gift, advanceOutstandingMinor: advance)
        more(&s)
        return s
    }

    static func recharge(_ id: String, amount: Int64, fee: Int64 = 0, state: RechargeState = .pending) -> RechargeRecord {
        RechargeRecord(id: id, accountId: a, channel: "wechatpay", amountMinor: amount, state: state,
                       expiresAtMicros: now + 7_200_000_000, createdAtMicros: now, feeMinor: fee)
    }

    static func code(_ id: String, amount: Int64, bucket: WalletBucket, state: CodeState = .unused) -> RechargeCodeRecord {
        RechargeCodeRecord(id: id, batchId: "cb_1", code: "X", digest: String(repeating: "0", count: 64), amountMinor: amount,
                           bucket: bucket, validUntilMicros: now + 86_400_000_000, state: state)
    }

    static func remittance(_ id: String, amount: Int64, serial: String?) -> RemittanceRecord {
        RemittanceRecord(id: id, accountId: a, payerName: "甲公司", payerAccount: "6222", payerBank: "工商银行",
                         amountMinor: amount, remittedOn: "2026-11-30", bankSerial: serial, receiptPath: "r", receiptType: "image/png",
                         receiptBytes: 1, receiptSHA256: "x", state: .pendingReview, createdAtMicros: now)
    }

    static func line(_ id: String, amount: Int64, serial: String, state: StatementLineState, account: String? = a) -> StatementLineRecord {
        StatementLineRecord(id: id, bankSerial: serial, bookedOn: "2026-11-30", amountMinor: amount, currency: "CNY",
                            payerName: "甲公司", payerAccount: "6222", payeeAccount: "1", memo: "", state: state, accountId: account,
                            note: nil, source: "upload", importedAtMicros: now)
    }

    static let lifecycles: [Lifecycle] = [
        Lifecycle(name: "W5 freeze, then capture part: the rest is released", start: snapshot(cash: 10_000, gift: 1_000), steps: [
            (.freeze(accountId: a, freezeId: "f1", amountMinor: 3_000, expiresInSeconds: nil, reference: "vm"), 0, .wallet(10_000, 1_000, 3_000, 0)),
            (.capture(accountId: a, freezeId: "f1", amountMinor: 1_500), 1, .wallet(9_500, 0, 0, 0)),
            (.capture(accountId: a, freezeId: "f1", amountMinor: nil), 2, .refused(.freezeAlreadyResolved)),
            (.release(accountId: a, freezeId: "f1"), 3, .refused(.freezeAlreadyResolved)),
        ]),
        Lifecycle(name: "W5 capture more than frozen is refused; release gives all back once", start: snapshot(cash: 5_000), steps: [
            (.freeze(accountId: a, freezeId: "f1", amountMinor: 2_000, expiresInSeconds: 60, reference: nil), 0, .wallet(5_000, 0, 2_000, 0)),
            (.capture(accountId: a, freezeId: "f1", amountMinor: 2_001), 1, .refused(.captureExceedsFreeze)),
            (.release(accountId: a, freezeId: "f1"), 2, .wallet(5_000, 0, 0, 0)),
            (.release(accountId: a, freezeId: "f1"), 3, .refused(.freezeAlreadyResolved)),
        ]),
        Lifecycle(name: "W5 expiry only at the deadline", start: snapshot(cash: 5_000), steps: [
            (.freeze(accountId: a, freezeId: "f1", amountMinor: 2_000, expiresInSeconds: 60, reference: nil), 0, .wallet(5_000, 0, 2_000, 0)),
            (.expireFreeze(accountId: a, freezeId: "f1"), 59, .refused(.freezeNotDue)),
            (.expireFreeze(accountId: a, freezeId: "f1"), 60, .wallet(5_000, 0, 0, 0)),
            (.capture(accountId: a, freezeId: "f1", amountMinor: nil), 61, .refused(.freezeAlreadyResolved)),
        ]),
        Lifecycle(name: "W3 a freeze needs available, and no arrears; W6 frozen money cannot be spent prepaid", start: snapshot(cash: 1_000), steps: [
            (.freeze(accountId: a, freezeId: "f1", amountMinor: 1_001, expiresInSeconds: nil, reference: nil), 0, .refused(.insufficientBalance)),
            (.freeze(accountId: a, freezeId: "f1", amountMinor: 800, expiresInSeconds: nil, reference: nil), 0, .wallet(1_000, 0, 800, 0)),
            (.charge(accountId: a, chargeId: "c1", amountMinor: 201, mode: .prepaid, reference: nil), 1, .refused(.insufficientBalance)),
            (.charge(accountId: a, chargeId: "c1", amountMinor: 1_500, mode: .postpaid, reference: nil), 1, .wallet(-500, 0, 800, 0)),
            (.freeze(accountId: a, freezeId: "f2", amountMinor: 1, expiresInSeconds: nil, reference: nil), 2, .refused(.accountInArrears)),
            (.capture(accountId: a, freezeId: "f1", amountMinor: nil), 3, .wallet(-1_300, 0, 0, 0)),
        ]),
        Lifecycle(name: "W4 charge spends gift first; refunds follow the charge's split", start: snapshot(cash: 1_000, gift: 300), steps: [
            (.charge(accountId: a, chargeId: "c1", amountMinor: 500, mode: .prepaid, reference: "bill"), 0, .wallet(800, 0, 0, 0)),
            (.refund(accountId: a, chargeId: "c1", refundId: "r1", amountMinor: 250, reason: nil), 1, .wallet(900, 150, 0, 0)),
            (.refund(accountId: a, chargeId: "c1", refundId: "r2", amountMinor: 251, reason: nil), 2, .refused(.refundExceedsCharge)),
            (.refund(accountId: a, chargeId: "c1", refundId: "r2", amountMinor: 250, reason: nil), 2, .wallet(1_000, 300, 0, 0)),
            (.refund(accountId: a, chargeId: "c9", refundId: "r3", amountMinor: 1, reason: nil), 3, .refused(.chargeNotFound)),
        ]),
        Lifecycle(name: "R5 R4 recharge credit: the amount only, once; a wrong total is refused",
                  start: snapshot { $0.recharges["r1"] = recharge("r1", amount: 10_000, fee: 60) }, steps: [
            (.creditRecharge(accountId: a, rechargeId: "r1", channelTradeNo: "t1", amountMinor: 10_000), 0, .refused(.amountMismatch)),
            (.creditRecharge(accountId: a, rechargeId: "r1", channelTradeNo: "t1", amountMinor: 10_060), 0, .wallet(10_000, 0, 0, 0)),
            (.creditRecharge(accountId: a, rechargeId: "r1", channelTradeNo: "t1", amountMinor: 10_060), 1, .refused(.rechargeAlreadyPaid)),
            (.creditRecharge(accountId: "acc_b", rechargeId: "r1", channelTradeNo: "t1", amountMinor: 10_060), 1, .refused(.accountNotFound)),
        ]),
        Lifecycle(name: "R5 a late payment for an expired order is still credited; a refused one never",
                  start: snapshot {
                      $0.recharges["r1"] = recharge("r1", amount: 500, state: .expired)
                      $0.recharges["r2"] = recharge("r2", amount: 500, state: .refused)
                  }, steps: [
            (.creditRecharge(accountId: a, rechargeId: "r1", channelTradeNo: "t1", amountMinor: 500), 0, .wallet(500, 0, 0, 0)),
            (.creditRecharge(accountId: a, rechargeId: "r2", channelTradeNo: "t2", amountMinor: 500), 0, .refused(.rechargeRefused)),
        ]),
        Lifecycle(name: "R7 a sixth payer in the window is refused; a known payer still pays",
                  start: snapshot {
                      for i in 1...6 { $0.recharges["r\(i)"] = recharge("r\(i)", amount: 100) }
                      $0.recentPayers[a] = Set((1...5).map { "wechatpay:p\($0)" })
                  }, steps: [
            (.creditRecharge(accountId: a, rechargeId: "r1", channelTradeNo: "t1", amountMinor: 100,
                             payer: PayerCheck(payerId: "p6", maxDistinct: 5, windowSeconds: 86_400)), 0, .refused(.rechargePayerLimit)),
            (.creditRecharge(accountId: a, rechargeId: "r1", channelTradeNo: "t1", amountMinor: 100,
                             payer: PayerCheck(payerId: "p3", maxDistinct: 5, windowSeconds: 86_400)), 0, .wallet(100, 0, 0, 0)),
            (.creditRecharge(accountId: a, rechargeId: "r2", channelTradeNo: "t2", amountMinor: 100,
                             payer: PayerCheck(payerId: "p7", maxDistinct: 6, windowSeconds: 86_400)), 0, .wallet(200, 0, 0, 0)),
            (.creditRecharge(accountId: a, rechargeId: "r3", channelTradeNo: "t3", amountMinor: 100,
                             payer: PayerCheck(payerId: "p8", maxDistinct: 6, windowSeconds: 86_400)), 0, .refused(.rechargePayerLimit)),
        ]),
        Lifecycle(name: "R9 example 2: arrears first, then the advance", start: snapshot(cash: -1_000_000, advance: 5_000_000) {
            $0.remittances["rm1"] = remittance("rm1", amount: 8_000_000, serial: "S1")
        }, steps: [
            (.creditRemittance(accountId: a, remittanceId: "rm1", amountMinor: 7_999_999), 0, .refused(.amountMismatch)),
            (.creditRemittance(accountId: a, remittanceId: "rm1", amountMinor: 8_000_000), 0, .wallet(2_000_000, 0, 0, 0)),
            (.creditRemittance(accountId: a, remittanceId: "rm1", amountMinor: 8_000_000), 1, .refused(.remittanceAlreadyReviewed)),
        ]),
        Lifecycle(name: "R9 an advance is cash owed back; incoming money repays it", start: snapshot(), steps: [
            (.advance(accountId: a, amountMinor: 5_000, memo: "垫付"), 0, .wallet(5_000, 0, 0, 5_000)),
            (.grantGift(accountId: a, amountMinor: 700, memo: nil), 1, .wallet(5_000, 700, 0, 5_000)),
            (.adjust(accountId: a, bucket: .gift, deltaMinor: -701, reason: "fix"), 2, .refused(.adjustmentBelowZero)),
            (.adjust(accountId: a, bucket: .cash, deltaMinor: -1_000, reason: "fix"), 2, .wallet(4_000, 700, 0, 5_000)),
        ]),
        Lifecycle(name: "R8 a code credits its bucket once; voided and expired codes are refused", start: snapshot {
            $0.codes["k1"] = code("k1", amount: 5_000, bucket: .cash)
            $0.codes["k2"] = code("k2", amount: 300, bucket: .gift)
            $0.codes["k3"] = code("k3", amount: 300, bucket: .gift, state: .voided)
        }, steps: [
            (.redeemCode(accountId: a, codeId: "k1"), 0, .wallet(5_000, 0, 0, 0)),
            (.redeemCode(accountId: a, codeId: "k1"), 1, .refused(.codeAlreadyRedeemed)),
            (.redeemCode(accountId: a, codeId: "k3"), 1, .refused(.codeVoided)),
            (.redeemCode(accountId: a, codeId: "k2"), 86_400, .refused(.codeExpired)),
            (.redeemCode(accountId: a, codeId: "k2"), 86_399, .wallet(5_000, 300, 0, 0)),
            (.redeemCode(accountId: a, codeId: "k9"), 2, .refused(.codeNotFound)),
        ]),
        Lifecycle(name: "T2 a statement line credits once, and its bank serial never twice", start: snapshot {
            $0.statementLines["l1"] = line("l1", amount: 1_000, serial: "S1", state: .matched)
            $0.statementLines["l2"] = line("l2", amount: 1_000, serial: "S2", state: .heldKeyword)
            $0.statementLines["l3"] = line("l3", amount: 1_000, serial: "S3", state: .unmatched, account: nil)
            $0.remittances["rm1"] = remittance("rm1", amount: 1_000, serial: "S1")
            $0.creditedBankSerials = ["S3"]
        }, steps: [
            (.creditStatementLine(accountId: a, lineId: "l1", amountMinor: 1_000), 0, .wallet(1_000, 0, 0, 0)),
            (.creditStatementLine(accountId: a, lineId: "l1", amountMinor: 1_000), 1, .refused(.statementLineNotCreditable)),
            (.creditRemittance(accountId: a, remittanceId: "rm1", amountMinor: 1_000), 1, .refused(.bankSerialAlreadyCredited)),
            (.creditStatementLine(accountId: a, lineId: "l2", amountMinor: 1_000), 1, .refused(.statementLineNotCreditable)),
            (.creditStatementLine(accountId: a, lineId: "l3", amountMinor: 1_000), 1, .refused(.bankSerialAlreadyCredited)),
            (.creditStatementLine(accountId: a, lineId: "l9", amountMinor: 1_000), 1, .refused(.statementLineNotFound)),
        ]),
    ]

    @Test("Every lifecycle, step by step", arguments: lifecycles)
    func lifecycle(_ l: Lifecycle) {
        var snapshot = l.start
        for (index, (command, offsetSeconds, expected)) in l.steps.enumerated() {
            let before = snapshot
            do {
                let d = try LedgerDecisions.decide(command, actor: "test", in: snapshot, nowMicros: Self.now + offsetSeconds * 1_000_000)
                guard case let .wallet(cash, gift, frozen, advance) = expected else {
                    Issue.record("step \(index): accepted, expected \(expected)")
                    continue
                }
                let w = d.walletAfter
                #expect([w.cashMinor, w.giftMinor, w.frozenMinor, w.advanceOutstandingMinor] == [cash, gift, frozen, advance],
                        "step \(index)")
                #expect(d.effect.postings.reduce(0) { $0 + $1.amountMinor } == 0, "step \(index): W9 entry balances")
                #expect(d.walletBefore == before.wallets[d.accountId])
                snapshot.apply(d)
            } catch {
                #expect(error.code == { if case .refused(let c) = expected { c } else { nil } }(), "step \(index): \(error)")
                #expect(snapshot == before, "a refusal changes nothing")
            }
        }
    }

    @Test("N1 W2 the postpaid charge that takes the balance below zero announces arrears, once; one in arrears already says nothing")
    func arrearsEvent() throws {
        let s = Self.snapshot(cash: 100)
        let first = try LedgerDecisions.decide(.charge(accountId: Self.a, chargeId: "c1", amountMinor: 250, mode: .postpaid, reference: nil),
                                               actor: "system", in: s, nowMicros: Self.now)
        #expect(first.events == [LedgerEvent(.accountInArrears, accountId: Self.a, ["balance": "-1.50", "shortfall": "1.50"])])
        var after = s
        after.apply(first)
        let second = try LedgerDecisions.decide(.charge(accountId: Self.a, chargeId: "c2", amountMinor: 10, mode: .postpaid, reference: nil),
                                                actor: "system", in: after, nowMicros: Self.now)
        #expect(second.events.isEmpty)
        let covered = try LedgerDecisions.decide(.charge(accountId: Self.a, chargeId: "c3", amountMinor: 100, mode: .postpaid, reference: nil),
                                                 actor: "system", in: s, nowMicros: Self.now)
        #expect(covered.events.isEmpty)
    }

    @Test("Decisions carry object changes, records and events as data, never prose")
    func decisionContents() throws {
        var s = Self.snapshot { $0.recharges["r1"] = Self.recharge("r1", amount: 10_000, fee: 60) }
        let d = try LedgerDecisions.decide(.creditRecharge(accountId: Self.a, rechargeId: "r1", channelTradeNo: "T-1", amountMinor: 10_060),
                                           actor: "system", in: s, nowMicros: Self.now)
        guard case .rechargePaid(let r) = d.changes.first else { Issue.record("no recharge change"); return }
        #expect(r.state == .paid && r.channelTradeNo == "T-1" && r.paidAtMicros == Self.now)
        #expect(d.related == RelatedObject("recharge", "r1") && d.channelTradeNo == "T-1")
        #expect(d.events == [LedgerEvent(.rechargeCredited, accountId: Self.a, ["amount": "100.00", "channel": "wechatpay", "recharge": "r1"])])
        #expect(d.effect.movements.map(\.type) == [.recharge])
        // R4: the fee goes from channel clearing to revenue, beside the credit.
        #expect(d.effect.postings.filter { $0.book == .revenue }.map(\.amountMinor) == [60])
        #expect(!d.audited)
        s.apply(d)
        #expect(s.recharges["r1"]?.state == .paid)

        var f = Self.snapshot(cash: 500)
        let frozen = try LedgerDecisions.decide(.freeze(accountId: Self.a, freezeId: "f1", amountMinor: 200, expiresInSeconds: 60, reference: "vm-1"),
                                                actor: "k", in: f, nowMicros: Self.now)
        #expect(frozen.changes == [.freezeCreated(FreezeRecord(id: "f1", accountId: Self.a, amountMinor: 200, capturedMinor: 0, state: .active,
                                                               expiresAtMicros: Self.now + 60_000_000, reference: "vm-1", createdAtMicros: Self.now))])
        f.apply(frozen)
        #expect(throws: CofferError(.duplicateId, "A freeze with id f1 is already in this batch.")) {
            try LedgerDecisions.decide(.freeze(accountId: Self.a, freezeId: "f1", amountMinor: 1, expiresInSeconds: nil, reference: nil),
                                       actor: "k", in: f, nowMicros: Self.now)
        }
        let gift = try LedgerDecisions.decide(.grantGift(accountId: Self.a, amountMinor: 1, memo: "m"), actor: "operator:o", in: f, nowMicros: Self.now)
        #expect(gift.audited && gift.memo == "m")
    }

    @Test("Commands out of range are refused before any rule runs", arguments: [
        (LedgerCommand.charge(accountId: a, chargeId: "c", amountMinor: 0, mode: .prepaid, reference: nil), ErrorCode.amountNotPositive),
        (.freeze(accountId: a, freezeId: "f", amountMinor: 900_000_000_000_001, expiresInSeconds: nil, reference: nil), .amountOutOfRange),
        (.freeze(accountId: a, freezeId: "f", amountMinor: 1, expiresInSeconds: 31_536_001, reference: nil), .invalidField),
        (.adjust(accountId: a, bucket: .cash, deltaMinor: 0, reason: "x"), .invalidField),
        (.capture(accountId: a, freezeId: "f", amountMinor: -1), .amountNotPositive),
    ])
    func outOfRange(command: LedgerCommand, code: ErrorCode) {
        let error = #expect(throws: CofferError.self) {
            try LedgerDecisions.decide(command, actor: "t", in: Self.snapshot(cash: 10), nowMicros: Self.now)
        }
        #expect(error?.code == code)
    }
}
