import CofferCore
import CofferServices
import Foundation
import Hummingbird
import Logging
import Metrics
import ServiceLifecycle

/// The OpenAPI document shipped with the server (Resources/openapi.yaml).
public enum OpenAPIDocument {
    public static let text: String = {
        guard let url = Bundle.module.url(forResource: "openapi", withExtension: "yaml"),
              let text = try? String(contentsOf: url, encoding: .utf8) else { return "openapi: 3.1.0\n" }
        return text
    }()

    /// The methods the document gives each path template ("/v1/accounts/{accountId}/freezes" → ["POST"]).
    public static let operations: [(segments: [Substring], methods: [String])] = {
        var result: [(segments: [Substring], methods: [String])] = []
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("  /"), line.hasSuffix(":") {
                result.append((line.dropFirst(2).dropLast().split(separator: "/"), []))
            } else if let method = ["get", "post", "put", "patch", "delete"].first(where: { line == "    \($0):" }),
                      !result.isEmpty {
                result[result.count - 1].methods.append(method.uppercased())
            }
        }
        return result
    }()

    /// The methods a documented path accepts, or [] when no documented path matches it.
    public static func methods(forPath path: String) -> [String] {
        let parts = path.split(separator: "/")
        for op in operations where op.segments.count == parts.count {
            if zip(op.segments, parts).allSatisfy({ $0.hasPrefix("{") || $0 == $1 }) { return op.methods }
        }
        return []
    }
}

/// Something served beside the API by the same server (the web console): its routes, and how it shows an error to a
/// browser that asked for HTML outside its own routes (an unknown page).
public protocol RouteModule: Sendable {
    func register(on router: Router<CofferContext>)
    func htmlError(_ request: Request, _ error: CofferError) async -> Response?
}

public func buildRouter(_ deps: HTTPDependencies, logger: Logger = Logger(label: "coffer.http"),
                        modules: [any RouteModule] = []) -> Router<CofferContext> {
    let router = Router(context: CofferContext.self)
    // Outermost, so that every answer — errors included — carries the request's id.
    router.add(middleware: RequestOriginMiddleware(trustedProxies: deps.trustedProxies))
    // Request counts and latency by route template, method and status (Hummingbird's, through swift-metrics).
    router.add(middleware: MetricsMiddleware())
    router.add(middleware: ProblemMiddleware(logger: logger, modules: modules))
    Routes(deps: deps).register(on: router)
    for module in modules { module.register(on: router) }
    return router
}

/// Runs the ledger writer's batch loop for as long as the application runs.
struct LedgerWriterService: Service {
    let writer: LedgerWriter
    func run() async throws {
        await withGracefulShutdownHandler {
            await writer.run()
        } onGracefulShutdown: {
            writer.stop()
        }
    }
}

/// Runs the due scheduled jobs whose lease this instance can take, looking every `intervalSeconds`.
struct JobsService: Service {
    let jobs: BackgroundJobs
    let intervalSeconds: Int
    let logger: Logger
    func run() async throws {
        let duration = Metrics.Timer(label: "coffer_jobs_run_seconds")
        // Job lag for alerts: `time() - coffer_jobs_last_success_timestamp_seconds` grows when scheduled work stops running
        // on this instance (per job: coffer_job_last_success_timestamp_seconds, on the instance that ran it).
        let lastSuccess = Gauge(label: "coffer_jobs_last_success_timestamp_seconds")
        while !Task.isCancelled && !Task.isShuttingDownGracefully {
            let started = ContinuousClock.now
            do {
                let (report, failures) = try await jobs.runDue()
                let took = ContinuousClock.now - started
                duration.recordNanoseconds(took.components.seconds * 1_000_000_000 + took.components.attoseconds / 1_000_000_000)
                for (job, error) in failures { logger.error("job \(job.rawValue) failed: \(String(describing: error))") }
                if failures.isEmpty { lastSuccess.record(Date().timeIntervalSince1970) }
                if report.freezesExpired + report.rechargesExpired + report.noticesDelivered + report.refundsFinished > 0 {
                    logger.info("jobs: \(report.freezesExpired) freezes expired, \(report.rechargesExpired) recharges expired, \(report.noticesDelivered) notices delivered, \(report.refundsFinished) channel refunds finished")
                }
            } catch {
                logger.error("jobs run failed: \(String(describing: error))")
            }
            try? await Task.sleep(for: .seconds(intervalSeconds))
        }
    }
}

public struct ServerSettings: Sendable {
    public var host = "127.0.0.1"
    public var port = 8080
    public var jobIntervalSeconds = 5
    public init() {}
}

public func buildApplication(_ deps: HTTPDependencies, settings: ServerSettings,
                             logger: Logger = Logger(label: "coffer"), modules: [any RouteModule] = [],
                             onServerRunning: @escaping @Sendable (Int) async -> Void = { _ in }) -> some ApplicationProtocol {
    Application(
        router: buildRouter(deps, logger: logger, modules: modules),
        configuration: .init(address: .hostname(settings.host, port: settings.port), serverName: "Coffer"),
        services: [LedgerWriterService(writer: deps.engine.writer),
                   JobsService(jobs: deps.engine.jobs, intervalSeconds: settings.jobIntervalSeconds, logger: logger)],
        onServerRunning: { channel in await onServerRunning(channel.localAddress?.port ?? settings.port) },
        logger: logger
    )
}
