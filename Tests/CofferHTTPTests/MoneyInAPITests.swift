import CofferCore
@testable import CofferHTTP
import CofferServices
import CofferTestSupport
import Foundation
import HTTPTypes
import Testing

/// The HTTP surface of recharge codes and bank remittance: the same rules as the service tests, through the routes,
/// with roles checked on every route.
@Suite("Money-in API: recharge codes, remittances, statements")
struct MoneyInAPITests {
    static func multipart(_ fields: [(String, String)], receipt: String?, boundary: String = "coffer-boundary-7MA4YWxk") -> String {
        var out = ""
        for (name, value) in fields {
            out += "--\(boundary)\r\nContent-Disposition: form-data; name=\"\(name)\"\r\n\r\n\(value)\r\n"
        }
        if let receipt {
            out += "--\(boundary)\r\nContent-Disposition: form-data; name=\"receipt\"; filename=\"receipt.pdf\"\r\n"
                + "Content-Type: application/pdf\r\n\r\n\(receipt)\r\n"
        }
        return out + "--\(boundary)--\r\n"
    }

    static let formType = ["Content-Type": "multipart/form-data; boundary=coffer-boundary-7MA4YWxk"]

    @Test("T1 a part whose header name is not ASCII is refused with 400 multipart_invalid and the server keeps serving (it trapped in MultipartKit)")
    func nonASCIIHeaderName() async throws {
        try await APIFixture.run(.sqlite) { api in
            let body = "--coffer-boundary-7MA4YWxk\r\nContent-Disposition: form-data; name=\"payerName\"\r\nX-名字: 1\r\n\r\n张三\r\n--coffer-boundary-7MA4YWxk--\r\n"
            let r = try await api.call(.post, "/v1/accounts/\(api.accountId)/remittances", key: api.ownerKey, idempotencyKey: "mp-1",
                                       body: body, headers: Self.formType)
            #expect(r.status == 400 && r.code == "multipart_invalid", "\(r.text)")
            #expect(try await api.call(.get, "/health", key: nil).status == 200)
        }
    }

    @Test("Multipart header names: ASCII names pass, a name byte ≥ 0x80 is found in any part, file bytes after the headers do not count",
          arguments: [("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\n值\r\n--b--\r\n", true),
                      ("--b\r\nContent-Disposition: form-data; name=\"x\"; filename=\"收据.png\"\r\n\r\n\u{89}PNG\r\n--b--\r\n", true),
                      ("--b\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nv\r\n--b\r\nÄ: 1\r\n\r\nv\r\n--b--\r\n", false),
                      ("--b\nContent-Disposition: form-data\nnäme\n\nv\n--b--\n", false)] as [(String, Bool)])
    func headerNames(body: String, ok: Bool) {
        #expect(Forms.headerNamesAreASCII(Array(body.utf8), boundary: "b") == ok)
    }

    @Test("R8 an operator creates and exports a batch; a customer redeems over HTTP; a member is refused (W12)", arguments: Backend.available)
    func r8OverHTTP(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            // R2: the channel list says plainly which channels are real, which are a test, and which Coffer cannot speak.
            let channels = try await api.call(.get, "/v1/channels", key: api.memberKey)
            let byName = Dictionary(uniqueKeysWithValues: ((channels.json["items"] as? [[String: Any]]) ?? []).map {
                ($0["name"] as? String ?? "", $0["protocolStatus"] as? String ?? "")
            })
            #expect(byName["sandbox"] == "test" && byName["paypal"] == "not_implemented" && byName["unionpay"] == "not_implemented")
            let validUntil = RFC3339.format(micros: api.env.clock.nowMicros() + 86_400_000_000)
            let batch = #"{"amount":"50.00","credit":"gift","validUntil":"\#(validUntil)","count":2,"memo":"活动"}"#
            #expect(try await api.post("/v1/operator/code-batches", key: api.ownerKey, batch).status == 403)
            let created = try await api.post("/v1/operator/code-batches", key: api.platformKey, batch)
            #expect(created.status == 201, "\(created.text)")
            let batchId = try #require(created.string("id"))
            let csv = try await api.call(.get, "/v1/operator/code-batches/\(batchId)/codes.csv", key: api.platformKey)
            #expect(csv.headers[.contentType] == "text/csv; charset=utf-8")
            #expect(csv.text.hasPrefix("\u{FEFF}code,amount,credit,valid_until,state,redeemed_by,redeemed_at\r\n"), "the API's names are stable")
            let rows = csv.text.split(separator: "\r\n").dropFirst()
            #expect(rows.count == 2 && rows.allSatisfy { $0.contains(",unused,") })
            let code = String(rows.first!.split(separator: ",")[0])

            let member = try await api.post("/v1/accounts/\(a)/code-redemptions", key: api.memberKey, #"{"code":"\#(code)"}"#)
            #expect(member.status == 403)
            let redeemed = try await api.post("/v1/accounts/\(a)/code-redemptions", key: api.financeKey, #"{"code":"\#(code)"}"#)
            #expect(redeemed.status == 200, "\(redeemed.text)")
            #expect(redeemed.string("wallet", "gift") == "50.00")
            let again = try await api.post("/v1/accounts/\(a)/code-redemptions", key: api.financeKey, #"{"code":"\#(code)"}"#)
            #expect(again.status == 409 && again.code == "code_already_redeemed")
            let unknown = try await api.post("/v1/accounts/\(a)/code-redemptions", key: api.financeKey, #"{"code":"AAAA-BBBB-CCCC-DDDD"}"#)
            #expect(unknown.status == 404 && unknown.code == "code_not_found")
            let after = try await api.call(.get, "/v1/operator/code-batches/\(batchId)/codes.csv", key: api.platformKey)
            #expect(after.text.contains(",redeemed,\(a),"))
        }
    }

    @Test("T1 over HTTP: collection details, multipart submission with a receipt, operator queue, receipt preview, approval",
          arguments: Backend.available)
    func t1OverHTTP(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            let details = try await api.call(.get, "/v1/accounts/\(a)/bank-transfer", key: api.financeKey)
            #expect(details.status == 200)
            #expect(details.string("dedicatedAccountNumber")?.count == 25)
            #expect(details.string("memo")?.contains(a) == true)

            let fields = [("payerName", "测试科技有限公司"), ("payerAccount", "6222020200001234"), ("payerBank", "工商银行"),
                          ("amount", "1200.00"), ("remittedOn", "2026-11-20"), ("bankSerial", "HB-0001")]
            let pdf = "%PDF-1.4\n1 0 obj << >> endobj\n%%EOF"
            let noReceipt = try await api.call(.post, "/v1/accounts/\(a)/remittances", key: api.financeKey, idempotencyKey: "rm-0",
                                               body: Self.multipart(fields, receipt: nil), headers: Self.formType)
            #expect(noReceipt.status == 400 && noReceipt.code == "invalid_field")
            let html = try await api.call(.post, "/v1/accounts/\(a)/remittances", key: api.financeKey, idempotencyKey: "rm-h",
                                          body: Self.multipart(fields, receipt: "<script>alert(1)</script>"), headers: Self.formType)
            #expect(html.status == 400 && html.code == "receipt_type_unsupported")
            let json = try await api.call(.post, "/v1/accounts/\(a)/remittances", key: api.financeKey, idempotencyKey: "rm-j",
                                          body: #"{"amount":"1.00"}"#)
            #expect(json.status == 400 && json.code == "multipart_required")
            let submitted = try await api.call(.post, "/v1/accounts/\(a)/remittances", key: api.financeKey, idempotencyKey: "rm-1",
                                               body: Self.multipart(fields, receipt: pdf), headers: Self.formType)
            #expect(submitted.status == 201, "\(submitted.text)")
            #expect(submitted.string("state") == "pending_review" && submitted.string("amount") == "1200.00")
            let id = try #require(submitted.string("id"))

            #expect(try await api.call(.get, "/v1/operator/remittances", key: api.financeKey).status == 403)
            let queue = try await api.call(.get, "/v1/operator/remittances", key: api.platformKey)
            #expect((queue.json["items"] as? [[String: Any]])?.compactMap { $0["id"] as? String } == [id])
            let preview = try await api.call(.get, "/v1/operator/remittances/\(id)/receipt", key: api.platformKey)
            #expect(preview.status == 200 && preview.text == pdf && preview.headers[.contentType] == "application/pdf")

            let missingReason = try await api.post("/v1/operator/remittances/\(id)/reject", key: api.platformKey, #"{"reason":" "}"#)
            #expect(missingReason.status == 400)
            let approved = try await api.post("/v1/operator/remittances/\(id)/approve", key: api.platformKey)
            #expect(approved.status == 200, "\(approved.text)")
            #expect(approved.string("wallet", "cash") == "1200.00")
            let mine = try await api.call(.get, "/v1/accounts/\(a)/remittances", key: api.ownerKey)
            #expect((mine.json["items"] as? [[String: Any]])?.first?["state"] as? String == "approved")
            let messages = try await api.call(.get, "/v1/accounts/\(a)/messages", key: api.memberKey)
            #expect((messages.json["items"] as? [[String: Any]])?.first?["kind"] as? String == "remittance_credited")
        }
    }

    @Test("T2 over HTTP: statement CSV import with per-line results, registering the payer, assigning from the unmatched pool",
          arguments: Backend.available)
    func t2OverHTTP(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            let number = try #require(try await api.call(.get, "/v1/accounts/\(a)/bank-transfer", key: api.ownerKey)
                .string("dedicatedAccountNumber"))
            let prefix = String(number.prefix(15))
            let csv = """
                bank_serial,booked_on,amount,currency,payer_name,payer_account,payee_account,memo
                S-1,2026-11-23,100.00,CNY,王五,6222000011112222,\(number),云服务费
                S-2,2026-11-23,200.00,CNY,某某公司,6222000011113333,\(prefix)0000000000,云服务费
                S-3,2026-11-23,1.234,CNY,某某公司,6222000011113333,\(number),云服务费
                """
            let csvType = ["Content-Type": "text/csv; charset=utf-8"]
            #expect(try await api.call(.post, "/v1/operator/statements?name=nov.csv", key: api.ownerKey, body: csv, headers: csvType).status == 403)
            let imported = try await api.call(.post, "/v1/operator/statements?name=nov.csv", key: api.platformKey, body: csv, headers: csvType)
            #expect(imported.status == 200, "\(imported.text)")
            let states = (imported.json["lines"] as? [[String: Any]])?.compactMap { $0["state"] as? String }
            #expect(states == ["to_be_confirmed", "unmatched", "invalid"])

            let registered = try await api.post("/v1/accounts/\(a)/payer-names", key: api.financeKey, #"{"name":"王五"}"#)
            #expect(registered.status == 201)
            #expect(((registered.json["recheckedLines"] as? [[String: Any]])?.first?["state"] as? String) == "credited")

            let pool = try await api.call(.get, "/v1/operator/statement-lines?state=unmatched", key: api.platformKey)
            let lineId = try #require((pool.json["items"] as? [[String: Any]])?.first?["id"] as? String)
            let assigned = try await api.post("/v1/operator/statement-lines/\(lineId)/assign", key: api.platformKey, #"{"accountId":"\#(a)"}"#)
            #expect(assigned.status == 200, "\(assigned.text)")
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("cash") == "300.00")

            // The same file again is processed once.
            let again = try await api.call(.post, "/v1/operator/statements", key: api.platformKey, body: csv, headers: csvType)
            #expect((again.json["lines"] as? [[String: Any]])?.prefix(2).allSatisfy { $0["duplicate"] as? Bool == true } == true)
            #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey).string("cash") == "300.00")
        }
    }
}

@Suite("W10 the same Idempotency-Key sent concurrently")
struct ConcurrentIdempotencyTests {
    /// Sends one request `count` times at once; every answer is the first one (then replayed) or the retryable
    /// `409 idempotency_key_in_use` — never a 500, a 429 or another request's refusal.
    static func race(_ api: APIFixture, count: Int = 12, _ send: @escaping @Sendable () async throws -> APIResponse) async throws -> [APIResponse] {
        let answers = try await withThrowingTaskGroup(of: APIResponse.self) { group in
            for _ in 0..<count { group.addTask { try await send() } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        for r in answers {
            let ok = [200, 201].contains(r.status) || (r.status == 409 && r.code == "idempotency_key_in_use")
            #expect(ok, "\(r.status) \(r.text.prefix(200))")
        }
        // A replay repeats the first answer's status, marked Idempotent-Replayed.
        let fresh = answers.filter { [200, 201].contains($0.status) && $0.headers[HTTPField.Name("Idempotent-Replayed")!] == nil }
        #expect(fresh.count == 1, "exactly one request did the work")
        let ids = Set(answers.filter { [200, 201].contains($0.status) }.compactMap { $0.string("id") ?? $0.string("entryId") })
        #expect(ids.count <= 1, "every answer names the same object: \(ids)")
        return answers
    }

    @Test("W10 users, recharges, code batches, remittances and code redemptions: one effect, the first answer", arguments: Backend.available)
    func concurrentSameKey(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            let usersBefore = try await api.env.store.users(accountId: a).count
            _ = try await Self.race(api) {
                try await api.call(.post, "/v1/accounts/\(a)/users", key: api.ownerKey, idempotencyKey: "same-user",
                                   body: #"{"email":"twin@example.com","name":"Twin","role":"member","password":"correct horse battery"}"#)
            }
            #expect(try await api.env.store.users(accountId: a).count == usersBefore + 1)

            _ = try await Self.race(api) {
                try await api.call(.post, "/v1/accounts/\(a)/recharges", key: api.financeKey, idempotencyKey: "same-recharge",
                                   body: #"{"amount":"10.00","channel":"sandbox"}"#)
            }
            #expect(try await api.env.store.recharges(accountId: a, limit: 50).count == 1)

            let batchesBefore = try await api.env.store.codeBatches(limit: 100).count
            let batches = try await Self.race(api) {
                try await api.call(.post, "/v1/operator/code-batches", key: api.platformKey, idempotencyKey: "same-batch",
                                   body: #"{"amount":"5.00","credit":"cash","validUntil":"2030-01-01T00:00:00Z","count":2}"#)
            }
            #expect(try await api.env.store.codeBatches(limit: 100).count == batchesBefore + 1)

            let fields = [("payerName", "测试科技有限公司"), ("payerAccount", "6222020200001234"), ("payerBank", "工商银行"),
                          ("amount", "12.00"), ("remittedOn", "2026-11-20")]
            _ = try await Self.race(api) {
                try await api.call(.post, "/v1/accounts/\(a)/remittances", key: api.financeKey, idempotencyKey: "same-remittance",
                                   body: MoneyInAPITests.multipart(fields, receipt: "%PDF-1.4\n%%EOF"), headers: MoneyInAPITests.formType)
            }
            #expect(try await api.env.store.remittances(accountId: a, state: nil, limit: 50).count == 1)

            let batchId = try #require(batches.first { $0.status == 201 }?.string("id"))
            let csv = try await api.call(.get, "/v1/operator/code-batches/\(batchId)/codes.csv", key: api.platformKey)
            let code = String(csv.text.split(separator: "\r\n").dropFirst().first!.split(separator: ",")[0])
            let before = try await api.env.wallet(a)
            let redemptions = try await withThrowingTaskGroup(of: APIResponse.self) { group in
                for _ in 0..<12 {
                    group.addTask {
                        try await api.call(.post, "/v1/accounts/\(a)/code-redemptions", key: api.financeKey,
                                           idempotencyKey: "same-redemption", body: #"{"code":"\#(code)"}"#)
                    }
                }
                return try await group.reduce(into: [APIResponse]()) { $0.append($1) }
            }
            for r in redemptions {
                #expect(r.status == 200 || (r.status == 409 && r.code == "idempotency_key_in_use"), "\(r.status) \(r.text.prefix(200))")
            }
            #expect(Set(redemptions.filter { $0.status == 200 }.compactMap { $0.string("entryId") }).count == 1)
            #expect(try await api.env.wallet(a).cashMinor == before.cashMinor + 500)
        }
    }
}
