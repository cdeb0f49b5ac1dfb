import CofferCore
import CofferServices
import Foundation
import Hummingbird

/// Batch endpoints for the provider's services: many charges or freezes across accounts in one request, each with its
/// own idempotency key and its own result. They share group commits with every other ledger write.
struct BatchRoutes: Sendable {
    static let maxOperations = 1_000
    let routes: Routes

    struct ChargeOperation: Decodable {
        let accountId: String
        let amount: String
        let mode: String
        let reference: String?
        let idempotencyKey: String
    }

    struct FreezeOperation: Decodable {
        let accountId: String
        let amount: String
        let expiresInSeconds: Int64?
        let reference: String?
        let idempotencyKey: String
    }

    struct Body<Operation: Decodable>: Decodable { let operations: [Operation] }

    /// One result per operation, in request order: the ledger write, or the problem that refused it.
    struct Result: Encodable {
        let index: Int
        let status: Int
        let replayed: Bool?
        let result: LedgerWriteView?
        let code: String?
        let detail: String?
    }

    struct Results: Encodable { let results: [Result] }

    @Sendable func charges(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await run(request, ChargeOperation.self) { (op: ChargeOperation) throws(CofferError) in
            let mode = try parseEnum(ChargeMode.self, op.mode, field: "mode")
            return (op.accountId, op.idempotencyKey,
                    .charge(accountId: op.accountId, chargeId: routes.engine.wallets.newChargeId(),
                            amountMinor: try MoneyFormat.parsePositive(op.amount), mode: mode,
                            reference: try optionalText(op.reference, field: "reference")))
        }
    }

    @Sendable func freezes(_ request: Request, _ context: CofferContext) async throws -> Response {
        try await run(request, FreezeOperation.self) { (op: FreezeOperation) throws(CofferError) in
            if let s = op.expiresInSeconds, !(1...31_536_000).contains(s) {
                throw CofferError.invalidField("expiresInSeconds", "must be between 1 and 31536000 (one year)")
            }
            return (op.accountId, op.idempotencyKey,
                    .freeze(accountId: op.accountId, freezeId: routes.engine.wallets.newFreezeId(),
                            amountMinor: try MoneyFormat.parsePositive(op.amount), expiresInSeconds: op.expiresInSeconds,
                            reference: try optionalText(op.reference, field: "reference")))
        }
    }

    private func run<Operation: Decodable>(
        _ request: Request, _ type: Operation.Type,
        _ command: (Operation) throws(CofferError) -> (accountId: String, key: String, LedgerCommand)
    ) async throws -> Response {
        let principal = try await routes.authenticate(request)
        try Access.requireOperator(principal)
        let body = try await JSON.decode(Body<Operation>.self, from: request, limitBytes: Limits.maxBatchBodyBytes)
        guard (1...Self.maxOperations).contains(body.operations.count) else {
            throw CofferError(.batchSizeInvalid, "Send 1 to \(Self.maxOperations) operations in one batch.")
        }
        // Operations that fail validation get their own problem; the others go to the ledger writer together.
        var results = [Result?](repeating: nil, count: body.operations.count)
        var submitted: [(index: Int, request: LedgerRequest)] = []
        for (index, op) in body.operations.enumerated() {
            do {
                let (accountId, key, ledgerCommand) = try command(op)
                guard !accountId.isEmpty, accountId.count <= 100 else { throw CofferError.notFound(.accountNotFound, accountId) }
                _ = try IdempotencyContext(scope: accountId, key: key, fingerprint: "")
                submitted.append((index, LedgerRequest(ledgerCommand, idempotencyKey: key, actor: principal.actor)))
            } catch let error as CofferError {
                results[index] = Self.problem(index, error)
            }
        }
        let outcomes = try await routes.engine.writer.submitAll(submitted.map(\.request))
        for ((index, _), outcome) in zip(submitted, outcomes) {
            switch outcome.result {
            case .success(let receipt):
                results[index] = Result(index: index, status: outcome.replayed ? 200 : 201, replayed: outcome.replayed,
                                        result: LedgerWriteView(receipt), code: nil, detail: nil)
            case .failure(let error):
                results[index] = Self.problem(index, error)
            }
        }
        return try JSON.response(Results(results: results.map { $0! }))
    }

    static func problem(_ index: Int, _ error: CofferError) -> Result {
        Result(index: index, status: error.kind.httpStatus.code, replayed: nil, result: nil, code: error.code.rawValue,
               detail: error.detail)
    }
}
