import CofferChannels
import CofferCore
import CofferHTTP
import CofferServices
import Foundation
import HTTPTypes
import Hummingbird

/// The customer's billing center: overview, recharge, remittance, codes, records, users and keys.
struct CustomerPages: Sendable {
    let console: WebConsole
    var engine: CofferEngine { console.engine }
    typealias Visit = WebConsole.Visit

    func register(on web: RouterGroup<CofferContext>) {
        web.get("/overview", use: overview)
        web.get("/recharge", use: rechargeForm)
        web.post("/recharge", use: createRecharge)
        web.get("/recharge/:rechargeId", use: rechargeStatus)
        web.get("/recharge/:rechargeId/qr.svg", use: rechargeQR)
        web.post("/recharge/:rechargeId/sync", use: syncRecharge)
        web.post("/recharge/:rechargeId/sandbox-pay", use: sandboxPay)
        web.get("/remittance", use: remittancePage)
        web.post("/remittance", use: submitRemittance)
        web.post("/remittance/payers", use: registerPayer)
        web.post("/remittance/agreement", use: signAgreement)
        web.get("/remittance/:remittanceId/receipt", use: receipt)
        web.get("/codes", use: codesPage)
        web.post("/codes", use: redeemCode)
        web.get("/transactions", use: transactions)
        web.get("/transactions.csv", use: transactionsCSV)
        web.get("/users", use: usersPage)
        web.post("/users", use: inviteUser)
        web.post("/users/:userId/role", use: setRole)
        web.post("/keys", use: createKey)
        web.post("/keys/:keyId/revoke", use: revokeKey)
        web.post("/account/language", use: setNoticeLanguage)
    }


    func wallet(_ accountId: String) async throws -> WalletBalances {
        try await engine.wallets.wallet(accountId: accountId)
    }

    func timeZone(_ accountId: String) async throws -> String { try await console.timeZone(accountId) }

    // MARK: overview

    @Sendable func overview(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        guard let account = try await engine.store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        let w = try await wallet(accountId)
        var recent = TransactionQuery(accountId: accountId)
        recent.limit = 8
        let rows = try await engine.store.transactions(recent).map { console.row($0, v, account.timeZone) }
        let chart = try await Chart.thirtyDays(store: engine.store, accountId: accountId, timeZone: account.timeZone,
                                               nowMicros: engine.clock.nowMicros(),
                                               labels: (console.t(v, "chart_recharge"), console.t(v, "chart_spending")),
                                               title: console.t(v, "chart_title"))
        let messages = try await engine.store.siteMessages(accountId: accountId, limit: 5).map { m in
            let text = console.messageText(m, v)
            return ["title": text.title, "body": text.body, "time": Display.time(m.createdAtMicros, timeZone: account.timeZone)]
        }
        var model: [String: Any] = [
            "account": ["id": account.id, "name": account.entityName],
            "balance": Display.money(w.balanceMinor), "available": Display.money(w.availableMinor),
            "cash": Display.money(w.cashMinor), "gift": Display.money(w.giftMinor), "frozen": Display.money(w.frozenMinor),
            "advance": Display.money(w.advanceOutstandingMinor), "rows": rows, "hasRows": !rows.isEmpty,
            "chart": chart, "messages": messages, "hasMessages": !messages.isEmpty,
        ]
        if w.inArrears {
            model["arrears"] = console.t(v, "arrears_banner", ["shortfall": Display.money(-w.balanceMinor)])
            model["arrearsAmount"] = MoneyFormat.format(-w.balanceMinor)
        }
        return console.page("overview", v, title: console.t(v, "overview_title"), model: model)
    }

    // MARK: recharge

    func rechargeFormPage(_ v: Visit, _ accountId: String, error: String? = nil, status: HTTPResponse.Status = .ok,
                          amount: String? = nil, chosen: String? = nil) async throws -> Response {
        let limits = engine.recharges.limits
        // R6: the last amount the customer recharged is offered again.
        let last = try await engine.store.recharges(accountId: accountId, limit: 20).first { $0.state == .paid }
        let firstEnabled = engine.recharges.catalog.first { $0.enabled && $0.protocolStatus != "not_implemented" }?.name
        // The methods that can be used first; each amount in the channel's own currency.
        let catalog = engine.recharges.catalog
        let ordered = catalog.filter { $0.enabled && $0.protocolStatus != "not_implemented" } + catalog.filter { !($0.enabled && $0.protocolStatus != "not_implemented") }
        let channels: [[String: Any]] = ordered.map { c in
            let l = limits.channelLimits[c.name]
            func money(_ minor: Int64) -> String { Display.money(minor, currency: c.currency) }
            var parts = [console.t(v, "limit_range", ["min": money(limits.minMinor), "max": money(limits.maxMinor)])]
            if let p = l?.perPaymentMinor { parts.append(console.t(v, "limit_per_payment", ["amount": money(p)])) }
            if let d = l?.perDayMinor { parts.append(console.t(v, "limit_per_day", ["amount": money(d)])) }
            if let m = l?.perMonthMinor { parts.append(console.t(v, "limit_per_month", ["amount": money(m)])) }
            let usable = c.enabled && c.protocolStatus != "not_implemented"
            let fee = limits.feeRules[c.name].map { feeText(v, $0) } ?? console.t(v, "fee_none")
            return ["name": c.name, "title": console.channelName(v, c.name), "currency": c.currency, "usable": usable,
                    "test": c.protocolStatus == "test", "checked": usable && c.name == (chosen ?? firstEnabled),
                    "limits": parts.joined(separator: console.t(v, "list_separator")),
                    "status": usable ? fee : console.t(v, c.protocolStatus == "not_implemented" ? "channel_not_implemented" : "channel_disabled")]
        }
        let recent = try await engine.store.recharges(accountId: accountId, limit: 10)
        let tz = try await timeZone(accountId)
        return console.page("recharge", v, title: console.t(v, "recharge_title"), model: [
            "channels": channels, "idem": console.formKey(),
            "amount": amount ?? last.map { MoneyFormat.format($0.amountMinor) } ?? "",
            "lastAmount": last.map { Display.money($0.amountMinor) } as Any,
            "recent": recent.map { ["id": $0.id, "amount": Display.money($0.amountMinor), "channel": console.channelName(v, $0.channel),
                                    "state": console.t(v, "recharge_state_" + $0.state.rawValue),
                                    "time": Display.time($0.createdAtMicros, timeZone: tz)] },
            "hasRecent": !recent.isEmpty,
        ], status: status, error: error)
    }

    /// R4 before paying: "0.6% fee above ¥200.00" (plus fixed, minimum, maximum when the rule has them).
    func feeText(_ v: Visit, _ rule: FeeRule) -> String {
        var parts: [String] = []
        if rule.rateBasisPoints > 0 {
            let whole = rule.rateBasisPoints / 100, frac = rule.rateBasisPoints % 100
            let rate = frac == 0 ? "\(whole)" : "\(whole)." + (frac % 10 == 0 ? "\(frac / 10)" : (frac < 10 ? "0\(frac)" : "\(frac)"))
            parts.append(console.t(v, "fee_rate", ["rate": rate]))
        }
        if rule.fixedMinor > 0 { parts.append(console.t(v, "fee_fixed", ["amount": Display.money(rule.fixedMinor)])) }
        if rule.minMinor > 0 { parts.append(console.t(v, "fee_min", ["amount": Display.money(rule.minMinor)])) }
        if let max = rule.maxMinor { parts.append(console.t(v, "fee_max", ["amount": Display.money(max)])) }
        let body = parts.joined(separator: console.t(v, "list_separator"))
        return rule.aboveMinor > 0 ? console.t(v, "fee_above", ["amount": Display.money(rule.aboveMinor), "fee": body]) : body
    }

    @Sendable func rechargeForm(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        return try await rechargeFormPage(v, accountId, amount: request.uri.queryParameters["amount"].map(String.init))
    }

    @Sendable func createRecharge(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await rechargeFormPage(v, accountId, error: e, status: s, amount: f["amount"], chosen: f["channel"]) }) {
            let (view, _) = try await engine.recharges.create(accountId: accountId, amountText: f["amount"] ?? "",
                                                             channelName: f["channel"] ?? "", idempotencyKey: f["idem"] ?? "",
                                                             actor: v.session!.principal.actor)
            throw WebFlow.redirect("/recharge/\(view.recharge.id)")
        }
    }

    func ownRecharge(_ context: CofferContext, _ accountId: String) async throws -> RechargeRecord {
        let id = try context.param("rechargeId")
        guard let r = try await engine.store.recharge(accountId: accountId, id: id) else { throw CofferError.notFound(.rechargeNotFound, id) }
        return r
    }

    /// Waits for the payment: refreshes itself every few seconds while the order is pending (no script needed).
    @Sendable func rechargeStatus(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let r = try await ownRecharge(context, accountId)
        let view = try await engine.recharges.view(r)
        let tz = try await timeZone(accountId)
        let qr = view.payment.map { $0.kind == PaymentInstruction.qrKind } ?? false
        var model: [String: Any] = [
            "id": r.id, "amount": Display.money(r.amountMinor), "fee": (r.feeMinor ?? 0) > 0 ? Display.money(r.feeMinor!) : "",
            "total": Display.money(r.totalMinor), "channel": console.channelName(v, r.channel),
            "state": console.t(v, "recharge_state_" + r.state.rawValue), "pending": r.state == .pending, "paid": r.state == .paid,
            "expired": r.state == .expired, "refused": r.state == .refused, "test": view.testChannel, "sandbox": r.channel == SandboxChannel.channelName && console.deps.sandbox != nil,
            "qr": qr && QRCode.available, "qrMissing": qr && !QRCode.available, "paymentURL": view.payment?.url ?? "",
            "expires": Display.time(r.expiresAtMicros, timeZone: tz), "tradeNo": r.channelTradeNo ?? "",
        ]
        if r.state == .paid { model["balance"] = Display.money(try await wallet(accountId).balanceMinor) }
        var response = console.page("recharge_status", v, title: console.t(v, "recharge_status_title"), model: model)
        if r.state == .pending { response.headers[HTTPField.Name("Refresh")!] = "3" }
        return response
    }

    @Sendable func rechargeQR(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await console.customer(request, context, needs: .finance)
        let r = try await ownRecharge(context, accountId)
        guard let payment = try await engine.recharges.view(r).payment, let svg = QRCode.svg(payment.url) else {
            throw CofferError.notFound(.rechargeNotFound, r.id)
        }
        var headers = HTTPFields()
        headers[.contentType] = "image/svg+xml"
        headers[.cacheControl] = "no-store"
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: svg)))
    }

    /// "I have paid": asks the channel now instead of waiting for its notification.
    @Sendable func syncRecharge(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        _ = try await console.form(request, v)
        let r = try await ownRecharge(context, accountId)
        _ = try await engine.recharges.sync(r)
        throw WebFlow.redirect("/recharge/\(r.id)")
    }

    @Sendable func sandboxPay(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        _ = try await console.form(request, v)
        let r = try await ownRecharge(context, accountId)
        _ = try await console.deps.sandboxPay(rechargeId: r.id, principal: v.session!.principal)
        throw WebFlow.redirect("/recharge/\(r.id)")
    }

    // MARK: bank remittance

    /// `resubmit`: the id of a rejected remittance whose corrected version the form sends (T1 resubmission), pre-filled.
    func remittanceModel(_ v: Visit, _ accountId: String, resubmit: String? = nil) async throws -> [String: Any] {
        let details = try await engine.bank.collectionDetails(accountId: accountId)
        let tz = try await timeZone(accountId)
        let remittances = try await engine.store.remittances(accountId: accountId, state: nil, limit: 50).map { r -> [String: Any] in
            ["id": r.id, "amount": Display.money(r.amountMinor), "payer": r.payerName, "date": r.remittedOn,
             "serial": r.bankSerial ?? "", "state": console.t(v, "remittance_state_" + r.state.rawValue),
             "rejected": r.state == .rejected, "reason": r.rejectReason ?? "", "time": Display.time(r.createdAtMicros, timeZone: tz)]
        }
        let payers = try await engine.store.payerNames(accountId: accountId).map { p -> [String: Any] in
            ["name": p.name, "thirdParty": p.thirdParty, "signed": p.agreementSignedAtMicros != nil,
             "needsSignature": p.thirdParty && p.agreementSignedAtMicros == nil]
        }
        let held = try await engine.store.statementLines(accountId: accountId, states: [.toBeConfirmed, .toBeSigned], limit: 50).map {
            ["amount": Display.money($0.amountMinor), "payer": $0.payerName, "date": $0.bookedOn,
             "state": console.t(v, "line_state_" + $0.state.rawValue)]
        }
        var prefill: [String: Any] = [:]
        if let resubmit, let r = try await engine.store.remittance(accountId: accountId, id: resubmit), r.state == .rejected {
            prefill = ["id": r.id, "payer": r.payerName, "payerAccount": r.payerAccount, "bank": r.payerBank,
                       "amount": MoneyFormat.format(r.amountMinor), "date": r.remittedOn, "serial": r.bankSerial ?? "",
                       "reason": r.rejectReason ?? ""]
        }
        return ["resubmit": prefill, "payee": details.payeeName, "bank": details.bankName, "number": details.accountNumber, "memo": details.memo,
                "dedicated": details.dedicatedAccountNumber, "dedicatedGrouped": Display.groupedInFours(details.dedicatedAccountNumber), "remittances": remittances, "hasRemittances": !remittances.isEmpty,
                "payers": payers, "hasPayers": !payers.isEmpty, "held": held, "hasHeld": !held.isEmpty,
                "idem": console.formKey()]
    }

    func remittancePageWith(_ v: Visit, _ accountId: String, error: String? = nil, status: HTTPResponse.Status = .ok) async throws -> Response {
        console.page("remittance", v, title: console.t(v, "remittance_title"), model: try await remittanceModel(v, accountId),
                     status: status, error: error)
    }

    @Sendable func remittancePage(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let resubmit = request.uri.queryParameters["resubmit"].map(String.init)
        return console.page("remittance", v, title: console.t(v, "remittance_title"),
                            model: try await remittanceModel(v, accountId, resubmit: resubmit))
    }

    @Sendable func submitRemittance(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        return try await console.orShow(v, { e, s in try await remittancePageWith(v, accountId, error: e, status: s) }) {
            let form = try await Forms.multipart(RemittanceForm.self, from: request, limitBytes: Forms.maxUploadBytes,
                                                 tooLarge: RemittanceForm.tooLarge, fields: RemittanceForm.fields)
            try console.checkCSRF(form.csrf, v)
            _ = try await engine.bank.submitRemittance(accountId: accountId, form.input, idempotencyKey: form.idem ?? "",
                                                       actor: v.session!.principal.actor)
            throw WebFlow.redirect("/remittance?notice=notice_remittance_submitted")
        }
    }

    @Sendable func registerPayer(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await remittancePageWith(v, accountId, error: e, status: s) }) {
            _ = try await engine.bank.registerPayer(accountId: accountId, name: f["name"] ?? "", thirdParty: f["thirdParty"] == "on",
                                                    actor: v.session!.principal.actor)
            throw WebFlow.redirect("/remittance?notice=notice_payer_registered")
        }
    }

    @Sendable func signAgreement(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .owner)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await remittancePageWith(v, accountId, error: e, status: s) }) {
            _ = try await engine.bank.signAgreement(accountId: accountId, name: f["name"] ?? "", actor: v.session!.principal.actor)
            throw WebFlow.redirect("/remittance?notice=notice_agreement_signed")
        }
    }

    @Sendable func receipt(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await console.customer(request, context, needs: .finance)
        let id = try context.param("remittanceId")
        guard let r = try await engine.store.remittance(accountId: accountId, id: id) else { throw CofferError.notFound(.remittanceNotFound, id) }
        return try Exports.receipt(r, bytes: engine.bank.receipt(r))
    }

    // MARK: recharge codes

    func codesPageWith(_ v: Visit, error: String? = nil, status: HTTPResponse.Status = .ok) -> Response {
        console.page("codes", v, title: console.t(v, "codes_title"), model: ["idem": console.formKey()], status: status, error: error)
    }

    @Sendable func codesPage(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, _) = try await console.customer(request, context, needs: .finance)
        return codesPageWith(v)
    }

    @Sendable func redeemCode(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in codesPageWith(v, error: e, status: s) }) {
            let outcome = try await engine.codes.redeem(accountId: accountId, typed: f["code"] ?? "", idempotencyKey: f["idem"] ?? "",
                                                        actor: v.session!.principal.actor)
            _ = try outcome.get()
            throw WebFlow.redirect("/codes?notice=notice_code_redeemed")
        }
    }

    // MARK: transaction records (W11)

    /// The page's filters as a query: type, from and to as local dates (to inclusive), and the cursor.
    func query(_ request: Request, _ accountId: String, tz: String, v: Visit) throws -> (TransactionQuery, [String: String]) {
        var q = TransactionQuery(accountId: accountId)
        var kept: [String: String] = [:]
        let p = Forms.parseURLEncoded(request.uri.query ?? "")
        if let type = p["type"], !type.isEmpty {
            guard let t = TransactionType(rawValue: type) else { throw CofferError.invalidField("type", "is not a record type") }
            q.types = [t]
            kept["type"] = type
        }
        if let from = p["from"], !from.isEmpty {
            guard let m = Display.parseDay(from, timeZone: tz) else { throw CofferError.invalidField("from", "must be a date like 2026-11-01") }
            q.fromMicros = m
            kept["from"] = from
        }
        if let to = p["to"], !to.isEmpty {
            guard let m = Display.parseDay(to, timeZone: tz) else { throw CofferError.invalidField("to", "must be a date like 2026-11-30") }
            q.toMicros = m + 86_400_000_000
            kept["to"] = to
        }
        if let from = q.fromMicros, let to = q.toMicros, from >= to { throw CofferError.invalidField("from", "must not be after 'to'") }
        if let c = p["cursor"], c.hasPrefix("txn_"), c.count <= 40, c.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) {
            q.beforeId = c
        }
        q.limit = 20
        return (q, kept)
    }

    static func encode(_ params: [String: String]) -> String {
        params.sorted { $0.key < $1.key }.map { k, val in
            k + "=" + (val.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        }.joined(separator: "&")
    }

    @Sendable func transactions(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        let tz = try await timeZone(accountId)
        let types = TransactionType.allCases.map { ["value": $0.rawValue, "label": console.t(v, "type_" + $0.rawValue)] }
        let (q, kept): (TransactionQuery, [String: String])
        do { (q, kept) = try query(request, accountId, tz: tz, v: v) } catch let e as CofferError {
            return console.page("transactions", v, title: console.t(v, "transactions_title"),
                                model: ["types": types, "rows": [Any](), "hasRows": false], status: .badRequest, error: console.message(e, v))
        }
        let page = try await engine.store.transactions(q)
        var next = kept
        next["cursor"] = page.last?.id
        let typeOptions = types.map { t -> [String: Any] in ["value": t["value"]!, "label": t["label"]!, "selected": t["value"] == kept["type"]] }
        return console.page("transactions", v, title: console.t(v, "transactions_title"), model: [
            "types": typeOptions, "from": kept["from"] ?? "", "to": kept["to"] ?? "",
            "rows": page.map { console.row($0, v, tz) }, "hasRows": !page.isEmpty,
            "older": page.count == q.limit ? "/transactions?" + Self.encode(next) : "",
            "newest": q.beforeId != nil ? "/transactions?" + Self.encode(kept) : "",
            "csv": "/transactions.csv" + (kept.isEmpty ? "" : "?" + Self.encode(kept)),
        ])
    }

    @Sendable func transactionsCSV(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .finance)
        var (q, _) = try query(request, accountId, tz: try await timeZone(accountId), v: v)
        q.beforeId = nil
        let table = console.catalogs.table(v.lang)
        return try await Exports.transactions(engine.store, q, header: Exports.csvColumns.map { table["csv_txn_" + $0] ?? $0 },
                                              typeName: { table["type_" + $0] ?? $0 })
    }

    // MARK: users and API keys (owner)

    func usersPageWith(_ v: Visit, _ accountId: String, error: String? = nil, status: HTTPResponse.Status = .ok,
                       createdKey: CreatedApiKey? = nil) async throws -> Response {
        let tz = try await timeZone(accountId)
        let users = try await engine.store.users(accountId: accountId)
        let names = Dictionary(users.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let keys = try await engine.store.apiKeys(accountId: accountId)
        let language = try await engine.store.account(id: accountId)?.language ?? .zh
        return console.page("users", v, title: console.t(v, "users_title"), model: [
            "noticeLanguages": AccountLanguage.allCases.map { l -> [String: Any] in
                ["value": l.rawValue, "label": console.t(v, "lang_name_" + l.rawValue), "selected": l == language]
            },
            "users": users.map { u -> [String: Any] in
                ["id": u.id, "name": u.name, "email": u.email, "role": console.t(v, "role_" + u.role.rawValue),
                 "owner": u.role == .owner, "finance": u.role == .finance, "time": Display.time(u.createdAtMicros, timeZone: tz)]
            },
            "userOptions": users.map { ["id": $0.id, "name": $0.name, "email": $0.email] },
            "keys": keys.map { ["id": $0.id, "name": $0.name, "user": $0.userId.flatMap { names[$0] } ?? "",
                                "time": Display.time($0.createdAtMicros, timeZone: tz)] },
            "hasKeys": !keys.isEmpty, "idem": console.formKey(), "keyIdem": console.formKey(),
            "createdKey": createdKey.map { ["name": $0.name, "secret": $0.secret] } as Any,
        ], status: status, error: error)
    }

    @Sendable func usersPage(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .owner)
        return try await usersPageWith(v, accountId)
    }

    @Sendable func inviteUser(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .owner)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await usersPageWith(v, accountId, error: e, status: s) }) {
            let role = f["role"] == "finance" ? UserRole.finance : .member
            _ = try await engine.accounts.createUser(accountId: accountId, NewUser(email: TextRules.trimmed(f["email"] ?? ""), name: f["name"] ?? "",
                                                                                  role: role, password: f["password"] ?? ""),
                                                     idempotencyKey: f["idem"] ?? "", actor: v.session!.principal.actor)
            throw WebFlow.redirect("/users?notice=notice_user_invited")
        }
    }

    @Sendable func setRole(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .owner)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await usersPageWith(v, accountId, error: e, status: s) }) {
            let role = try parseRole(f["role"])
            try await engine.console.setRole(accountId: accountId, userId: try context.param("userId"), role: role,
                                             actor: v.session!.principal.actor)
            throw WebFlow.redirect("/users?notice=notice_role_changed")
        }
    }

    func parseRole(_ text: String?) throws -> UserRole {
        guard let text, let role = UserRole(rawValue: text), role != .owner else {
            throw CofferError.invalidField("role", "must be finance or member")
        }
        return role
    }

    /// The secret is on this one response and nowhere else (the page is no-store).
    @Sendable func createKey(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .owner)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await usersPageWith(v, accountId, error: e, status: s) }) {
            let (key, replayed) = try await engine.accounts.createAccountKey(accountId: accountId, userId: f["userId"] ?? "",
                                                                             name: f["name"] ?? "", idempotencyKey: f["idem"] ?? "",
                                                                             actor: v.session!.principal.actor)
            if replayed { throw WebFlow.redirect("/users") }
            return try await usersPageWith(v, accountId, createdKey: key)
        }
    }

    /// The language of the account's e-mail notices (the console itself follows each reader's own choice).
    @Sendable func setNoticeLanguage(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .owner)
        let f = try await console.form(request, v)
        return try await console.orShow(v, { e, s in try await usersPageWith(v, accountId, error: e, status: s) }) {
            guard let language = AccountLanguage(rawValue: f["language"] ?? "") else {
                throw CofferError.invalidField("language", "zh or en")
            }
            _ = try await engine.accounts.setLanguage(accountId: accountId, language: language, actor: v.session!.principal.actor)
            throw WebFlow.redirect("/users?notice=notice_language_saved")
        }
    }

    @Sendable func revokeKey(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (v, accountId) = try await console.customer(request, context, needs: .owner)
        _ = try await console.form(request, v)
        let keyId = try context.param("keyId")
        return try await console.orShow(v, { e, s in try await usersPageWith(v, accountId, error: e, status: s) }) {
            try await engine.accounts.revokeAccountKey(accountId: accountId, keyId: keyId, actor: v.session!.principal.actor)
            throw WebFlow.redirect("/users?notice=notice_key_revoked")
        }
    }
}
