import CofferCore
import CofferServices
import CofferTestSupport
import CompressNIO
import Foundation
import HTTPTypes
import NIOCore
import Testing

/// The postpaid billing API end to end: resources, usage (JSON and gzip), a settlement run, the four bill levels with CSV,
/// the statistic period and the cost estimate, on both databases.
@Suite("Billing API on SQLite and PostgreSQL")
struct BillingAPITests {
    static func usage(_ records: [String]) -> String { #"{"records":["# + records.joined(separator: ",") + "]}" }

    static func record(_ id: String, _ account: String, start: Int64, quantity: String = "2", price: String = "0.5",
                       list: String? = nil, resource: String = "ins-api") -> String {
        let end = start + 3_600_000_000
        return #"{"id":"\#(id)","accountId":"\#(account)","resourceId":"\#(resource)","component":"cpu","quantity":"\#(quantity)","unit":"core-hour","unitPrice":"\#(price)","# +
            (list.map { #""listUnitPrice":"\#($0)","# } ?? "") +
            #""periodStart":"\#(RFC3339.format(micros: start))","periodEnd":"\#(RFC3339.format(micros: end))","region":"ap-shanghai"}"#
    }

    @Test("B1 B2 B3 B4 B6 report usage, settle it, read every bill level in JSON and CSV", arguments: Backend.available)
    func flow(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId, p = api.platformKey
            #expect(try await api.call(.put, "/v1/operator/products/cvm", key: p,
                                       body: #"{"name":{"zh":"云服务器","en":"Cloud server"},"settlementCycle":"hourly","taxCategory":"cloud_service"}"#).status == 201)
            let project = try await api.post("/v1/accounts/\(a)/projects", key: api.financeKey, #"{"name":"网站"}"#)
            #expect(project.status == 201)
            let projectId = try #require(project.string("id"))
            let put = try await api.call(.put, "/v1/accounts/\(a)/resources/ins-api", key: p,
                                         body: #"{"productId":"cvm","name":"web","region":"ap-shanghai","projectId":"\#(projectId)","tags":{"env":"prod"}}"#)
            #expect(put.status == 201 && put.string("projectId") == projectId)
            #expect(try await api.call(.put, "/v1/accounts/\(a)/resources/ins-api", key: api.ownerKey, body: "{}").status == 403)
            #expect(try await api.call(.put, "/v1/accounts/\(a)/resources/ins-x", key: p, body: #"{"productId":"nope","name":"x"}"#).code == "product_not_found")
            _ = try await api.post("/v1/accounts/\(a)/adjustments", key: p, #"{"amount":"100.00","bucket":"cash","reason":"funding"}"#)

            let now = api.env.clock.nowMicros()
            let hour = now - now % 3_600_000_000 - 2 * 3_600_000_000
            let body = Self.usage([Self.record("u-1", a, start: hour, list: "0.8"), Self.record("u-1", a, start: hour, list: "0.8"),
                                   Self.record("u-2", a, start: hour, quantity: "1.123456789"),
                                   Self.record("u-3", a, start: hour, resource: "ins-nope")])
            let ingested = try await api.call(.post, "/v1/usage-records", key: p, body: body)
            #expect(ingested.status == 200, "\(ingested.text)")
            let results = try #require(ingested.json["results"] as? [[String: Any]])
            #expect(results.map { $0["status"] as? String } == ["accepted", "duplicate", "refused", "refused"])
            #expect(results.map { $0["code"] as? String } == [nil, nil, "invalid_field", "resource_not_found"])
            #expect(results.map { $0["index"] as? Int } == [0, 1, 2, 3])
            // Floats for quantities are not records: the whole request is refused and names the field.
            let floats = try await api.call(.post, "/v1/usage-records", key: p,
                                            body: Self.usage([Self.record("u-9", a, start: hour)]).replacingOccurrences(of: #""quantity":"2""#, with: #""quantity":2.0"#))
            #expect(floats.status == 400 && floats.code == "invalid_field")
            // gzip bodies.
            var plain = ByteBuffer(string: Self.usage([Self.record("u-4", a, start: hour, quantity: "1", list: "0.8")]))
            let gz = try plain.compress(with: .gzip())
            let gzipped = try await api.client.executeRequest(uri: "/v1/usage-records", method: .post,
                                                              headers: [.authorization: "Bearer \(p)", .contentType: "application/json",
                                                                        .contentEncoding: "gzip"], body: gz)
            #expect(gzipped.status == .ok, "\(String(buffer: gzipped.body))")
            #expect(String(buffer: gzipped.body).contains(#""accepted":1"#))

            let future = RFC3339.format(micros: now + 3_600_000_000)
            let tooLate = try await api.call(.post, "/v1/operator/settlement-runs", key: p, idempotencyKey: "run-future", body: #"{"until":"\#(future)"}"#)
            #expect(tooLate.status == 400 && tooLate.code == "invalid_field")
            let until = RFC3339.format(micros: now)
            let run = try await api.call(.post, "/v1/operator/settlement-runs", key: p, idempotencyKey: "run-1", body: #"{"until":"\#(until)"}"#)
            #expect(run.status == 201 && run.json["cycles"] as? Int == 1 && run.json["records"] as? Int == 2, "\(run.text)")
            let replay = try await api.call(.post, "/v1/operator/settlement-runs", key: p, idempotencyKey: "run-1", body: #"{"until":"\#(until)"}"#)
            #expect(replay.status == 200 && replay.headers[HTTPField.Name("Idempotent-Replayed")!] == "true" && replay.string("id") == run.string("id"))
            #expect(try await api.call(.get, "/v1/operator/settlement-runs", key: p).text.contains(run.string("id")!))
            #expect(try await api.call(.get, "/v1/operator/settlement-runs", key: api.ownerKey).status == 403)

            let month = SettlementCalendar.month(of: now, timeZone: "Asia/Shanghai")
            // 2 × 0.5 + 1 × 0.5 = 1.50, from cash.
            let l0 = try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)", key: api.financeKey)
            #expect(l0.status == 200 && l0.string("total") == "1.50" && l0.string("paid", "cash") == "1.50", "\(l0.text)")
            #expect(l0.string("statisticPeriod") == "deduction" && l0.string("precisionDifference", "amount") == "0")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)", key: api.memberKey).status == 403)
            let l1 = try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)/summary?by=project", key: api.ownerKey)
            #expect(l1.text.contains(#""key":"\#(projectId)""#), "\(l1.text)")
            let byTag = try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)/summary?by=tag&tagKey=env", key: api.ownerKey)
            #expect(byTag.text.contains(#""key":"prod""#) && byTag.string("tagKey") == "env")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)/summary?by=tag", key: api.ownerKey).code == "invalid_field")
            let l2 = try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)/resources", key: api.ownerKey)
            #expect(l2.text.contains(#""resourceId":"ins-api""#))
            let l3 = try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)/lines", key: api.ownerKey)
            let items = try #require(l3.json["items"] as? [[String: Any]])
            #expect(items.count == 1 && items[0]["amount"] as? String == "1.5" && items[0]["listAmount"] as? String == "2.4"
                    && items[0]["discountRate"] as? String == "0.625" && items[0]["quantity"] as? String == "3", "\(l3.text)")
            for level in ["", "/summary", "/resources", "/lines"] {
                let csv = try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)\(level)?format=csv", key: api.ownerKey)
                #expect(csv.status == 200 && csv.headers[.contentType]?.hasPrefix("text/csv") == true && csv.text.hasPrefix("\u{FEFF}"), "\(level)")
                #expect(csv.text.contains("1.50") || csv.text.contains("1.5"), "\(level): \(csv.text)")
            }
            #expect(try await api.call(.get, "/v1/accounts/\(a)/bills/2026-13", key: api.ownerKey).code == "invalid_field")
            #expect(try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)/lines?cursor=zz", key: api.ownerKey).code == "invalid_field")

            let settings = try await api.call(.put, "/v1/accounts/\(a)/bill-settings", key: api.ownerKey, body: #"{"statisticPeriod":"billing"}"#)
            #expect(settings.status == 200 && settings.string("switchMonth") == month)
            let back = try await api.call(.put, "/v1/accounts/\(a)/bill-settings", key: api.ownerKey, body: #"{"statisticPeriod":"deduction"}"#)
            #expect(back.status == 409 && back.code == "statistic_period_locked")
            let estimate = try await api.call(.get, "/v1/accounts/\(a)/cost-estimate", key: api.financeKey)
            #expect(estimate.status == 200 && estimate.string("prepaidRenewals") == "0.00" && estimate.json["prepaidRenewalsAvailable"] as? Bool == true)

            let settlementId = try #require(items.first?["settlementId"] as? String)
            let comp = try await api.call(.post, "/v1/accounts/\(a)/bill-compensations", key: p, idempotencyKey: "comp-1",
                                          body: #"{"settlementId":"\#(settlementId)","amount":"0.50","reason":"outage"}"#)
            #expect(comp.status == 201 && comp.string("amount") == "0.50", "\(comp.text)")
            #expect(try await api.call(.post, "/v1/accounts/\(a)/bill-compensations", key: api.ownerKey, idempotencyKey: "comp-2",
                                       body: #"{"settlementId":"\#(settlementId)","amount":"0.50","reason":"outage"}"#).status == 403)
            let afterComp = try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)", key: api.financeKey)
            #expect(afterComp.string("total") == "1.00" && afterComp.string("postpaid", "compensation") == "0.50", "\(afterComp.text)")
            let linesAfter = try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)/lines", key: api.ownerKey)
            #expect((linesAfter.json["compensations"] as? [[String: Any]])?.count == 1)
            #expect(try await api.call(.get, "/v1/accounts/\(a)/bills/\(month)/lines?format=csv", key: api.ownerKey).text.contains(",compensation,"))

            let moved = try await api.call(.patch, "/v1/accounts/\(a)/resources/ins-api", key: api.ownerKey, body: #"{"projectId":null}"#)
            #expect(moved.status == 200 && moved.json["projectId"] == nil, "\(moved.text)")
            let renamed = try await api.call(.patch, "/v1/accounts/\(a)/projects/\(projectId)", key: api.ownerKey, body: #"{"name":"官网"}"#)
            #expect(renamed.status == 200 && renamed.string("name") == "官网")
            #expect(try await api.call(.patch, "/v1/accounts/\(a)/projects/prj_nope", key: api.ownerKey, body: #"{"name":"x"}"#).code == "project_not_found")
        }
    }
}

/// The sandbox clock, black-box: time rules move when the API moves the clock.
@Suite("Sandbox clock through the API")
struct SandboxClockAPITests {
    @Test("W5 B2 moving the sandbox clock expires a freeze and settles a cycle after its grace period; the same key moves it once",
          arguments: Backend.available)
    func advances(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId, p = api.platformKey
            _ = try await api.post("/v1/accounts/\(a)/adjustments", key: p, #"{"amount":"100.00","bucket":"cash","reason":"funding"}"#)
            let freeze = try #require(try await api.post("/v1/accounts/\(a)/freezes", key: p, #"{"amount":"10.00","expiresInSeconds":3600}"#)
                .string("freeze", "id"))
            _ = try await api.call(.put, "/v1/operator/products/cvm", key: p,
                                   body: #"{"name":{"zh":"云服务器","en":"Cloud server"},"settlementCycle":"hourly","taxCategory":"cloud_service"}"#)
            _ = try await api.call(.put, "/v1/accounts/\(a)/resources/ins-1", key: p, body: #"{"productId":"cvm","name":"web"}"#)
            let now = api.env.clock.nowMicros()
            let hour = now - now % 3_600_000_000
            let usage = #"{"records":[{"id":"u","accountId":"\#(a)","resourceId":"ins-1","component":"cpu","quantity":"1","unit":"h","unitPrice":"1","periodStart":"\#(RFC3339.format(micros: hour))","periodEnd":"\#(RFC3339.format(micros: now))"}]}"#
            #expect(try await api.call(.post, "/v1/usage-records", key: p, body: usage).text.contains(#""accepted":1"#))
            _ = try await api.env.engine.jobs.runOnce()
            #expect(try await api.env.store.freeze(accountId: a, id: freeze)?.state == .active)

            #expect(try await api.call(.post, "/v1/sandbox/clock", key: api.ownerKey, idempotencyKey: "c1", body: #"{"advanceSeconds":7200}"#).status == 403)
            let moved = try await api.call(.post, "/v1/sandbox/clock", key: p, idempotencyKey: "c1", body: #"{"advanceSeconds":7200}"#)
            #expect(moved.status == 200 && moved.json["advancedSeconds"] as? Int == 7200, "\(moved.text)")
            let again = try await api.call(.post, "/v1/sandbox/clock", key: p, idempotencyKey: "c1", body: #"{"advanceSeconds":7200}"#)
            #expect(again.headers[HTTPField.Name("Idempotent-Replayed")!] == "true")
            #expect(api.env.clock.nowMicros() == now + 7_200_000_000)
            #expect(try await api.call(.post, "/v1/sandbox/clock", key: p, idempotencyKey: "c2", body: #"{"advanceSeconds":0}"#).code == "invalid_field")
            #expect(try await api.call(.post, "/v1/sandbox/clock", key: p, idempotencyKey: "c1", body: #"{"advanceSeconds":60}"#).code == "idempotency_conflict")

            let report = try await api.env.engine.jobs.runOnce()
            #expect(report.freezesExpired == 1 && report.cyclesSettled == 1)
            #expect(try await api.env.store.freeze(accountId: a, id: freeze)?.state == .expired)
            #expect(try await api.env.wallet(a).cashMinor == 10_000 - 100)
        }
    }

    @Test("A server without the sandbox clock answers 404 sandbox_clock_disabled")
    func disabled() async throws {
        try await APIFixture.run(.sqlite, sandboxClock: false) { api in
            let r = try await api.call(.post, "/v1/sandbox/clock", key: api.platformKey, idempotencyKey: "c", body: #"{"advanceSeconds":60}"#)
            #expect(r.status == 404 && r.code == "sandbox_clock_disabled")
            #expect(try await api.call(.get, "/v1/sandbox/clock", key: api.platformKey).code == "sandbox_clock_disabled")
        }
    }
}

@Suite("Metrics")
struct MetricsTests {
    @Test("/metrics answers Prometheus text with request, ledger and settlement series to its own token only")
    func prometheus() async throws {
        try await APIFixture.run(.sqlite) { api in
            _ = try await api.post("/v1/accounts/\(api.accountId)/adjustments", key: api.platformKey,
                                   #"{"amount":"1.00","bucket":"cash","reason":"metrics"}"#)
            let r = try await api.call(.get, "/metrics", key: TestMetrics.token)
            #expect(r.status == 200 && r.headers[.contentType]?.hasPrefix("text/plain") == true)
            #expect(r.text.contains("coffer_ledger_batch_size") && r.text.contains("coffer_ledger_commit_seconds"), "\(r.text.prefix(2000))")
            #expect(r.text.contains("hb_requests") || r.text.contains("hb_request"), "\(r.text.prefix(2000))")
            #expect(try await api.call(.get, "/metrics", key: api.platformKey).status == 401)
            #expect(try await api.call(.get, "/metrics", key: nil).status == 401)
        }
    }
}
