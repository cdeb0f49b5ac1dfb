import CofferChannels
import CofferCore
import CofferServices
import Foundation
import Hummingbird
import Prometheus

/// What the HTTP layer needs: the engine's use cases, and the sandbox payer when the sandbox channel is enabled.
public struct HTTPDependencies: Sendable {
    public var engine: CofferEngine
    public var sandbox: SandboxChannel?
    /// The clock `POST /v1/sandbox/clock` moves (the engine's own), when the sandbox clock is enabled.
    public var sandboxClock: (any AdjustableClock)?
    /// `/metrics`, when a metrics token is configured.
    public var metrics: MetricsExport?
    /// Addresses of the load balancers in front (nginx): from these peers the client's address is read from
    /// X-Forwarded-For; from anyone else that header is ignored, or a client could pick a new address per guess.
    public var trustedProxies: Set<String> = []
    public init(engine: CofferEngine, sandbox: SandboxChannel?, sandboxClock: (any AdjustableClock)? = nil, metrics: MetricsExport? = nil) {
        self.engine = engine
        self.sandbox = sandbox
        self.sandboxClock = sandboxClock
        self.metrics = metrics
    }
}

/// What `/metrics` serves: the Prometheus registry swift-metrics was bootstrapped with, behind its own bearer token (the
/// metrics scraper is not an API caller; an API key does not read metrics).
public struct MetricsExport: Sendable {
    public let registry: PrometheusCollectorRegistry
    let tokenDigest: String
    public init(registry: PrometheusCollectorRegistry, token: String) {
        self.registry = registry
        tokenDigest = Secrets.sha256Hex(token)
    }
    func allows(_ header: String?) -> Bool {
        guard let header, header.count > 7, header.prefix(7).lowercased() == "bearer " else { return false }
        // Digests are compared, so the comparison's timing says nothing about the token itself.
        return Secrets.sha256Hex(String(header.dropFirst(7))) == tokenDigest
    }
}

extension HTTPDependencies {
    /// The sandbox's "customer paid": a notification signed with the sandbox secret goes through the same handler as a real
    /// channel's. Used by the API and by the console's test-channel button.
    /// `payer` names the simulated payer (R7 counts distinct payers); without it the payment names none.
    public func sandboxPay(rechargeId id: String, principal: Principal, payer: String? = nil) async throws -> RechargeRecord {
        guard let sandbox else {
            throw CofferError(.sandboxDisabled, "The sandbox channel is not enabled on this server.")
        }
        guard let r = try await engine.store.recharge(id: id), r.channel == SandboxChannel.channelName else {
            throw CofferError.notFound(.rechargeNotFound, id)
        }
        try Access.check(principal, account: r.accountId, needs: .finance)
        let tradeNo = "sbx" + engine.ids.make("t").dropFirst(2)
        if let payer, !(1...128).contains(payer.unicodeScalars.count) { throw CofferError.invalidField("payer", "must be 1–128 characters") }
        let (headers, body) = try sandbox.signedNotification(rechargeId: r.id, tradeNo: tradeNo, amountMinor: r.totalMinor,
                                                             payer: payer, nowMicros: engine.clock.nowMicros())
        _ = try await engine.recharges.handleNotification(channelName: sandbox.name, headers: headers, body: body)
        guard let paid = try await engine.store.recharge(id: id) else { throw CofferError.notFound(.rechargeNotFound, id) }
        return paid
    }
}

struct CreateAccountBody: Decodable {
    struct Owner: Decodable { let email: String; let name: String; let password: String }
    let type: String
    let entityName: String
    let taxId: String?
    let contactEmail: String
    let owner: Owner
    let language: String?
}
struct CreateUserBody: Decodable { let email: String; let name: String; let role: String; let password: String }
struct CreateKeyBody: Decodable { let userId: String; let name: String }
struct AmountBody: Decodable { let amount: String; let memo: String? }
struct AdjustBody: Decodable { let amount: String; let bucket: String; let reason: String }
struct RechargeBody: Decodable { let amount: String; let channel: String }
struct FreezeBody: Decodable { let amount: String; let expiresInSeconds: Int64?; let reference: String? }
/// An absent amount captures the whole freeze; a null one is a mistake, not "all" (a client that lost a value must not
/// capture everything).
struct CaptureBody: Decodable {
    let amount: String?
    enum CodingKeys: String, CodingKey { case amount }
    init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        if c.contains(.amount), try c.decodeNil(forKey: .amount) {
            throw CofferError.invalidField("amount", "may not be null; leave it out to capture the whole freeze")
        }
        amount = try c.decodeIfPresent(String.self, forKey: .amount)
    }
}
struct ChargeBody: Decodable { let amount: String; let mode: String; let reference: String? }
struct RefundBody: Decodable { let amount: String; let reason: String? }

func parseEnum<E: RawRepresentable & CaseIterable>(_ type: E.Type, _ text: String, field: String) throws(CofferError) -> E where E.RawValue == String {
    guard let value = E(rawValue: text) else {
        throw .invalidField(field, "must be one of \(E.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return value
}

/// A comma-separated query value of enum cases (`state=pending,failed`); every part must be a case.
func parseEnumList<E: RawRepresentable & CaseIterable>(_ type: E.Type, _ text: String, field: String) throws(CofferError) -> [E] where E.RawValue == String {
    try text.split(separator: ",", omittingEmptySubsequences: false).map { part throws(CofferError) in try parseEnum(type, String(part), field: field) }
}

func optionalText(_ text: String?, field: String, max: Int = Limits.maxReferenceLength) throws(CofferError) -> String? {
    try TextRules.optional(text, field: field, max: max)
}

struct Routes: Sendable {
    let deps: HTTPDependencies
    var engine: CofferEngine { deps.engine }

    func authenticate(_ request: Request) async throws -> Principal {
        // RFC 9110: the scheme name is case-insensitive ("bearer" is "Bearer").
        guard let header = request.headers[.authorization], header.count > 7,
              header.prefix(7).lowercased() == "bearer " else { throw CofferError.unauthorized }
        guard let principal = try await engine.accounts.authenticate(bearer: String(header.dropFirst(7))) else {
            throw CofferError.unauthorized
        }
        return principal
    }

    /// Authenticates and checks the caller may act on the account in the path (one rule for every route). A user's key
    /// names its own account, which exists; an operator may name any, so an unknown one is a 404 here — except on the
    /// ledger's routes (`accountChecked: false`), where the writer answers `account_not_found` from its wallet lock and
    /// the hot path saves the read.
    func authorize(_ request: Request, _ context: CofferContext, _ needs: Permission,
                   accountChecked: Bool = true) async throws -> (Principal, String) {
        let principal = try await authenticate(request)
        let accountId = try context.param("accountId")
        try Access.check(principal, account: accountId, needs: needs)
        if accountChecked, principal.isOperator, try await engine.store.account(id: accountId) == nil {
            throw CofferError.notFound(.accountNotFound, accountId)
        }
        return (principal, accountId)
    }

    func ledger(_ command: LedgerCommand, _ request: Request, _ principal: Principal, created: Bool = false) async throws -> Response {
        let outcome = try await engine.wallets.submit(command, idempotencyKey: try request.idempotencyKey(), actor: principal.actor)
        let receipt = try outcome.get()
        return try JSON.response(LedgerWriteView(receipt), status: created ? .created : .ok, replayed: outcome.replayed)
    }

    func register(on router: Router<CofferContext>) {
        router.get("/health") { _, _ in
            try JSON.response(["status": "ok", "database": engine.store.backendName])
        }
        router.get("/metrics") { request, _ in
            // No credentials at all is 401 whether or not metrics are on (the document's rule for every secured route).
            guard request.headers[.authorization] != nil else { throw CofferError.unauthorized }
            guard let metrics = deps.metrics else {
                throw CofferError(.metricsDisabled, "Metrics are not enabled on this server; start it with --metrics-token.")
            }
            guard metrics.allows(request.headers[.authorization]) else { throw CofferError.unauthorized }
            var headers = HTTPFields()
            headers[.contentType] = "text/plain; version=0.0.4; charset=utf-8"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: metrics.registry.emitToString())))
        }
        router.get("/openapi.yaml") { _, _ in
            var headers = HTTPFields()
            headers[.contentType] = "application/yaml"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: OpenAPIDocument.text)))
        }

        let v1 = router.group("v1")
        v1.post("accounts", use: createAccount)
        v1.get("accounts/:accountId", use: getAccount)
        v1.patch("accounts/:accountId", use: updateAccount)
        v1.post("accounts/:accountId/users", use: createUser)
        v1.post("accounts/:accountId/api-keys", use: createApiKey)
        v1.post("accounts/:accountId/api-keys/:keyId/revoke", use: revokeApiKey)
        v1.get("accounts/:accountId/wallet", use: getWallet)
        v1.post("accounts/:accountId/gifts", use: grantGift)
        v1.post("accounts/:accountId/adjustments", use: adjust)
        v1.post("accounts/:accountId/advances", use: advance)
        v1.post("accounts/:accountId/recharges", use: createRecharge)
        v1.get("accounts/:accountId/recharges/:rechargeId", use: getRecharge)
        v1.post("accounts/:accountId/recharges/:rechargeId/sync", use: syncRecharge)
        v1.post("sandbox/recharges/:rechargeId/pay", use: sandboxPay)
        v1.post("channels/:channel/notifications", use: channelNotification)
        v1.get("channels") { request, _ in
            _ = try await authenticate(request)
            return try JSON.response(["items": engine.recharges.catalog])
        }
        v1.post("accounts/:accountId/freezes", use: createFreeze)
        v1.get("accounts/:accountId/freezes/:freezeId", use: getFreeze)
        v1.post("accounts/:accountId/freezes/:freezeId/capture", use: captureFreeze)
        v1.post("accounts/:accountId/freezes/:freezeId/release", use: releaseFreeze)
        v1.post("accounts/:accountId/charges", use: createCharge)
        v1.get("accounts/:accountId/charges/:chargeId", use: getCharge)
        v1.post("accounts/:accountId/charges/:chargeId/refunds", use: refundCharge)
        v1.get("accounts/:accountId/transactions", use: TransactionRoutes(routes: self).list)
        v1.post("batch/charges", use: BatchRoutes(routes: self).charges)
        v1.post("batch/freezes", use: BatchRoutes(routes: self).freezes)
        MoneyInRoutes(routes: self).register(on: v1)
        ProductRoutes(routes: self).register(on: v1)
        BillingRoutes(routes: self).register(on: v1)
        OrderRoutes(routes: self).register(on: v1)
        WebhookRoutes(routes: self).register(on: v1)
        AuditRoutes(routes: self).register(on: v1)
        JobRoutes(routes: self).register(on: v1)
        v1.get("sandbox/clock", use: sandboxClockNow)
        v1.post("sandbox/clock", use: advanceSandboxClock)
    }

    // MARK: the sandbox clock

    func sandboxClock() throws(CofferError) -> any AdjustableClock {
        guard let clock = deps.sandboxClock else {
            throw CofferError(.sandboxClockDisabled, "The sandbox clock is not enabled on this server; start it with --sandbox-clock (or --demo).")
        }
        return clock
    }

    @Sendable func sandboxClockNow(_ request: Request, _ context: CofferContext) async throws -> Response {
        try Access.requireOperator(try await authenticate(request))
        let clock = try sandboxClock()
        struct Out: Encodable { let now: String; let offsetSeconds: Int64 }
        return try JSON.response(Out(now: RFC3339.format(micros: clock.nowMicros()), offsetSeconds: (clock as? SandboxClock)?.offsetSeconds ?? 0))
    }

    struct AdvanceBody: Decodable { let advanceSeconds: Int64 }

    @Sendable func advanceSandboxClock(_ request: Request, _ context: CofferContext) async throws -> Response {
        try Access.requireOperator(try await authenticate(request))
        let clock = try sandboxClock()
        let key = try request.idempotencyKey()
        let body = try await JSON.decode(AdvanceBody.self, from: request)
        let (advanced, replayed) = try await SandboxTime(clock: clock, store: engine.store).advance(seconds: body.advanceSeconds, idempotencyKey: key)
        struct Out: Encodable { let now: String; let advancedSeconds: Int64 }
        return try JSON.response(Out(now: RFC3339.format(micros: advanced.nowMicros), advancedSeconds: advanced.advancedSeconds), replayed: replayed)
    }

    // MARK: accounts, users, keys

    @Sendable func createAccount(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await authenticate(request)
        try Access.requireOperator(principal)
        let key = try request.idempotencyKey()
        let body = try await JSON.decode(CreateAccountBody.self, from: request)
        let input = NewAccount(type: try parseEnum(AccountType.self, body.type, field: "type"), entityName: body.entityName,
                               taxId: body.taxId, contactEmail: body.contactEmail,
                               owner: NewUser(email: body.owner.email, name: body.owner.name, role: .owner, password: body.owner.password),
                               language: try body.language.map { try parseEnum(AccountLanguage.self, $0, field: "language") } ?? .zh)
        let (created, replayed) = try await engine.accounts.createAccount(input, idempotencyKey: key, actor: principal.actor)
        struct Out: Encodable { let account: AccountView; let owner: UserJSON }
        return try JSON.response(Out(account: AccountView(created.account), owner: UserJSON(created.owner)),
                                 status: .created, replayed: replayed)
    }

    /// The account's settings its owner may change: the language of its e-mail notices.
    @Sendable func updateAccount(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .owner)
        struct Body: Decodable { let language: String }
        let body = try await JSON.decode(Body.self, from: request)
        let language = try parseEnum(AccountLanguage.self, body.language, field: "language")
        return try JSON.response(AccountView(try await engine.accounts.setLanguage(accountId: accountId, language: language, actor: principal.actor)))
    }

    @Sendable func getAccount(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await authorize(request, context, .member)
        guard let account = try await engine.store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        return try JSON.response(AccountView(account))
    }

    @Sendable func createUser(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .owner)
        let key = try request.idempotencyKey()
        let body = try await JSON.decode(CreateUserBody.self, from: request)
        let input = NewUser(email: body.email, name: body.name, role: try parseEnum(UserRole.self, body.role, field: "role"),
                            password: body.password)
        let (user, replayed) = try await engine.accounts.createUser(accountId: accountId, input, idempotencyKey: key,
                                                                    actor: principal.actor)
        return try JSON.response(UserJSON(user), status: .created, replayed: replayed)
    }

    @Sendable func createApiKey(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .owner)
        let key = try request.idempotencyKey()
        let body = try await JSON.decode(CreateKeyBody.self, from: request)
        let (created, replayed) = try await engine.accounts.createAccountKey(accountId: accountId, userId: body.userId,
                                                                             name: body.name, idempotencyKey: key,
                                                                             actor: principal.actor)
        return try JSON.response(ApiKeyJSON(created), status: .created, replayed: replayed)
    }

    @Sendable func revokeApiKey(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .owner)
        let keyId = try context.param("keyId")
        try await engine.accounts.revokeAccountKey(accountId: accountId, keyId: keyId, actor: principal.actor)
        return try JSON.response(["id": keyId, "state": "revoked"])
    }

    // MARK: wallet and operator money

    @Sendable func getWallet(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await authorize(request, context, .finance)
        return try JSON.response(WalletView(accountId: accountId, try await engine.wallets.wallet(accountId: accountId)))
    }

    @Sendable func grantGift(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await operatorAmount(request, context) { .grantGift(accountId: $0, amountMinor: $1, memo: $2) }
    }

    /// Gift grants and advances: an operator, a positive amount and an optional memo.
    func operatorAmount(_ request: Request, _ context: CofferContext,
                        _ command: (String, Int64, String?) -> LedgerCommand) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .operatorOnly, accountChecked: false)
        let body = try await JSON.decode(AmountBody.self, from: request)
        let amount = try MoneyFormat.parsePositive(body.amount)
        return try await ledger(command(accountId, amount, try optionalText(body.memo, field: "memo")), request, principal,
                                created: true)
    }

    @Sendable func adjust(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .operatorOnly, accountChecked: false)
        let body = try await JSON.decode(AdjustBody.self, from: request)
        let delta = try MoneyFormat.parse(body.amount)
        guard delta != 0 else { throw CofferError.invalidField("amount", "must not be 0.00; use a negative amount to take money away") }
        let reason = try TextRules.required(body.reason, field: "reason", max: Limits.maxReferenceLength)
        let bucket = try parseEnum(WalletBucket.self, body.bucket, field: "bucket")
        return try await ledger(.adjust(accountId: accountId, bucket: bucket, deltaMinor: delta, reason: reason),
                                request, principal, created: true)
    }

    @Sendable func advance(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await operatorAmount(request, context) { .advance(accountId: $0, amountMinor: $1, memo: $2) }
    }

    // MARK: recharge

    @Sendable func createRecharge(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .finance)
        let key = try request.idempotencyKey()
        let body = try await JSON.decode(RechargeBody.self, from: request)
        let (view, replayed) = try await engine.recharges.create(accountId: accountId, amountText: body.amount,
                                                                 channelName: body.channel, idempotencyKey: key,
                                                                 actor: principal.actor)
        return try JSON.response(RechargeJSON(view), status: .created, replayed: replayed)
    }

    @Sendable func getRecharge(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await authorize(request, context, .finance)
        let id = try context.param("rechargeId")
        guard let r = try await engine.store.recharge(accountId: accountId, id: id) else {
            throw CofferError.notFound(.rechargeNotFound, id)
        }
        return try JSON.response(RechargeJSON(try await engine.recharges.view(r)))
    }

    /// "I have paid": asks the channel about the order and credits it if it was paid (a lost notification loses nothing).
    /// Reads only; safe to repeat, so it takes no idempotency key.
    @Sendable func syncRecharge(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await authorize(request, context, .finance)
        let id = try context.param("rechargeId")
        guard let r = try await engine.store.recharge(accountId: accountId, id: id) else {
            throw CofferError.notFound(.rechargeNotFound, id)
        }
        return try JSON.response(RechargeJSON(try await engine.recharges.view(try await engine.recharges.sync(r))))
    }

    /// The sandbox's simulated payer: signs a notification for the order and sends it through the shared handler.
    @Sendable func sandboxPay(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await authenticate(request)
        let paid = try await deps.sandboxPay(rechargeId: try context.param("rechargeId"), principal: principal,
                                             payer: request.uri.queryParameters["payer"].map(String.init))
        return try JSON.response(RechargeJSON(try await engine.recharges.view(paid)))
    }

    /// Every channel's asynchronous notifications arrive here; the channel adapter verifies them.
    @Sendable func channelNotification(_ request: Request, _ context: CofferContext) async throws -> Response {
        let channel = try context.param("channel")
        var request = request
        let body = try await request.collectBody(upTo: Limits.maxBodyBytes)
        var headers: [String: String] = [:]
        for field in request.headers { headers[field.name.canonicalName] = field.value }
        let result = try await engine.recharges.handleNotification(channelName: channel, headers: headers,
                                                                   body: Array(body.readableBytesView))
        // Some channels (Alipay) read only a plain-text word, sent here after the credit is committed.
        if let ack = engine.recharges.acknowledgement(channelName: channel) {
            var fields = HTTPFields()
            fields[.contentType] = "text/plain; charset=utf-8"
            return Response(status: .ok, headers: fields, body: .init(byteBuffer: ByteBuffer(string: ack)))
        }
        switch result {
        case .credited(let receipt): return try JSON.response(["status": "credited", "entryId": receipt.entryId])
        case .alreadyCredited: return try JSON.response(["status": "already_credited"])
        // Handled for good (R7 returns the money): the channel must stop sending it.
        case .refused(let r, _): return try JSON.response(["status": "refused", "rechargeId": r.id])
        }
    }

    // MARK: freezes and charges (the provider's services)

    @Sendable func createFreeze(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .operatorOnly, accountChecked: false)
        let body = try await JSON.decode(FreezeBody.self, from: request)
        let amount = try MoneyFormat.parsePositive(body.amount)
        if let s = body.expiresInSeconds, !(1...31_536_000).contains(s) {
            throw CofferError.invalidField("expiresInSeconds", "must be between 1 and 31536000 (one year)")
        }
        return try await ledger(.freeze(accountId: accountId, freezeId: engine.wallets.newFreezeId(), amountMinor: amount,
                                        expiresInSeconds: body.expiresInSeconds,
                                        reference: try optionalText(body.reference, field: "reference")),
                                request, principal, created: true)
    }

    @Sendable func getFreeze(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await authorize(request, context, .finance)
        let id = try context.param("freezeId")
        guard let f = try await engine.store.freeze(accountId: accountId, id: id) else { throw CofferError.notFound(.freezeNotFound, id) }
        return try JSON.response(FreezeView(f))
    }

    @Sendable func captureFreeze(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .operatorOnly, accountChecked: false)
        let id = try context.param("freezeId")
        var amount: Int64?
        if request.headers[.contentLength].map({ $0 != "0" }) ?? (request.headers[.transferEncoding] != nil) {
            let body = try await JSON.decode(CaptureBody.self, from: request)
            amount = try body.amount.map { text throws(CofferError) in try MoneyFormat.parsePositive(text) }
        }
        return try await ledger(.capture(accountId: accountId, freezeId: id, amountMinor: amount), request, principal)
    }

    @Sendable func releaseFreeze(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .operatorOnly, accountChecked: false)
        return try await ledger(.release(accountId: accountId, freezeId: try context.param("freezeId")), request, principal)
    }

    @Sendable func createCharge(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .operatorOnly, accountChecked: false)
        let body = try await JSON.decode(ChargeBody.self, from: request)
        let amount = try MoneyFormat.parsePositive(body.amount)
        let mode = try parseEnum(ChargeMode.self, body.mode, field: "mode")
        return try await ledger(.charge(accountId: accountId, chargeId: engine.wallets.newChargeId(), amountMinor: amount,
                                        mode: mode, reference: try optionalText(body.reference, field: "reference")),
                                request, principal, created: true)
    }

    @Sendable func getCharge(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await authorize(request, context, .finance)
        let id = try context.param("chargeId")
        guard let c = try await engine.store.charge(accountId: accountId, id: id) else { throw CofferError.notFound(.chargeNotFound, id) }
        return try JSON.response(ChargeView(c))
    }

    @Sendable func refundCharge(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await authorize(request, context, .operatorOnly, accountChecked: false)
        let body = try await JSON.decode(RefundBody.self, from: request)
        let amount = try MoneyFormat.parsePositive(body.amount)
        return try await ledger(.refund(accountId: accountId, chargeId: try context.param("chargeId"),
                                        refundId: engine.wallets.newRefundId(), amountMinor: amount,
                                        reason: try optionalText(body.reason, field: "reason")),
                                request, principal, created: true)
    }
}
