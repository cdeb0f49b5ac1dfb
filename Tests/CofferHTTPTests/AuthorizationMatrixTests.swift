import CofferCore
import CofferHTTP
import CofferServices
import CofferTestSupport
import Foundation
import HTTPTypes
import Testing

/// W12, Z4: every operation of the OpenAPI document against every kind of caller, the expected answer of each cell in one
/// table. A documented operation without a row fails the test, so a new route cannot ship without its row.
@Suite("Authorization matrix: every route × every caller")
struct AuthorizationMatrixTests {
    /// What a caller gets: `U` 401 unauthorized, `F` 403 forbidden, `H` 404 account_not_found (another account's objects
    /// are not revealed), `A` allowed (past authorization: any answer but those three and no 5xx), `P` public or
    /// signature-checked (any answer below 500).
    enum Cell: Character { case u = "U", f = "F", h = "H", a = "A", p = "P" }

    /// Columns: no key, a wrong key, owner, finance, member of the account, owner of another account, platform key.
    static let callers = ["no key", "wrong key", "owner", "finance", "member", "another account's owner", "platform key"]

    static let matrix: [String: String] = [
        "GET /health": "PPPPPPP",
        "GET /openapi.yaml": "PPPPPPP",
        "GET /metrics": "UUUUUUU",
        "POST /v1/accounts": "UUFFFFA",
        "GET /v1/accounts/{accountId}": "UUAAAHA",
        "PATCH /v1/accounts/{accountId}": "UUAFFHA",
        "POST /v1/accounts/{accountId}/users": "UUAFFHA",
        "POST /v1/accounts/{accountId}/api-keys": "UUAFFHA",
        "POST /v1/accounts/{accountId}/api-keys/{keyId}/revoke": "UUAFFHA",
        "GET /v1/accounts/{accountId}/wallet": "UUAAFHA",
        "POST /v1/accounts/{accountId}/gifts": "UUFFFHA",
        "POST /v1/accounts/{accountId}/adjustments": "UUFFFHA",
        "POST /v1/accounts/{accountId}/advances": "UUFFFHA",
        "POST /v1/accounts/{accountId}/recharges": "UUAAFHA",
        "GET /v1/accounts/{accountId}/recharges/{rechargeId}": "UUAAFHA",
        "POST /v1/accounts/{accountId}/recharges/{rechargeId}/sync": "UUAAFHA",
        "POST /v1/sandbox/recharges/{rechargeId}/pay": "UUAAFHA",
        "POST /v1/channels/{channel}/notifications": "PPPPPPP",
        "GET /v1/channels": "UUAAAAA",
        "POST /v1/accounts/{accountId}/freezes": "UUFFFHA",
        "GET /v1/accounts/{accountId}/freezes/{freezeId}": "UUAAFHA",
        "POST /v1/accounts/{accountId}/freezes/{freezeId}/capture": "UUFFFHA",
        "POST /v1/accounts/{accountId}/freezes/{freezeId}/release": "UUFFFHA",
        "POST /v1/accounts/{accountId}/charges": "UUFFFHA",
        "GET /v1/accounts/{accountId}/charges/{chargeId}": "UUAAFHA",
        "POST /v1/accounts/{accountId}/charges/{chargeId}/refunds": "UUFFFHA",
        "GET /v1/accounts/{accountId}/transactions": "UUAAFHA",
        "POST /v1/batch/charges": "UUFFFFA",
        "POST /v1/batch/freezes": "UUFFFFA",
        "POST /v1/accounts/{accountId}/code-redemptions": "UUAAFHA",
        "GET /v1/accounts/{accountId}/bank-transfer": "UUAAFHA",
        "POST /v1/accounts/{accountId}/remittances": "UUAAFHA",
        "GET /v1/accounts/{accountId}/remittances": "UUAAFHA",
        "GET /v1/accounts/{accountId}/remittances/{remittanceId}/receipt": "UUAAFHA",
        "GET /v1/accounts/{accountId}/payer-names": "UUAAFHA",
        "POST /v1/accounts/{accountId}/payer-names": "UUAAFHA",
        "POST /v1/accounts/{accountId}/payer-names/agreement": "UUAFFHA",
        "GET /v1/accounts/{accountId}/statement-lines": "UUAAFHA",
        "GET /v1/accounts/{accountId}/messages": "UUAAAHA",
        "GET /v1/accounts/{accountId}/channel-refunds": "UUAAFHA",
        "GET /v1/operator/channel-refunds": "UUFFFFA",
        "POST /v1/operator/code-batches": "UUFFFFA",
        "PUT /v1/operator/products/{productId}": "UUFFFFA",
        "GET /v1/products": "UUAAAAA",
        "POST /v1/usage-records": "UUFFFFA",
        "POST /v1/operator/settlement-runs": "UUFFFFA",
        "GET /v1/operator/settlement-runs": "UUFFFFA",
        "GET /v1/accounts/{accountId}/projects": "UUAAAHA",
        "POST /v1/accounts/{accountId}/projects": "UUAAFHA",
        "PATCH /v1/accounts/{accountId}/projects/{projectId}": "UUAAFHA",
        "GET /v1/accounts/{accountId}/resources": "UUAAAHA",
        "PUT /v1/accounts/{accountId}/resources/{resourceId}": "UUFFFHA",
        "PATCH /v1/accounts/{accountId}/resources/{resourceId}": "UUAAFHA",
        "GET /v1/accounts/{accountId}/bills/{month}": "UUAAFHA",
        "GET /v1/accounts/{accountId}/bills/{month}/summary": "UUAAFHA",
        "GET /v1/accounts/{accountId}/bills/{month}/resources": "UUAAFHA",
        "GET /v1/accounts/{accountId}/bills/{month}/lines": "UUAAFHA",
        "GET /v1/accounts/{accountId}/bill-settings": "UUAAFHA",
        "PUT /v1/accounts/{accountId}/bill-settings": "UUAAFHA",
        "GET /v1/accounts/{accountId}/cost-estimate": "UUAAFHA",
        "POST /v1/accounts/{accountId}/bill-compensations": "UUFFFHA",
        "POST /v1/accounts/{accountId}/orders": "UUFFFHA",
        "GET /v1/accounts/{accountId}/orders": "UUAAFHA",
        "GET /v1/accounts/{accountId}/orders/{orderId}": "UUAAFHA",
        "POST /v1/accounts/{accountId}/orders/{orderId}/cancel": "UUAAFHA",
        "POST /v1/accounts/{accountId}/orders/{orderId}/deliver": "UUFFFHA",
        "POST /v1/accounts/{accountId}/orders/{orderId}/delivery-failed": "UUFFFHA",
        "POST /v1/accounts/{accountId}/order-payments": "UUAAFHA",
        "POST /v1/accounts/{accountId}/order-payments/preview": "UUAAFHA",
        "GET /v1/accounts/{accountId}/coupons": "UUAAFHA",
        "GET /v1/accounts/{accountId}/prepaid-resources": "UUAAFHA",
        "POST /v1/accounts/{accountId}/resources/{resourceId}/refund": "UUFFFHA",
        "GET /v1/accounts/{accountId}/resource-refunds": "UUAAFHA",
        "POST /v1/accounts/{accountId}/unified-expiry/preview": "UUAAFHA",
        "POST /v1/accounts/{accountId}/unified-expiry": "UUAAFHA",
        "POST /v1/accounts/{accountId}/coupon-redemptions": "UUAAFHA",
        "POST /v1/operator/coupons": "UUFFFFA",
        "POST /v1/operator/webhook-endpoints": "UUFFFFA",
        "GET /v1/operator/webhook-endpoints": "UUFFFFA",
        "POST /v1/operator/webhook-endpoints/{endpointId}/disable": "UUFFFFA",
        "POST /v1/operator/webhook-endpoints/{endpointId}/enable": "UUFFFFA",
        "GET /v1/operator/webhook-deliveries": "UUFFFFA",
        "GET /v1/operator/audit-events": "UUFFFFA",
        "GET /v1/operator/job-runs": "UUFFFFA",
        "GET /v1/accounts/{accountId}/audit-events": "UUAFFHA",
        "GET /v1/sandbox/clock": "UUFFFFA",
        "POST /v1/sandbox/clock": "UUFFFFA",
        "GET /v1/accounts/{accountId}/bill-compensations": "UUAAFHA",
        "GET /v1/operator/code-batches/{batchId}/codes.csv": "UUFFFFA",
        "POST /v1/operator/code-batches/{batchId}/void": "UUFFFFA",
        "GET /v1/operator/remittances": "UUFFFFA",
        "GET /v1/operator/remittances/{remittanceId}/receipt": "UUFFFFA",
        "POST /v1/operator/remittances/{remittanceId}/approve": "UUFFFFA",
        "POST /v1/operator/remittances/{remittanceId}/reject": "UUFFFFA",
        "POST /v1/operator/statements": "UUFFFFA",
        "POST /v1/operator/statement-lines": "UUFFFFA",
        "GET /v1/operator/statement-lines": "UUFFFFA",
        "POST /v1/operator/statement-lines/{lineId}/assign": "UUFFFFA",
        "POST /v1/operator/statement-lines/{lineId}/refund": "UUFFFFA",
    ]

    static func documentedOperations() -> [String] {
        OpenAPIDocument.operations.flatMap { op in op.methods.map { "\($0) /" + op.segments.joined(separator: "/") } }
    }

    @Test("Every documented operation has a row, and every row is documented")
    func everyOperationHasARow() {
        let documented = Set(Self.documentedOperations())
        #expect(documented.subtracting(Self.matrix.keys).sorted() == [], "operations without a row in the matrix")
        #expect(Set(Self.matrix.keys).subtracting(documented).sorted() == [], "rows for undocumented operations")
        for (op, row) in Self.matrix { #expect(row.count == Self.callers.count && row.allSatisfy { Cell(rawValue: $0) != nil }, "\(op)") }
    }

    @Test("W12 Z4 each cell answers as the matrix says", arguments: Backend.available)
    func cells(backend: Backend) async throws {
        try await APIFixture.run(backend) { api in
            let a = api.accountId
            let env = api.env
            // Real objects of the account for the paths that name one.
            _ = try await api.post("/v1/accounts/\(a)/adjustments", key: api.platformKey, #"{"amount":"100.00","bucket":"cash","reason":"matrix"}"#)
            let recharge = try #require(try await api.post("/v1/accounts/\(a)/recharges", key: api.ownerKey,
                                                           #"{"amount":"1.00","channel":"sandbox"}"#).string("id"))
            let freeze = try #require(try await api.post("/v1/accounts/\(a)/freezes", key: api.platformKey, #"{"amount":"1.00"}"#)
                .string("freeze", "id"))
            let charge = try #require(try await api.post("/v1/accounts/\(a)/charges", key: api.platformKey,
                                                         #"{"amount":"1.00","mode":"postpaid"}"#).string("charge", "id"))
            let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A] + Array(repeating: 0, count: 64)
            let remittance = try await env.engine.bank.submitRemittance(
                accountId: a, RemittanceInput(payerName: "矩阵公司", payerAccount: "6222", payerBank: "工商银行", amountText: "1.00",
                                              remittedOn: "2026-11-20", bankSerial: nil, receipt: png, resubmissionOf: nil),
                idempotencyKey: "matrix-remittance", actor: "test").0.id
            let batch = try await env.engine.codes.createBatch(amountText: "1.00", bucket: .cash,
                                                               validUntilMicros: env.clock.nowMicros() + 86_400_000_000, count: 1,
                                                               memo: nil, idempotencyKey: "matrix-batch", actor: "test").0.id
            let (other, otherOwner) = try await env.createAccount()
            let otherKey = try await env.engine.accounts.createAccountKey(accountId: other, userId: otherOwner, name: "matrix",
                                                                          idempotencyKey: "matrix-key", actor: "test").0.secret
            let keys: [String?] = [nil, "cak_" + String(repeating: "0", count: 48), api.ownerKey, api.financeKey, api.memberKey,
                                   otherKey, api.platformKey]
            let values = ["accountId": a, "rechargeId": recharge, "freezeId": freeze, "chargeId": charge,
                          "remittanceId": remittance, "batchId": batch, "lineId": "sl_matrix", "channel": "sandbox",
                          "month": "2026-11"]
            for op in Self.documentedOperations().sorted() {
                guard let row = Self.matrix[op] else { continue }
                let parts = op.split(separator: " ", maxSplits: 1)
                let method = HTTPRequest.Method(String(parts[0]))!
                let path = "/" + parts[1].split(separator: "/").map { segment in
                    segment.hasPrefix("{") ? values[String(segment.dropFirst().dropLast())] ?? "x" : String(segment)
                }.joined(separator: "/")
                for (column, cell) in row.enumerated() {
                    let r = try await api.call(method, path, key: keys[column],
                                               idempotencyKey: method == .post ? env.engine.ids.make("mx") : nil,
                                               body: method == .post ? "{}" : nil)
                    let label = "\(op) as \(Self.callers[column]): \(r.status) \(r.text.prefix(160))"
                    #expect(r.status < 500, "\(label)")
                    switch Cell(rawValue: cell)! {
                    case .u: #expect(r.status == 401 && r.code == "unauthorized", "\(label)")
                    case .f: #expect(r.status == 403 && r.code == "forbidden", "\(label)")
                    case .h: #expect(r.status == 404 && r.code == "account_not_found", "\(label)")
                    case .a: #expect(![401, 403].contains(r.status) && r.code != "account_not_found" && r.code != "route_not_found"
                                     && r.code != "method_not_allowed", "\(label)")
                    case .p: break
                    }
                }
            }
        }
    }
}
