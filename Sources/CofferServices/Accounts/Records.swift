import Foundation
import CofferCore

public enum AccountType: String, Codable, Sendable, CaseIterable { case personal, enterprise }

/// owner (创建者), finance (管理财务: may see and move money), member (everything else).
public enum UserRole: String, Codable, Sendable, CaseIterable { case owner, finance, member }

/// The language an account's notices (e-mail) are written in; the console follows each reader's own choice.
public enum AccountLanguage: String, Codable, Sendable, CaseIterable { case zh, en }

public struct AccountRecord: Codable, Sendable, Equatable {
    public var id: String
    public var type: AccountType
    public var entityName: String
    public var taxId: String?
    public var contactEmail: String
    public var currency: String
    public var timeZone: String
    public var createdAtMicros: Int64
    public var language: AccountLanguage

    public init(id: String, type: AccountType, entityName: String, taxId: String? = nil, contactEmail: String, currency: String, timeZone: String,
                createdAtMicros: Int64, language: AccountLanguage = .zh) {
        self.language = language
        self.id = id
        self.type = type
        self.entityName = entityName
        self.taxId = taxId
        self.contactEmail = contactEmail
        self.currency = currency
        self.timeZone = timeZone
        self.createdAtMicros = createdAtMicros
    }

    private enum CodingKeys: String, CodingKey { case id, type, entityName, taxId, contactEmail, currency, timeZone, createdAtMicros, language }

    /// Answers stored under idempotency keys before accounts had a language read as Chinese, the default then and now.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), type: try c.decode(AccountType.self, forKey: .type),
                  entityName: try c.decode(String.self, forKey: .entityName), taxId: try c.decodeIfPresent(String.self, forKey: .taxId),
                  contactEmail: try c.decode(String.self, forKey: .contactEmail), currency: try c.decode(String.self, forKey: .currency),
                  timeZone: try c.decode(String.self, forKey: .timeZone), createdAtMicros: try c.decode(Int64.self, forKey: .createdAtMicros),
                  language: try c.decodeIfPresent(AccountLanguage.self, forKey: .language) ?? .zh)
    }
}

public struct UserRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var email: String
    public var name: String
    public var role: UserRole
    public var passwordHash: String
    public var createdAtMicros: Int64

    public init(id: String, accountId: String, email: String, name: String, role: UserRole, passwordHash: String, createdAtMicros: Int64) {
        self.id = id
        self.accountId = accountId
        self.email = email
        self.name = name
        self.role = role
        self.passwordHash = passwordHash
        self.createdAtMicros = createdAtMicros
    }
}

public enum ApiKeyKind: String, Codable, Sendable { case platform, account }

public struct ApiKeyRecord: Codable, Sendable, Equatable {
    public var id: String
    public var kind: ApiKeyKind
    public var accountId: String?
    public var userId: String?
    public var name: String
    /// SHA-256 of the secret, hex. The secret itself is shown once and never stored.
    public var digest: String
    public var createdAtMicros: Int64

    public init(id: String, kind: ApiKeyKind, accountId: String?, userId: String?, name: String, digest: String,
                createdAtMicros: Int64) {
        self.id = id
        self.kind = kind
        self.accountId = accountId
        self.userId = userId
        self.name = name
        self.digest = digest
        self.createdAtMicros = createdAtMicros
    }
}

/// One line of 收支明细 (W11) as stored.
public struct TransactionRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var entryId: String
    public var movement: Movement
    public var relatedType: String?
    public var relatedId: String?
    public var channelTradeNo: String?
    public var memo: String?
    public var createdAtMicros: Int64

    public init(id: String, accountId: String, entryId: String, movement: Movement, relatedType: String? = nil, relatedId: String? = nil, channelTradeNo: String? = nil, memo: String? = nil, createdAtMicros: Int64) {
        self.id = id
        self.accountId = accountId
        self.entryId = entryId
        self.movement = movement
        self.relatedType = relatedType
        self.relatedId = relatedId
        self.channelTradeNo = channelTradeNo
        self.memo = memo
        self.createdAtMicros = createdAtMicros
    }
}

public struct JournalEntryRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var kind: String
    public var idempotencyKey: String
    public var actor: String
    public var memo: String?
    public var createdAtMicros: Int64
    public var postings: [Posting]

    public init(id: String, accountId: String, kind: String, idempotencyKey: String, actor: String, memo: String? = nil, createdAtMicros: Int64, postings: [Posting]) {
        self.id = id
        self.accountId = accountId
        self.kind = kind
        self.idempotencyKey = idempotencyKey
        self.actor = actor
        self.memo = memo
        self.createdAtMicros = createdAtMicros
        self.postings = postings
    }
}

/// Z3: one sensitive action — who, when, from where (the request's origin, taken from the task that made the record),
/// what. `seq` and `hash` are given when the record is committed: the audit log is a hash chain (Z4).
public struct AuditRecord: Sendable, Equatable {
    public var id: String
    public var accountId: String?
    public var actor: String
    public var action: String
    public var detail: String
    public var createdAtMicros: Int64
    public var ip: String?
    public var userAgent: String?
    public var requestId: String?
    /// Z3: what the action changed, as it was and as it became (field → value); nil where the action creates or reads
    /// something rather than changing it (the detail says what).
    public var before: [String: String]?
    public var after: [String: String]?
    /// Position in the chain and the chain's hash through this record (nil until committed).
    public var seq: Int64?
    public var hash: String?
    public init(id: String, accountId: String?, actor: String, action: String, detail: String, createdAtMicros: Int64,
                before: [String: String]? = nil, after: [String: String]? = nil, origin: RequestOrigin? = RequestOrigin.current) {
        self.before = before
        self.after = after
        self.id = id
        self.accountId = accountId
        self.actor = actor
        self.action = action
        self.detail = detail
        self.createdAtMicros = createdAtMicros
        (self.ip, self.userAgent, self.requestId) = (origin?.ip, origin?.userAgent, origin?.requestId)
    }
}

/// Z3: which audit records to list (all filters optional), newest first, by keyset on `seq`.
public struct AuditQuery: Sendable {
    public var accountId: String?
    public var actor: String?
    /// "wallet." matches every wallet action.
    public var actionPrefix: String?
    public var fromMicros: Int64?
    public var toMicros: Int64?
    public var beforeSeq: Int64?
    public var limit: Int = 50
    public init() {}
}

/// Where a request came from, for the audit log and the logs. Set by the HTTP layer for the handling of one request.
public struct RequestOrigin: Sendable, Equatable {
    @TaskLocal public static var current: RequestOrigin?
    public var requestId: String
    public var ip: String?
    public var userAgent: String?
    public init(requestId: String, ip: String?, userAgent: String?) {
        // Bounded: these are copied into every audit record of the request.
        (self.requestId, self.ip, self.userAgent) = (String(requestId.prefix(64)), ip.map { String($0.prefix(64)) }, userAgent.map { String($0.prefix(256)) })
    }
}

/// Z4: the audit log as a hash chain. Each record's hash covers the previous hash and every field of the record, so
/// changing, removing or reordering a committed record breaks every hash after it; the chain's head (seq and hash) is
/// kept apart, so cutting off the tail is seen too. `coffer verify` recomputes it.
public enum AuditChain {
    public static let genesis = String(repeating: "0", count: 64)

    public static func hash(previous: String, seq: Int64, _ r: AuditRecord) -> String {
        // Each field prefixed by its length in UTF-8 bytes: unambiguous boundaries, the same bytes on every machine.
        var fields: [String] = [previous, String(seq), r.id, r.accountId ?? "", r.actor, r.action, r.detail, String(r.createdAtMicros),
                                r.ip ?? "", r.userAgent ?? "", r.requestId ?? ""]
        // Records from before migration 22 have neither, so their hashes stay as they were.
        if r.before != nil || r.after != nil { fields += [stateText(r.before) ?? "-", stateText(r.after) ?? "-"] }
        return Secrets.sha256Hex(fields.map { "\($0.utf8.count):\($0)" }.joined(separator: "|"))
    }

    /// A before/after state as stored and hashed: a JSON object with sorted keys, the same bytes on every machine.
    public static func stateText(_ state: [String: String]?) -> String? {
        guard let state else { return nil }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: (try? encoder.encode(state)) ?? Data("{}".utf8), as: UTF8.self)
    }

    public static func state(_ text: String?) -> [String: String]? {
        text.flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
    }
}

public struct StoredIdempotency: Sendable {
    public var requestHash: String
    public var responseJSON: String
    public init(requestHash: String, responseJSON: String) {
        self.requestHash = requestHash
        self.responseJSON = responseJSON
    }
}

public struct TransactionQuery: Sendable {
    public var accountId: String
    public var types: [TransactionType] = []
    public var fromMicros: Int64?
    public var toMicros: Int64?
    public var minAmountMinor: Int64?
    public var maxAmountMinor: Int64?
    /// Return records older than this id (ids sort by time).
    public var beforeId: String?
    public var limit: Int = 50
    public init(accountId: String) { self.accountId = accountId }
}
