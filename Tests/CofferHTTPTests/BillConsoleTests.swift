import CofferCore
import CofferServices
import CofferTestSupport
import Foundation
import Testing

/// The console's 账单 / Bills section and the desk's settlement page (B2–B6) on both databases.
@Suite("Console: bills, projects and settlement runs")
struct BillConsoleTests {
    /// A product, a resource of the fixture's account and two hours of usage, settled.
    static func seed(_ f: ConsoleFixture) async throws -> String {
        let engine = f.env.engine
        _ = try await engine.products.put(id: "cvm", ProductInput(nameZh: "云服务器", nameEn: "Cloud server", settlementCycle: "hourly",
                                                                taxCategory: "cloud_service", plans: []), actor: "test")
        _ = try await engine.resources.putResource(accountId: f.accountId, id: "ins-1", .init(productId: "cvm", name: "web-1", region: "ap-shanghai",
                                                                                             projectId: nil, tags: ["env": "prod"]))
        let now = f.env.clock.nowMicros(), hour: Int64 = 3_600_000_000
        let records = (1...2).map { h in
            UsageRecordInput(id: "r-\(h)", accountId: f.accountId, resourceId: "ins-1", component: "cpu", quantity: "2", unit: "core-hour",
                             unitPrice: "0.08", listUnitPrice: "0.1", periodStart: RFC3339.format(micros: now - now % hour - Int64(h) * hour),
                             periodEnd: RFC3339.format(micros: now - now % hour - Int64(h - 1) * hour))
        }
        _ = try await engine.usage.ingest(records)
        _ = try await engine.settlement.run(untilMicros: now, idempotencyKey: "seed", actor: "test")
        return SettlementCalendar.month(of: now, timeZone: "Asia/Shanghai")
    }

    @Test("B3 B4 B6 the bill pages show the month at four levels with CSV; the statistic period switches once, after a confirmation",
          arguments: Backend.available)
    func billPages(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            let month = try await Self.seed(f)
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            let overview = try await web.request(.get, "/bills")
            #expect(overview.status == 200 && overview.text.contains("¥0.32") && overview.text.contains("云服务器"), "\(overview.text.prefix(300))")
            #expect(overview.text.contains("id=\"bill-chart\"") && overview.text.contains("月度计费精度差异"))
            #expect(try await web.request(.get, "/bills/summary?month=\(month)&by=tag&tagKey=env").text.contains("prod"))
            #expect(try await web.request(.get, "/bills/summary?month=\(month)&by=tag").status == 400)
            #expect(try await web.request(.get, "/bills/resources?month=\(month)").text.contains("ins-1"))
            let lines = try await web.request(.get, "/bills/lines?month=\(month)&resource=ins-1")
            #expect(lines.text.contains("¥0.16") && lines.text.contains("0.8"), "\(lines.text.suffix(2000))")
            #expect(try await web.request(.get, "/bills/lines?month=\(month)&cursor=zz").status == 400)
            #expect(try await web.request(.get, "/bills?month=2026-13").status == 400)
            // The console's files speak the page's language: Chinese headers and codes here, English after the switch.
            let firstColumns = ["/bills.csv": ("产品编号,产品名称,应付金额", "Product ID,Product,Amount due"),
                                "/bills/summary.csv?by=project": ("项目,应付金额", "Project,Amount due"),
                                "/bills/resources.csv": ("资源编号,资源名称", "Resource ID,Resource"),
                                "/bills/lines.csv": ("结算编号,资源编号", "Settlement ID,Resource ID")]
            for english in [false, true] {
                if english { _ = try await web.request(.get, "/lang/en?back=/bills") }
                for (path, header) in firstColumns {
                    let csv = try await web.request(.get, path + (path.contains("?") ? "&" : "?") + "month=\(month)")
                    #expect(csv.status == 200 && csv.text.hasPrefix("\u{FEFF}" + (english ? header.1 : header.0))
                            && csv.headers[.contentType]?.hasPrefix("text/csv") == true, "\(path): \(csv.text.prefix(80))")
                    if path == "/bills/lines.csv" {
                        #expect(csv.text.contains(english ? ",Pay-as-you-go," : ",后付费,") && !csv.text.contains(",postpaid,"))
                    }
                }
            }
            _ = try await web.request(.get, "/lang/zh?back=/bills")
            try await web.request(.get, "/bills")
            let unconfirmed = try await web.request(.post, "/bills/settings", form: ["csrf": web.csrf])
            #expect(unconfirmed.headers[.location] == "/bills?notice=notice_period_confirm")
            #expect(try await f.env.engine.bills.settings(accountId: f.accountId) == .standard)
            #expect(try await web.request(.post, "/bills/settings", form: ["csrf": "forged", "confirm": "yes"]).status == 403)
            let switched = try await web.request(.post, "/bills/settings", form: ["csrf": web.csrf, "confirm": "yes"])
            #expect(switched.headers[.location] == "/bills?notice=notice_period_switched")
            #expect(try await f.env.engine.bills.settings(accountId: f.accountId).period == .billing)
            #expect(try await web.request(.get, "/bills").text.contains("id=\"current-period\">计费周期"))

            let member = WebSession(f.client)
            _ = try await member.signIn(try await f.user(.member), "correct horse battery")
            for path in ["/bills", "/bills/lines", "/bills.csv", "/projects"] { #expect(try await member.request(.get, path).status == 403, "\(path)") }
        }
    }

    @Test("B5 projects are created, renamed and resources moved from the console; later lines only", arguments: Backend.available)
    func projects(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            _ = try await Self.seed(f)
            let web = WebSession(f.client)
            _ = try await web.signIn(f.ownerEmail, "correct horse battery")
            try await web.request(.get, "/projects")
            let created = try await web.request(.post, "/projects", form: ["csrf": web.csrf, "idem": web.field("idem"), "name": "网站"])
            #expect(created.headers[.location] == "/projects?notice=notice_project_created")
            let project = try #require(try await f.env.store.projects(accountId: f.accountId).first)
            try await web.request(.get, "/projects")
            #expect(try await web.request(.post, "/resources/ins-1/project", form: ["csrf": web.csrf, "projectId": project.id]).status == 303)
            #expect(try await f.env.store.resource(accountId: f.accountId, id: "ins-1")?.projectId == project.id)
            #expect(try await web.request(.post, "/projects/\(project.id)/rename", form: ["csrf": web.csrf, "name": "官网"]).status == 303)
            let page = try await web.request(.get, "/projects")
            #expect(page.text.contains("官网"))
            let taken = try await web.request(.post, "/projects", form: ["csrf": web.csrf, "idem": web.field("idem"), "name": "官网"])
            #expect(taken.status == 409 && taken.text.contains("已有同名项目"))
            #expect(try await web.request(.post, "/resources/nope/project", form: ["csrf": web.csrf, "projectId": ""]).status == 404)
        }
    }

    @Test("B2 the desk lists settlement runs and runs one; customers cannot", arguments: Backend.available)
    func deskSettlements(backend: Backend) async throws {
        try await ConsoleFixture.run(backend) { f in
            _ = try await Self.seed(f)
            let op = try await f.env.engine.console.createOperator(email: "op@example.com", name: "Op", password: "operator password", actor: "test")
            let desk = WebSession(f.client)
            _ = try await desk.signIn(op.email, "operator password", desk: true)
            let page = try await desk.request(.get, "/desk/settlements")
            #expect(page.status == 200 && page.text.contains("id=\"runs\""))
            let run = try await desk.request(.post, "/desk/settlements", form: ["csrf": desk.csrf, "idem": desk.field("idem")])
            #expect(run.headers[.location] == "/desk/settlements?notice=notice_settlement_run")
            #expect(try await f.env.store.settlementRuns(limit: 10).count == 2)
            // A compensation from the account's page: the cycle picked from this month's deductions.
            let account = try await desk.request(.get, "/desk/accounts/\(f.accountId)")
            let settlement = try #require(account.text.range(of: #"<option value="stl_"#).map { String(account.text[account.text.index($0.upperBound, offsetBy: -4)...].prefix { $0 != "\"" }) })
            let posted = try await desk.request(.post, "/desk/accounts/\(f.accountId)/compensate",
                                                form: ["csrf": desk.csrf, "idem": desk.field("idem"), "settlementId": settlement, "amount": "0.10", "reason": "故障补偿"])
            #expect(posted.headers[.location] == "/desk/accounts/\(f.accountId)?notice=notice_compensated", "\(posted.text.prefix(500))")
            #expect(try await desk.request(.get, "/desk/accounts/\(f.accountId)").text.contains("故障补偿"))
            let tooMuch = try await desk.request(.post, "/desk/accounts/\(f.accountId)/compensate",
                                                 form: ["csrf": desk.csrf, "idem": "other", "settlementId": settlement, "amount": "5.00", "reason": "x"])
            #expect(tooMuch.status == 422)
            let customer = WebSession(f.client)
            _ = try await customer.signIn(f.ownerEmail, "correct horse battery")
            #expect(try await customer.request(.get, "/desk/settlements").status == 403)
            #expect(try await customer.request(.post, "/desk/accounts/\(f.accountId)/compensate", form: ["csrf": customer.csrf]).status == 403)
        }
    }
}
