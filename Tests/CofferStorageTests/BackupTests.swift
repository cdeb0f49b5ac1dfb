import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Testing

/// Backups (production-operation issue, item 5): an SQLite backup taken while charges are being written is one consistent
/// snapshot — it opens, migrates and verifies on its own.
@Suite("Backups of SQLite under load")
struct BackupTests {
    @Test("W9 a backup taken under load verifies: every balance equals its postings in the copy")
    func backupUnderLoad() async throws {
        try await TestEnvironment.with(.sqlite) { env in
            let accounts = try await (0..<4).asyncMap { _ in try await env.fundedAccount(cashMinor: 1_000_000) }
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("coffer-backup-\(UUID().uuidString).sqlite").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            let writer = env.engine.writer, ids = env.engine.ids
            try await withThrowingTaskGroup(of: Void.self) { group in
                for client in 0..<8 {
                    group.addTask {
                        for n in 0..<60 {
                            _ = try await writer.submit(LedgerRequest(
                                .charge(accountId: accounts[(client + n) % accounts.count], chargeId: ids.make("chg"), amountMinor: 1,
                                        mode: .prepaid, reference: nil),
                                idempotencyKey: "load-\(client)-\(n)", actor: "test"))
                        }
                    }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(50))
                    try await env.store.backup(to: path)
                }
                try await group.waitForAll()
            }
            await #expect(throws: (any Error).self) { try await env.store.backup(to: path) }  // never over an existing file
            let copy = try await SQLStore.open(.sqlite(path: path))
            try await copy.migrate()
            #expect(try await copy.verify().isEmpty)
            let charged = try await accounts.asyncMap { try await copy.wallet(accountId: $0)?.cashMinor ?? -1 }
            #expect(charged.allSatisfy { (1_000_000 - 480)...1_000_000 ~= $0 }, "\(charged)")
            await copy.shutdown()
        }
    }
}

extension Sequence {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for e in self { out.append(try await transform(e)) }
        return out
    }
}
