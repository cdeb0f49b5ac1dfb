import CofferCore
import CofferHTTP
import CofferServices
import CofferTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import Logging
import Testing

@Suite("HTTP API on SQLite and PostgreSQL")
struct APITests {
    @Test("R5 W5 W11 walk-through: recharge through the sandbox, freeze, capture, list and export records",
          arguments: Backend.available)
    func walkthrough(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            let recharge = try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey, #"{"amount":"100.00","channel":"sandbox"}"#)
            #expect(recharge.status == 201)
            #expect(recharge.json["testChannel"] as? Bool == true)
            let rechargeId = try #require(recharge.string("id"))
            let paid = try await api.call(.post, "/v1/sandbox/recharges/\(rechargeId)/pay", key: api.ownerKey)
            #expect(paid.status == 200)
            #expect(paid.string("state") == "paid")
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.string("balance") == "100.00")
            let freeze = try await api.post("/v1/accounts/\(a)/freezes", key: api.platformKey, #"{"amount":"30.00","reference":"vm-1"}"#)
            #expect(freeze.status == 201)
            #expect(freeze.string("wallet", "available") == "70.00")
            let freezeId = try #require(freeze.string("freeze", "id"))
            let capture = try await api.post("/v1/accounts/\(a)/freezes/\(freezeId)/capture", key: api.platformKey, #"{"amount":"12.50"}"#)
            #expect(capture.status == 200)
            #expect(capture.string("wallet", "balance") == "87.50")
            #expect(capture.string("freeze", "state") == "captured")
            let list = try await api.call(.get, "/v1/accounts/\(a)/transactions", key: api.ownerKey)
            let items = try #require(list.json["items"] as? [[String: Any]])
            #expect(items.map { $0["type"] as? String } == ["deduction", "unfreeze", "freeze", "recharge"])
            #expect(items.map { $0["amount"] as? String } == ["-12.50", "30.00", "-30.00", "100.00"])
            let csv = try await api.call(.get, "/v1/accounts/\(a)/transactions?format=csv&type=recharge", key: api.ownerKey)
            #expect(csv.status == 200)
            #expect(csv.text.hasPrefix("\u{FEFF}id,time,type,amount"))
            #expect(csv.text.split(separator: "\r\n").count == 2)
            #expect(csv.headers[.contentType]?.hasPrefix("text/csv") == true)
        }
    }

    struct BadInput: Sendable, CustomTestStringConvertible {
        let name: String
        let method: HTTPRequest.Method
        let path: String
        let key: Key
        let body: String?
        let idempotent: Bool
        let status: Int
        let code: String
        enum Key: Sendable { case platform, owner, member, none, bogus }
        var testDescription: String { name }
        init(_ name: String, _ method: HTTPRequest.Method, _ path: String, _ key: Key, body: String?,
             idempotent: Bool = true, _ status: Int, _ code: String) {
            self.name = name; self.method = method; self.path = path; self.key = key; self.body = body
            self.idempotent = idempotent; self.status = status; self.code = code
        }
    }

    // {A} is the fixture's account, {F} a released freeze, {O} another account.
    static let badInputs: [BadInput] = [
        .init("malformed JSON", .post, "/v1/accounts/{A}/charges", .platform, body: #"{"amount": "1.00", "mode":"#, 400, "malformed_json"),
        .init("amount as a JSON float", .post, "/v1/accounts/{A}/charges", .platform, body: #"{"amount": 12.3, "mode":"prepaid"}"#, 400, "amount_not_string"),
        .init("amount as a JSON integer", .post, "/v1/accounts/{A}/gifts", .platform, body: #"{"amount": 12}"#, 400, "amount_not_string"),
        .init("three decimals", .post, "/v1/accounts/{A}/charges", .platform, body: #"{"amount":"1.005","mode":"prepaid"}"#, 400, "amount_too_many_decimals"),
        .init("negative amount", .post, "/v1/accounts/{A}/freezes", .platform, body: #"{"amount":"-5.00"}"#, 400, "amount_not_positive"),
        .init("zero amount", .post, "/v1/accounts/{A}/gifts", .platform, body: #"{"amount":"0.00"}"#, 400, "amount_not_positive"),
        .init("huge amount", .post, "/v1/accounts/{A}/gifts", .platform, body: #"{"amount":"123456789012345678.00"}"#, 400, "amount_out_of_range"),
        .init("amount with exponent", .post, "/v1/accounts/{A}/gifts", .platform, body: #"{"amount":"1e5"}"#, 400, "amount_invalid"),
        .init("recharge above R1 maximum", .post, "/v1/accounts/{A}/recharges", .platform, body: #"{"amount":"10000000.00","channel":"sandbox"}"#, 400, "amount_out_of_range"),
        .init("unknown channel", .post, "/v1/accounts/{A}/recharges", .platform, body: #"{"amount":"1.00","channel":"bitcoin"}"#, 422, "channel_unavailable"),
        .init("missing field", .post, "/v1/accounts/{A}/charges", .platform, body: #"{"mode":"prepaid"}"#, 400, "invalid_field"),
        .init("unknown charge mode", .post, "/v1/accounts/{A}/charges", .platform, body: #"{"amount":"1.00","mode":"weekly"}"#, 400, "invalid_field"),
        .init("adjustment without reason", .post, "/v1/accounts/{A}/adjustments", .platform, body: #"{"amount":"1.00","bucket":"cash","reason":" "}"#, 400, "invalid_field"),
        .init("no body", .post, "/v1/accounts/{A}/charges", .platform, body: nil, 400, "body_required"),
        .init("body over 64 KiB", .post, "/v1/accounts/{A}/gifts", .platform, body: #"{"amount":"1.00","memo":""# + String(repeating: "x", count: 70_000) + "\"}", 413, "body_too_large"),
        .init("missing Idempotency-Key", .post, "/v1/accounts/{A}/gifts", .platform, body: #"{"amount":"1.00"}"#, idempotent: false, 400, "idempotency_key_required"),
        .init("unknown account", .post, "/v1/accounts/acc_doesnotexist/gifts", .platform, body: #"{"amount":"1.00"}"#, 404, "account_not_found"),
        .init("another account's wallet", .get, "/v1/accounts/{O}/wallet", .owner, body: nil, 404, "account_not_found"),
        .init("another account's recharge", .post, "/v1/accounts/{O}/recharges", .owner, body: #"{"amount":"1.00","channel":"sandbox"}"#, 404, "account_not_found"),
        .init("capturing a released freeze", .post, "/v1/accounts/{A}/freezes/{F}/capture", .platform, body: nil, 409, "freeze_already_resolved"),
        .init("capture more than frozen", .post, "/v1/accounts/{A}/freezes/{G}/capture", .platform, body: #"{"amount":"999.00"}"#, 422, "capture_exceeds_freeze"),
        .init("unknown freeze", .post, "/v1/accounts/{A}/freezes/frz_nope/release", .platform, body: nil, 404, "freeze_not_found"),
        .init("prepaid charge above available", .post, "/v1/accounts/{A}/charges", .platform, body: #"{"amount":"5000.00","mode":"prepaid"}"#, 422, "insufficient_balance"),
        .init("W12 member reads the wallet", .get, "/v1/accounts/{A}/wallet", .member, body: nil, 403, "forbidden"),
        .init("W12 member recharges", .post, "/v1/accounts/{A}/recharges", .member, body: #"{"amount":"1.00","channel":"sandbox"}"#, 403, "forbidden"),
        .init("W12 member lists records", .get, "/v1/accounts/{A}/transactions", .member, body: nil, 403, "forbidden"),
        .init("Z4 an owner grants itself a gift", .post, "/v1/accounts/{A}/gifts", .owner, body: #"{"amount":"1.00"}"#, 403, "forbidden"),
        .init("Z4 an owner charges", .post, "/v1/accounts/{A}/charges", .owner, body: #"{"amount":"1.00","mode":"postpaid"}"#, 403, "forbidden"),
        .init("no API key", .get, "/v1/accounts/{A}/wallet", .none, body: nil, 401, "unauthorized"),
        .init("wrong API key", .get, "/v1/accounts/{A}/wallet", .bogus, body: nil, 401, "unauthorized"),
        .init("bad time filter", .get, "/v1/accounts/{A}/transactions?from=yesterday", .owner, body: nil, 400, "invalid_field"),
        .init("page too large", .get, "/v1/accounts/{A}/transactions?limit=100000", .owner, body: nil, 400, "invalid_field"),
        .init("unknown route", .get, "/v1/nothing-here", .platform, body: nil, 404, "route_not_found"),
        // Holes found by black-box testing (ledger-v2 issue, item 7).
        .init("capture with a null amount is not 'capture all'", .post, "/v1/accounts/{A}/freezes/{G}/capture", .platform, body: #"{"amount":null}"#, 400, "invalid_field"),
        .init("code redemption on an unknown account", .post, "/v1/accounts/acc_doesnotexist/code-redemptions", .platform, body: #"{"code":"K7QM-2D4F-9XWP-HC3R"}"#, 404, "account_not_found"),
        .init("payer name on an unknown account", .post, "/v1/accounts/acc_doesnotexist/payer-names", .platform, body: #"{"name":"某公司"}"#, 404, "account_not_found"),
        .init("records of an unknown account", .get, "/v1/accounts/acc_doesnotexist/transactions", .platform, body: nil, 404, "account_not_found"),
        .init("remittances of an unknown account", .get, "/v1/accounts/acc_doesnotexist/remittances", .platform, body: nil, 404, "account_not_found"),
        .init("messages of an unknown account", .get, "/v1/accounts/acc_doesnotexist/messages", .platform, body: nil, 404, "account_not_found"),
        .init("wrong method on a known route", .delete, "/v1/accounts/{A}/wallet", .platform, body: nil, 405, "method_not_allowed"),
        .init("GET on a POST-only route", .get, "/v1/accounts/{A}/charges", .platform, body: nil, 405, "method_not_allowed"),
        // Found by schemathesis: PostgreSQL refuses NUL in text, so NUL is bad input wherever it comes.
        .init("NUL in a query value", .get, "/v1/operator/channel-refunds?accountId=a%00b", .platform, body: nil, 400, "invalid_field"),
        .init("NUL escaped in a JSON string", .post, "/v1/accounts/{A}/gifts", .platform, body: #"{"amount":"1.00","memo":"a\u0000b"}"#, 400, "invalid_field"),
    ]

    @Test("Bad input gets a 4xx with a stable code and a message, and writes nothing", arguments: Backend.available)
    func badInputWritesNothing(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            _ = try await api.post("/v1/accounts/\(a)/adjustments", key: api.platformKey, #"{"amount":"100.00","bucket":"cash","reason":"opening"}"#)
            let released = try await api.post("/v1/accounts/\(a)/freezes", key: api.platformKey, #"{"amount":"10.00"}"#)
            let f = try #require(released.string("freeze", "id"))
            _ = try await api.post("/v1/accounts/\(a)/freezes/\(f)/release", key: api.platformKey)
            let open = try await api.post("/v1/accounts/\(a)/freezes", key: api.platformKey, #"{"amount":"5.00"}"#)
            let g = try #require(open.string("freeze", "id"))
            let other = try await api.env.createAccount().accountId
            let walletBefore = try await api.env.wallet(a)
            let entriesBefore = try await api.env.store.entries(accountId: a).count
            for c in Self.badInputs {
                let path = c.path.replacingOccurrences(of: "{A}", with: a).replacingOccurrences(of: "{F}", with: f)
                    .replacingOccurrences(of: "{G}", with: g).replacingOccurrences(of: "{O}", with: other)
                let key: String? = switch c.key {
                case .platform: api.platformKey
                case .owner: api.ownerKey
                case .member: api.memberKey
                case .none: nil
                case .bogus: "cpk_" + String(repeating: "0", count: 48)
                }
                let r = try await api.call(c.method, path, key: key, idempotencyKey: c.idempotent ? api.env.engine.ids.make("i") : nil,
                                           body: c.body)
                #expect(r.status == c.status, "\(c.name): \(r.text.prefix(300))")
                #expect(r.code == c.code, "\(c.name): \(r.text.prefix(300))")
                #expect(r.headers[.contentType] == "application/problem+json", "\(c.name)")
                #expect((r.json["detail"] as? String)?.isEmpty == false, "\(c.name)")
            }
            #expect(try await api.env.wallet(a) == walletBefore)
            #expect(try await api.env.store.entries(accountId: a).count == entriesBefore)
            #expect(try await api.env.wallet(other) == .zero)
            #expect(try await api.env.store.account(id: "acc_doesnotexist") == nil)
        }
    }

    @Test("405 names the methods the path takes; the Bearer scheme is case-insensitive (RFC 9110)", arguments: Backend.available)
    func methodsAndScheme(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let wrong = try await api.call(.put, "/v1/accounts/\(api.accountId)/freezes", key: api.platformKey, body: "{}")
            #expect(wrong.status == 405 && wrong.headers[.allow] == "POST")
            for scheme in ["bearer", "BEARER", "Bearer"] {
                var headers = HTTPFields()
                headers[.authorization] = "\(scheme) \(api.ownerKey)"
                let r = try await api.client.executeRequest(uri: "/v1/accounts/\(api.accountId)", method: .get, headers: headers, body: nil)
                #expect(r.status == .ok, "\(scheme)")
            }
            var basic = HTTPFields()
            basic[.authorization] = "Basic \(api.ownerKey)"
            let refused = try await api.client.executeRequest(uri: "/v1/accounts/\(api.accountId)", method: .get, headers: basic, body: nil)
            #expect(refused.status == .unauthorized)
        }
    }

    @Test("Z1 a revoked API key stops working within 2 seconds (keys are cached that long, never longer)", arguments: Backend.available)
    func revokedKeyExpiresFromCache(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let path = "/v1/accounts/\(api.accountId)"
            #expect(try await api.call(.get, path, key: api.memberKey).status == 200)
            try await api.env.store.executeRawForTests("UPDATE api_keys SET revoked_at = 1 WHERE revoked_at IS NULL AND user_id IS NOT NULL")
            api.env.clock.advance(seconds: 1)
            #expect(try await api.call(.get, path, key: api.memberKey).status == 200, "still cached after 1 s")
            api.env.clock.advance(seconds: 2)
            let refused = try await api.call(.get, path, key: api.memberKey)
            #expect(refused.status == 401 && refused.code == "unauthorized")
            // The owner key, cached while the fixture set the account up, is past its 2 s too.
            #expect(try await api.call(.get, path, key: api.ownerKey).status == 401)
        }
    }

    @Test("W5 an absent capture amount still captures the whole freeze", arguments: Backend.available)
    func captureAbsentAmount(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            _ = try await api.post("/v1/accounts/\(a)/adjustments", key: api.platformKey, #"{"amount":"50.00","bucket":"cash","reason":"opening"}"#)
            for body in [nil, "{}"] as [String?] {
                let f = try #require(try await api.post("/v1/accounts/\(a)/freezes", key: api.platformKey, #"{"amount":"5.00"}"#).string("freeze", "id"))
                let c = try await api.post("/v1/accounts/\(a)/freezes/\(f)/capture", key: api.platformKey, body)
                #expect(c.status == 200 && c.string("freeze", "captured") == "5.00", "\(c.text)")
            }
        }
    }

    @Test("A batch of the documented 1,000 operations fits the batch route's body limit", arguments: Backend.available)
    func thousandOperationBatch(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            let ops = (0..<1_000).map { #"{"accountId":"\#(a)","idempotencyKey":"batch-op-\#($0)-with-a-longer-key","amount":"0.01","mode":"postpaid","reference":"vm-\#($0)-usage-2026-11"}"# }
            let body = #"{"operations":["# + ops.joined(separator: ",") + "]}"
            #expect(body.utf8.count > 100_000)
            let r = try await api.post("/v1/batch/charges", key: api.platformKey, body)
            #expect(r.status == 200, "\(r.text.prefix(200))")
            #expect((r.json["results"] as? [[String: Any]])?.filter { $0["status"] as? Int == 201 }.count == 1_000)
            #expect(try await api.env.wallet(a).cashMinor == -1_000)
        }
    }

    @Test("W12 owner and finance see money; a member sees the account but not its money", arguments: Backend.available)
    func w12Roles(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            for key in [api.ownerKey, api.financeKey, api.platformKey] {
                #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: key).status == 200)
                #expect(try await api.call(.get, "/v1/accounts/\(a)/transactions", key: key).status == 200)
            }
            #expect(try await api.call(.get, "/v1/accounts/\(a)", key: api.memberKey).status == 200)
            #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.memberKey).status == 403)
            // Only the owner manages users and keys.
            let byFinance = try await api.post("/v1/accounts/\(a)/users", key: api.financeKey,
                                               #"{"email":"x@example.com","name":"x","role":"member","password":"correct horse battery"}"#)
            #expect(byFinance.status == 403)
        }
    }

    @Test("W10 over HTTP: a replay returns the first response; the same key with another body is 409", arguments: Backend.available)
    func w10OverHTTP(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let path = "/v1/accounts/\(api.accountId)/gifts"
            let first = try await api.call(.post, path, key: api.platformKey, idempotencyKey: "gift-1", body: #"{"amount":"8.00"}"#)
            let again = try await api.call(.post, path, key: api.platformKey, idempotencyKey: "gift-1", body: #"{"amount":"8.00"}"#)
            #expect(first.status == 201 && again.status == 201)
            #expect(first.text == again.text)
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            let other = try await api.call(.post, path, key: api.platformKey, idempotencyKey: "gift-1", body: #"{"amount":"9.00"}"#)
            #expect(other.status == 409 && other.code == "idempotency_conflict")
            #expect(try await api.env.wallet(api.accountId).giftMinor == 800)
            // Creating an account twice with one key creates it once.
            let body = #"{"type":"personal","entityName":"张三","contactEmail":"z@example.com","owner":{"email":"z@example.com","name":"张三","password":"correct horse battery"}}"#
            let c1 = try await api.call(.post, "/v1/accounts", key: api.platformKey, idempotencyKey: "acct-1", body: body)
            let c2 = try await api.call(.post, "/v1/accounts", key: api.platformKey, idempotencyKey: "acct-1", body: body)
            #expect(c1.status == 201 && c1.text == c2.text)
        }
    }

    @Test("R5 the notification route verifies signatures; the sandbox payer is absent when the sandbox is disabled",
          arguments: Backend.available)
    func r5NotificationRoute(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let r = try await api.post("/v1/accounts/\(api.accountId)/recharges", key: api.ownerKey, #"{"amount":"20.00","channel":"sandbox"}"#)
            let id = try #require(r.string("id"))
            let (headers, body) = try api.env.sandbox.signedNotification(rechargeId: id, tradeNo: "N-1", amountMinor: 2_000,
                                                                         nowMicros: api.env.clock.nowMicros())
            var forged = headers
            forged["coffer-sandbox-signature"] = "AAAA"
            let refused = try await api.call(.post, "/v1/channels/sandbox/notifications", key: nil,
                                             body: String(decoding: body, as: UTF8.self), headers: forged)
            #expect(refused.status == 401 && refused.code == "notification_signature_invalid")
            let ok = try await api.call(.post, "/v1/channels/sandbox/notifications", key: nil,
                                        body: String(decoding: body, as: UTF8.self), headers: headers)
            #expect(ok.status == 200 && ok.string("status") == "credited")
            let again = try await api.call(.post, "/v1/channels/sandbox/notifications", key: nil,
                                           body: String(decoding: body, as: UTF8.self), headers: headers)
            #expect(again.string("status") == "already_credited")
            #expect(try await api.env.wallet(api.accountId).cashMinor == 2_000)
        }
        try await APIFixture.run(.sqlite, sandbox: false) { api in
            let r = try await api.call(.post, "/v1/sandbox/recharges/rch_x/pay", key: api.platformKey)
            #expect(r.status == 404 && r.code == "sandbox_disabled")
        }
    }

    @Test("W10 batch charges and freezes: one result per operation, refusals do not disturb neighbours, replays apply once",
          arguments: Backend.available)
    func batchEndpoints(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            let b = try await api.env.fundedAccount(cashMinor: 1_000)
            _ = try await api.post("/v1/accounts/\(a)/adjustments", key: api.platformKey, #"{"amount":"50.00","bucket":"cash","reason":"opening"}"#)
            let body = """
                {"operations":[
                  {"accountId":"\(a)","amount":"10.00","mode":"prepaid","idempotencyKey":"b-1"},
                  {"accountId":"\(a)","amount":"100.00","mode":"prepaid","idempotencyKey":"b-2"},
                  {"accountId":"\(b)","amount":"2.50","mode":"postpaid","idempotencyKey":"b-3","reference":"usage"},
                  {"accountId":"\(a)","amount":1.5,"mode":"prepaid","idempotencyKey":"b-4"},
                  {"accountId":"\(a)","amount":"1.005","mode":"prepaid","idempotencyKey":"b-5"},
                  {"accountId":"acc_missing","amount":"1.00","mode":"prepaid","idempotencyKey":"b-6"},
                  {"accountId":"\(a)","amount":"1.00","mode":"monthly","idempotencyKey":"b-7"}
                ]}
                """
            let float = try await api.post("/v1/batch/charges", key: api.platformKey, body)
            #expect(float.status == 400 && float.code == "amount_not_string")
            let valid = body.replacingOccurrences(of: #""amount":1.5"#, with: #""amount":"1.50""#)
            let first = try await api.post("/v1/batch/charges", key: api.platformKey, valid)
            #expect(first.status == 200)
            let results = try #require(first.json["results"] as? [[String: Any]])
            #expect(results.map { $0["status"] as? Int } == [201, 422, 201, 201, 400, 404, 400])
            #expect(results.map { $0["code"] as? String } == [nil, "insufficient_balance", nil, nil, "amount_too_many_decimals", "account_not_found", "invalid_field"])
            #expect(try await api.env.wallet(a).cashMinor == 5_000 - 1_000 - 150)
            #expect(try await api.env.wallet(b).cashMinor == 1_000 - 250)
            let again = try await api.post("/v1/batch/charges", key: api.platformKey, valid)
            let replayed = try #require(again.json["results"] as? [[String: Any]])
            #expect(replayed.map { $0["status"] as? Int } == [200, 422, 200, 200, 400, 404, 400])
            #expect(try await api.env.wallet(a).cashMinor == 3_850)
            let freezes = try await api.post("/v1/batch/freezes", key: api.platformKey, """
                {"operations":[{"accountId":"\(a)","amount":"20.00","idempotencyKey":"f-1","expiresInSeconds":60},
                               {"accountId":"\(a)","amount":"20.00","idempotencyKey":"f-2"}]}
                """)
            let fr = try #require(freezes.json["results"] as? [[String: Any]])
            #expect(fr.map { $0["status"] as? Int } == [201, 422])
            #expect(try await api.env.wallet(a).frozenMinor == 2_000)
            let byOwner = try await api.post("/v1/batch/charges", key: api.ownerKey, valid)
            #expect(byOwner.status == 403)
            let empty = try await api.post("/v1/batch/charges", key: api.platformKey, #"{"operations":[]}"#)
            #expect(empty.status == 400 && empty.code == "batch_size_invalid")
        }
    }

    @Test("The OpenAPI document lists exactly the routes the server serves")
    func openAPIMatchesRoutes() async throws {
        try await TestEnvironment.with(.sqlite) { env in
            let router = buildRouter(HTTPDependencies(engine: env.engine, sandbox: env.sandbox))
            let served = Set(router.routes.map { route -> String in
                var path = route.path.description
                if !path.hasPrefix("/") { path = "/" + path }
                path = path.replacing(/:([A-Za-z]+)/) { m in "{\(m.output.1)}" }
                return "\(route.method.rawValue) \(path)"
            })
            var documented = Set<String>()
            var currentPath: String?
            for line in OpenAPIDocument.text.split(separator: "\n") {
                if line.hasPrefix("  /"), line.hasSuffix(":") { currentPath = String(line.dropFirst(2).dropLast()); continue }
                if !line.hasPrefix(" ") { currentPath = nil }
                let method = line.trimmingCharacters(in: .whitespaces).dropLast()
                if let p = currentPath, line.hasPrefix("    "), !line.hasPrefix("     "), line.hasSuffix(":"),
                   ["get", "post", "put", "patch", "delete"].contains(method) {
                    documented.insert("\(method.uppercased()) \(p)")
                }
            }
            #expect(served.count >= 20)
            #expect(served == documented, "only served: \(served.subtracting(documented)); only documented: \(documented.subtracting(served))")
        }
    }
}

/// Z3, Z4 through the API: the request id in every answer and in the audit records; the audit log for operators
/// (filters, CSV) and for an account's owner.
@Suite("Audit log and request ids through the API")
struct AuditAPITests {
    @Test("Z3 an answer carries X-Request-Id (the caller's safe id kept, an unsafe one replaced); the gift it made is audited with it, its IP and user agent",
          arguments: Backend.available)
    func requestIds(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId, p = api.platformKey
            let gift = try await api.call(.post, "/v1/accounts/\(a)/gifts", key: p, idempotencyKey: "g1", body: #"{"amount":"3.00","memo":"audit me"}"#,
                                          headers: ["X-Request-Id": "trace-42", "User-Agent": "coffer-test/1"])
            #expect(gift.status == 201 && gift.headers[HTTPField.Name("X-Request-Id")!] == "trace-42")
            let unsafe = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: p, headers: ["X-Request-Id": "bad id<script>"])
            let replaced = unsafe.headers[HTTPField.Name("X-Request-Id")!] ?? ""
            #expect(replaced.hasPrefix("req_") && replaced.count == 36)
            let refused = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: nil)
            #expect(refused.status == 401 && refused.headers[HTTPField.Name("X-Request-Id")!]?.hasPrefix("req_") == true)

            let list = try await api.call(.get, "/v1/operator/audit-events?accountId=\(a)&action=wallet.", key: p)
            let items = try #require(list.json["items"] as? [[String: Any]])
            let audited = try #require(items.first { ($0["detail"] as? String)?.contains("audit me") == true })
            #expect(audited["requestId"] as? String == "trace-42" && audited["userAgent"] as? String == "coffer-test/1")
            #expect(audited["action"] as? String == "wallet.gift_grant" && (audited["hash"] as? String)?.count == 64)
            let before = try #require(audited["before"] as? [String: String]), after = try #require(audited["after"] as? [String: String])
            #expect(Set(before.keys) == ["cash", "gift", "frozen", "advanceOutstanding"] && before["gift"] != after["gift"])
            #expect(items.allSatisfy { ($0["action"] as? String)?.hasPrefix("wallet.") == true })
            // CSV: BOM, header, the same record.
            let csv = try await api.call(.get, "/v1/operator/audit-events?accountId=\(a)&format=csv", key: p)
            #expect(csv.status == 200 && csv.text.hasPrefix("\u{FEFF}seq,time,account_id,actor,action,detail,ip,user_agent,request_id,hash,before,after\r\n"))
            #expect(csv.text.contains("trace-42"))
            // The owner reads the account's own trail; finance may not; bad filters are refused.
            let own = try await api.call(.get, "/v1/accounts/\(a)/audit-events?action=wallet.gift_grant", key: api.ownerKey)
            #expect(own.status == 200 && (own.json["items"] as? [[String: Any]])?.count == 1)
            #expect(try await api.call(.get, "/v1/accounts/\(a)/audit-events", key: api.financeKey).status == 403)
            for bad in ["cursor=0", "cursor=abc", "action=wallet%25", "format=xml", "limit=201", "from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z"] {
                let r = try await api.call(.get, "/v1/operator/audit-events?\(bad)", key: p)
                #expect(r.status == 400 && r.code == "invalid_field", "\(bad)")
            }
        }
    }
}

@Suite("API keys are revoked by the owner")
struct ApiKeyRevocationTests {
    @Test("Z3 the owner revokes an account key: it is refused at once, revoking again is api_key_not_found, another account's key is not found; audited",
          arguments: Backend.available)
    func revoke(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            let wallet = try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey)
            #expect(wallet.status == 200)
            let keys = try await api.env.store.apiKeys(accountId: a)
            let finance = try #require(keys.first { k in api.financeKey.isEmpty == false && k.digest == Secrets.sha256Hex(api.financeKey) })
            let other = try await api.env.createAccount().accountId
            let stranger = try await api.call(.post, "/v1/accounts/\(other)/api-keys/\(finance.id)/revoke", key: api.platformKey)
            #expect(stranger.status == 404 && stranger.code == "api_key_not_found")
            let revoked = try await api.call(.post, "/v1/accounts/\(a)/api-keys/\(finance.id)/revoke", key: api.ownerKey)
            #expect(revoked.status == 200 && revoked.string("state") == "revoked")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/wallet", key: api.financeKey).status == 401)
            let again = try await api.call(.post, "/v1/accounts/\(a)/api-keys/\(finance.id)/revoke", key: api.ownerKey)
            #expect(again.status == 404 && again.code == "api_key_not_found")
            let audit = try await api.call(.get, "/v1/accounts/\(a)/audit-events?action=api_key.revoke", key: api.ownerKey)
            #expect((audit.json["items"] as? [[String: Any]])?.count == 1)
        }
    }
}

@Suite("JSON log lines")
struct JSONLogTests {
    final class Lines: @unchecked Sendable {
        let lock = NSLock()
        var all: [String] = []
        func add(_ s: String) { lock.lock(); all.append(s); lock.unlock() }
    }

    @Test("Z3 --log-format json writes one JSON object a line with time, level, label, message and the metadata (the request id)")
    func jsonLines() throws {
        let lines = Lines()
        var logger = Logger(label: "coffer.test") { JSONLogHandler(label: $0, write: { lines.add($0) }) }
        logger[metadataKey: "instance"] = "a"
        logger.info("settled \"3\" cycles\nnext line", metadata: ["request_id": "req_1", "count": "3"])
        logger.debug("not at info level")
        #expect(lines.all.count == 1 && !lines.all[0].contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(lines.all[0].utf8)) as? [String: Any])
        #expect(object["message"] as? String == "settled \"3\" cycles\nnext line" && object["level"] as? String == "info")
        #expect(object["label"] as? String == "coffer.test" && object["request_id"] as? String == "req_1" && object["instance"] as? String == "a")
        #expect((object["time"] as? String)?.hasSuffix("Z") == true)
    }
}

@Suite("Job runs for operators")
struct JobRunsAPITests {
    @Test("N1 operators read which instance ran each job; a job name outside the list and a bad limit are refused", arguments: Backend.available)
    func list(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            _ = try await api.env.engine.jobs.runOnce()
            let all = try await api.call(.get, "/v1/operator/job-runs", key: api.platformKey)
            let items = try #require(all.json["items"] as? [[String: Any]])
            #expect(Set(items.compactMap { $0["job"] as? String }) == Set(ScheduledJob.allCases.map(\.rawValue)))
            #expect(items.allSatisfy { $0["holder"] as? String == api.env.engine.jobs.holder && $0["finishedAt"] is String })
            let one = try await api.call(.get, "/v1/operator/job-runs?job=notices&limit=1", key: api.platformKey)
            let only = try #require(one.json["items"] as? [[String: Any]])
            #expect(only.count == 1 && only.first?["job"] as? String == "notices" && only.first?["run"] as? Int == 1)
            for bad in ["job=payroll", "limit=0", "limit=1001", "limit=x"] {
                let r = try await api.call(.get, "/v1/operator/job-runs?\(bad)", key: api.platformKey)
                #expect(r.status == 400 && r.code == "invalid_field", "\(bad)")
            }
            #expect(try await api.call(.get, "/v1/operator/job-runs", key: api.ownerKey).status == 403)
        }
    }
}

@Suite("An account's language")
struct AccountLanguageTests {
    @Test("Notices: an account is created in zh (the default) or en; any other language is refused and nothing is created",
          arguments: Backend.available)
    func language(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            func body(_ email: String, _ language: String?) -> String {
                #"{"type":"personal","entityName":"L","contactEmail":"\#(email)","owner":{"email":"\#(email)","name":"o","password":"correct horse battery"}"#
                    + (language.map { #","language":"\#($0)"}"# } ?? "}")
            }
            let plain = try await api.post("/v1/accounts", key: api.platformKey, body("lang-zh@example.com", nil))
            #expect(plain.status == 201 && plain.string("account", "language") == "zh")
            let english = try await api.post("/v1/accounts", key: api.platformKey, body("lang-en@example.com", "en"))
            #expect(english.status == 201 && english.string("account", "language") == "en")
            let id = try #require(english.string("account", "id"))
            #expect(try await api.env.store.account(id: id)?.language == .en)
            let refused = try await api.post("/v1/accounts", key: api.platformKey, body("lang-fr@example.com", "fr"))
            #expect(refused.status == 400 && refused.code == "invalid_field")
            #expect(try await api.env.store.user(email: "lang-fr@example.com") == nil)
            // The owner changes it later; audited with before and after, once; finance may not; a bad value writes nothing.
            let a = api.accountId
            for _ in 0..<2 {
                let changed = try await api.call(.patch, "/v1/accounts/\(a)", key: api.ownerKey, body: #"{"language":"en"}"#)
                #expect(changed.status == 200 && changed.string("language") == "en")
            }
            var q = AuditQuery()
            (q.accountId, q.actionPrefix) = (a, "account.language")
            let audits = try await api.env.store.auditEvents(q)
            #expect(audits.count == 1 && audits.first?.before == ["language": "zh"] && audits.first?.after == ["language": "en"])
            #expect(try await api.call(.patch, "/v1/accounts/\(a)", key: api.financeKey, body: #"{"language":"zh"}"#).status == 403)
            let bad = try await api.call(.patch, "/v1/accounts/\(a)", key: api.ownerKey, body: #"{"language":"de"}"#)
            let after = try await api.env.store.account(id: a)
            #expect(bad.status == 400 && bad.code == "invalid_field" && after?.language == .en)
        }
    }
}
