/// The objects the ledger moves money for: freezes (W5), charges and their refunds, recharge orders (R5).

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
    /// C2: what postpaid coupons paid of a settlement's charge (cash + gift + coupon = amount). Never refunded as money.
    public var couponMinor: Int64
    public var refundedCashMinor: Int64
    public var refundedGiftMinor: Int64
    public var reference: String?
    public var createdAtMicros: Int64

    public init(id: String, accountId: String, mode: ChargeMode, amountMinor: Int64, cashMinor: Int64, giftMinor: Int64, couponMinor: Int64 = 0,
                refundedCashMinor: Int64, refundedGiftMinor: Int64, reference: String? = nil, createdAtMicros: Int64) {
        self.couponMinor = couponMinor
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

    private enum CodingKeys: String, CodingKey {
        case id, accountId, mode, amountMinor, cashMinor, giftMinor, couponMinor, refundedCashMinor, refundedGiftMinor, reference, createdAtMicros
    }

    /// Receipts stored before coupons paid charges have no `couponMinor`: 0.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(id: try c.decode(String.self, forKey: .id), accountId: try c.decode(String.self, forKey: .accountId),
                  mode: try c.decode(ChargeMode.self, forKey: .mode), amountMinor: try c.decode(Int64.self, forKey: .amountMinor),
                  cashMinor: try c.decode(Int64.self, forKey: .cashMinor), giftMinor: try c.decode(Int64.self, forKey: .giftMinor),
                  couponMinor: try c.decodeIfPresent(Int64.self, forKey: .couponMinor) ?? 0,
                  refundedCashMinor: try c.decode(Int64.self, forKey: .refundedCashMinor),
                  refundedGiftMinor: try c.decode(Int64.self, forKey: .refundedGiftMinor),
                  reference: try c.decodeIfPresent(String.self, forKey: .reference), createdAtMicros: try c.decode(Int64.self, forKey: .createdAtMicros))
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
