import CofferCore
import Foundation
import HummingbirdBcrypt
import Synchronization

public struct ConsoleSettings: Sendable {
    public var sessionTTLSeconds: Int64 = 8 * 3_600
    /// Failed sign-ins allowed per e-mail address and per client address within the window.
    public var maxFailuresPerEmail = 5
    public var maxFailuresPerClient = 30
    public var failureWindowSeconds: Int64 = 15 * 60
    public init() {}
}

/// A signed-in console visitor.
public struct ConsoleSession: Sendable {
    public var record: WebSessionRecord
    public var principal: Principal
    /// Display name and e-mail of who is signed in.
    public var name: String
    public var email: String
}

/// Sign-in, sessions and password changes for the console; operator logins; user roles.
public struct ConsoleService: Sendable {
    let store: any CofferStore
    let clock: any Clock
    let ids: IdGenerator
    let bcryptCost: UInt8
    public let settings: ConsoleSettings

    public init(store: any CofferStore, clock: any Clock, ids: IdGenerator, bcryptCost: UInt8, settings: ConsoleSettings = .init()) {
        self.store = store
        self.clock = clock
        self.ids = ids
        self.bcryptCost = bcryptCost
        self.settings = settings
    }

    public static let signInFailed = CofferError(.signInFailed, "The e-mail address or password is wrong. Check both and try again.")

    /// Returns the new session and the cookie token (shown once; only its digest is stored).
    public func signIn(email rawEmail: String, password: String, as subject: SessionSubject,
                       client: String) async throws -> (ConsoleSession, token: String) {
        let email = rawEmail.trimmingCharacters(in: .whitespaces).lowercased()
        guard email.count <= 254, password.count <= 200 else { throw Self.signInFailed }
        let now = clock.nowMicros()
        // Counted in the database, so that every instance sees the same failures.
        let keys = ["email:\(subject.rawValue):\(email)", "client:\(client)"].map { Secrets.sha256Hex($0) }
        let window = settings.failureWindowSeconds * 1_000_000
        guard try await store.signInFailures(keyDigest: keys[0], sinceMicros: now - window) < settings.maxFailuresPerEmail,
              try await store.signInFailures(keyDigest: keys[1], sinceMicros: now - window) < settings.maxFailuresPerClient else {
            throw CofferError(.signInThrottled, "Too many failed sign-ins. Wait \(settings.failureWindowSeconds / 60) minutes, or reset the password.")
        }
        let found: (id: String, hash: String, accountId: String?)?
        switch subject {
        case .user: found = try await store.user(email: email).map { ($0.id, $0.passwordHash, $0.accountId) }
        case .operator: found = try await store.operatorUser(email: email).map { ($0.id, $0.passwordHash, nil) }
        }
        // An unknown address costs one bcrypt too, so that timing does not tell which addresses exist.
        let ok = Bcrypt.verify(password, hash: found?.hash ?? Self.dummyHash)
        guard let found, ok else {
            // Z3: a failed sign-in is audited (never the password), on the account when the address is one of its users.
            let failure = AuditRecord(id: ids.make("aud"), accountId: found?.accountId, actor: "\(subject.rawValue):\(found?.id ?? "unknown")",
                                      action: "console.sign_in_failed", detail: "as \(email) from \(client)", createdAtMicros: now)
            try await store.transaction { tx in
                try await tx.recordSignInFailure(keyDigests: keys, atMicros: now, forgetBeforeMicros: now - window)
                try await tx.insertAudit(failure)
            }
            throw Self.signInFailed
        }
        let token = Secrets.token(prefix: "cs_")
        let record = WebSessionRecord(tokenDigest: Secrets.sha256Hex(token), subject: subject, subjectId: found.id, accountId: found.accountId,
                                      csrfToken: Secrets.token(prefix: ""), createdAtMicros: now,
                                      expiresAtMicros: now + settings.sessionTTLSeconds * 1_000_000)
        try await store.transaction { tx in
            try await tx.deleteExpiredWebSessions(nowMicros: now)
            try await tx.insertWebSession(record)
            try await tx.insertAudit(AuditRecord(id: ids.make("aud"), accountId: found.accountId, actor: "\(subject.rawValue):\(found.id)",
                                                 action: "console.sign_in", detail: "from \(client)", createdAtMicros: now))
        }
        guard let session = try await resolve(record) else { throw Self.signInFailed }
        return (session, token)
    }

    private static let dummyHash = Bcrypt.hash("coffer-dummy-password", cost: 12)

    /// The live session for a cookie token, or nil when unknown, expired or its subject is gone.
    public func session(token: String) async throws -> ConsoleSession? {
        guard token.hasPrefix("cs_"), token.count <= 100 else { return nil }
        guard let record = try await store.webSession(digest: Secrets.sha256Hex(token)),
              record.expiresAtMicros > clock.nowMicros() else { return nil }
        return try await resolve(record)
    }

    private func resolve(_ record: WebSessionRecord) async throws -> ConsoleSession? {
        switch record.subject {
        case .user:
            guard let accountId = record.accountId, let u = try await store.user(accountId: accountId, id: record.subjectId) else { return nil }
            return ConsoleSession(record: record, principal: .consoleUser(accountId: u.accountId, userId: u.id, role: u.role),
                                  name: u.name, email: u.email)
        case .operator:
            guard let o = try await store.operatorUser(id: record.subjectId) else { return nil }
            return ConsoleSession(record: record, principal: .staff(operatorId: o.id), name: o.name, email: o.email)
        }
    }

    public func signOut(token: String) async throws {
        let digest = Secrets.sha256Hex(token)
        try await store.transaction { tx in try await tx.deleteWebSession(digest: digest) }
    }

    /// Checks the current password, sets the new one, and signs out every other session of the same person.
    public func changePassword(_ session: ConsoleSession, current: String, new: String) async throws {
        let hash: String?
        switch session.record.subject {
        case .user:
            guard let accountId = session.record.accountId else { hash = nil; break }
            hash = try await store.user(accountId: accountId, id: session.record.subjectId)?.passwordHash
        case .operator: hash = try await store.operatorUser(id: session.record.subjectId)?.passwordHash
        }
        guard let hash, Bcrypt.verify(current, hash: hash) else {
            throw CofferError(.currentPasswordWrong, "The current password is wrong; type it again.")
        }
        guard new.count >= 10, new.count <= 72 else { throw CofferError.invalidField("newPassword", "must be 10–72 characters") }
        guard new != current else { throw CofferError.invalidField("newPassword", "must differ from the current password") }
        let newHash = Bcrypt.hash(new, cost: bcryptCost)
        let now = clock.nowMicros()
        let record = session.record
        try await store.transaction { tx in
            try await tx.updatePasswordHash(record, hash: newHash)
            try await tx.deleteWebSessions(subject: record.subject, subjectId: record.subjectId, except: record.tokenDigest)
            try await tx.insertAudit(AuditRecord(id: ids.make("aud"), accountId: session.principal.accountId,
                                                 actor: session.principal.actor, action: "console.password_change",
                                                 detail: "other sessions signed out", createdAtMicros: now))
        }
    }

    public func createOperator(email rawEmail: String, name: String, password: String, actor: String) async throws -> OperatorRecord {
        let u = try AccountService.validate(NewUser(email: rawEmail, name: name, role: .member, password: password))
        let now = clock.nowMicros()
        let op = OperatorRecord(id: ids.make("opr"), email: u.email, name: u.name,
                                passwordHash: Bcrypt.hash(u.password, cost: bcryptCost), createdAtMicros: now)
        try await store.transaction { tx in
            if try await tx.operatorExists(email: op.email) {
                throw CofferError(.emailTaken, "An operator with email \(op.email) already exists.")
            }
            try await tx.insertOperator(op)
            try await tx.insertAudit(AuditRecord(id: ids.make("aud"), accountId: nil, actor: actor, action: "operator.create",
                                                 detail: op.email, createdAtMicros: now))
        }
        return op
    }

    /// W12: the owner grants or withdraws the finance permission (管理财务). The owner's own role never changes here.
    public func setRole(accountId: String, userId: String, role: UserRole, actor: String) async throws {
        guard role != .owner else { throw CofferError.invalidField("role", "an account has one owner; use finance or member") }
        let now = clock.nowMicros()
        try await store.transaction { tx in
            guard let previous = try await tx.updateUserRole(accountId: accountId, userId: userId, role: role) else {
                throw CofferError.notFound(.userNotFound, userId)
            }
            try await tx.insertAudit(AuditRecord(id: ids.make("aud"), accountId: accountId, actor: actor, action: "user.role",
                                                 detail: "\(userId) → \(role.rawValue)", createdAtMicros: now,
                                                 before: ["user": userId, "role": previous.rawValue], after: ["user": userId, "role": role.rawValue]))
        }
    }
}

extension Principal {
    public var accountId: String? {
        switch self {
        case .user(let a, _, _, _), .consoleUser(let a, _, _): a
        case .operatorKey, .staff: nil
        }
    }
}

