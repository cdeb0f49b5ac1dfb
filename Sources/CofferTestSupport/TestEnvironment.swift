import CofferChannels
import CofferCore
import CofferServices
import CofferStorage
import Foundation
import Synchronization

/// The databases every storage and HTTP suite runs on. PostgreSQL joins when COFFER_TEST_POSTGRES_URL is set (the test
/// script sets it after starting its own server); COFFER_REQUIRE_POSTGRES=1 turns its absence into a failing test.
public enum Backend: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite, postgres
    public var description: String { rawValue }

    public static var postgresURL: String? {
        ProcessInfo.processInfo.environment["COFFER_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }
    public static var available: [Backend] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }
    public static var postgresRequired: Bool { ProcessInfo.processInfo.environment["COFFER_REQUIRE_POSTGRES"] == "1" }
}

public struct TestFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}

/// A fresh database (a new SQLite file, or a new PostgreSQL schema), an engine with a manual clock, and a running writer.
public final class TestEnvironment: Sendable {
    public static let sandboxSecret = "test-sandbox-secret-0123456789"
    public let backend: Backend
    public let store: SQLStore
    public let clock: ManualClock
    public let engine: CofferEngine
    public let sandbox: SandboxChannel
    private let writerTask: Task<Void, Never>
    private let cleanup: @Sendable () -> Void

    init(backend: Backend, store: SQLStore, clock: ManualClock, engine: CofferEngine, sandbox: SandboxChannel,
         cleanup: @escaping @Sendable () -> Void) {
        self.backend = backend
        self.store = store
        self.clock = clock
        self.engine = engine
        self.sandbox = sandbox
        self.cleanup = cleanup
        let writer = engine.writer
        writerTask = Task { await writer.run() }
    }

    /// A new, empty database: a SQLite file or a PostgreSQL schema, with what removes it.
    public static func freshDatabase(_ backend: Backend) throws -> (name: String, location: DatabaseLocation, cleanup: @Sendable () -> Void) {
        let name = "t_" + Secrets.token(prefix: "").prefix(16)
        switch backend {
        case .sqlite:
            let dir = FileManager.default.temporaryDirectory.appendingPathComponent("coffer-tests").path
            let path = dir + "/\(name).sqlite"
            return (name, .sqlite(path: path), {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            })
        case .postgres:
            guard let url = Backend.postgresURL else { throw TestFailure("COFFER_TEST_POSTGRES_URL is not set") }
            return (name, .postgres(url: url, schema: name), {})
        }
    }

    /// `channels` adds payment channels beside the sandbox; they get the environment's manual clock.
    public static func make(_ backend: Backend, settings: CofferEngine.Settings = .init(),
                            channels: (ManualClock) throws -> [any PaymentChannel] = { _ in [] }) async throws -> TestEnvironment {
        let (name, location, cleanup) = try freshDatabase(backend)
        let store = try await SQLStore.open(location)
        do { try await store.migrate() } catch {
            // A pool must be shut down before it goes away; the migration's own error is the one to see.
            await store.shutdown()
            throw error
        }
        let clock = ManualClock(micros: 1_796_097_600_000_000)
        var s = settings
        s.bcryptCost = 4
        if s.bank.receiptDirectory == BankTransferSettings().receiptDirectory {
            s.bank.receiptDirectory = FileManager.default.temporaryDirectory.appendingPathComponent("coffer-tests/\(name)-receipts").path
        }
        let sandbox = SandboxChannel(secret: sandboxSecret)
        let engine = CofferEngine(store: store, clock: clock, channels: [sandbox] + (try channels(clock)), settings: s)
        return TestEnvironment(backend: backend, store: store, clock: clock, engine: engine, sandbox: sandbox, cleanup: cleanup)
    }

    /// Runs a test body on a fresh environment, then checks `coffer verify`'s invariant and tears down.
    public static func with<R: Sendable>(_ backend: Backend, settings: CofferEngine.Settings = .init(),
                                         channels: (ManualClock) throws -> [any PaymentChannel] = { _ in [] },
                                         _ body: (TestEnvironment) async throws -> R) async throws -> R {
        let env = try await make(backend, settings: settings, channels: channels)
        do {
            let result = try await body(env)
            let problems = try await env.store.verify()
            await env.close()
            guard problems.isEmpty else { throw TestFailure("verify failed: \(problems)") }
            return result
        } catch {
            await env.close()
            throw error
        }
    }

    public func close() async {
        engine.writer.stop()
        await writerTask.value
        if backend == .postgres { try? await store.dropSchemaForTests() }
        await store.shutdown()
        cleanup()
        let receipts = engine.bank.settings.receiptDirectory
        if receipts.hasPrefix(FileManager.default.temporaryDirectory.path) { try? FileManager.default.removeItem(atPath: receipts) }
    }

    // MARK: helpers

    private static let counter = Counter()

    /// A new account with an owner; returns its id.
    public func createAccount(entity: String = "测试科技有限公司") async throws -> (accountId: String, ownerId: String) {
        let n = TestEnvironment.counter.next()
        let (created, _) = try await engine.accounts.createAccount(
            NewAccount(type: .personal, entityName: entity, taxId: nil, contactEmail: "c\(n)@example.com",
                       owner: NewUser(email: "owner-\(n)-\(Secrets.token(prefix: "").prefix(6))@example.com", name: "Owner \(n)",
                                      role: .owner, password: "correct horse battery")),
            idempotencyKey: "create-\(n)", actor: "test")
        return (created.account.id, created.owner.id)
    }

    @discardableResult
    public func submit(_ command: LedgerCommand, key: String? = nil) async throws -> LedgerOutcome {
        try await engine.writer.submit(LedgerRequest(command, idempotencyKey: key ?? engine.ids.make("idem"), actor: "test"))
    }

    /// An account holding this much cash (via an operator adjustment) and gift.
    public func fundedAccount(cashMinor: Int64 = 0, giftMinor: Int64 = 0) async throws -> String {
        let account = try await createAccount().accountId
        if cashMinor > 0 { _ = try await submit(.adjust(accountId: account, bucket: .cash, deltaMinor: cashMinor, reason: "test funding")).get() }
        if giftMinor > 0 { _ = try await submit(.grantGift(accountId: account, amountMinor: giftMinor, memo: nil)).get() }
        return account
    }

    public func wallet(_ accountId: String) async throws -> WalletBalances {
        guard let w = try await store.wallet(accountId: accountId) else { throw TestFailure("no wallet \(accountId)") }
        return w
    }
}

final class Counter: Sendable {
    private let value = Mutex(0)
    func next() -> Int { value.withLock { $0 += 1; return $0 } }
}

extension SQLStore {
    /// Test support: runs `body` with this store, then drops its PostgreSQL schema and closes it, whether or not `body`
    /// throws (migration tests open stores of their own).
    public func closingForTests(_ backend: Backend, _ body: (SQLStore) async throws -> Void) async throws {
        do {
            try await body(self)
        } catch {
            if backend == .postgres { try? await dropSchemaForTests() }
            await shutdown()
            throw error
        }
        if backend == .postgres { try? await dropSchemaForTests() }
        await shutdown()
    }
}

/// The code a refused call throws (nil: it was accepted) — for tests that expect the exact error.
public func refusalCode(_ body: () async throws -> Any) async -> ErrorCode? {
    do {
        _ = try await body()
        return nil
    } catch {
        return (error as? CofferError)?.code
    }
}
