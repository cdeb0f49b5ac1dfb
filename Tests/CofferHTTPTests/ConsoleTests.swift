import CofferChannels
import CofferCore
import CofferHTTP
import CofferServices
import CofferTestSupport
@testable import CofferWeb
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import NIOCore
import Testing

/// A browser without a browser: keeps cookies, reads the CSRF token out of the last page.
final class WebSession: @unchecked Sendable {
    let client: any TestClientProtocol
    var cookies: [String: String] = [:]
    var lastPage = ""

    init(_ client: any TestClientProtocol) { self.client = client }

    @discardableResult
    func request(_ method: HTTPRequest.Method, _ path: String, form: [String: String]? = nil,
                 headers extra: [String: String] = [:]) async throws -> APIResponse {
        var headers = HTTPFields()
        headers[.accept] = "text/html"
        if !cookies.isEmpty { headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ") }
        for (k, v) in extra { headers[HTTPField.Name(k)!] = v }
        var body: ByteBuffer?
        if let form {
            headers[.contentType] = "application/x-www-form-urlencoded"
            body = ByteBuffer(string: form.map { k, v in
                k + "=" + (v.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
            }.joined(separator: "&"))
        }
        let r = try await client.executeRequest(uri: path, method: method, headers: headers, body: body)
        for value in r.headers[values: .setCookie] {
            let pair = value.split(separator: ";")[0].split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0]), v = pair.count > 1 ? String(pair[1]) : ""
            if v.isEmpty || value.contains("Max-Age=0") { cookies[name] = nil } else { cookies[name] = v }
        }
        let text = String(buffer: r.body)
        if method == .get, r.headers[.contentType]?.hasPrefix("text/html") == true { lastPage = text }
        return APIResponse(status: r.status.code, headers: r.headers, text: text)
    }

    /// The first `name="csrf"` hidden field of the last page.
    var csrf: String {
        guard let range = lastPage.range(of: #"name="csrf" value=""#) else { return "" }
        return String(lastPage[range.upperBound...].prefix { $0 != "\"" })
    }

    func field(_ name: String) -> String {
        guard let range = lastPage.range(of: "name=\"\(name)\" value=\"") else { return "" }
        return String(lastPage[range.upperBound...].prefix { $0 != "\"" })
    }

    /// multipart/form-data, as a browser sends a form with a file.
    func upload(_ path: String, fields: [String: String], file: (name: String, filename: String, type: String, bytes: [UInt8])) async throws -> APIResponse {
        let boundary = "----coffer\(UInt32.random(in: 0...UInt32.max))"
        var body: [UInt8] = []
        for (k, v) in fields {
            body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(k)\"\r\n\r\n\(v)\r\n".utf8)
        }
        body += Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"\(file.name)\"; filename=\"\(file.filename)\"\r\nContent-Type: \(file.type)\r\n\r\n".utf8)
        body += file.bytes + Array("\r\n--\(boundary)--\r\n".utf8)
        var headers = HTTPFields()
        headers[.accept] = "text/html"
        headers[.contentType] = "multipart/form-data; boundary=\(boundary)"
        headers[.cookie] = cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")
        let r = try await client.executeRequest(uri: path, method: .post, headers: headers, body: ByteBuffer(bytes: body))
        return APIResponse(status: r.status.code, headers: r.headers, text: String(buffer: r.body))
    }

    func signIn(_ email: String, _ password: String, desk: Bool = false) async throws -> APIResponse {
        try await request(.get, desk ? "/desk/login" : "/login")
        return try await request(.post, desk ? "/desk/login" : "/login",
                                 form: ["csrf": csrf, "email": email, "password": password, "next": desk ? "/desk" : "/overview"])
    }
}

struct ConsoleFixture {
    let env: TestEnvironment
    let client: any TestClientProtocol
    let accountId: String
    let ownerEmail: String

    static func run(_ backend: Backend, channels: @escaping (ManualClock) throws -> [any PaymentChannel] = { _ in [] },
                    _ test: @escaping @Sendable (ConsoleFixture) async throws -> Void) async throws {
        var settings = CofferEngine.Settings()
        settings.bcryptCost = 4
        try await TestEnvironment.with(backend, settings: settings, channels: channels) { env in
            let deps = HTTPDependencies(engine: env.engine, sandbox: env.sandbox)
            let console = try await WebConsole.load(deps: deps)
            let app = Application(router: buildRouter(deps, modules: [console]))
            let (accountId, ownerId) = try await env.createAccount()
            guard let owner = try await env.store.user(accountId: accountId, id: ownerId) else { throw TestFailure("no owner") }
            try await app.test(.router) { client in
                try await test(ConsoleFixture(env: env, client: client, accountId: accountId, ownerEmail: owner.email))
            }
        }
    }

    func user(_ role: UserRole) async throws -> String {
        let email = "\(role.rawValue)-\(env.engine.ids.make("u").suffix(8))@example.com"
        _ = try await env.engine.accounts.createUser(accountId: accountId, NewUser(email: email, name: role.rawValue, role: role,
                                                                                  password: "correct horse battery"),
                                                     idempotencyKey: env.engine.ids.make("k"), actor: "test")
        return email
    }
}

@Suite("Console: sessions, CSRF, permissions, languages, pages")
struct ConsoleTests {
    @Test("Console sign-in: wrong password refused, 5 failures throttle the address, sign-out ends the session", arguments: Backend.available)
    func signIn(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let web = WebSession(f.client)
            let wrong = try await web.signIn(f.ownerEmail, "not the password")
            #expect(wrong.status == 401)
            #expect(wrong.text.contains("邮箱或密码错误"))
            for _ in 0..<4 { _ = try await web.signIn(f.ownerEmail, "still wrong") }
            // The sixth attempt is refused even with the right password: the address is throttled.
            let throttled = try await web.signIn(f.ownerEmail, "correct horse battery")
            #expect(throttled.status == 429)
            #expect(web.cookies[Cookies.session] == nil)

            let other = try await f.user(.finance)
            let ok = try await web.signIn(other, "correct horse battery")
            #expect(ok.status == 303)
            #expect(ok.headers[.location] == "/overview")
            let cookie = ok.headers[values: .setCookie].first { $0.hasPrefix("coffer_session=") } ?? ""
            #expect(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("SameSite=Lax"))
            #expect(try await web.request(.get, "/overview").status == 200)
            let signOut = try await web.request(.post, "/logout", form: ["csrf": web.csrf])
            #expect(signOut.status == 303)
            let after = try await web.request(.get, "/overview")
            #expect(after.status == 303)
            #expect(after.headers[.location]?.hasPrefix("/login?next=") == true)
        }
    }

    @Test("N1 a site message from a ledger event reads in the console's language (catalogs, the event's own amounts)",
          arguments: Backend.available)
    func siteMessagesInTheReadersLanguage(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let (view, _) = try await f.env.engine.recharges.create(accountId: f.accountId, amountText: "88.00", channelName: "sandbox",
                                                                    idempotencyKey: "msg-lang", actor: "test")
            let (h, b) = try f.env.sandbox.signedNotification(rechargeId: view.recharge.id, tradeNo: "MSG-1", amountMinor: 8_800,
                                                              nowMicros: f.env.clock.nowMicros())
            _ = try await f.env.engine.recharges.handleNotification(channelName: "sandbox", headers: h, body: b)
            let stored = try #require(try await f.env.store.siteMessages(accountId: f.accountId, limit: 1).first)
            #expect(stored.kind == "recharge_credited" && stored.parameters?["amount"] == "88.00")
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            _ = try await web.request(.get, "/lang/en?back=/overview")
            let english = try await web.request(.get, "/overview")
            #expect(english.text.contains("Your recharge of ¥88.00 has been credited"))
            #expect(!english.text.contains("充值到账"))
            _ = try await web.request(.get, "/lang/zh?back=/overview")
            let chinese = try await web.request(.get, "/overview")
            #expect(chinese.text.contains("充值 ¥88.00 已到账"))
            // The record names the recharge order the message names, and labels the channel's own trade number.
            let records = try await web.request(.get, "/transactions")
            #expect(records.text.contains("<code>\(view.recharge.id)</code>") && records.text.contains("渠道交易号 <code>MSG-1</code>"))
        }
    }

    @Test("Console sessions expire, and only the token's digest is stored", arguments: Backend.available)
    func expiry(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let (session, token) = try await f.env.engine.console.signIn(email: f.ownerEmail, password: "correct horse battery",
                                                                        as: .user, client: "test")
            #expect(session.record.tokenDigest == Secrets.sha256Hex(token))
            #expect(try await f.env.store.auditLog(accountId: f.accountId, limit: 10).contains { $0.action == "console.sign_in" })
            #expect(try await f.env.store.webSession(digest: token) == nil)
            #expect(try await f.env.engine.console.session(token: token) != nil)
            f.env.clock.advance(seconds: f.env.engine.console.settings.sessionTTLSeconds + 1)
            #expect(try await f.env.engine.console.session(token: token) == nil)
        }
    }

    @Test("Password change: the current password is required, other sessions are signed out", arguments: Backend.available)
    func passwordChange(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let a = WebSession(f.client), b = WebSession(f.client)
            _ = try await a.signIn(f.ownerEmail, "correct horse battery")
            _ = try await b.signIn(f.ownerEmail, "correct horse battery")
            try await a.request(.get, "/password")
            let wrong = try await a.request(.post, "/password", form: ["csrf": a.csrf, "currentPassword": "nope",
                                                                       "newPassword": "a new long password", "confirmPassword": "a new long password"])
            #expect(wrong.status == 400)
            let changed = try await a.request(.post, "/password", form: ["csrf": a.csrf, "currentPassword": "correct horse battery",
                                                                         "newPassword": "a new long password", "confirmPassword": "a new long password"])
            #expect(changed.status == 303)
            #expect(try await a.request(.get, "/overview").status == 200)
            #expect(try await b.request(.get, "/overview").status == 303)
            #expect(try await WebSession(f.client).signIn(f.ownerEmail, "a new long password").status == 303)
        }
    }

    @Test("CSRF: a form posted without the session's token is refused with 403 and writes nothing", arguments: Backend.available)
    func csrf(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            try await web.request(.get, "/recharge")
            let idem = web.field("idem")
            let nearMiss = String(web.csrf.dropLast()) + (web.csrf.hasSuffix("0") ? "1" : "0")
            for token in ["", "forged", nearMiss] {
                let r = try await web.request(.post, "/recharge", form: ["csrf": token, "idem": idem, "amount": "10.00", "channel": "sandbox"])
                #expect(r.status == 403)
                #expect(r.text.contains("csrf_failed"))
            }
            #expect(try await f.env.store.recharges(accountId: f.accountId, limit: 10).isEmpty)
            // Sign-in has its own token (double-submit cookie): a cross-site login post is refused.
            let login = try await WebSession(f.client).request(.post, "/login", form: ["csrf": "x", "email": f.ownerEmail,
                                                                                      "password": "correct horse battery"])
            #expect(login.status == 403)
            // The same form posted twice (double click, reload) makes one order: its idempotency key is the form's.
            let form = ["csrf": web.csrf, "idem": idem, "amount": "10.00", "channel": "sandbox"]
            let first = try await web.request(.post, "/recharge", form: form)
            let second = try await web.request(.post, "/recharge", form: form)
            #expect(first.status == 303 && first.headers[.location] == second.headers[.location])
            #expect(try await f.env.store.recharges(accountId: f.accountId, limit: 10).count == 1)
        }
    }

    @Test("W12 a member gets a 403 page on every money page; an operator login is refused at the customer sign-in", arguments: Backend.available)
    func memberForbidden(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let web = WebSession(f.client)
            _ = try await web.signIn(try await f.user(.member), "correct horse battery")
            for path in ["/overview", "/recharge", "/remittance", "/codes", "/transactions", "/transactions.csv", "/users"] {
                let r = try await web.request(.get, path)
                #expect(r.status == 403, "\(path)")
                #expect(r.text.contains("没有权限"), "\(path)")
                #expect(!r.text.contains("¥"), "\(path) shows money")
            }
            #expect(try await web.request(.get, "/desk").status == 403)
            let finance = WebSession(f.client)
            _ = try await finance.signIn(try await f.user(.finance), "correct horse battery")
            #expect(try await finance.request(.get, "/overview").status == 200)
            #expect(try await finance.request(.get, "/users").status == 403)
            #expect(try await finance.request(.get, "/desk/remittances").status == 403)

            let op = try await f.env.engine.console.createOperator(email: "op@example.com", name: "Op", password: "operator password", actor: "test")
            #expect(try await WebSession(f.client).signIn(op.email, "operator password").status == 401)
            let desk = WebSession(f.client)
            #expect(try await desk.signIn(op.email, "operator password", desk: true).headers[.location] == "/desk")
            #expect(try await desk.request(.get, "/desk/accounts/\(f.accountId)").status == 200)
        }
    }

    @Test("W12 the owner grants and withdraws the finance permission; the owner's role cannot change", arguments: Backend.available)
    func roles(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let memberEmail = try await f.user(.member)
            guard let member = try await f.env.store.user(email: memberEmail),
                  let owner = try await f.env.store.user(email: f.ownerEmail) else { throw TestFailure("users") }
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            try await web.request(.get, "/users")
            #expect(try await web.request(.post, "/users/\(member.id)/role", form: ["csrf": web.csrf, "role": "finance"]).status == 303)
            #expect(try await f.env.store.user(accountId: f.accountId, id: member.id)?.role == .finance)
            let ownerChange = try await web.request(.post, "/users/\(owner.id)/role", form: ["csrf": web.csrf, "role": "member"])
            #expect(ownerChange.status == 404)
            #expect(try await f.env.store.user(accountId: f.accountId, id: owner.id)?.role == .owner)
            let bad = try await web.request(.post, "/users/\(member.id)/role", form: ["csrf": web.csrf, "role": "owner"])
            #expect(bad.status == 400)
        }
    }

    @Test("Another account's recharge order is not found, not shown", arguments: Backend.available)
    func otherAccount(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let (other, _) = try await f.env.createAccount()
            let (view, _) = try await f.env.engine.recharges.create(accountId: other, amountText: "5.00", channelName: "sandbox",
                                                                    idempotencyKey: "k", actor: "test")
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            #expect(try await web.request(.get, "/recharge/\(view.recharge.id)").status == 404)
            try await web.request(.get, "/overview")
            let pay = try await web.request(.post, "/recharge/\(view.recharge.id)/sandbox-pay", form: ["csrf": web.csrf])
            #expect(pay.status == 404)
            #expect(try await f.env.store.recharge(id: view.recharge.id)?.state == .pending)
        }
    }

    @Test("Error pages keep the real status: HTML for a browser, problem JSON for an API client", arguments: [Backend.sqlite])
    func errorPages(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let web = WebSession(f.client)
            let page = try await web.request(.get, "/no-such-page")
            #expect(page.status == 404)
            #expect(page.headers[.contentType]?.hasPrefix("text/html") == true)
            #expect(page.text.contains("页面不存在") && !page.text.contains("Swift") && !page.text.contains("route_not_found"))
            let api = try await f.client.executeRequest(uri: "/no-such-page", method: .get, headers: [:], body: nil)
            #expect(api.status.code == 404)
            #expect(api.headers[.contentType] == "application/problem+json")
            let english = try await web.request(.get, "/no-such-page", headers: ["Accept-Language": "en-US,en;q=0.9"])
            #expect(english.text.contains("Page not found"))
        }
    }

    @Test("The language switch is remembered; only local paths are redirect targets", arguments: [Backend.sqlite])
    func language(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let web = WebSession(f.client)
            let r = try await web.request(.get, "/lang/en?back=/login")
            #expect(r.status == 303 && r.headers[.location] == "/login")
            #expect(web.cookies["coffer_lang"] == "en")
            #expect(try await web.request(.get, "/login", headers: ["Accept-Language": "zh-CN"]).text.contains("Sign in"))
            let evil = try await web.request(.get, "/lang/zh?back=//evil.example/")
            #expect(evil.headers[.location] == "/")
        }
    }

    @Test("Operator desk: gifts need a reason, adjustments, code batches with CSV export, statement import and the unmatched pool",
          arguments: Backend.available)
    func desk(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            _ = try await f.env.engine.console.createOperator(email: "desk@example.com", name: "Desk", password: "operator password", actor: "test")
            let desk = WebSession(f.client)
            _ = try await desk.signIn("desk@example.com", "operator password", desk: true)
            let search = try await desk.request(.get, "/desk?q=\(f.accountId.suffix(8))")
            #expect(search.status == 200 && search.text.contains(f.accountId))
            #expect(try await desk.request(.get, "/desk?q=%25no-such%25").text.contains(f.accountId) == false)

            try await desk.request(.get, "/desk/accounts/\(f.accountId)")
            let noReason = try await desk.request(.post, "/desk/accounts/\(f.accountId)/gift",
                                                  form: ["csrf": desk.csrf, "idem": desk.field("idem"), "amount": "50.00", "reason": " "])
            #expect(noReason.status == 400)
            #expect(try await f.env.wallet(f.accountId).giftMinor == 0)
            let gift = try await desk.request(.post, "/desk/accounts/\(f.accountId)/gift",
                                              form: ["csrf": desk.csrf, "idem": desk.field("idem"), "amount": "50.00", "reason": "活动赠送"])
            #expect(gift.status == 303)
            let adjust = try await desk.request(.post, "/desk/accounts/\(f.accountId)/adjust",
                                                form: ["csrf": desk.csrf, "idem": "adjust-1", "amount": "10.00", "bucket": "cash", "reason": "对账差额"])
            #expect(adjust.status == 303)
            let w = try await f.env.wallet(f.accountId)
            #expect(w.giftMinor == 5_000 && w.cashMinor == 1_000)

            try await desk.request(.get, "/desk/codes")
            let batch = try await desk.request(.post, "/desk/codes", form: ["csrf": desk.csrf, "idem": desk.field("idem"), "amount": "20.00",
                                                                           "credit": "gift", "count": "3", "validUntil": "2030-12-31"])
            #expect(batch.status == 303)
            let batches = try await f.env.store.codeBatches(limit: 10)
            #expect(batches.count == 1 && batches[0].count == 3)
            let csv = try await desk.request(.get, "/desk/codes/\(batches[0].id)/codes.csv")
            #expect(csv.status == 200 && csv.text.split(separator: "\r\n").count == 4)
            // In the desk's language: Chinese headers and states (the API's file keeps code,amount,credit,…).
            #expect(csv.text.hasPrefix("\u{FEFF}充值码,面额,入账类型,有效期至,状态,使用账号,使用时间\r\n") && csv.text.contains(",未使用,"),
                    "\(csv.text.prefix(120))")
            try await desk.request(.get, "/desk/codes")
            let voided = try await desk.request(.post, "/desk/codes/\(batches[0].id)/void", form: ["csrf": desk.csrf, "reason": "活动取消"])
            #expect(voided.status == 200 && voided.text.contains("已作废 3 个"))
            #expect(try await f.env.store.codes(batchId: batches[0].id).allSatisfy { $0.state == .voided })

            let number = try await f.env.engine.bank.dedicatedAccount(accountId: f.accountId).number
            let statement = """
                bank_serial,booked_on,amount,currency,payer_name,payer_account,payee_account,memo
                D-1,2026-11-23,100.00,CNY,测试科技有限公司,6222000011112222,\(number),云服务费
                D-2,2026-11-23,200.00,CNY,某某公司,6222000011113333,\(number.prefix(15))0000000000,云服务费
                D-3,2026-11-23,1.234,CNY,某某公司,6222000011113333,\(number),云服务费
                """
            try await desk.request(.get, "/desk/statements")
            let imported = try await desk.upload("/desk/statements", fields: ["csrf": desk.csrf],
                                                 file: ("file", "statement.csv", "text/csv", Array(statement.utf8)))
            #expect(imported.status == 200)
            #expect(imported.text.contains("已入账") && imported.text.contains("未匹配") && imported.text.contains("无效行"))
            let forged = try await desk.upload("/desk/statements", fields: ["csrf": "forged"],
                                               file: ("file", "s.csv", "text/csv", Array(statement.utf8)))
            #expect(forged.status == 403)
            let pool = try await f.env.store.statementLines(accountId: nil, states: [.unmatched], limit: 10)
            #expect(pool.map(\.bankSerial) == ["D-2"])
            try await desk.request(.get, "/desk/statements")
            let assign = try await desk.request(.post, "/desk/lines/\(pool[0].id)/assign", form: ["csrf": desk.csrf, "accountId": f.accountId])
            #expect(assign.status == 303)
            #expect(try await f.env.wallet(f.accountId).cashMinor == 1_000 + 10_000 + 20_000)
        }
    }

    @Test("Recharge page with WeChat Pay (against the wechatpayv3 gateway): limits before paying, the QR image, the wait, the credit",
          .enabled(if: Interop.python != nil), arguments: Backend.available)
    func qrOrderPage(backend: Backend) async throws {
        try await WeChatPayEndToEndTests.withFakeGateway { channels, gateway in
        try await ConsoleFixture.run(backend, channels: channels) { f in
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            let form = try await web.request(.get, "/recharge")
            #expect(form.text.contains("单笔上限 ¥50,000.00") && form.text.contains("每日上限 ¥50,000.00"))
            let tooMuch = try await web.request(.post, "/recharge", form: ["csrf": web.csrf, "idem": web.field("idem"), "amount": "50000.01",
                                                                         "channel": "wechatpay"])
            #expect(tooMuch.status == 422 && tooMuch.text.contains("限额"))
            let created = try await web.request(.post, "/recharge", form: ["csrf": web.csrf, "idem": web.field("idem"), "amount": "88.00",
                                                                         "channel": "wechatpay"])
            let location = try #require(created.headers[.location])
            let page = try await web.request(.get, location)
            #expect(page.headers[HTTPField.Name("Refresh")!] == "3")
            #expect(page.text.contains("¥88.00") && page.text.contains("待支付"))
            if QRCode.available {
                #expect(page.text.contains("\(location)/qr.svg"))
                let svg = try await web.request(.get, location + "/qr.svg")
                #expect(svg.status == 200 && svg.headers[.contentType] == "image/svg+xml" && svg.text.hasPrefix("<svg"))
            } else {
                #expect(page.text.contains("weixin://wxpay/bizpayurl"))
            }
            // "I have paid" before paying: WeChat Pay says NOTPAY, the order waits.
            let sync = try await web.request(.post, location + "/sync", form: ["csrf": web.csrf])
            #expect(sync.status == 303)
            #expect(try await web.request(.get, location).text.contains("待支付"))
            // The customer pays; the notification is lost; "I have paid" asks WeChat Pay and the money is credited.
            let rechargeId = String(location.split(separator: "/").last!)
            _ = try await Interop.post(gateway + "/fake/pay", ["out_trade_no": rechargeId, "timestamp": f.env.clock.nowMicros() / 1_000_000])
            try await web.request(.get, location)
            _ = try await web.request(.post, location + "/sync", form: ["csrf": web.csrf])
            let paid = try await web.request(.get, location)
            #expect(paid.text.contains("已到账") && paid.headers[HTTPField.Name("Refresh")!] == nil)
            #expect(try await f.env.wallet(f.accountId).cashMinor == 8_800)
        }
        }
    }

    @Test("R7 in the console: a refused payment says why and that it goes back; the desk lists returns and retries open ones",
          arguments: Backend.available)
    func r7RefusedInConsole(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            var last: RechargeRecord?
            for i in 0...5 {
                let r = try await f.env.engine.recharges.create(accountId: f.accountId, amountText: "10.00", channelName: "sandbox",
                                                                idempotencyKey: "r7-\(i)", actor: "t").0.recharge
                let (headers, body) = try f.env.sandbox.signedNotification(rechargeId: r.id, tradeNo: "R7-\(i)", amountMinor: r.totalMinor,
                                                                           payer: "payer-\(i)", nowMicros: f.env.clock.nowMicros())
                _ = try await f.env.engine.recharges.handleNotification(channelName: "sandbox", headers: headers, body: body)
                last = r
            }
            let refusedId = try #require(last?.id)
            #expect(try await f.env.engine.recharges.refunds.processDue() == 1)
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            let page = try await web.request(.get, "/recharge/\(refusedId)")
            #expect(page.text.contains("未入账，原路退回") && page.text.contains("refused-hint"), "\(page.text)")
            #expect(page.headers[HTTPField.Name("Refresh")!] == nil)

            _ = try await f.env.engine.console.createOperator(email: "desk-r7@example.com", name: "Desk", password: "operator password", actor: "test")
            let desk = WebSession(f.client)
            _ = try await desk.signIn("desk-r7@example.com", "operator password", desk: true)
            // The sandbox returned it at once: nothing open, but the full list shows it returned.
            #expect(try await desk.request(.get, "/desk/refunds").text.contains("没有需要关注的退款"))
            let all = try await desk.request(.get, "/desk/refunds?all=1")
            #expect(all.text.contains(refusedId) && all.text.contains("已退回") && !all.text.contains("/retry"))
            // A customer cannot open the desk page.
            #expect(try await web.request(.get, "/desk/refunds").status == 403)

            // The database returns one refused payment once: a second return of the same order is refused.
            var twice = try #require(try await f.env.store.channelRefunds(accountId: f.accountId, states: [], limit: 1).first)
            twice.id = "crf_console_twice"
            let second = twice
            await #expect(throws: (any Error).self) { try await f.env.store.transaction { tx in try await tx.insertChannelRefund(second) } }
            // An open refund (as if the channel had not answered) is listed with a retry button; retrying sends it now.
            let open = ChannelRefundRecord(id: "crf_console_open", accountId: f.accountId, rechargeId: "rch_console_other", channel: "sandbox",
                                           channelTradeNo: "R7-5", purpose: .payerLimit, amountMinor: 1_000, orderTotalMinor: 1_000,
                                           state: .processing, attempts: 3, nextAttemptAtMicros: f.env.clock.nowMicros() + 3_600_000_000,
                                           createdAtMicros: f.env.clock.nowMicros())
            try await f.env.store.transaction { tx in try await tx.insertChannelRefund(open) }
            let listed = try await desk.request(.get, "/desk/refunds")
            #expect(listed.text.contains("/desk/refunds/crf_console_open/retry") && listed.text.contains("处理中"))
            #expect(try await desk.request(.post, "/desk/refunds/crf_console_open/retry", form: ["csrf": "wrong"]).status == 403)
            #expect(try await f.env.store.channelRefund(id: "crf_console_open")?.state == .processing)
            let retried = try await desk.request(.post, "/desk/refunds/crf_console_open/retry", form: ["csrf": desk.csrf])
            #expect(retried.status == 303)
            #expect(try await f.env.store.channelRefund(id: "crf_console_open")?.state == .succeeded)
        }
    }

    @Test("T1 in the console: a remittance with its receipt, rejected with a reason, corrected and resubmitted", arguments: Backend.available)
    func remittanceResubmission(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            try await web.request(.get, "/remittance")
            let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 0, count: 64)
            var fields = ["csrf": web.csrf, "idem": web.field("idem"), "payerName": "测试科技有限公司", "payerAccount": "6222000011112222",
                          "payerBank": "工商银行", "amount": "500.00", "remittedOn": "2026-11-20", "bankSerial": "RS-\(f.accountId.suffix(6))"]
            let first = try await web.upload("/remittance", fields: fields, file: ("receipt", "r.png", "image/png", png))
            #expect(first.status == 303)
            let submitted = try #require(try await f.env.store.remittances(accountId: f.accountId, state: nil, limit: 5).first)
            _ = try await f.env.engine.bank.reject(remittanceId: submitted.id, reason: "金额与凭证不符", actor: "operator:test")

            let page = try await web.request(.get, "/remittance")
            #expect(page.text.contains("金额与凭证不符") && page.text.contains("/remittance?resubmit=\(submitted.id)"))
            let form = try await web.request(.get, "/remittance?resubmit=\(submitted.id)")
            #expect(form.text.contains("name=\"resubmissionOf\" value=\"\(submitted.id)\"") && form.text.contains("value=\"500.00\""))
            fields["csrf"] = web.csrf
            fields["idem"] = web.field("idem")
            fields["amount"] = "5000.00"
            fields["resubmissionOf"] = submitted.id
            let again = try await web.upload("/remittance", fields: fields, file: ("receipt", "r2.png", "image/png", png + [1]))
            #expect(again.status == 303)
            let all = try await f.env.store.remittances(accountId: f.accountId, state: nil, limit: 5)
            #expect(all.count == 2 && all[0].resubmissionOf == submitted.id && all[0].amountMinor == 500_000 && all[0].state == .pendingReview)
            // Someone else's rejected remittance is never pre-filled, nor is an unknown id.
            let (other, _) = try await f.env.createAccount()
            let theirs = try await f.env.engine.bank.submitRemittance(
                accountId: other, RemittanceInput(payerName: "别人公司", payerAccount: "6222999988887777", payerBank: "建设银行",
                                                  amountText: "9.00", remittedOn: "2026-11-20", bankSerial: nil, receipt: png,
                                                  resubmissionOf: nil),
                idempotencyKey: "theirs", actor: "test").0
            _ = try await f.env.engine.bank.reject(remittanceId: theirs.id, reason: "x", actor: "operator:test")
            for id in [theirs.id, "rmt_nope"] {
                let p = try await web.request(.get, "/remittance?resubmit=\(id)")
                #expect(p.status == 200 && !p.text.contains("resubmissionOf") && !p.text.contains("别人公司"))
            }
        }
    }

    @Test("Accept-Language negotiation", arguments: [
        (nil, Language.zh), ("en-US,en;q=0.9", .en), ("zh-CN,zh;q=0.9,en;q=0.8", .zh), ("fr-FR,en;q=0.5,zh;q=0.4", .en),
        ("de-DE", .zh), ("en;q=0.2,zh-TW;q=0.8", .zh), ("EN-gb", .en), ("en;q=0", .zh),
    ] as [(String?, Language)])
    func negotiate(header: String?, expected: Language) {
        #expect(Language.negotiate(acceptLanguage: header) == expected)
    }

    @Test("Money is shown exactly, grouped by thousands", arguments: [
        (0, "¥0.00"), (1, "¥0.01"), (100, "¥1.00"), (123_450, "¥1,234.50"), (-123_450, "-¥1,234.50"),
        (100_000_000, "¥1,000,000.00"), (99_999, "¥999.99"), (900_000_000_000_000, "¥9,000,000,000,000.00"),
    ] as [(Int64, String)])
    func money(minor: Int64, text: String) {
        #expect(Display.money(minor) == text)
    }

    @Test("Redirect targets stay on this site", arguments: [
        ("/overview", "/overview"), ("/transactions?type=recharge", "/transactions?type=recharge"), ("//evil.example", "/"),
        ("https://evil.example", "/"), ("/\\evil.example", "/"), ("", "/"), ("/ok\r\nSet-Cookie: x=1", "/"),
    ])
    func localPath(target: String, expected: String) {
        #expect(Cookies.localPath(target) == expected)
    }

    @Test("Message catalogs: both languages have the same keys, and every label a template or page uses exists")
    func catalogs() throws {
        let c = try Catalogs.load()
        let zh = c.table(.zh), en = c.table(.en)
        #expect(Set(zh.keys) == Set(en.keys))
        var used = Set<String>()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Sources/CofferWeb")
        let files = FileManager.default.enumerator(atPath: root.path)!.compactMap { $0 as? String }
        let pattern = try Regex(#"\{\{t\.([a-z0-9_]+)\}\}|t\(v, "([a-z0-9_]+)""#)
        for file in files where file.hasSuffix(".mustache") || file.hasSuffix(".swift") {
            let text = try String(contentsOf: root.appendingPathComponent(file), encoding: .utf8)
            for m in text.matches(of: pattern) {
                if let k = m.output[1].substring ?? m.output[2].substring { used.insert(String(k)) }
            }
        }
        for t in TransactionType.allCases { used.insert("type_" + t.rawValue) }
        for c in CouponCondition.allCases { used.insert("coupon_condition_" + c.rawValue) }
        for s in OrderState.allCases { used.insert("order_state_" + s.rawValue) }
        for s in PrepaidTermState.allCases { used.insert("term_state_" + s.rawValue) }
        for t in OrderType.allCases { used.insert("order_type_" + t.rawValue) }
        for k in CouponKind.allCases { used.insert("coupon_kind_" + k.rawValue) }
        for s in CouponState.allCases { used.insert("coupon_state_" + s.rawValue) }
        for s in WebhookDeliveryState.allCases { used.insert("webhook_delivery_" + s.rawValue) }
        for s in ["pending", "paid", "expired"] { used.insert("recharge_state_" + s) }
        for s in ["pending_review", "approved", "rejected"] { used.insert("remittance_state_" + s) }
        for s in StatementLineState.allCases { used.insert("line_state_" + s.rawValue) }
        for r in UserRole.allCases { used.insert("role_" + r.rawValue) }
        for p in StatisticPeriod.allCases { used.insert("bill_period_" + p.rawValue) }
        for b in ["product", "project", "region", "tag"] { used.insert("bill_by_" + b) }
        for s in ["running", "finished"] { used.insert("settlement_state_" + s) }
        for c in AuditRoutes.csvColumns { used.insert("audit_csv_" + c) }
        for c in Exports.csvColumns { used.insert("csv_txn_" + c) }
        for c in BillExports.columns { used.insert("csv_bill_" + c) }
        for c in BillExports.codes { used.insert("csv_bill_code_" + c) }
        for c in Exports.codeColumns { used.insert("csv_code_" + c) }
        for j in ScheduledJob.allCases { used.insert("job_name_" + j.rawValue) }
        for c in ["cash", "gift", "unused", "redeemed", "voided"] { used.insert("csv_code_value_" + c) }
        for c in ChannelCatalog.entries(enabled: []) { used.insert("channel_name_" + c.name) }
        for c in ["wechatpay", "alipay", "sandbox"] { used.insert("channel_name_" + c) }
        for e in ErrorCode.allCases { used.insert("error_" + e.rawValue) }
        for k in ["forbidden", "not_found", "unauthorized", "too_many", "internal", "bad_request"] {
            used.insert("error_page_" + k)
            used.insert("error_page_" + k + "_advice")
        }
        let missing = used.filter { !$0.hasSuffix("_") && zh[$0] == nil }.sorted()
        #expect(missing.isEmpty, "missing catalog keys: \(missing)")
        #expect(used.count > 150)
    }

    @Test("Errors read from the catalogs in the page's language, with the error's own amounts filled in")
    func errorMessages() throws {
        let c = try Catalogs.load()
        let error = CofferError.insufficientBalance(shortfallMinor: 1_230)
        #expect(c.text(.zh, "error_" + error.code.rawValue, error.parameters) == "可用余额不足：请至少充值 12.30 后重试。")
        #expect(c.text(.en, "error_" + error.code.rawValue, error.parameters)
                == "The available balance is not enough: recharge at least 12.30 and try again.")
        // No catalog text names a placeholder its error never fills.
        let placeholder = try Regex(#"\{([a-z]+)\}"#)
        for code in ErrorCode.allCases {
            for lang in Language.allCases {
                let text = c.table(lang)["error_" + code.rawValue] ?? ""
                let names = Set(text.matches(of: placeholder).compactMap { $0.output[1].substring.map(String.init) })
                #expect(names.isSubset(of: ["min", "max", "shortfall", "state", "frozen", "refundable", "field", "limit", "coupon"]),
                        "\(code) \(lang): \(names)")
            }
        }
    }

    /// Every kind of site message Coffer writes, with the parameters its writer gives it.
    static let messageKinds: [String: Set<String>] = [
        "recharge_credited": ["amount", "recharge"], "remittance_credited": ["amount", "date"],
        "statement_line_credited": ["amount", "payer", "serial"], "remittance_rejected": ["date", "amount", "reason"],
        "recharge_refused": ["recharge", "amount", "payers"], "channel_refund_succeeded": ["recharge", "amount", "channel", "refund"],
        "channel_refund_failed": ["recharge", "amount"], "remittance_to_confirm": ["payer", "amount", "serial"],
        "remittance_to_sign": ["payer", "amount", "serial"], "account_in_arrears": ["balance", "shortfall"],
        "resource_expiring": ["resource", "expires", "days"], "resource_expired": ["resource", "expires", "days"],
        "resource_renewal_failed": ["resource", "expires", "shortfall"], "resource_suspended": ["resource", "expires"],
        "resource_reclaimed": ["resource", "expires"],
    ]

    @Test("Site messages read from the catalogs in both languages; no text names a parameter its writer does not give")
    func messageCatalogs() throws {
        let c = try Catalogs.load()
        let placeholder = try Regex(#"\{([a-z]+)\}"#)
        for (kind, parameters) in Self.messageKinds {
            for lang in Language.allCases {
                for part in ["title", "body"] {
                    let text = try #require(c.table(lang)["message_\(kind)_\(part)"], "message_\(kind)_\(part) in \(lang)")
                    let names = Set(text.matches(of: placeholder).compactMap { $0.output[1].substring.map(String.init) })
                    #expect(names.isSubset(of: parameters), "\(kind) \(lang): \(names)")
                }
            }
        }
        for kind in LedgerEvent.Kind.allCases where kind.isSiteMessage { #expect(Self.messageKinds[kind.rawValue] != nil, "\(kind)") }
        // Amounts are stored plain and read grouped, like on the pages; ids are left alone. E-mail reads the same text.
        let message = SiteMessageRecord(id: "msg_1", accountId: "acc_1", kind: "recharge_credited", title: "t", body: "b", createdAtMicros: 0,
                                        parameters: ["amount": "1234567.50", "recharge": "rch_1000000"])
        #expect(c.messageText(message, .zh).body == "充值 ¥1,234,567.50 已到账（订单 rch_1000000）。")
        #expect(try CatalogNoticeRenderer().render(message, language: .en).body == "Your recharge of ¥1,234,567.50 has been credited (order rch_1000000).")
    }

    @Test("QR codes come from libqrencode: a WeChat code_url encodes to a square with the three finder patterns")
    func qr() throws {
        guard QRCode.available else {
            #expect(ProcessInfo.processInfo.environment["COFFER_REQUIRE_QRENCODE"] != "1", "libqrencode4 is not installed")
            return
        }
        let m = try #require(QRCode.matrix("weixin://wxpay/bizpayurl?pr=abc123XYZ"))
        #expect(m.count >= 21 && (m.count - 17) % 4 == 0 && m.allSatisfy { $0.count == m.count })
        // A finder pattern: a dark 7×7 ring with a dark 3×3 centre, at three corners.
        for (x0, y0) in [(0, 0), (m.count - 7, 0), (0, m.count - 7)] {
            for i in 0..<7 {
                #expect(m[y0][x0 + i] && m[y0 + 6][x0 + i] && m[y0 + i][x0] && m[y0 + i][x0 + 6])
            }
            #expect(!m[y0 + 1][x0 + 1] && m[y0 + 3][x0 + 3])
        }
        let svg = try #require(QRCode.svg("https://qr.alipay.com/bax01234"))
        #expect(svg.hasPrefix("<svg") && svg.contains("<path"))
    }
}

/// Z3 in the console: the desk's audit log (filters, a CSV in the page's language) and the owner's own trail.
@Suite("Audit pages in the console")
struct AuditConsoleTests {
    @Test("Z3 a failed and a good sign-in are on the owner's audit page; the desk filters the log by account and downloads it with headers in its language",
          arguments: Backend.available)
    func auditPages(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let owner = WebSession(f.client)
            _ = try await owner.signIn(f.ownerEmail, "not the password")
            _ = try await owner.signIn(f.ownerEmail, "correct horse battery")
            let own = try await owner.request(.get, "/audit")
            #expect(own.status == 200 && own.text.contains("console.sign_in_failed") && own.text.contains("console.sign_in"))
            #expect(!own.text.contains("not the password"))
            // The owner revokes an API key from the users page; the signed-out page says so.
            let users = try await owner.request(.get, "/users")
            let ownerId = try #require(try await f.env.store.users(accountId: f.accountId).first?.id)
            _ = try await owner.request(.post, "/keys", form: ["csrf": owner.csrf, "idem": "k-1", "name": "CI", "userId": ownerId])
            let key = try #require(try await f.env.store.apiKeys(accountId: f.accountId).first)
            #expect(users.status == 200)
            let revoked = try await owner.request(.post, "/keys/\(key.id)/revoke", form: ["csrf": owner.csrf])
            #expect(revoked.status == 303 && revoked.headers[.location] == "/users?notice=notice_key_revoked")
            #expect(try await f.env.store.apiKeys(accountId: f.accountId).isEmpty)
            // The owner chooses the language of the account's e-mail notices.
            _ = try await owner.request(.get, "/users")
            let saved = try await owner.request(.post, "/account/language", form: ["csrf": owner.csrf, "language": "en"])
            #expect(saved.status == 303 && saved.headers[.location] == "/users?notice=notice_language_saved")
            #expect(try await f.env.store.account(id: f.accountId)?.language == .en)
            let page = try await owner.request(.get, "/users?notice=notice_language_saved")
            #expect(page.text.contains("通知语言已保存") && page.text.contains(#"<option value="en" selected>"#))
            #expect(try await owner.request(.post, "/account/language", form: ["csrf": owner.csrf, "language": "fr"]).status == 400)
            let out = try await owner.request(.post, "/logout", form: ["csrf": owner.csrf])
            #expect(out.headers[.location] == "/login?notice=notice_signed_out")

            _ = try await f.env.engine.console.createOperator(email: "auditor@example.com", name: "Auditor", password: "operator password", actor: "test")
            let desk = WebSession(f.client)
            _ = try await desk.signIn("auditor@example.com", "operator password", desk: true)
            try await desk.request(.get, "/desk/accounts/\(f.accountId)")
            let gift = try await desk.request(.post, "/desk/accounts/\(f.accountId)/gift",
                                              form: ["csrf": desk.csrf, "idem": desk.field("idem"), "amount": "8.00", "reason": "审计测试"])
            #expect(gift.status == 303)
            let log = try await desk.request(.get, "/desk/audit?account=\(f.accountId)&action=wallet.")
            #expect(log.status == 200 && log.text.contains("wallet.gift_grant") && log.text.contains("审计测试") && !log.text.contains("console.sign_in"))
            // Before and after: only what changed, as a person reads it.
            #expect(log.text.contains(#"<span class="hint change">gift 0.00 → 8.00</span>"#), "\(log.text.suffix(1500))")
            let csv = try await desk.request(.get, "/desk/audit.csv?account=\(f.accountId)")
            #expect(csv.status == 200 && csv.text.hasPrefix("\u{FEFF}序号,时间,账户,操作人,操作,内容") && csv.text.contains("wallet.gift_grant"))
            #expect(try await desk.request(.get, "/desk/audit?cursor=abc").status == 400)
            // N1: the desk lists the scheduled jobs' runs, named in its language.
            _ = try await f.env.engine.jobs.runOnce()
            let jobs = try await desk.request(.get, "/desk/jobs")
            #expect(jobs.status == 200 && jobs.text.contains("后付费结算") && jobs.text.contains(f.env.engine.jobs.holder))
            #expect(try await owner.request(.get, "/desk/jobs").status != 200)
            // A customer cannot open the desk's log.
            #expect(try await owner.request(.get, "/desk/audit").status != 200)
        }
    }
}

@Suite("Desk review flags")
struct DeskReviewFlagTests {
    @Test("T1 two reports with the same payer, amount and transfer date are flagged as possibly one transfer reported twice; a different date is not",
          arguments: [Backend.sqlite])
    func duplicates(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 0, count: 64)
            func submit(_ key: String, on day: String) async throws -> RemittanceRecord {
                try await f.env.engine.bank.submitRemittance(
                    accountId: f.accountId, RemittanceInput(payerName: "测试科技有限公司", payerAccount: "6222000011112222", payerBank: "工商银行",
                                                            amountText: "300.00", remittedOn: day, bankSerial: nil, receipt: png + Array(key.utf8),
                                                            resubmissionOf: nil),
                    idempotencyKey: key, actor: "test").0
            }
            let a = try await submit("a", on: "2026-11-20"), b = try await submit("b", on: "2026-11-20"), c = try await submit("c", on: "2026-11-21")
            _ = try await f.env.engine.console.createOperator(email: "review@example.com", name: "Review", password: "operator password", actor: "test")
            let desk = WebSession(f.client)
            _ = try await desk.signIn("review@example.com", "operator password", desk: true)
            let page = try await desk.request(.get, "/desk/remittances")
            #expect(page.status == 200)
            #expect(page.text.contains("汇款 \(b.id) 同样待审核") && page.text.contains("汇款 \(a.id) 同样待审核"))
            #expect(!page.text.contains("汇款 \(c.id) "))
        }
    }
}
