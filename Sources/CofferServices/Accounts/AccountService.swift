import CofferCore
import Foundation
import HummingbirdBcrypt
import Synchronization

public struct NewAccount: Sendable {
    public var type: AccountType
    public var entityName: String
    public var taxId: String?
    public var contactEmail: String
    public var owner: NewUser
    public var language: AccountLanguage
    public init(type: AccountType, entityName: String, taxId: String?, contactEmail: String, owner: NewUser, language: AccountLanguage = .zh) {
        self.language = language
        self.type = type
        self.entityName = entityName
        self.taxId = taxId
        self.contactEmail = contactEmail
        self.owner = owner
    }
}

public struct NewUser: Sendable {
    public var email: String
    public var name: String
    public var role: UserRole
    public var password: String
    public init(email: String, name: String, role: UserRole, password: String) {
        self.email = email
        self.name = name
        self.role = role
        self.password = password
    }
}

/// Public view of a user: never the password hash.
public struct UserView: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var email: String
    public var name: String
    public var role: UserRole
    public var createdAtMicros: Int64
    init(_ u: UserRecord) {
        id = u.id; accountId = u.accountId; email = u.email; name = u.name; role = u.role; createdAtMicros = u.createdAtMicros
    }
}

public struct CreatedAccount: Codable, Sendable, Equatable {
    public var account: AccountRecord
    public var owner: UserView
}

/// An API key as returned once at creation: the secret is in `secret` and nowhere else, ever.
public struct CreatedApiKey: Codable, Sendable, Equatable {
    public var id: String
    public var kind: ApiKeyKind
    public var accountId: String?
    public var userId: String?
    public var name: String
    public var secret: String
    public var createdAtMicros: Int64
}

public struct AccountService: Sendable {
    let store: any CofferStore
    let clock: any Clock
    let ids: IdGenerator
    /// bcrypt cost; tests lower it to keep suites fast, production keeps the default.
    let bcryptCost: UInt8
    let keyCache = PrincipalCache()

    public init(store: any CofferStore, clock: any Clock, ids: IdGenerator, bcryptCost: UInt8 = 12) {
        self.store = store
        self.clock = clock
        self.ids = ids
        self.bcryptCost = bcryptCost
    }

    /// Checked inside the write, after the idempotency lookup, so that a replay is answered instead of refused.
    static func requireFreeEmail(_ email: String, _ tx: any StoreTransaction) async throws {
        if try await tx.userExists(email: email) {
            throw CofferError(.emailTaken, "A user with email \(email) already exists; use another address.")
        }
    }

    static func validate(_ user: NewUser) throws(CofferError) -> NewUser {
        var u = user
        u.email = try TextRules.email(u.email)
        u.name = try TextRules.required(u.name, field: "name", max: 100)
        guard (10...72).contains(TextRules.length(u.password)) else {
            throw .invalidField("password", "must be 10–72 characters")
        }
        return u
    }

    public func createAccount(_ input: NewAccount, idempotencyKey: String, actor: String) async throws -> (CreatedAccount, replayed: Bool) {
        let entity = try TextRules.required(input.entityName, field: "entityName", max: 200)
        // `^[0-9A-Za-z]{15,20}$` whenever given; an enterprise must give it.
        if input.type == .enterprise || input.taxId != nil {
            guard let tax = input.taxId, (15...20).contains(tax.unicodeScalars.count),
                  tax.unicodeScalars.allSatisfy({ $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0)) }) else {
                throw CofferError.invalidField("taxId", "an enterprise needs its 15–20 character tax id (统一社会信用代码)")
            }
        }
        let contact = try Self.validate(NewUser(email: input.contactEmail, name: "contact", role: .owner, password: "xxxxxxxxxx")).email
        let owner = try Self.validate(input.owner)
        let now = clock.nowMicros()
        let account = AccountRecord(id: ids.make("acc"), type: input.type, entityName: entity, taxId: input.taxId,
                                    contactEmail: contact, currency: "CNY", timeZone: "Asia/Shanghai", createdAtMicros: now,
                                    language: input.language)
        let user = UserRecord(id: ids.make("usr"), accountId: account.id, email: owner.email, name: owner.name, role: .owner,
                              passwordHash: Bcrypt.hash(owner.password, cost: bcryptCost), createdAtMicros: now)
        let created = CreatedAccount(account: account, owner: UserView(user))
        // The fingerprint leaves the password out: it is stored, and must not become a fast-hashed copy of the password.
        let idempotency = try IdempotencyContext(
            scope: "platform", key: idempotencyKey,
            fingerprint: "account|\(input.type)|\(entity)|\(input.taxId ?? "")|\(contact)|\(owner.email)|\(owner.name)"
                + (input.language == .zh ? "" : "|\(input.language.rawValue)"))
        return try await Idempotent.write(store, idempotency, created, at: now) { tx in
            try await Self.requireFreeEmail(user.email, tx)
            try await tx.insertAccount(account)
            try await tx.insertUser(user)
            try await tx.insertAudit(AuditRecord(id: ids.make("aud"), accountId: account.id, actor: actor,
                                                 action: "account.create", detail: "owner \(user.email)", createdAtMicros: now))
        }
    }

    public func createUser(accountId: String, _ input: NewUser, idempotencyKey: String, actor: String) async throws -> (UserView, replayed: Bool) {
        guard try await store.account(id: accountId) != nil else { throw CofferError.notFound(.accountNotFound, accountId) }
        let u = try Self.validate(input)
        guard u.role != .owner else { throw CofferError.invalidField("role", "an account has one owner; use finance or member") }
        let now = clock.nowMicros()
        let user = UserRecord(id: ids.make("usr"), accountId: accountId, email: u.email, name: u.name, role: u.role,
                              passwordHash: Bcrypt.hash(u.password, cost: bcryptCost), createdAtMicros: now)
        let idempotency = try IdempotencyContext(scope: accountId, key: idempotencyKey,
                                                 fingerprint: "user|\(u.email)|\(u.name)|\(u.role)")
        return try await Idempotent.write(store, idempotency, UserView(user), at: now) { tx in
            try await Self.requireFreeEmail(user.email, tx)
            try await tx.insertUser(user)
            try await tx.insertAudit(AuditRecord(id: ids.make("aud"), accountId: accountId, actor: actor, action: "user.create",
                                                 detail: "\(user.email) as \(user.role.rawValue)", createdAtMicros: now))
        }
    }

    /// The language of the account's e-mail notices (its owner or the provider). Setting the same one again changes and
    /// audits nothing.
    public func setLanguage(accountId: String, language: AccountLanguage, actor: String) async throws -> AccountRecord {
        let now = clock.nowMicros()
        let audit = ids.make("aud")
        try await store.transaction { tx in
            guard let previous = try await tx.updateAccountLanguage(accountId: accountId, language: language) else {
                throw CofferError.notFound(.accountNotFound, accountId)
            }
            guard previous != language else { return }
            try await tx.insertAudit(AuditRecord(id: audit, accountId: accountId, actor: actor, action: "account.language",
                                                 detail: "notices in \(language.rawValue)", createdAtMicros: now,
                                                 before: ["language": previous.rawValue], after: ["language": language.rawValue]))
        }
        guard let account = try await store.account(id: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        return account
    }

    public func createAccountKey(accountId: String, userId: String, name: String, idempotencyKey: String,
                                 actor: String) async throws -> (CreatedApiKey, replayed: Bool) {
        guard let user = try await store.user(accountId: accountId, id: userId) else {
            throw CofferError.notFound(.userNotFound, userId)
        }
        let idempotency = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "key|\(userId)|\(name)")
        return try await createKey(kind: .account, accountId: accountId, userId: user.id, name: name,
                                   idempotency: idempotency, actor: actor)
    }

    /// Z3: an account key stops working (within the key cache's 2 s); audited. Revoking it again is a 404: it is gone.
    public func revokeAccountKey(accountId: String, keyId: String, actor: String) async throws {
        let now = clock.nowMicros()
        let audit = AuditRecord(id: ids.make("aud"), accountId: accountId, actor: actor, action: "api_key.revoke", detail: "account key \(keyId)",
                                createdAtMicros: now, before: ["key": keyId, "state": "active"], after: ["key": keyId, "state": "revoked"])
        let revoked = try await store.transaction { tx in
            guard try await tx.revokeApiKey(accountId: accountId, id: keyId, atMicros: now) else { return false }
            try await tx.insertAudit(audit)
            return true
        }
        guard revoked else { throw CofferError.notFound(.apiKeyNotFound, keyId) }
        keyCache.forgetAll()
    }

    public func createPlatformKey(name: String, actor: String) async throws -> CreatedApiKey {
        let ctx = try IdempotencyContext(scope: "platform", key: "platform-key-" + ids.make("k"), fingerprint: name)
        return try await createKey(kind: .platform, accountId: nil, userId: nil, name: name, idempotency: ctx, actor: actor).0
    }

    private func createKey(kind: ApiKeyKind, accountId: String?, userId: String?, name: String,
                           idempotency: IdempotencyContext, actor: String) async throws -> (CreatedApiKey, replayed: Bool) {
        let label = try TextRules.required(name, field: "name", max: 100)
        let secret = Secrets.token(prefix: kind == .platform ? "cpk_" : "cak_")
        let now = clock.nowMicros()
        let record = ApiKeyRecord(id: ids.make("key"), kind: kind, accountId: accountId, userId: userId, name: label,
                                  digest: Secrets.sha256Hex(secret), createdAtMicros: now)
        let created = CreatedApiKey(id: record.id, kind: kind, accountId: accountId, userId: userId, name: label,
                                    secret: secret, createdAtMicros: now)
        // A replay must not hand out the secret again: the stored response omits it.
        var stored = created
        stored.secret = ""
        let (result, replayed) = try await Idempotent.write(store, idempotency, stored, at: now) { tx in
            try await tx.insertApiKey(record)
            try await tx.insertAudit(AuditRecord(id: ids.make("aud"), accountId: accountId, actor: actor,
                                                 action: "api_key.create", detail: "\(kind.rawValue) key \(record.id)",
                                                 createdAtMicros: now))
        }
        return (replayed ? result : created, replayed)
    }

    /// Resolves a bearer token. Keys are looked up by SHA-256 digest: a slow hash here would cap throughput, and 192 random
    /// bits need no stretching.
    /// A key that resolved is remembered for `PrincipalCache.ttlMicros` (2 s): every request would otherwise read the key
    /// and its user. So a revoked key, or a user's changed role, takes effect within 2 s. Unknown keys are never cached.
    public func authenticate(bearer: String) async throws -> Principal? {
        guard bearer.count <= 200 else { return nil }
        let digest = Secrets.sha256Hex(bearer)
        let now = clock.nowMicros()
        if let cached = keyCache.principal(digest: digest, nowMicros: now) { return cached }
        guard let key = try await store.apiKey(digest: digest) else { return nil }
        let principal: Principal
        switch key.kind {
        case .platform:
            principal = .operatorKey(keyId: key.id)
        case .account:
            guard let accountId = key.accountId, let userId = key.userId,
                  let user = try await store.user(accountId: accountId, id: userId) else { return nil }
            principal = .user(accountId: user.accountId, userId: user.id, role: user.role, keyId: key.id)
        }
        keyCache.remember(digest: digest, principal, nowMicros: now)
        return principal
    }

    public func verifyPassword(email: String, password: String) async throws -> UserRecord? {
        guard let user = try await store.user(email: email.lowercased()) else { return nil }
        return Bcrypt.verify(password, hash: user.passwordHash) ? user : nil
    }
}

/// W10 for writes outside the ledger: the record and its response are stored in the same transaction.
enum Idempotent {
    /// The stored answer of an earlier request under this key, if any; a different request under it is refused.
    /// A plain read: on SQLite it does not queue behind the write lock.
    static func replay<R: Codable & Sendable>(_ store: any CofferStore, _ ctx: IdempotencyContext) async throws -> R? {
        try await store.idempotency(scope: ctx.scope, key: ctx.key).map { try answer($0, ctx) }
    }

    /// W10: the first answer for the same request; a different request under the key is refused.
    private static func answer<R: Decodable>(_ stored: StoredIdempotency, _ ctx: IdempotencyContext) throws -> R {
        guard stored.requestHash == ctx.requestHash else { throw CofferError.idempotencyConflict }
        return try JSONDecoder().decode(R.self, from: Data(stored.responseJSON.utf8))
    }

    static func write<R: Codable & Sendable>(_ store: any CofferStore, _ ctx: IdempotencyContext, _ response: R,
                                             at now: Int64, _ body: @escaping @Sendable (any StoreTransaction) async throws -> Void) async throws -> (R, replayed: Bool) {
        let json = String(decoding: try LedgerBatchApplier.encoder.encode(response), as: UTF8.self)
        // The key is claimed first, so that the same key sent concurrently waits for the first request and gets its
        // answer, instead of running the body twice into a unique index (a 500) or a limit (a 409 or 429).
        let stored: StoredIdempotency? = try await store.transaction { tx in
            // W10 across kinds of write: a key the ledger used is not free for another request.
            if try await tx.ledgerKeyUsed(scope: ctx.scope, key: ctx.key) { throw CofferError.idempotencyConflict }
            let claimed = try await tx.claimIdempotency(scope: ctx.scope, key: ctx.key,
                                                        StoredIdempotency(requestHash: ctx.requestHash, responseJSON: json),
                                                        nowMicros: now)
            guard claimed else {
                guard let earlier = try await tx.idempotency(scope: ctx.scope, key: ctx.key) else { throw CofferError.idempotencyKeyInUse }
                return earlier
            }
            try await body(tx)
            return nil
        }
        guard let stored else { return (response, false) }
        return (try answer(stored, ctx), true)
    }
}

/// Resolved API keys for a short while (by SHA-256 digest, never the secret). Bounded: when full it starts over.
final class PrincipalCache: Sendable {
    static let ttlMicros: Int64 = 2_000_000
    static let capacity = 10_000
    private let entries = Mutex<[String: (principal: Principal, expiresAtMicros: Int64)]>([:])

    func principal(digest: String, nowMicros: Int64) -> Principal? {
        entries.withLock { e in
            guard let hit = e[digest] else { return nil }
            guard nowMicros < hit.expiresAtMicros, nowMicros >= hit.expiresAtMicros - Self.ttlMicros else {
                e[digest] = nil
                return nil
            }
            return hit.principal
        }
    }

    func remember(digest: String, _ principal: Principal, nowMicros: Int64) {
        entries.withLock { e in
            if e.count >= Self.capacity { e.removeAll(keepingCapacity: true) }
            e[digest] = (principal, nowMicros + Self.ttlMicros)
        }
    }

    /// After a revocation this instance forgets every key at once (other instances within the TTL).
    func forgetAll() { entries.withLock { $0.removeAll(keepingCapacity: true) } }
}
