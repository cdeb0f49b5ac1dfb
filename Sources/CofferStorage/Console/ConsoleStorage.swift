import CofferCore
import CofferServices
import SQLKit

/// Storage of operators, console sessions, and the account listings the console shows.
extension Rows {
    static func operatorUser(_ row: any SQLRow) throws -> OperatorRecord {
        let r = Reader(row: row)
        return OperatorRecord(id: try r.text("id"), email: try r.text("email"), name: try r.text("name"),
                              passwordHash: try r.text("password_hash"), createdAtMicros: try r.int("created_at"))
    }

    static func webSession(_ row: any SQLRow) throws -> WebSessionRecord {
        let r = Reader(row: row)
        return WebSessionRecord(tokenDigest: try r.text("token_digest"), subject: SessionSubject(rawValue: try r.text("subject"))!,
                                subjectId: try r.text("subject_id"), accountId: try r.optionalText("account_id"),
                                csrfToken: try r.text("csrf_token"),
                                createdAtMicros: try r.int("created_at"), expiresAtMicros: try r.int("expires_at"))
    }
}

extension SQLStore {
    public func signInFailures(keyDigest: String, sinceMicros: Int64) async throws -> Int {
        try await read { db in
            try await db.raw("""
                SELECT COUNT(*) AS n FROM sign_in_failures WHERE key_digest = \(bind: keyDigest) AND at > \(bind: sinceMicros)
                """).first()!.decode(column: "n", as: Int.self)
        }
    }

    public func operatorUser(id: String) async throws -> OperatorRecord? {
        try await read { db in try await db.raw("SELECT * FROM operators WHERE id = \(bind: id)").first().map(Rows.operatorUser) }
    }

    public func operatorUser(email: String) async throws -> OperatorRecord? {
        try await read { db in try await db.raw("SELECT * FROM operators WHERE email = \(bind: email)").first().map(Rows.operatorUser) }
    }

    public func webSession(digest: String) async throws -> WebSessionRecord? {
        try await read { db in
            try await db.raw("SELECT * FROM web_sessions WHERE token_digest = \(bind: digest)").first().map(Rows.webSession)
        }
    }

    public func users(accountId: String) async throws -> [UserRecord] {
        try await read { db in
            try await db.raw("SELECT * FROM users WHERE account_id = \(bind: accountId) ORDER BY created_at, id LIMIT 500").all().map(Rows.user)
        }
    }

    public func apiKeys(accountId: String) async throws -> [ApiKeyRecord] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM api_keys WHERE account_id = \(bind: accountId) AND revoked_at IS NULL ORDER BY created_at DESC LIMIT 500
                """).all().map(Rows.apiKey)
        }
    }

    public func searchAccounts(text: String?, limit: Int) async throws -> [AccountRecord] {
        try await read { db in
            guard let text, !text.isEmpty else {
                return try await db.raw("SELECT * FROM accounts ORDER BY created_at DESC, id DESC LIMIT \(bind: limit)").all().map(Rows.account)
            }
            let pattern = "%" + Self.likeEscaped(text.lowercased()) + "%"
            return try await db.raw("""
                SELECT * FROM accounts a WHERE LOWER(a.id) LIKE \(bind: pattern) ESCAPE '\\'
                  OR LOWER(a.entity_name) LIKE \(bind: pattern) ESCAPE '\\' OR LOWER(a.contact_email) LIKE \(bind: pattern) ESCAPE '\\'
                  OR EXISTS (SELECT 1 FROM users u WHERE u.account_id = a.id AND u.email LIKE \(bind: pattern) ESCAPE '\\')
                ORDER BY a.created_at DESC, a.id DESC LIMIT \(bind: limit)
                """).all().map(Rows.account)
        }
    }

    public func wallets(accountIds: [String]) async throws -> [String: WalletBalances] {
        guard !accountIds.isEmpty else { return [:] }
        return try await read { db in
            var found: [String: WalletBalances] = [:]
            for chunk in accountIds.chunked(500) {
                let rows = try await db.raw("""
                    SELECT * FROM wallets WHERE account_id IN (\(binds: chunk.map { $0 as any Encodable & Sendable }))
                    """).all()
                for row in rows { found[try row.decode(column: "account_id", as: String.self)] = try Rows.wallet(row) }
            }
            return found
        }
    }

    public func recharges(accountId: String, limit: Int) async throws -> [RechargeRecord] {
        try await read { db in
            try await db.raw("""
                SELECT * FROM recharges WHERE account_id = \(bind: accountId) ORDER BY created_at DESC, id DESC LIMIT \(bind: limit)
                """).all().map(Rows.recharge)
        }
    }
}

extension SQLTransaction {
    func insertOperator(_ op: OperatorRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO operators (id, email, name, password_hash, created_at)
            VALUES (\(bind: op.id), \(bind: op.email), \(bind: op.name), \(bind: op.passwordHash), \(bind: op.createdAtMicros))
            """).all()
    }

    func operatorExists(email: String) async throws -> Bool {
        try await db.raw("SELECT 1 AS one FROM operators WHERE email = \(bind: email)").first() != nil
    }

    func insertWebSession(_ s: WebSessionRecord) async throws {
        _ = try await db.raw("""
            INSERT INTO web_sessions (token_digest, subject, subject_id, account_id, csrf_token, created_at, expires_at)
            VALUES (\(bind: s.tokenDigest), \(bind: s.subject.rawValue), \(bind: s.subjectId), \(bind: s.accountId), \(bind: s.csrfToken),
                    \(bind: s.createdAtMicros), \(bind: s.expiresAtMicros))
            """).all()
    }

    func deleteWebSession(digest: String) async throws {
        _ = try await db.raw("DELETE FROM web_sessions WHERE token_digest = \(bind: digest)").all()
    }

    func deleteWebSessions(subject: SessionSubject, subjectId: String, except keep: String?) async throws {
        _ = try await db.raw("""
            DELETE FROM web_sessions WHERE subject = \(bind: subject.rawValue) AND subject_id = \(bind: subjectId)
              AND token_digest <> \(bind: keep ?? "")
            """).all()
    }

    func deleteExpiredWebSessions(nowMicros: Int64) async throws {
        _ = try await db.raw("DELETE FROM web_sessions WHERE expires_at <= \(bind: nowMicros)").all()
    }

    func recordSignInFailure(keyDigests: [String], atMicros: Int64, forgetBeforeMicros: Int64) async throws {
        // Every key's failures older than the window go, so the table holds one window's failures whatever keys stop failing.
        _ = try await db.raw("DELETE FROM sign_in_failures WHERE at <= \(bind: forgetBeforeMicros)").all()
        for digest in keyDigests {
            _ = try await db.raw("INSERT INTO sign_in_failures (key_digest, at) VALUES (\(bind: digest), \(bind: atMicros))").all()
        }
    }

    func updatePasswordHash(_ session: WebSessionRecord, hash: String) async throws {
        let (subject, subjectId) = (session.subject, session.subjectId)
        let rows: [any SQLRow]
        switch subject {
        case .user:
            rows = try await db.raw("""
                UPDATE users SET password_hash = \(bind: hash) WHERE account_id = \(bind: session.accountId) AND id = \(bind: subjectId) RETURNING id
                """).all()
        case .operator:
            rows = try await db.raw("UPDATE operators SET password_hash = \(bind: hash) WHERE id = \(bind: subjectId) RETURNING id").all()
        }
        guard rows.count == 1 else { throw StoreError("no \(subject.rawValue) \(subjectId) to change the password of") }
    }

    func updateAccountLanguage(accountId: String, language: AccountLanguage) async throws -> AccountLanguage? {
        guard let row = try await db.raw("""
                SELECT language FROM accounts WHERE id = \(bind: accountId)\(unsafeRaw: postgres ? " FOR UPDATE" : "")
                """).first() else { return nil }
        let previous = AccountLanguage(rawValue: try row.decode(column: "language", as: String.self)) ?? .zh
        if previous != language {
            _ = try await db.raw("UPDATE accounts SET language = \(bind: language.rawValue) WHERE id = \(bind: accountId)").all()
        }
        return previous
    }

    func updateUserRole(accountId: String, userId: String, role: UserRole) async throws -> UserRole? {
        guard let row = try await db.raw("""
                SELECT role FROM users WHERE account_id = \(bind: accountId) AND id = \(bind: userId) AND role <> 'owner'\(unsafeRaw: postgres ? " FOR UPDATE" : "")
                """).first(),
              let previous = UserRole(rawValue: try row.decode(column: "role", as: String.self)) else { return nil }
        _ = try await db.raw("UPDATE users SET role = \(bind: role.rawValue) WHERE account_id = \(bind: accountId) AND id = \(bind: userId)").all()
        return previous
    }
}
