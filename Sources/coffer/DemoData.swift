import CofferCore
import CofferServices
import Foundation

/// `serve --demo`: a platform key and a demo account, created once and remembered in the data directory so that every
/// start prints the same credentials. Demo only: the file holds secrets in plain text (mode 0600).
enum DemoData {
    struct Saved: Codable {
        var platformKey: String
        var accountId: String
        var ownerEmail: String
        var ownerPassword: String
        var ownerKey: String
        var operatorEmail: String?
        var operatorPassword: String?
    }

    static func ensure(engine: CofferEngine, dataDir: String) async throws -> [String] {
        let path = dataDir + "/demo-credentials.json"
        try FileManager.default.createDirectory(atPath: dataDir, withIntermediateDirectories: true)
        var saved: Saved
        if let data = FileManager.default.contents(atPath: path), let s = try? JSONDecoder().decode(Saved.self, from: data),
           try await engine.store.account(id: s.accountId) != nil {
            saved = s
        } else {
            let platform = try await engine.accounts.createPlatformKey(name: "demo platform key", actor: "system:demo")
            let password = "demo-" + Secrets.token(prefix: "").prefix(12)
            let email = "owner-\(Secrets.token(prefix: "").prefix(6))@demo.coffer.local"
            let (created, _) = try await engine.accounts.createAccount(
                NewAccount(type: .enterprise, entityName: "示例云科技有限公司 (Demo Cloud Co.)", taxId: "91310000MA1FL8XQ30",
                           contactEmail: email, owner: NewUser(email: email, name: "Demo Owner", role: .owner, password: password)),
                idempotencyKey: "demo-account-" + Secrets.token(prefix: "").prefix(8), actor: "system:demo")
            let (ownerKey, _) = try await engine.accounts.createAccountKey(
                accountId: created.account.id, userId: created.owner.id, name: "demo owner key",
                idempotencyKey: "demo-owner-key", actor: "system:demo")
            saved = Saved(platformKey: platform.secret, accountId: created.account.id, ownerEmail: email,
                          ownerPassword: password, ownerKey: ownerKey.secret)
            let data = try JSONEncoder().encode(saved)
            guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw CofferError(.demoCredentialsUnwritable, "Cannot write \(path).")
            }
        }
        if saved.operatorEmail == nil {
            // An operator login for the desk, added to demo data made before the console existed too.
            let email = "operator-\(Secrets.token(prefix: "").prefix(6))@demo.coffer.local"
            let password = "demo-" + Secrets.token(prefix: "").prefix(12)
            _ = try await engine.console.createOperator(email: email, name: "Demo Operator", password: password, actor: "system:demo")
            saved.operatorEmail = email
            saved.operatorPassword = password
            let data = try JSONEncoder().encode(saved)
            guard FileManager.default.createFile(atPath: path, contents: data, attributes: [.posixPermissions: 0o600]) else {
                throw CofferError(.demoCredentialsUnwritable, "Cannot write \(path).")
            }
        }
        try await DemoBilling.seed(engine: engine, accountId: saved.accountId)
        return [
            "demo customer login (console /login): \(saved.ownerEmail) / \(saved.ownerPassword)",
            "demo operator login (desk /desk/login): \(saved.operatorEmail ?? "") / \(saved.operatorPassword ?? "")",
            "platform key: \(saved.platformKey)",
            "demo account: \(saved.accountId)",
            "demo owner key: \(saved.ownerKey)",
        ]
    }
}
