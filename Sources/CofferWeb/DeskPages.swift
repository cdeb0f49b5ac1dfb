import CofferCore
import CofferHTTP
import CofferServices
import Foundation
import HTTPTypes
import Hummingbird

/// The operator desk: accounts, gifts and adjustments, the remittance review queue, statements and the unmatched pool,
/// recharge code batches. Operator logins only.
struct DeskPages: Sendable {
    let console: WebConsole
    var engine: CofferEngine { console.engine }
    typealias Visit = WebConsole.Visit

    func register(on web: RouterGroup<CofferContext>) {
        web.get("/desk", use: accounts)
        web.get("/desk/accounts/:accountId", use: account)
        web.post("/desk/accounts/:accountId/gift", use: grantGift)
        web.post("/desk/accounts/:accountId/adjust", use: adjust)
        web.post("/desk/accounts/:accountId/compensate", use: compensate)
        web.get("/desk/remittances", use: queue)
        web.get("/desk/remittances/:remittanceId/receipt", use: receipt)
        web.post("/desk/remittances/:remittanceId/approve", use: approve)
        web.post("/desk/remittances/:remittanceId/reject", use: reject)
        web.get("/desk/statements", use: statements)
        web.get("/desk/statements/template.csv", use: statementTemplate)
        web.post("/desk/statements", use: importStatement)
        web.post("/desk/lines/:lineId/assign", use: assignLine)
        web.post("/desk/lines/:lineId/refund", use: refundLine)
        web.get("/desk/codes", use: codes)
        web.post("/desk/codes", use: createBatch)
        web.get("/desk/codes/:batchId/codes.csv", use: exportCodes)
        web.post("/desk/codes/:batchId/void", use: voidBatch)
        web.get("/desk/refunds", use: refunds)
        web.post("/desk/refunds/:refundId/retry", use: retryRefund)
    }


    func actor(_ v: Visit) -> String { v.session!.principal.actor }

    // MARK: accounts

    @Sendable func accounts(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let text = request.uri.queryParameters["q"].map { String($0).trimmingCharacters(in: .whitespaces) }.map { String($0.prefix(100)) }
        let found = try await engine.store.searchAccounts(text: text, limit: 100)
        let wallets = try await engine.store.wallets(accountIds: found.map(\.id))
        var rows: [[String: Any]] = []
        for a in found {
            let w = wallets[a.id] ?? .zero
            rows.append(["id": a.id, "name": a.entityName, "email": a.contactEmail, "type": console.t(v, "account_type_" + a.type.rawValue),
                         "balance": Display.money(w.balanceMinor), "arrears": w.inArrears,
                         "time": Display.time(a.createdAtMicros, timeZone: a.timeZone)])
        }
        return console.page("desk/accounts", v, title: console.t(v, "desk_accounts_title"),
                            model: ["rows": rows, "hasRows": !rows.isEmpty, "q": text ?? ""])
    }

    func accountPage(_ v: Visit, _ accountId: String, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        guard let a = try await engine.store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        let w = try await engine.wallets.wallet(accountId: accountId)
        var q = TransactionQuery(accountId: accountId)
        q.limit = 30
        let rows = try await engine.store.transactions(q).map { console.row($0, v, a.timeZone) }
        let users = try await engine.store.users(accountId: accountId).map {
            ["name": $0.name, "email": $0.email, "role": console.t(v, "role_" + $0.role.rawValue)]
        }
        // B3: the cycles of this month that can be compensated (newest lines first page), and the month's compensations.
        let month = SettlementCalendar.month(of: engine.clock.nowMicros(), timeZone: a.timeZone)
        var settled: [String: (String, Int64)] = [:]
        for row in try await engine.bills.lines(accountId: accountId, month: month, cursor: nil, limit: 200).rows where row.billed.settlement.chargeId != nil {
            let s = row.billed.settlement
            settled[s.id] = (s.resourceName + " · " + Display.time(s.cycle.startMicros, timeZone: a.timeZone), s.deductionMinor)
        }
        let compensations = try await engine.bills.compensations(accountId: accountId, month: month).map { c in
            ["amount": Display.money(c.compensation.amountMinor), "reason": c.compensation.reason, "resource": c.settlement.resourceName,
             "time": Display.time(c.compensation.createdAtMicros, timeZone: a.timeZone)]
        }
        return console.page("desk/account", v, title: a.entityName, model: [
            "titleIsData": true,
            "settlements": settled.sorted { $0.key > $1.key }.prefix(50).map { ["id": $0.key, "label": $0.value.0 + " · " + Display.money($0.value.1)] },
            "hasSettlements": !settled.isEmpty, "compensateIdem": console.formKey(), "compensations": compensations,
            "hasCompensations": !compensations.isEmpty,
            "id": a.id, "name": a.entityName, "email": a.contactEmail, "taxId": a.taxId ?? "",
            "balance": Display.money(w.balanceMinor), "available": Display.money(w.availableMinor), "cash": Display.money(w.cashMinor),
            "gift": Display.money(w.giftMinor), "frozen": Display.money(w.frozenMinor), "advance": Display.money(w.advanceOutstandingMinor),
            "arrears": w.inArrears, "rows": rows, "hasRows": !rows.isEmpty, "users": users,
            "giftIdem": console.formKey(), "adjustIdem": console.formKey(),
        ], status: status, error: error)
    }

    @Sendable func account(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        return try await accountPage(v, try context.param("accountId"))
    }

    /// B3: a negative bill line for a settled cycle, paid back as a refund of its charge (audited by the service).
    @Sendable func compensate(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let accountId = try context.param("accountId")
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await accountPage(v, accountId, error: e, status: s) }) {
            _ = try await engine.bills.compensate(accountId: accountId, settlementId: f["settlementId"] ?? "", amountText: f["amount"] ?? "",
                                                  reason: f["reason"] ?? "", idempotencyKey: f["idem"] ?? "", actor: actor(v), wallets: engine.wallets)
            throw WebFlow.redirect("/desk/accounts/\(accountId)?notice=notice_compensated")
        }
    }

    func requiredReason(_ text: String?) throws -> String {
        let reason = (text ?? "").trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty, reason.count <= 200 else {
            throw CofferError.invalidField("reason", "is required (1–200 characters): say why")
        }
        return reason
    }

    @Sendable func grantGift(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let accountId = try context.param("accountId")
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await accountPage(v, accountId, error: e, status: s) }) {
            let amount = try MoneyFormat.parsePositive(f["amount"] ?? "")
            let reason = try requiredReason(f["reason"])
            _ = try await engine.wallets.submit(.grantGift(accountId: accountId, amountMinor: amount, memo: reason),
                                                idempotencyKey: f["idem"] ?? "", actor: actor(v)).get()
            throw WebFlow.redirect("/desk/accounts/\(accountId)?notice=notice_gift_granted")
        }
    }

    @Sendable func adjust(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let accountId = try context.param("accountId")
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await accountPage(v, accountId, error: e, status: s) }) {
            let delta = try MoneyFormat.parse(f["amount"] ?? "")
            guard delta != 0 else { throw CofferError.invalidField("amount", "must not be 0.00; use a negative amount to take money away") }
            guard let bucket = WalletBucket(rawValue: f["bucket"] ?? "") else { throw CofferError.invalidField("bucket", "must be cash or gift") }
            let reason = try requiredReason(f["reason"])
            _ = try await engine.wallets.submit(.adjust(accountId: accountId, bucket: bucket, deltaMinor: delta, reason: reason),
                                                idempotencyKey: f["idem"] ?? "", actor: actor(v)).get()
            throw WebFlow.redirect("/desk/accounts/\(accountId)?notice=notice_adjusted")
        }
    }

    // MARK: remittance review (T1)

    func queuePage(_ v: Visit, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        var rows: [[String: Any]] = []
        var accounts: [String: AccountRecord?] = [:]   // one read per account, however many transfers it has queued
        var credited: [String: [RemittanceRecord]] = [:]
        let queue = try await engine.bank.reviewQueue(limit: 200)
        /// T1: the same payer, amount and transfer date as another report (queued or credited) is probably one transfer
        /// reported twice; the reviewer is told which.
        func sameTransfer(_ a: RemittanceRecord, _ b: RemittanceRecord) -> Bool {
            a.id != b.id && a.accountId == b.accountId && a.amountMinor == b.amountMinor && a.remittedOn == b.remittedOn
                && a.payerName.trimmingCharacters(in: .whitespaces) == b.payerName.trimmingCharacters(in: .whitespaces)
        }
        for r in queue {
            if accounts[r.accountId] == nil { accounts[r.accountId] = .some(try await engine.store.account(id: r.accountId)) }
            if credited[r.accountId] == nil {
                credited[r.accountId] = try await engine.store.remittances(accountId: r.accountId, state: .approved, limit: 200)
            }
            let twin = queue.first { sameTransfer(r, $0) } ?? credited[r.accountId]?.first { sameTransfer(r, $0) }
            let a = accounts[r.accountId] ?? nil
            rows.append(["id": r.id, "accountId": r.accountId, "account": a?.entityName ?? r.accountId, "payer": r.payerName,
                         "payerAccount": r.payerAccount, "bank": r.payerBank, "amount": Display.money(r.amountMinor),
                         "date": r.remittedOn, "serial": r.bankSerial ?? "", "image": r.receiptType.hasPrefix("image/"),
                         "resubmission": r.resubmissionOf != nil, "idem": console.formKey(),
                         "duplicate": twin.map { console.t(v, $0.state == .approved ? "desk_duplicate_credited" : "desk_duplicate_queued", ["id": $0.id]) } ?? "",
                         "time": Display.time(r.createdAtMicros, timeZone: a?.timeZone ?? "Asia/Shanghai")])
        }
        return console.page("desk/remittances", v, title: console.t(v, "desk_queue_title"),
                            model: ["rows": rows, "hasRows": !rows.isEmpty], status: status, error: error)
    }

    @Sendable func queue(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await queuePage(try await console.staff(request, context))
    }

    @Sendable func receipt(_ request: Request, _ context: CofferContext) async throws -> Response {
        _ = try await console.staff(request, context)
        let id = try context.param("remittanceId")
        guard let r = try await engine.store.remittance(id: id) else { throw CofferError.notFound(.remittanceNotFound, id) }
        return try Exports.receipt(r, bytes: engine.bank.receipt(r))
    }

    @Sendable func approve(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await queuePage(v, error: e, status: s) }) {
            _ = try await engine.bank.approve(remittanceId: try context.param("remittanceId"), idempotencyKey: f["idem"] ?? "",
                                              actor: actor(v)).get()
            throw WebFlow.redirect("/desk/remittances?notice=notice_remittance_approved")
        }
    }

    @Sendable func reject(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await queuePage(v, error: e, status: s) }) {
            _ = try await engine.bank.reject(remittanceId: try context.param("remittanceId"), reason: f["reason"] ?? "", actor: actor(v))
            throw WebFlow.redirect("/desk/remittances?notice=notice_remittance_rejected")
        }
    }

    // MARK: statements (T2) and the unmatched pool

    /// T2: the statement file's columns, as a file to fill in.
    @Sendable func statementTemplate(_ request: Request, _ context: CofferContext) async throws -> Response {
        _ = try await console.staff(request, context)
        var headers = HTTPFields()
        headers[.contentType] = "text/csv; charset=utf-8"
        headers[.contentDisposition] = "attachment; filename=\"statement-template.csv\""
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: StatementCSV.template)))
    }

    func statementsPage(_ v: Visit, results: [StatementLineResult]? = nil, error: String? = nil,
                        status: HTTPResponse.Status = .ok) async throws -> Response {
        let pool = try await engine.store.statementLines(accountId: nil, states: [.unmatched, .heldKeyword, .heldCurrency], limit: 200)
        return console.page("desk/statements", v, title: console.t(v, "desk_statements_title"), model: [
            "results": (results ?? []).map { r -> [String: Any] in
                ["line": r.line, "serial": r.bankSerial, "state": console.t(v, "line_state_" + r.state), "account": r.accountId ?? "",
                 "note": r.note ?? "", "duplicate": r.duplicate]
            },
            "hasResults": results != nil,
            "pool": pool.map { l -> [String: Any] in
                ["id": l.id, "serial": l.bankSerial, "date": l.bookedOn, "amount": Display.money(l.amountMinor, currency: l.currency),
                 "payer": l.payerName, "payerAccount": l.payerAccount, "payee": l.payeeAccount, "memo": l.memo,
                 "state": console.t(v, "line_state_" + l.state.rawValue), "note": l.note ?? ""]
            },
            "hasPool": !pool.isEmpty,
        ], status: status, error: error)
    }

    @Sendable func statements(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await statementsPage(try await console.staff(request, context))
    }

    struct StatementUpload: Decodable {
        var csrf: String?
        var file: Data?
    }

    @Sendable func importStatement(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        return try await console.orShow(v, { e, s in try await statementsPage(v, error: e, status: s) }) {
            let upload = try await Forms.multipart(StatementUpload.self, from: request, limitBytes: 4 * 1_024 * 1_024 + 16_384,
                                                   tooLarge: CofferError(.statementTooLong, "The statement file must be at most 4 MB; split it."),
                                                   fields: "the field file (the statement CSV)")
            try console.checkCSRF(upload.csrf, v)
            guard let data = upload.file, !data.isEmpty, let text = String(data: data, encoding: .utf8) else {
                throw CofferError(.statementCsvInvalid, "Choose a UTF-8 CSV statement file.")
            }
            let lines = try engine.bank.parseStatementCSV(text)
            let results = try await engine.bank.importStatement(lines, source: "console", actor: actor(v))
            return try await statementsPage(v, results: results)
        }
    }

    @Sendable func assignLine(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await statementsPage(v, error: e, status: s) }) {
            _ = try await engine.bank.assignLine(id: try context.param("lineId"), accountId: (f["accountId"] ?? "").trimmingCharacters(in: .whitespaces),
                                                 actor: actor(v))
            throw WebFlow.redirect("/desk/statements?notice=notice_line_assigned")
        }
    }

    @Sendable func refundLine(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await statementsPage(v, error: e, status: s) }) {
            _ = try await engine.bank.refundLine(id: try context.param("lineId"), reason: try requiredReason(f["reason"]), actor: actor(v))
            throw WebFlow.redirect("/desk/statements?notice=notice_line_refunded")
        }
    }

    // MARK: payments returned through their channel (R7)

    @Sendable func refunds(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let all = request.uri.queryParameters["all"] == "1"
        let states: [ChannelRefundState] = all ? [] : [.pending, .processing, .failed]
        let refunds = try await engine.store.channelRefunds(accountId: nil, states: states, limit: 200)
        return console.page("desk/refunds", v, title: console.t(v, "desk_refunds_title"), model: [
            "refunds": refunds.map { f -> [String: Any] in
                ["id": f.id, "accountId": f.accountId, "rechargeId": f.rechargeId, "channel": console.channelName(v, f.channel),
                 "amount": Display.money(f.amountMinor), "state": console.t(v, "refund_state_" + f.state.rawValue),
                 "attempts": f.attempts, "lastError": f.lastError ?? "", "open": f.state == .pending || f.state == .processing,
                 "time": Display.time(f.createdAtMicros, timeZone: "Asia/Shanghai")]
            },
            "hasRefunds": !refunds.isEmpty, "all": all,
        ])
    }

    /// Sends or queries one refund now instead of waiting for its next turn in the jobs loop.
    @Sendable func retryRefund(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        _ = try await console.form(request, v)
        let id = try context.param("refundId")
        guard let refund = try await engine.store.channelRefund(id: id) else { throw CofferError.notFound(.channelRefundNotFound, id) }
        try await engine.recharges.refunds.process(refund)
        throw WebFlow.redirect("/desk/refunds?notice=notice_refund_retried")
    }

    // MARK: recharge code batches (R8)

    func codesPage(_ v: Visit, error: String? = nil, status: HTTPResponse.Status = .ok, notice: String? = nil) async throws -> Response {
        let batches = try await engine.store.codeBatches(limit: 100)
        return console.page("desk/codes", v, title: console.t(v, "desk_codes_title"), model: [
            "batches": batches.map { b -> [String: Any] in
                ["id": b.id, "amount": Display.money(b.amountMinor), "credit": console.t(v, "bucket_" + b.bucket.rawValue),
                 "count": b.count, "validUntil": Display.day(b.validUntilMicros, timeZone: "Asia/Shanghai"), "memo": b.memo ?? "",
                 "time": Display.time(b.createdAtMicros, timeZone: "Asia/Shanghai")]
            },
            "hasBatches": !batches.isEmpty, "idem": console.formKey(),
        ], status: status, notice: notice, error: error)
    }

    @Sendable func codes(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await codesPage(try await console.staff(request, context))
    }

    @Sendable func createBatch(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await codesPage(v, error: e, status: s) }) {
            guard let bucket = WalletBucket(rawValue: f["credit"] ?? "") else { throw CofferError.invalidField("credit", "must be cash or gift") }
            guard let count = Int(f["count"] ?? "") else { throw CofferError.invalidField("count", "must be a whole number") }
            // The last moment of the chosen day, in China time (the provider's own time zone).
            guard let day = Display.parseDay(f["validUntil"] ?? "", timeZone: "Asia/Shanghai") else {
                throw CofferError.invalidField("validUntil", "must be a date like 2027-12-31")
            }
            _ = try await engine.codes.createBatch(amountText: f["amount"] ?? "", bucket: bucket, validUntilMicros: day + 86_400_000_000 - 1,
                                                   count: count, memo: f["memo"].flatMap { $0.isEmpty ? nil : $0 },
                                                   idempotencyKey: f["idem"] ?? "", actor: actor(v))
            throw WebFlow.redirect("/desk/codes?notice=notice_batch_created")
        }
    }

    @Sendable func voidBatch(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await codesPage(v, error: e, status: s) }) {
            let voided = try await engine.codes.voidBatch(batchId: try context.param("batchId"), reason: f["reason"] ?? "", actor: actor(v))
            return try await codesPage(v, notice: console.t(v, "notice_batch_voided", ["count": String(voided)]))
        }
    }

    @Sendable func exportCodes(_ request: Request, _ context: CofferContext) async throws -> Response {
        let v = try await console.staff(request, context)
        let (batch, codes) = try await engine.codes.export(batchId: try context.param("batchId"), actor: actor(v))
        let table = console.catalogs.table(v.lang)
        return Exports.codes(batch, codes, header: Exports.codeColumns.map { table["csv_code_" + $0] ?? $0 },
                             codeName: { table["csv_code_value_" + $0] ?? $0 })
    }
}
