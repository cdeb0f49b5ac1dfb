import CofferCore
import CofferServices
import Foundation
import HTTPTypes
import Hummingbird

/// Recharge codes (R8), bank remittance (T1, T2) and site messages: thin handlers over RechargeCodeService and
/// BankTransferService.
struct MoneyInRoutes: Sendable {
    let routes: Routes
    var engine: CofferEngine { routes.engine }
    static let maxStatementBytes = 4 * 1_024 * 1_024

    func register(on v1: RouterGroup<CofferContext>) {
        v1.post("accounts/:accountId/code-redemptions", use: redeemCode)
        v1.get("accounts/:accountId/bank-transfer", use: collectionDetails)
        v1.post("accounts/:accountId/remittances", use: submitRemittance)
        v1.get("accounts/:accountId/remittances", use: listRemittances)
        v1.get("accounts/:accountId/remittances/:remittanceId/receipt", use: accountReceipt)
        v1.get("accounts/:accountId/payer-names", use: listPayers)
        v1.post("accounts/:accountId/payer-names", use: registerPayer)
        v1.post("accounts/:accountId/payer-names/agreement", use: signAgreement)
        v1.get("accounts/:accountId/statement-lines", use: accountLines)
        v1.get("accounts/:accountId/messages", use: messages)
        v1.get("accounts/:accountId/channel-refunds", use: accountRefunds)

        v1.post("operator/code-batches", use: createCodeBatch)
        v1.get("operator/code-batches/:batchId/codes.csv", use: exportCodes)
        v1.post("operator/code-batches/:batchId/void", use: voidBatch)
        v1.get("operator/remittances", use: reviewQueue)
        v1.get("operator/remittances/:remittanceId/receipt", use: operatorReceipt)
        v1.post("operator/remittances/:remittanceId/approve", use: approve)
        v1.post("operator/remittances/:remittanceId/reject", use: reject)
        v1.post("operator/statements", use: importStatementFile)
        v1.post("operator/statement-lines", use: importStatementPush)
        v1.get("operator/statement-lines", use: operatorLines)
        v1.post("operator/statement-lines/:lineId/assign", use: assignLine)
        v1.post("operator/statement-lines/:lineId/refund", use: refundLine)
        v1.get("operator/channel-refunds", use: operatorRefunds)
    }

    // MARK: channel refunds (R7 returns; later withdrawals)

    @Sendable func accountRefunds(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let refunds = try await engine.store.channelRefunds(accountId: accountId, states: [], limit: Limits.maxPageSize)
        return try JSON.response(["items": refunds.map(ChannelRefundView.init)])
    }

    /// Finance's view of refunds in flight or failed (`state=failed` is the list that needs someone).
    @Sendable func operatorRefunds(_ request: Request, _ context: CofferContext) async throws -> Response {
        _ = try await operatorOnly(request)
        let states = try parseEnumList(ChannelRefundState.self, request.uri.queryParameters["state"].map(String.init) ?? "pending,processing,failed",
                                       field: "state")
        let accountId = request.uri.queryParameters["accountId"].map(String.init)
        let refunds = try await engine.store.channelRefunds(accountId: accountId, states: states, limit: Limits.maxPageSize)
        return try JSON.response(["items": refunds.map(ChannelRefundView.init)])
    }

    func operatorOnly(_ request: Request) async throws -> Principal {
        let principal = try await routes.authenticate(request)
        try Access.requireOperator(principal)
        return principal
    }

    // MARK: customer

    @Sendable func redeemCode(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await routes.authorize(request, context, .finance)
        let key = try request.idempotencyKey()
        struct Body: Decodable { let code: String }
        let body = try await JSON.decode(Body.self, from: request)
        let outcome = try await engine.codes.redeem(accountId: accountId, typed: body.code, idempotencyKey: key, actor: principal.actor)
        return try JSON.response(LedgerWriteView(try outcome.get()), replayed: outcome.replayed)
    }

    @Sendable func collectionDetails(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        return try JSON.response(try await engine.bank.collectionDetails(accountId: accountId))
    }

    /// multipart/form-data, so that the console's plain HTML form and an API client send the same thing.
    @Sendable func submitRemittance(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await routes.authorize(request, context, .finance)
        let key = try request.idempotencyKey()
        let form = try await Forms.multipart(RemittanceForm.self, from: request, limitBytes: Forms.maxUploadBytes,
                                             tooLarge: RemittanceForm.tooLarge, fields: RemittanceForm.fields)
        let input = form.input
        let (record, replayed) = try await engine.bank.submitRemittance(accountId: accountId, input, idempotencyKey: key,
                                                                        actor: principal.actor)
        return try JSON.response(RemittanceView(record), status: .created, replayed: replayed)
    }

    @Sendable func listRemittances(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let items = try await engine.store.remittances(accountId: accountId, state: nil, limit: Limits.maxPageSize)
        return try JSON.response(["items": items.map(RemittanceView.init)])
    }

    @Sendable func accountReceipt(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let id = try context.param("remittanceId")
        guard let r = try await engine.store.remittance(accountId: accountId, id: id) else { throw CofferError.notFound(.remittanceNotFound, id) }
        return try Exports.receipt(r, bytes: engine.bank.receipt(r))
    }

    @Sendable func listPayers(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        return try JSON.response(["items": try await engine.store.payerNames(accountId: accountId).map(PayerView.init)])
    }

    @Sendable func registerPayer(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await routes.authorize(request, context, .finance)
        struct Body: Decodable { let name: String; let thirdParty: Bool? }
        let body = try await JSON.decode(Body.self, from: request)
        let results = try await engine.bank.registerPayer(accountId: accountId, name: body.name, thirdParty: body.thirdParty ?? false,
                                                          actor: principal.actor)
        return try JSON.response(["recheckedLines": results], status: .created)
    }

    @Sendable func signAgreement(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (principal, accountId) = try await routes.authorize(request, context, .owner)
        struct Body: Decodable { let name: String }
        let body = try await JSON.decode(Body.self, from: request)
        let results = try await engine.bank.signAgreement(accountId: accountId, name: body.name, actor: principal.actor)
        return try JSON.response(["recheckedLines": results])
    }

    @Sendable func accountLines(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .finance)
        let lines = try await engine.store.statementLines(accountId: accountId, states: [], limit: Limits.maxPageSize)
        return try JSON.response(["items": lines.map(StatementLineView.init)])
    }

    @Sendable func messages(_ request: Request, _ context: CofferContext) async throws -> Response {
        let (_, accountId) = try await routes.authorize(request, context, .member)
        return try JSON.response(["items": try await engine.store.siteMessages(accountId: accountId, limit: Limits.maxPageSize).map(MessageView.init)])
    }

    // MARK: operator

    @Sendable func createCodeBatch(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await operatorOnly(request)
        let key = try request.idempotencyKey()
        struct Body: Decodable { let amount: String; let credit: String; let validUntil: String; let count: Int; let memo: String? }
        let body = try await JSON.decode(Body.self, from: request)
        let (batch, replayed) = try await engine.codes.createBatch(
            amountText: body.amount, bucket: try parseEnum(WalletBucket.self, body.credit, field: "credit"),
            validUntilMicros: try Time.parse(body.validUntil, field: "validUntil"), count: body.count, memo: body.memo,
            idempotencyKey: key, actor: principal.actor)
        return try JSON.response(CodeBatchView(batch), status: .created, replayed: replayed)
    }

    /// For printing: UTF-8 with BOM so that spreadsheet programs read it right; every export is audited.
    @Sendable func exportCodes(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await operatorOnly(request)
        let (batch, codes) = try await engine.codes.export(batchId: try context.param("batchId"), actor: principal.actor)
        return Exports.codes(batch, codes)
    }

    /// State-guarded (only unused codes change), so it takes no Idempotency-Key: a repeat voids nothing more.
    @Sendable func voidBatch(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await operatorOnly(request)
        struct Body: Decodable { let reason: String }
        let body = try await JSON.decode(Body.self, from: request)
        let voided = try await engine.codes.voidBatch(batchId: try context.param("batchId"), reason: body.reason, actor: principal.actor)
        return try JSON.response(["voided": voided])
    }

    @Sendable func reviewQueue(_ request: Request, _ context: CofferContext) async throws -> Response {
        _ = try await operatorOnly(request)
        return try JSON.response(["items": try await engine.bank.reviewQueue(limit: Limits.maxPageSize).map(RemittanceView.init)])
    }

    @Sendable func operatorReceipt(_ request: Request, _ context: CofferContext) async throws -> Response {
        _ = try await operatorOnly(request)
        let id = try context.param("remittanceId")
        guard let r = try await engine.store.remittance(id: id) else { throw CofferError.notFound(.remittanceNotFound, id) }
        return try Exports.receipt(r, bytes: engine.bank.receipt(r))
    }

    @Sendable func approve(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await operatorOnly(request)
        let outcome = try await engine.bank.approve(remittanceId: try context.param("remittanceId"),
                                                    idempotencyKey: try request.idempotencyKey(), actor: principal.actor)
        return try JSON.response(LedgerWriteView(try outcome.get()), replayed: outcome.replayed)
    }

    @Sendable func reject(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await operatorOnly(request)
        struct Body: Decodable { let reason: String }
        let body = try await JSON.decode(Body.self, from: request)
        let r = try await engine.bank.reject(remittanceId: try context.param("remittanceId"), reason: body.reason, actor: principal.actor)
        return try JSON.response(RemittanceView(r))
    }

    /// The statement file as the request body (text/csv); `?name=` records the file name with every line.
    @Sendable func importStatementFile(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await operatorOnly(request)
        var request = request
        let body: ByteBuffer
        do { body = try await request.collectBody(upTo: Self.maxStatementBytes) } catch {
            throw CofferError(.statementTooLong, "The statement file must be at most 4 MB; split it.")
        }
        guard let text = String(bytes: Array(body.readableBytesView), encoding: .utf8) else {
            throw CofferError(.statementCsvInvalid, "The statement file must be UTF-8 text.")
        }
        let name = request.uri.queryParameters["name"].map(String.init) ?? "upload.csv"
        let lines = try engine.bank.parseStatementCSV(text)
        let results = try await engine.bank.importStatement(lines, source: "file:\(name.prefix(100))", actor: principal.actor)
        return try JSON.response(["lines": results])
    }

    /// The bank's push: the same fields as the CSV, as JSON.
    @Sendable func importStatementPush(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await operatorOnly(request)
        struct Line: Decodable {
            let bankSerial: String, bookedOn: String, amount: String, currency: String
            let payerName: String, payerAccount: String, payeeAccount: String, memo: String?
        }
        struct Body: Decodable { let lines: [Line] }
        let body = try await JSON.decode(Body.self, from: request, limitBytes: Self.maxStatementBytes)
        let lines = body.lines.map {
            StatementLineInput(bankSerial: $0.bankSerial, bookedOn: $0.bookedOn, amountText: $0.amount, currency: $0.currency,
                               payerName: $0.payerName, payerAccount: $0.payerAccount, payeeAccount: $0.payeeAccount, memo: $0.memo ?? "")
        }
        return try JSON.response(["lines": try await engine.bank.importStatement(lines, source: "push", actor: principal.actor)])
    }

    @Sendable func operatorLines(_ request: Request, _ context: CofferContext) async throws -> Response {
        _ = try await operatorOnly(request)
        let states = try parseEnumList(StatementLineState.self, request.uri.queryParameters["state"].map(String.init) ?? "unmatched,held_keyword,held_currency",
                                       field: "state")
        let lines = try await engine.store.statementLines(accountId: nil, states: states, limit: Limits.maxPageSize)
        return try JSON.response(["items": lines.map(StatementLineView.init)])
    }

    @Sendable func assignLine(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await operatorOnly(request)
        struct Body: Decodable { let accountId: String }
        let body = try await JSON.decode(Body.self, from: request)
        return try JSON.response(try await engine.bank.assignLine(id: try context.param("lineId"), accountId: body.accountId,
                                                                 actor: principal.actor))
    }

    @Sendable func refundLine(_ request: Request, _ context: CofferContext) async throws -> Response {
        let principal = try await operatorOnly(request)
        struct Body: Decodable { let reason: String }
        let body = try await JSON.decode(Body.self, from: request)
        let line = try await engine.bank.refundLine(id: try context.param("lineId"), reason: body.reason, actor: principal.actor)
        return try JSON.response(StatementLineView(line))
    }
}

struct RemittanceView: Encodable {
    struct Receipt: Encodable { let type: String; let bytes: Int; let sha256: String }
    let id, accountId, payerName, payerAccount, payerBank, amount, remittedOn, state, createdAt: String
    let bankSerial, rejectReason, resubmissionOf, reviewedAt: String?
    let receipt: Receipt
    init(_ r: RemittanceRecord) {
        (id, accountId, payerName, payerAccount, payerBank) = (r.id, r.accountId, r.payerName, r.payerAccount, r.payerBank)
        (amount, remittedOn, state) = (MoneyFormat.format(r.amountMinor), r.remittedOn, r.state.rawValue)
        createdAt = RFC3339.format(micros: r.createdAtMicros)
        (bankSerial, rejectReason, resubmissionOf) = (r.bankSerial, r.rejectReason, r.resubmissionOf)
        reviewedAt = r.reviewedAtMicros.map { RFC3339.format(micros: $0) }
        receipt = Receipt(type: r.receiptType, bytes: r.receiptBytes, sha256: r.receiptSHA256)
    }
}

struct StatementLineView: Encodable {
    let id, bankSerial, bookedOn, amount, currency, payerName, payerAccount, payeeAccount, memo, state, source, importedAt: String
    let accountId, note: String?
    init(_ l: StatementLineRecord) {
        (id, bankSerial, bookedOn, amount, currency) = (l.id, l.bankSerial, l.bookedOn, MoneyFormat.format(l.amountMinor), l.currency)
        (payerName, payerAccount, payeeAccount, memo) = (l.payerName, l.payerAccount, l.payeeAccount, l.memo)
        (state, source, importedAt) = (l.state.rawValue, l.source, RFC3339.format(micros: l.importedAtMicros))
        (accountId, note) = (l.accountId, l.note)
    }
}

struct ChannelRefundView: Encodable {
    let id, accountId, rechargeId, channel, channelTradeNo, purpose, amount, state, createdAt: String
    let channelRefundNo, lastError, resolvedAt: String?
    let attempts: Int
    init(_ f: ChannelRefundRecord) {
        (id, accountId, rechargeId, channel, channelTradeNo) = (f.id, f.accountId, f.rechargeId, f.channel, f.channelTradeNo)
        (purpose, amount, state) = (f.purpose.rawValue, MoneyFormat.format(f.amountMinor), f.state.rawValue)
        (createdAt, channelRefundNo, lastError) = (RFC3339.format(micros: f.createdAtMicros), f.channelRefundNo, f.lastError)
        (resolvedAt, attempts) = (f.resolvedAtMicros.map { RFC3339.format(micros: $0) }, f.attempts)
    }
}

struct PayerView: Encodable {
    let name: String
    let thirdParty: Bool
    let agreementSigned: Bool
    init(_ p: PayerNameRecord) { (name, thirdParty, agreementSigned) = (p.name, p.thirdParty, p.agreementSignedAtMicros != nil) }
}

struct CodeBatchView: Encodable {
    let id, amount, credit, validUntil, createdAt: String
    let count: Int
    let memo: String?
    init(_ b: CodeBatchRecord) {
        (id, amount, credit) = (b.id, MoneyFormat.format(b.amountMinor), b.bucket.rawValue)
        (validUntil, createdAt) = (RFC3339.format(micros: b.validUntilMicros), RFC3339.format(micros: b.createdAtMicros))
        (count, memo) = (b.count, b.memo)
    }
}

struct MessageView: Encodable {
    let id, kind, title, body, createdAt: String
    let read: Bool
    init(_ m: SiteMessageRecord) {
        (id, kind, title, body) = (m.id, m.kind, m.title, m.body)
        (createdAt, read) = (RFC3339.format(micros: m.createdAtMicros), m.readAtMicros != nil)
    }
}
