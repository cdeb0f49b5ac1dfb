import CofferCore

/// A member of the provider's staff who signs in to the operator desk. Separate from account users on purpose: an
/// operator belongs to no account and a customer can never become one by a role change.
public struct OperatorRecord: Codable, Sendable, Equatable {
    public var id: String
    public var email: String
    public var name: String
    public var passwordHash: String
    public var createdAtMicros: Int64
    public init(id: String, email: String, name: String, passwordHash: String, createdAtMicros: Int64) {
        self.id = id
        self.email = email
        self.name = name
        self.passwordHash = passwordHash
        self.createdAtMicros = createdAtMicros
    }
}

public enum SessionSubject: String, Codable, Sendable { case user, `operator` }

/// A console session. Only the SHA-256 of the cookie's token is stored: a copy of the table signs nobody in.
public struct WebSessionRecord: Codable, Sendable, Equatable {
    public var tokenDigest: String
    public var subject: SessionSubject
    public var subjectId: String
    /// The user's account (a user is keyed by account and id); nil for an operator.
    public var accountId: String?
    /// Sent back in every form; compared in constant time (synchronizer-token CSRF defence).
    public var csrfToken: String
    public var createdAtMicros: Int64
    public var expiresAtMicros: Int64
    public init(tokenDigest: String, subject: SessionSubject, subjectId: String, accountId: String?, csrfToken: String,
                createdAtMicros: Int64, expiresAtMicros: Int64) {
        self.tokenDigest = tokenDigest
        self.subject = subject
        self.subjectId = subjectId
        self.accountId = accountId
        self.csrfToken = csrfToken
        self.createdAtMicros = createdAtMicros
        self.expiresAtMicros = expiresAtMicros
    }
}

/// Reads the console needs beyond the API's.
public protocol ConsoleReads: Sendable {
    func operatorUser(id: String) async throws -> OperatorRecord?
    func operatorUser(email: String) async throws -> OperatorRecord?
    func webSession(digest: String) async throws -> WebSessionRecord?
    func users(accountId: String) async throws -> [UserRecord]
    func apiKeys(accountId: String) async throws -> [ApiKeyRecord]
    /// Accounts whose id, name, contact e-mail or a user's e-mail contains `text` (all when nil), newest first.
    func searchAccounts(text: String?, limit: Int) async throws -> [AccountRecord]
    /// Newest first.
    func recharges(accountId: String, limit: Int) async throws -> [RechargeRecord]
    /// The wallets of several accounts in one read (an account without a wallet row is absent).
    func wallets(accountIds: [String]) async throws -> [String: WalletBalances]
    /// Sign-in throttle: failures recorded under a key (its SHA-256) since an instant. In the database, so that every
    /// instance behind a load balancer counts the same failures.
    func signInFailures(keyDigest: String, sinceMicros: Int64) async throws -> Int
}

public protocol ConsoleWrites: Sendable {
    /// The language the account had; nil when there is no such account.
    func updateAccountLanguage(accountId: String, language: AccountLanguage) async throws -> AccountLanguage?
    func insertOperator(_ op: OperatorRecord) async throws
    func operatorExists(email: String) async throws -> Bool
    func insertWebSession(_ s: WebSessionRecord) async throws
    func deleteWebSession(digest: String) async throws
    /// Every session of one user or operator but `keep` (after a password change).
    func deleteWebSessions(subject: SessionSubject, subjectId: String, except keep: String?) async throws
    func deleteExpiredWebSessions(nowMicros: Int64) async throws
    /// Records one failed sign-in under each key digest and forgets failures older than `forgetBeforeMicros`.
    func recordSignInFailure(keyDigests: [String], atMicros: Int64, forgetBeforeMicros: Int64) async throws
    func updatePasswordHash(_ session: WebSessionRecord, hash: String) async throws
    /// False when no such non-owner user exists in the account.
    /// The role the user had; nil when there is no such user (or it is the owner, whose role never changes here).
    func updateUserRole(accountId: String, userId: String, role: UserRole) async throws -> UserRole?
}
