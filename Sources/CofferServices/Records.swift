import CofferCore

public enum AccountType: String, Codable, Sendable, CaseIterable { case personal, enterprise }

/// owner (创建者), finance (管理财务: may see and move money), member (everything else).
public enum UserRole: String, Codable, Sendable, CaseIterable { case owner, finance, member }

public struct AccountRecord: Codable, Sendable, Equatable {
    public var id: String
    public var type: AccountType
    public var entityName: String
    public var taxId: String?
    public var contactEmail: String
    public var currency: String
    public var timeZone: String
    public var createdAtMicros: Int64

    public init(id: String, type: AccountType, entityName: String, taxId: String? = nil, contactEmail: String, currency: String, timeZone: String, createdAtMicros: Int64) {
        self.id = id
        self.type = type
        self.entityName = entityName
        self.taxId = taxId
        self.contactEmail = contactEmail
        self.currency = currency
        self.timeZone = timeZone
        self.createdAtMicros = createdAtMicros
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

public struct FreezeRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var amountMinor: Int64
    public var capturedMinor: Int64
    public var state: FreezeState
    public var expiresAtMicros: Int64?
    public var reference: String?
    public var createdAtMicros: Int64
    public var resolvedAtMicros: Int64?

    public init(id: String, accountId: String, amountMinor: Int64, capturedMinor: Int64, state: FreezeState, expiresAtMicros: Int64? = nil, reference: String? = nil, createdAtMicros: Int64, resolvedAtMicros: Int64? = nil) {
        self.id = id
        self.accountId = accountId
        self.amountMinor = amountMinor
        self.capturedMinor = capturedMinor
        self.state = state
        self.expiresAtMicros = expiresAtMicros
        self.reference = reference
        self.createdAtMicros = createdAtMicros
        self.resolvedAtMicros = resolvedAtMicros
    }
}

public struct ChargeRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var mode: ChargeMode
    public var amountMinor: Int64
    public var cashMinor: Int64
    public var giftMinor: Int64
    public var refundedCashMinor: Int64
    public var refundedGiftMinor: Int64
    public var reference: String?
    public var createdAtMicros: Int64

    public init(id: String, accountId: String, mode: ChargeMode, amountMinor: Int64, cashMinor: Int64, giftMinor: Int64, refundedCashMinor: Int64, refundedGiftMinor: Int64, reference: String? = nil, createdAtMicros: Int64) {
        self.id = id
        self.accountId = accountId
        self.mode = mode
        self.amountMinor = amountMinor
        self.cashMinor = cashMinor
        self.giftMinor = giftMinor
        self.refundedCashMinor = refundedCashMinor
        self.refundedGiftMinor = refundedGiftMinor
        self.reference = reference
        self.createdAtMicros = createdAtMicros
    }
}

/// `refused`: paid, but not credited because a rule refused the payment (R7: a payer beyond the limit); the money goes back
/// to the payer through a channel refund.
public enum RechargeState: String, Codable, Sendable { case pending, paid, expired, refused }

public struct RechargeRecord: Codable, Sendable, Equatable {
    /// R7 counts payers by channel identity ("wechatpay:openid"): the same person is a different id on each channel.
    public static func payerKey(channel: String, payerId: String) -> String { channel + ":" + payerId }
    public var id: String
    public var accountId: String
    public var channel: String
    public var amountMinor: Int64
    public var state: RechargeState
    public var channelTradeNo: String?
    public var expiresAtMicros: Int64
    public var paidAtMicros: Int64?
    public var createdAtMicros: Int64
    /// What the channel told the customer to do (kind and URL), kept from the order's creation.
    public var paymentKind: String?
    public var paymentURL: String?
    /// R4: the channel's fee, paid by the customer on top of the amount and never credited (nil: none; optional so that
    /// stored answers from before fees decode).
    public var feeMinor: Int64?
    /// Who paid, as the channel names them (R7); nil until paid and for channels that do not say.
    public var payerId: String?

    /// What the channel collects: the amount plus the fee.
    public var totalMinor: Int64 { amountMinor + (feeMinor ?? 0) }

    public init(id: String, accountId: String, channel: String, amountMinor: Int64, state: RechargeState, channelTradeNo: String? = nil, expiresAtMicros: Int64, paidAtMicros: Int64? = nil, createdAtMicros: Int64, paymentKind: String? = nil, paymentURL: String? = nil, feeMinor: Int64? = nil, payerId: String? = nil) {
        self.payerId = payerId
        self.feeMinor = feeMinor
        self.paymentKind = paymentKind
        self.paymentURL = paymentURL
        self.id = id
        self.accountId = accountId
        self.channel = channel
        self.amountMinor = amountMinor
        self.state = state
        self.channelTradeNo = channelTradeNo
        self.expiresAtMicros = expiresAtMicros
        self.paidAtMicros = paidAtMicros
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

public struct AuditRecord: Sendable {
    public var id: String
    public var accountId: String?
    public var actor: String
    public var action: String
    public var detail: String
    public var createdAtMicros: Int64
    public init(id: String, accountId: String?, actor: String, action: String, detail: String, createdAtMicros: Int64) {
        self.id = id
        self.accountId = accountId
        self.actor = actor
        self.action = action
        self.detail = detail
        self.createdAtMicros = createdAtMicros
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
