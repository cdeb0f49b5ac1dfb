import ArgumentParser
import CofferChannels
import CofferCore
import CofferHTTP
import CofferServices
import CofferStorage
import CofferWeb
import Foundation
import Metrics
import Prometheus
import Hummingbird
import Logging

@main
struct Coffer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coffer",
        abstract: "Coffer — a self-hosted billing center (费用中心).",
        subcommands: [Serve.self, Migrate.self, Verify.self, Backup.self, Restore.self, PlatformKey.self, OperatorCommand.self, Bench.self])
}

/// Where the data lives: PostgreSQL when a URL is given, otherwise embedded SQLite in the data directory.
struct DatabaseOptions: ParsableArguments {
    @Option(help: "postgres://user:pass@host:port/db, or sqlite:PATH. Default: $COFFER_DATABASE_URL, else SQLite in --data-dir.")
    var database: String?

    @Option(help: "Directory for the embedded SQLite database and demo credentials.")
    var dataDir: String = "./coffer-data"

    var location: DatabaseLocation {
        if let url = database ?? ProcessInfo.processInfo.environment["COFFER_DATABASE_URL"], !url.isEmpty {
            return .parse(url)
        }
        return .sqlite(path: dataDir + "/coffer.sqlite")
    }

    /// PostgreSQL commits several transactions per WAL flush, so two batches in flight overlap; more made each batch
    /// smaller and cost more CPU per charge on the 2-core machine (docs/PERFORMANCE.md). SQLite has one writer.
    var defaultLedgerWorkers: Int {
        if case .postgres = location { return 2 }
        return 1
    }

    var displayName: String {
        switch location {
        case .sqlite(let path): "sqlite \(path)"
        case .postgres(let url, _): "postgres \(Self.redact(url))"
        }
    }

    /// Never print a database password.
    static func redact(_ url: String) -> String {
        guard var c = URLComponents(string: url) else { return "postgres://…" }
        if c.password != nil { c.password = "***" }
        return c.string ?? "postgres://…"
    }

    func openStore() async throws -> SQLStore {
        let store = try await SQLStore.open(location)
        do {
            try await store.migrate()
        } catch {
            // A pool must be shut down before it goes away, or it traps; the migration's own error is the one to see.
            await store.shutdown()
            throw error
        }
        return store
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the Coffer server.")

    @OptionGroup var db: DatabaseOptions
    @Option(help: "Address to listen on.") var host = "127.0.0.1"
    @Option(help: "Port to listen on.") var port = 8080
    @Flag(help: "Create (once) a platform key and a demo account, print them, and enable the sandbox channel.") var demo = false
    @Flag(help: "Enable the sandbox test channel (moves no real money).") var sandbox = false
    @Flag(help: "Enable the sandbox clock: POST /v1/sandbox/clock moves every time rule forward (on with --demo; never in production).")
    var sandboxClock = false
    @Option(help: "Most ledger operations applied in one transaction (1–8192).") var ledgerMaxBatch = 512
    @Option(help: "Microseconds a ledger batch may wait for more operations before it starts (0–100000; 0: a batch forms while the previous one commits).")
    var ledgerMaxWaitMicros = 0
    @Option(help: "Ledger batches in flight at once (1–64; default 2 on PostgreSQL, 1 on SQLite).") var ledgerWorkers: Int?
    @Option(help: "JSON file with payment channel settings (see README). Default: $COFFER_CHANNELS_FILE.") var channelsFile: String?
    @Flag(help: "Leave the Secure flag off the console's cookies: only for plain HTTP on a host name other than localhost.")
    var insecureCookies = false
    @Flag(help: "Serve the API only, without the web console.") var noConsole = false
    @Option(help: "Log lines as text or as JSON objects (json: one per line, with the request id). Default: $COFFER_LOG_FORMAT or text.")
    var logFormat: String?
    @Option(help: "Serve Prometheus metrics at /metrics to callers with this bearer token. Default: $COFFER_METRICS_TOKEN; none: /metrics is off.")
    var metricsToken: String?
    @Option(help: "B2: seconds after a cycle ends before the jobs loop settles it, so late usage joins its cycle (default 900).")
    var settlementGraceSeconds: Int64 = 900
    @Flag(help: "O8: let customers (owner, finance) refund their own prepaid resources; without it only the platform key refunds.")
    var selfServiceRefunds = false
    @Option(help: "Seconds between runs of each scheduled job across all instances (1–3600).") var jobIntervalSeconds = 5
    @Option(help: "Seconds a job stays with the instance that claimed it without a renewal (3–3600): how long a killed instance's jobs wait.")
    var jobLeaseSeconds = 60
    @Option(help: "SMTP relay for e-mail notices: smtp://user:password@host:587 (STARTTLS required) or smtp+plain://host:25. Default: $COFFER_SMTP_URL; none: notices are logged, not sent.")
    var smtpUrl: String?
    @Option(help: "The From address of e-mail notices. Default: $COFFER_SMTP_FROM.") var smtpFrom: String?
    @Option(help: "PEM file of the certificate authorities that sign the SMTP relay's certificate, instead of the system's. Default: $COFFER_SMTP_CA_FILE.")
    var smtpCaFile: String?
    @Option(help: "The address of a load balancer in front (repeatable): from it the client's address is read from X-Forwarded-For. Default: $COFFER_TRUSTED_PROXIES (comma-separated).")
    var trustedProxy: [String] = []

    func validate() throws {
        guard (1...8192).contains(ledgerMaxBatch) else { throw ValidationError("--ledger-max-batch must be between 1 and 8192") }
        guard (0...100_000).contains(ledgerMaxWaitMicros) else {
            throw ValidationError("--ledger-max-wait-micros must be between 0 and 100000")
        }
        if let w = ledgerWorkers, !(1...64).contains(w) { throw ValidationError("--ledger-workers must be between 1 and 64") }
        guard (1...3600).contains(jobIntervalSeconds) else { throw ValidationError("--job-interval-seconds must be between 1 and 3600") }
        guard (3...3600).contains(jobLeaseSeconds) else { throw ValidationError("--job-lease-seconds must be between 3 and 3600") }
        guard (0...(400 * 86_400 * 365)).contains(settlementGraceSeconds) else {
            throw ValidationError("--settlement-grace-seconds must be between 0 and 12614400000")
        }
    }

    func run() async throws {
        switch logFormat ?? ProcessInfo.processInfo.environment["COFFER_LOG_FORMAT"] ?? "text" {
        case "json": LoggingSystem.bootstrap { JSONLogHandler(label: $0) }
        case "text": break
        case let other: throw ValidationError("--log-format must be text or json, not \(other)")
        }
        var logger = Logger(label: "coffer")
        logger.logLevel = .info
        // swift-metrics → Prometheus, bootstrapped before anything records a metric.
        var metricsExport: MetricsExport?
        if let token = metricsToken ?? ProcessInfo.processInfo.environment["COFFER_METRICS_TOKEN"], !token.isEmpty {
            let registry = PrometheusCollectorRegistry()
            MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
            metricsExport = MetricsExport(registry: registry, token: token)
        }
        let store = try await db.openStore()
        let sandboxEnabled = demo || sandbox || ProcessInfo.processInfo.environment["COFFER_SANDBOX"] == "1"
        let sandboxChannel = sandboxEnabled
            ? SandboxChannel(secret: ProcessInfo.processInfo.environment["COFFER_SANDBOX_SECRET"] ?? Secrets.token(prefix: "sbx"))
            : nil
        var channels: [any PaymentChannel] = sandboxChannel.map { [$0] } ?? []
        var engineSettings = CofferEngine.Settings()
        engineSettings.bank.receiptDirectory = db.dataDir + "/receipts"
        engineSettings.settlement.graceSeconds = settlementGraceSeconds
        engineSettings.webhookTransport = HTTPWebhookTransport()
        engineSettings.selfServiceRefunds = selfServiceRefunds
        let env = ProcessInfo.processInfo.environment
        var mailLine = "e-mail: no SMTP relay configured (--smtp-url); notices are logged, not sent"
        if let url = smtpUrl ?? env["COFFER_SMTP_URL"], !url.isEmpty {
            guard let from = smtpFrom ?? env["COFFER_SMTP_FROM"] else { throw ValidationError("--smtp-from is needed with --smtp-url") }
            let smtp = try SMTPSettings.parse(url: url, from: from, caFile: smtpCaFile ?? env["COFFER_SMTP_CA_FILE"])
            engineSettings.noticeSenders = [try SMTPNoticeSender(settings: smtp), LoggingNoticeSender(medium: .sms)]
            mailLine = "e-mail: notices through SMTP relay \(smtp.host):\(smtp.port) (\(smtp.security == .starttls ? "STARTTLS" : "no TLS")) from \(from)"
        }
        engineSettings.noticeRenderer = try CatalogNoticeRenderer()
        let emailLine = mailLine
        engineSettings.jobs.intervalSeconds = jobIntervalSeconds
        engineSettings.jobs.leaseSeconds = jobLeaseSeconds
        if let path = channelsFile ?? ProcessInfo.processInfo.environment["COFFER_CHANNELS_FILE"], !path.isEmpty {
            let file = try ChannelsFile.load(path: path)
            channels += file.channels
            engineSettings.recharge.channelLimits.merge(file.limits) { $1 }
            engineSettings.recharge.feeRules = file.fees
            if let bank = file.bank {
                engineSettings.bank.payeeName = bank.payeeName
                engineSettings.bank.bankName = bank.bankName
                engineSettings.bank.collectionAccount = bank.collectionAccount
                if let memo = bank.memoFormat { engineSettings.bank.memoFormat = memo }
                if let words = bank.blockedKeywords { engineSettings.bank.blockedKeywords = words }
            }
        }
        engineSettings.ledger = LedgerWriterSettings(maxBatchSize: ledgerMaxBatch, maxWaitMicros: ledgerMaxWaitMicros,
                                                     workers: ledgerWorkers ?? db.defaultLedgerWorkers)
        // The sandbox clock moves every time rule; it is the engine's clock, so nothing reads the system's time around it.
        let clock: SandboxClock? = (demo || sandboxClock)
            ? SandboxClock(path: db.dataDir + "/sandbox-clock") : nil
        if clock != nil { try FileManager.default.createDirectory(atPath: db.dataDir, withIntermediateDirectories: true) }
        let engine = CofferEngine(store: store, clock: clock ?? SystemClock(), channels: channels, settings: engineSettings,
                                  logger: logger)
        let demoLines = demo ? try await DemoData.ensure(engine: engine, dataDir: db.dataDir) : []
        var settings = ServerSettings()
        settings.host = host
        settings.port = port
        settings.jobIntervalSeconds = jobIntervalSeconds
        let database = db.displayName
        let realChannels = channels.filter(\.movesRealMoney).map(\.name)
        var deps = HTTPDependencies(engine: engine, sandbox: sandboxChannel, sandboxClock: clock, metrics: metricsExport)
        deps.trustedProxies = Set(trustedProxy.isEmpty
            ? (ProcessInfo.processInfo.environment["COFFER_TRUSTED_PROXIES"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            : trustedProxy).subtracting([""])
        var webSettings = WebSettings()
        webSettings.secureCookies = !insecureCookies
        let modules: [any RouteModule] = noConsole ? [] : [try await WebConsole.load(deps: deps, settings: webSettings)]
        let qrLine = QRCode.available ? nil : "console: libqrencode not found, payment QR codes are shown as links (apt-get install libqrencode4)"
        let app = buildApplication(deps, settings: settings, logger: logger, modules: modules) { port in
            say("Coffer is running on http://\(host == "127.0.0.1" ? "localhost" : host):\(port) (database: \(database))")
            if database.hasPrefix("sqlite") {
                say("database: SQLite serves one instance; to run several Coffer servers, give them one PostgreSQL (--database)")
            }
            if !modules.isEmpty { say("console: http://\(host == "127.0.0.1" ? "localhost" : host):\(port)/ (operator desk: /desk)") }
            if let qrLine, !modules.isEmpty { say(qrLine) }
            say(emailLine)
            if sandboxEnabled { say("sandbox channel: enabled (test channel, moves no real money)") }
            if let clock { say("sandbox clock: enabled (POST /v1/sandbox/clock moves time forward; now \(clock.offsetSeconds) s ahead)") }
            for name in realChannels { say("payment channel: \(name)") }
            for line in demoLines { say(line) }
        }
        try await app.runService()
        await store.shutdown()
    }
}

/// Operators sign in to the desk (/desk); they are staff, not users of an account.
struct OperatorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "operator",
        abstract: "Create an operator login for the desk. The password is read from $COFFER_OPERATOR_PASSWORD or standard input.")
    @OptionGroup var db: DatabaseOptions
    @Option(help: "The operator's e-mail address (the login).") var email: String
    @Option(help: "The operator's name.") var name: String

    func run() async throws {
        let password = ProcessInfo.processInfo.environment["COFFER_OPERATOR_PASSWORD"]
            ?? readLine(strippingNewline: true) ?? ""
        let store = try await db.openStore()
        let engine = CofferEngine(store: store, channels: [])
        do {
            let op = try await engine.console.createOperator(email: email, name: name, password: password, actor: "cli:\(NSUserName())")
            await store.shutdown()
            say("operator \(op.email) created (\(op.id)); sign in at /desk/login")
        } catch {
            await store.shutdown()
            throw error
        }
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Create or upgrade the database schema.")
    @OptionGroup var db: DatabaseOptions
    func run() async throws {
        let store = try await db.openStore()
        await store.shutdown()
        print("schema is up to date (\(db.displayName))")
    }
}

/// The way a provider gets its first (and every further) platform key in production.
struct PlatformKey: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "platform-key",
        abstract: "Create a platform (operator) API key and print it once; only its SHA-256 digest is stored.")
    @OptionGroup var db: DatabaseOptions
    @Option(help: "A name that says who uses the key, e.g. 'compute-service'.") var name: String

    func run() async throws {
        let store = try await db.openStore()
        let engine = CofferEngine(store: store, channels: [])
        let key = try await engine.accounts.createPlatformKey(name: name, actor: "cli:\(NSUserName())")
        await store.shutdown()
        say("platform key: \(key.secret)")
        say("key id: \(key.id) (shown once; store it in your secret manager)")
    }
}

struct Verify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Recompute every wallet from the journal and the audit log's hash chain; exit non-zero, naming what differs, on any mismatch.")
    @OptionGroup var db: DatabaseOptions
    func run() async throws {
        let store = try await db.openStore()
        let problems = try await store.verify()
        let accounts = try await store.accountIds(limit: Int.max / 2).count
        let head = try await store.auditChainHead()
        await store.shutdown()
        if problems.isEmpty {
            // Z4: the head, to be noted down outside Coffer — a chain rewritten from the start would change it.
            print("verify: \(accounts) accounts, every balance equals its postings and every entry balances; "
                  + "the audit chain of \(head.seq) records is intact (head \(head.hash))")
            return
        }
        for p in problems { print("verify: MISMATCH account \(p.accountId): \(p.detail)") }
        throw ExitCode(1)
    }
}

/// `coffer backup --to FILE`: an online backup of the SQLite database while the server keeps running, then verified.
struct Backup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the SQLite database to a new file while the server runs (one consistent snapshot), then verify the copy.")
    @OptionGroup var db: DatabaseOptions
    @Option(help: "The backup file to create (must not exist).") var to: String

    func run() async throws {
        let store = try await db.openStore()
        do { try await store.backup(to: to) } catch {
            await store.shutdown()
            throw ValidationError(String(describing: error))
        }
        await store.shutdown()
        let copy = try await SQLStore.open(.sqlite(path: to))
        let problems = try await copy.verify()
        let accounts = try await copy.accountIds(limit: Int.max / 2).count
        await copy.shutdown()
        guard problems.isEmpty else {
            for p in problems { print("backup: MISMATCH account \(p.accountId): \(p.detail)") }
            throw ExitCode(1)
        }
        print("backup: \(to) written and verified (\(accounts) accounts, every balance equals its postings)")
    }
}

/// `coffer restore --from FILE`: replaces the SQLite database with a verified backup. Stop the server first.
struct Restore: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replace the SQLite database with a backup (stop the server first); the backup is verified before it is used.")
    @OptionGroup var db: DatabaseOptions
    @Option(help: "The backup file (made by coffer backup).") var from: String
    @Flag(help: "Replace an existing database.") var force = false

    func run() async throws {
        guard case .sqlite(let path) = db.location else {
            throw ValidationError("coffer restore replaces SQLite databases; restore PostgreSQL with pg_restore (README)")
        }
        guard FileManager.default.fileExists(atPath: from) else { throw ValidationError("\(from) does not exist") }
        let backup = try await SQLStore.open(.sqlite(path: from))
        let problems = try await backup.verify()
        await backup.shutdown()
        guard problems.isEmpty else { throw ValidationError("\(from) does not verify: \(problems[0]); it was not restored") }
        let fm = FileManager.default
        if fm.fileExists(atPath: path), !force {
            throw ValidationError("\(path) exists: stop the server, then pass --force to replace it")
        }
        try fm.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let temporary = path + ".restoring"
        try? fm.removeItem(atPath: temporary)
        try fm.copyItem(atPath: from, toPath: temporary)
        // The old database's WAL and shared memory belong to it, not to the restored file.
        for suffix in ["-wal", "-shm"] { try? fm.removeItem(atPath: path + suffix) }
        if fm.fileExists(atPath: path) { try fm.removeItem(atPath: path) }
        try fm.moveItem(atPath: temporary, toPath: path)
        let store = try await db.openStore()
        let accounts = try await store.accountIds(limit: Int.max / 2).count
        await store.shutdown()
        print("restore: \(path) restored from \(from) (\(accounts) accounts); start the server again")
    }
}

/// Unbuffered: the credentials must reach a log file or pipe at once, not when a buffer fills.
func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
