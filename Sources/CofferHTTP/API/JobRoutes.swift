import CofferCore
import CofferServices
import Hummingbird

/// N1: which instance ran which scheduled job, when, and what it did — to see job lag and a lease taken over after an
/// instance died.
struct JobRoutes: Sendable {
    let routes: Routes

    func register(on v1: RouterGroup<CofferContext>) {
        v1.get("operator/job-runs", use: list)
    }

    @Sendable func list(_ request: Request, _ context: CofferContext) async throws -> Response {
        try Access.requireOperator(try await routes.authenticate(request))
        let params = request.queryDictionary
        var job: String?
        if let name = params["job"] {
            guard ScheduledJob(rawValue: name) != nil else {
                throw CofferError.invalidField("job", "one of " + ScheduledJob.allCases.map(\.rawValue).joined(separator: ", "))
            }
            job = name
        }
        var limit = 100
        if let text = params["limit"] {
            guard let n = Int(text), (1...1000).contains(n) else { throw CofferError.invalidField("limit", "a whole number from 1 to 1000") }
            limit = n
        }
        let runs = try await routes.engine.store.jobRuns(job: job, limit: limit)
        struct Item: Encodable {
            let job: String, run: Int64, holder: String, startedAt: String, finishedAt: String?, items: Int?, error: String?
        }
        struct Page: Encodable { let items: [Item] }
        return try JSON.response(Page(items: runs.map {
            Item(job: $0.job, run: $0.run, holder: $0.holder, startedAt: RFC3339.format(micros: $0.startedAtMicros),
                 finishedAt: $0.finishedAtMicros.map { RFC3339.format(micros: $0) }, items: $0.items, error: $0.error)
        }))
    }
}
