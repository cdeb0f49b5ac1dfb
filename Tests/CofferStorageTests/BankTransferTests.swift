import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

@Suite("T1–T3 bank remittance on SQLite and PostgreSQL")
struct BankTransferTests {
    static let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 7, count: 64)

    func line(_ serial: String, payee: String, amount: String = "800.00", payer: String = "测试科技有限公司",
              currency: String = "CNY", memo: String = "云服务费") -> StatementLineInput {
        StatementLineInput(bankSerial: serial, bookedOn: "2026-11-23", amountText: amount, currency: currency, payerName: payer,
                           payerAccount: "6222020200001234", payeeAccount: payee, memo: memo)
    }

    func importOne(_ env: TestEnvironment, _ input: StatementLineInput) async throws -> StatementLineResult {
        try await env.engine.bank.importStatement([input], source: "file:test.csv", actor: "user:operator")[0]
    }

    @Test("T2 dedicated accounts: 25 digits = the platform prefix + an identifier whose check digit catches typos",
          arguments: Backend.available)
    func t2DedicatedAccount(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            let d = try await env.engine.bank.dedicatedAccount(accountId: a)
            #expect(d.number.count == 25 && d.number.hasPrefix(env.engine.bank.settings.collectionAccount))
            #expect(try await env.engine.bank.dedicatedAccount(accountId: a) == d)
            #expect(env.engine.bank.classifyPayee(d.number) == .dedicated(identifier: d.identifier))
            // Every single-digit typo in the identifier is caught.
            let chars = Array(d.number)
            for i in 15..<25 {
                var typo = chars
                typo[i] = typo[i] == "9" ? "0" : Character(String(Int(String(typo[i]))! + 1))
                if case .dedicated = env.engine.bank.classifyPayee(String(typo)) { Issue.record("typo at \(i) not caught") }
            }
            #expect(env.engine.bank.classifyPayee("6222020200001234") == .notPlatform)
        }
    }

    enum Case: String, CaseIterable, Sendable {
        case credited, registeredPayer, toBeConfirmed, toBeSigned, keyword, unmatched, badCheckDigit, foreignCurrency, duplicate
    }

    @Test("T2 statement lines are matched automatically under every case", arguments: Backend.available, Case.allCases)
    func t2Cases(backend: Backend, _ which: Case) async throws {
        try await TestEnvironment.with(backend) { env in
            let bank = env.engine.bank
            let a = try await env.createAccount(entity: "测试科技有限公司").accountId
            let number = try await bank.dedicatedAccount(accountId: a).number
            switch which {
            case .credited:
                let r = try await importOne(env, line("S1", payee: number))
                #expect(r.state == "credited" && r.accountId == a)
                #expect(try await env.wallet(a).cashMinor == 80_000)
            case .registeredPayer:
                _ = try await bank.registerPayer(accountId: a, name: "测试科技财务部", thirdParty: false, actor: "user:o")
                #expect(try await importOne(env, line("S1", payee: number, payer: "测试科技财务部")).state == "credited")
                #expect(try await env.wallet(a).cashMinor == 80_000)
            case .toBeConfirmed:
                let r = try await importOne(env, line("S1", payee: number, payer: "张三"))
                #expect(r.state == "to_be_confirmed" && r.accountId == a)
                #expect(try await env.wallet(a).cashMinor == 0)
                #expect(try await env.store.siteMessages(accountId: a, limit: 10).map(\.kind) == ["remittance_to_confirm"])
                let after = try await bank.registerPayer(accountId: a, name: "张三", thirdParty: false, actor: "user:o")
                #expect(after.map(\.state) == ["credited"])
                #expect(try await env.wallet(a).cashMinor == 80_000)
            case .toBeSigned:
                _ = try await bank.registerPayer(accountId: a, name: "李四", thirdParty: true, actor: "user:o")
                #expect(try await importOne(env, line("S1", payee: number, payer: "李四")).state == "to_be_signed")
                #expect(try await env.wallet(a).cashMinor == 0)
                let after = try await bank.signAgreement(accountId: a, name: "李四", actor: "user:o")
                #expect(after.map(\.state) == ["credited"])
                #expect(try await env.wallet(a).cashMinor == 80_000)
            case .keyword:
                let r = try await importOne(env, line("S1", payee: number, memo: "项目保证金"))
                #expect(r.state == "held_keyword")
                #expect(try await env.wallet(a).cashMinor == 0)
                // An operator may still credit it after checking.
                let id = try #require(try await env.store.statementLine(bankSerial: "S1")?.id)
                #expect(try await bank.assignLine(id: id, accountId: a, actor: "user:operator").state == "credited")
                #expect(try await env.wallet(a).cashMinor == 80_000)
            case .unmatched:
                let unknown = bank.settings.collectionAccount + "000000000" + String(BankTransferService.checkDigit("000000000"))
                let r = try await importOne(env, line("S1", payee: unknown))
                #expect(r.state == "unmatched" && r.accountId == nil)
                let pool = try await env.store.statementLines(accountId: nil, states: [.unmatched], limit: 10)
                #expect(pool.map(\.bankSerial) == ["S1"])
                #expect(try await bank.assignLine(id: pool[0].id, accountId: a, actor: "user:operator").state == "credited")
                #expect(try await env.wallet(a).cashMinor == 80_000)
                let credited = await #expect(throws: CofferError.self) { try await bank.refundLine(id: pool[0].id, reason: "x", actor: "user:operator") }
                #expect(credited?.code == .statementLineNotRefundable)
            case .badCheckDigit:
                var digits = Array(number)
                digits[24] = digits[24] == "9" ? "0" : Character(String(Int(String(digits[24]))! + 1))
                let r = try await importOne(env, line("S1", payee: String(digits)))
                #expect(r.state == "unmatched" && r.note == "the check digit does not match")
                let id = try #require(try await env.store.statementLine(bankSerial: "S1")?.id)
                let refunded = try await bank.refundLine(id: id, reason: "退回付款人", actor: "user:operator")
                #expect(refunded.state == .refunded)
                #expect(try await env.wallet(a).cashMinor == 0)
            case .foreignCurrency:
                let r = try await importOne(env, line("S1", payee: number, currency: "USD"))
                #expect(r.state == "held_currency")
                let id = try #require(try await env.store.statementLine(bankSerial: "S1")?.id)
                let refused = await #expect(throws: CofferError.self) { try await bank.assignLine(id: id, accountId: a, actor: "user:operator") }
                #expect(refused?.code == .statementLineForeignCurrency)
                #expect(try await env.wallet(a).cashMinor == 0)
            case .duplicate:
                let first = try await bank.importStatement([line("S1", payee: number), line("S1", payee: number)],
                                                            source: "file:a.csv", actor: "user:operator")
                #expect(first.map(\.duplicate) == [false, true])
                let again = try await importOne(env, line("S1", payee: number))
                #expect(again.duplicate && again.state == "credited")
                #expect(try await env.wallet(a).cashMinor == 80_000)
            }
        }
    }

    @Test("T2 invalid lines are reported per line and store nothing", arguments: Backend.available)
    func t2InvalidLines(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            let number = try await env.engine.bank.dedicatedAccount(accountId: a).number
            let results = try await env.engine.bank.importStatement([
                line("S1", payee: number, amount: "1.234"), line("", payee: number), line("S3", payee: number, amount: "-5.00"),
                line("S4", payee: number, currency: "yuan"),
            ], source: "push", actor: "user:operator")
            #expect(results.map(\.state) == ["invalid", "invalid", "invalid", "invalid"])
            #expect(try await env.store.statementLines(accountId: nil, states: [], limit: 10).isEmpty)
        }
    }

    /// R9 examples with bank money (T3): advance 50,000; balance ≥ 0 or −10,000; remittance 80,000.
    static func arrearsAndAdvance(_ env: TestEnvironment, _ a: String, negativeMinor: Int64) async throws {
        _ = try await env.submit(.advance(accountId: a, amountMinor: 5_000_000, memo: "垫付")).get()
        _ = try await env.submit(.charge(accountId: a, chargeId: "use", amountMinor: 5_000_000 + negativeMinor, mode: .postpaid,
                                         reference: nil)).get()
    }

    @Test("R9 T3 example 1: advance 50,000, balance ≥ 0, statement line 80,000 → balance 30,000", arguments: Backend.available)
    func r9Example1(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            try await Self.arrearsAndAdvance(env, a, negativeMinor: 0)
            let number = try await env.engine.bank.dedicatedAccount(accountId: a).number
            #expect(try await importOne(env, line("S1", payee: number, amount: "80000.00")).state == "credited")
            let w = try await env.wallet(a)
            #expect(w.balanceMinor == 3_000_000 && w.advanceOutstandingMinor == 0)
        }
    }

    @Test("R9 T3 example 2: advance 50,000, balance −10,000, approved remittance 80,000 → balance 20,000", arguments: Backend.available)
    func r9Example2(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let a = try await env.createAccount().accountId
            try await Self.arrearsAndAdvance(env, a, negativeMinor: 1_000_000)
            #expect(try await env.wallet(a).balanceMinor == -1_000_000)
            let (r, _) = try await env.engine.bank.submitRemittance(accountId: a, remittance(amount: "80000.00", serial: "B-1"),
                                                                  idempotencyKey: "rm-1", actor: "user:c")
            _ = try await env.engine.bank.approve(remittanceId: r.id, idempotencyKey: "approve-1", actor: "user:operator").get()
            let w = try await env.wallet(a)
            #expect(w.balanceMinor == 2_000_000 && w.advanceOutstandingMinor == 0)
        }
    }

    func remittance(amount: String = "1000.00", serial: String? = nil, receipt: [UInt8] = BankTransferTests.png,
                    resubmissionOf: String? = nil) -> RemittanceInput {
        RemittanceInput(payerName: "测试科技有限公司", payerAccount: "6222020200001234", payerBank: "工商银行", amountText: amount,
                        remittedOn: "2026-11-20", bankSerial: serial, receipt: receipt, resubmissionOf: resubmissionOf)
    }

    @Test("T1 submit with receipt → review queue → approve credits once; reject with reason → correct and resubmit",
          arguments: Backend.available)
    func t1ReviewFlow(backend: Backend) async throws {
        try await TestEnvironment.with(backend) { env in
            let bank = env.engine.bank
            let a = try await env.createAccount().accountId
            let (first, _) = try await bank.submitRemittance(accountId: a, remittance(serial: "B-1"), idempotencyKey: "r1", actor: "user:c")
            let (replay, replayed) = try await bank.submitRemittance(accountId: a, remittance(serial: "B-1"), idempotencyKey: "r1", actor: "user:c")
            #expect(replayed && replay == first)
            #expect(first.state == .pendingReview && first.receiptType == "image/png")
            #expect(try bank.receipt(first) == Self.png)
            #expect(try await bank.reviewQueue(limit: 10).map(\.id) == [first.id])
            let duplicate = await #expect(throws: CofferError.self) {
                try await bank.submitRemittance(accountId: a, remittance(serial: "B-1"), idempotencyKey: "r2", actor: "user:c")
            }
            #expect(duplicate?.code == .remittanceAlreadyPending)

            let rejected = try await bank.reject(remittanceId: first.id, reason: "回单金额与填写金额不一致", actor: "user:operator")
            #expect(rejected.state == .rejected && rejected.rejectReason == "回单金额与填写金额不一致")
            #expect(try await env.store.siteMessages(accountId: a, limit: 5).first?.kind == "remittance_rejected")
            let approveRejected = try await bank.approve(remittanceId: first.id, idempotencyKey: "a0", actor: "user:operator")
            #expect(approveRejected.result.failureCode == "remittance_already_reviewed")

            let (second, _) = try await bank.submitRemittance(accountId: a, remittance(amount: "999.00", serial: "B-1", resubmissionOf: first.id),
                                                              idempotencyKey: "r3", actor: "user:c")
            let approved = try await bank.approve(remittanceId: second.id, idempotencyKey: "a1", actor: "user:operator")
            #expect(approved.result.failureCode == nil)
            let twice = try await bank.approve(remittanceId: second.id, idempotencyKey: "a2", actor: "user:operator")
            #expect(twice.result.failureCode == "remittance_already_reviewed")
            #expect(try await env.wallet(a).cashMinor == 99_900)
            #expect(try await env.store.remittance(id: second.id)?.reviewedBy == "user:operator")

            // T1: a credited bank serial number cannot be submitted again, nor credited from a statement.
            let again = await #expect(throws: CofferError.self) {
                try await bank.submitRemittance(accountId: a, remittance(serial: "B-1"), idempotencyKey: "r4", actor: "user:c")
            }
            #expect(again?.code == .bankSerialAlreadyCredited)
            let number = try await bank.dedicatedAccount(accountId: a).number
            let line = try await importOne(env, line("B-1", payee: number, amount: "999.00"))
            #expect(line.state == "unmatched" && line.note?.contains("already been credited") == true)
            #expect(try await env.wallet(a).cashMinor == 99_900)
        }
    }

    @Test("T1 receipts are checked by content and size; other input is refused with the field named")
    func t1ReceiptChecks() async throws {
        try await TestEnvironment.with(.sqlite) { env in
            let a = try await env.createAccount().accountId
            let cases: [(RemittanceInput, String)] = [
                (remittance(receipt: Array("<html>not an image</html>".utf8)), "receipt_type_unsupported"),
                (remittance(receipt: []), "invalid_field"),
                (remittance(receipt: [0xFF, 0xD8, 0xFF] + Array(repeating: 0, count: 5 * 1_024 * 1_024)), "receipt_too_large"),
                (remittance(amount: "12.345"), "amount_too_many_decimals"),
                (remittance(amount: "0"), "amount_not_positive"),
            ]
            for (input, code) in cases {
                let error = await #expect(throws: CofferError.self) {
                    try await env.engine.bank.submitRemittance(accountId: a, input, idempotencyKey: env.engine.ids.make("k"), actor: "c")
                }
                #expect(error?.code.rawValue == code)
            }
            var badDate = remittance()
            badDate.remittedOn = "20/11/2026"
            let error = await #expect(throws: CofferError.self) {
                try await env.engine.bank.submitRemittance(accountId: a, badDate, idempotencyKey: "k-date", actor: "c")
            }
            #expect(error?.code == .invalidField)
            #expect(BankTransferService.receiptType(Array("%PDF-1.7".utf8))?.mime == "application/pdf")
            #expect(try await env.engine.bank.reviewQueue(limit: 10).isEmpty)
        }
    }

    @Test("T2 the statement CSV is parsed by its header with RFC 4180 quoting; a missing column is named")
    func t2CSV() throws {
        let text = "\u{FEFF}memo,bank_serial,booked_on,amount,currency,payer_name,payer_account,payee_account\r\n"
            + "\"云服务费, 十一月\",S1,2026-11-23,80000.00,cny,\"北京 \"\"示例\"\" 科技\",6222,1109123456106010000012345\r\n\r\n"
        let lines = try StatementCSV.parse(text, maxLines: 10)
        #expect(lines == [StatementLineInput(bankSerial: "S1", bookedOn: "2026-11-23", amountText: "80000.00", currency: "CNY",
                                             payerName: "北京 \"示例\" 科技", payerAccount: "6222",
                                             payeeAccount: "1109123456106010000012345", memo: "云服务费, 十一月")])
        let error = #expect(throws: CofferError.self) { try StatementCSV.parse("bank_serial,amount\nS1,1.00\n", maxLines: 10) }
        #expect(error?.code == .statementCsvInvalid)
    }
}
