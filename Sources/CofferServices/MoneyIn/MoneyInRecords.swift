import CofferCore

/// R8: an operator's batch of recharge codes; every code of the batch carries the same amount, bucket and deadline.
public struct CodeBatchRecord: Codable, Sendable, Equatable {
    public var id: String
    public var amountMinor: Int64
    public var bucket: WalletBucket
    public var validUntilMicros: Int64
    public var count: Int
    public var memo: String?
    public var createdBy: String
    public var createdAtMicros: Int64

    public init(id: String, amountMinor: Int64, bucket: WalletBucket, validUntilMicros: Int64, count: Int, memo: String?,
                createdBy: String, createdAtMicros: Int64) {
        (self.id, self.amountMinor, self.bucket, self.validUntilMicros) = (id, amountMinor, bucket, validUntilMicros)
        (self.count, self.memo, self.createdBy, self.createdAtMicros) = (count, memo, createdBy, createdAtMicros)
    }
}

public struct PayerNameRecord: Codable, Sendable, Equatable {
    public var accountId: String
    public var name: String
    /// A payer other than the account's own real-name entity needs a signed payment agreement (T2).
    public var thirdParty: Bool
    public var agreementSignedAtMicros: Int64?
    public var agreementSignedBy: String?
    public var createdAtMicros: Int64

    public init(accountId: String, name: String, thirdParty: Bool, agreementSignedAtMicros: Int64? = nil,
                agreementSignedBy: String? = nil, createdAtMicros: Int64) {
        (self.accountId, self.name, self.thirdParty) = (accountId, name, thirdParty)
        (self.agreementSignedAtMicros, self.agreementSignedBy, self.createdAtMicros) = (agreementSignedAtMicros, agreementSignedBy, createdAtMicros)
    }
}

public struct DedicatedAccountRecord: Codable, Sendable, Equatable {
    public var accountId: String
    public var identifier: String
    public var number: String
    public var createdAtMicros: Int64
    public init(accountId: String, identifier: String, number: String, createdAtMicros: Int64) {
        (self.accountId, self.identifier, self.number, self.createdAtMicros) = (accountId, identifier, number, createdAtMicros)
    }
}

/// 站内信, and the outbox for e-mail/SMS: `deliveredAtMicros` stays empty until the notifier has handed it on.
public struct SiteMessageRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var kind: String
    public var title: String
    public var body: String
    public var createdAtMicros: Int64
    public var readAtMicros: Int64?
    public var deliveredAtMicros: Int64?
    /// The event's parameters when the message comes from one (the console renders it from the catalogs in the reader's
    /// language; `title` and `body` stay as the bilingual text for e-mail and the API). nil for messages written as text.
    public var parameters: [String: String]?
    public init(id: String, accountId: String, kind: String, title: String, body: String, createdAtMicros: Int64,
                readAtMicros: Int64? = nil, deliveredAtMicros: Int64? = nil, parameters: [String: String]? = nil) {
        self.parameters = parameters
        (self.id, self.accountId, self.kind, self.title, self.body) = (id, accountId, kind, title, body)
        (self.createdAtMicros, self.readAtMicros, self.deliveredAtMicros) = (createdAtMicros, readAtMicros, deliveredAtMicros)
    }
}

