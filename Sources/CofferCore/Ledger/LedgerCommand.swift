/// An operation on one account's wallet. Ids of created objects are chosen by the caller before submission, so that the
/// fingerprint (for W10) depends only on what the client asked for.
public enum LedgerCommand: Sendable {
    case grantGift(accountId: String, amountMinor: Int64, memo: String?)
    case adjust(accountId: String, bucket: WalletBucket, deltaMinor: Int64, reason: String)
    case advance(accountId: String, amountMinor: Int64, memo: String?)
    case freeze(accountId: String, freezeId: String, amountMinor: Int64, expiresInSeconds: Int64?, reference: String?)
    case capture(accountId: String, freezeId: String, amountMinor: Int64?)
    case release(accountId: String, freezeId: String)
    case expireFreeze(accountId: String, freezeId: String)
    case charge(accountId: String, chargeId: String, amountMinor: Int64, mode: ChargeMode, reference: String?)
    /// B2, C2: a settled cycle's deduction, charged postpaid (W4) after the account's usable postpaid coupons paid what
    /// they may of it.
    case settleCharge(accountId: String, chargeId: String, amountMinor: Int64, productId: String, settlementId: String)
    case refund(accountId: String, chargeId: String, refundId: String, amountMinor: Int64, reason: String?)
    /// `payer`: who paid and the R7 distinct-payer rule to hold them to, checked under the wallet lock.
    case creditRecharge(accountId: String, rechargeId: String, channelTradeNo: String, amountMinor: Int64, payer: PayerCheck? = nil)
    /// R8: the code's own amount and bucket are credited; the code row is locked and marked redeemed in the same write.
    case redeemCode(accountId: String, codeId: String)
    /// T1: an operator approves a remittance; the amount must equal the submitted one.
    case creditRemittance(accountId: String, remittanceId: String, amountMinor: Int64)
    /// T2: a bank statement line matched (or assigned) to the account.
    case creditStatementLine(accountId: String, lineId: String, amountMinor: Int64)
    /// W7, C8: pay unpaid orders with coupons; the rest of each order is frozen until delivery.
    case payOrders(accountId: String, paymentId: String, orderIds: [String], couponIds: [String])
    /// W7: the provider delivered; the order's freeze is captured; the resource's prepaid term is made or extended (O3).
    case deliverOrder(accountId: String, orderId: String, term: PrepaidTermChange? = nil)
    /// O4: the jobs loop renews a resource at the price of the day: a renewal order paid and delivered in one entry.
    case autoRenew(accountId: String, order: OrderRecord, paymentId: String, term: PrepaidTermChange)
    /// O8, C7: refund (退订) a prepaid resource: the unused share of what it was paid back (cash, gift, cash coupons); the
    /// term ends.
    case refundResource(accountId: String, refundId: String, resourceId: String, reason: String?)
    /// W7, O2: delivery failed; the freeze is released and the coupons given back.
    case failOrderDelivery(accountId: String, orderId: String)

    public var accountId: String {
        switch self {
        case .grantGift(let a, _, _), .adjust(let a, _, _, _), .advance(let a, _, _), .freeze(let a, _, _, _, _),
             .capture(let a, _, _), .release(let a, _), .expireFreeze(let a, _), .charge(let a, _, _, _, _), .settleCharge(let a, _, _, _, _),
             .refund(let a, _, _, _, _), .creditRecharge(let a, _, _, _, _), .redeemCode(let a, _),
             .creditRemittance(let a, _, _), .creditStatementLine(let a, _, _), .payOrders(let a, _, _, _),
             .deliverOrder(let a, _, _), .failOrderDelivery(let a, _), .autoRenew(let a, _, _, _),
             .refundResource(let a, _, _, _):
            return a
        }
    }

    public var kind: String {
        switch self {
        case .grantGift: "gift_grant"
        case .adjust: "adjustment"
        case .advance: "advance"
        case .freeze: "freeze"
        case .capture: "capture"
        case .release: "release"
        case .expireFreeze: "freeze_expiry"
        case .charge, .settleCharge: "charge"
        case .refund: "refund"
        case .creditRecharge: "recharge_credit"
        case .redeemCode: "code_redemption"
        case .creditRemittance: "remittance_credit"
        case .creditStatementLine: "statement_credit"
        case .payOrders: "order_payment"
        case .deliverOrder: "order_delivery"
        case .failOrderDelivery: "order_delivery_failure"
        case .autoRenew: "auto_renewal"
        case .refundResource: "resource_refund"
        }
    }

    /// Amounts in range before anything is evaluated: a caller that skipped the API's checks gets a refusal, never a trap.
    public func validate() throws(CofferError) {
        let limit = MoneyFormat.maxAbsMinor
        func positive(_ v: Int64) throws(CofferError) {
            guard v > 0 else { throw .amountNotPositive("amount") }
            guard v <= limit else { throw .amountOutOfRange("amount", min: "0.01", max: MoneyFormat.format(limit)) }
        }
        switch self {
        case let .grantGift(_, m, _), let .advance(_, m, _), let .freeze(_, _, m, _, _), let .charge(_, _, m, _, _),
             let .settleCharge(_, _, m, _, _), let .refund(_, _, _, m, _), let .creditRecharge(_, _, _, m, _), let .creditRemittance(_, _, m),
             let .creditStatementLine(_, _, m):
            try positive(m)
        case let .capture(_, _, m):
            if let m { try positive(m) }
        case let .adjust(_, _, d, _):
            guard d != 0, d.magnitude <= UInt64(limit) else { throw .invalidField("amount", "must be non-zero and within range") }
        case let .payOrders(_, _, orders, coupons):
            guard (1...CouponRules.maxOrdersPerPayment).contains(orders.count) else {
                throw .invalidField("orderIds", "give 1–\(CouponRules.maxOrdersPerPayment) orders")
            }
            guard Set(orders).count == orders.count else { throw .invalidField("orderIds", "an order is given twice") }
            guard coupons.count <= CouponRules.maxCouponsPerPayment else {
                throw .invalidField("couponIds", "at most \(CouponRules.maxCouponsPerPayment) coupons")
            }
            guard Set(coupons).count == coupons.count else { throw .invalidField("couponIds", "a coupon is given twice") }
        case let .autoRenew(_, order, _, _):
            try positive(order.dueMinor)
        case .release, .expireFreeze, .redeemCode, .deliverOrder, .failOrderDelivery, .refundResource:
            break
        }
    }

    /// What the client asked for, without ids the server chose: same key + same fingerprint = a replay.
    public var fingerprint: String {
        switch self {
        case let .grantGift(a, m, memo): "gift|\(a)|\(m)|\(memo ?? "")"
        case let .adjust(a, b, d, r): "adjust|\(a)|\(b.rawValue)|\(d)|\(r)"
        case let .advance(a, m, memo): "advance|\(a)|\(m)|\(memo ?? "")"
        case let .freeze(a, _, m, e, r): "freeze|\(a)|\(m)|\(e.map(String.init) ?? "")|\(r ?? "")"
        case let .capture(a, f, m): "capture|\(a)|\(f)|\(m.map(String.init) ?? "full")"
        case let .release(a, f): "release|\(a)|\(f)"
        case let .expireFreeze(a, f): "expire|\(a)|\(f)"
        case let .charge(a, _, m, mode, r): "charge|\(a)|\(m)|\(mode.rawValue)|\(r ?? "")"
        // As a postpaid charge referencing the settlement, so that a settlement charged before coupons replays as itself.
        case let .settleCharge(a, _, m, _, settlementId): "charge|\(a)|\(m)|postpaid|\(settlementId)"
        case let .refund(a, c, _, m, r): "refund|\(a)|\(c)|\(m)|\(r ?? "")"
        // The payer is not part of the fingerprint: one trade number has one payer, and answers stored before R7 stay replayable.
        case let .creditRecharge(a, r, t, m, _): "credit|\(a)|\(r)|\(t)|\(m)"
        case let .redeemCode(a, c): "code|\(a)|\(c)"
        case let .creditRemittance(a, r, m): "remittance|\(a)|\(r)|\(m)"
        case let .creditStatementLine(a, l, m): "statement|\(a)|\(l)|\(m)"
        // Order as given: the same orders in another order are another request.
        case let .payOrders(a, _, o, c): "pay|\(a)|\(o.joined(separator: ","))|\(c.joined(separator: ","))"
        case let .deliverOrder(a, o, t): "deliver|\(a)|\(o)|\(t.map { "\($0.resourceId)|\($0.specification)|\($0.expiresAtMicros)" } ?? "")"
        case let .autoRenew(a, o, _, t): "autorenew|\(a)|\(t.resourceId)|\(t.expectedExpiresAtMicros ?? 0)|\(o.dueMinor)"
        case let .failOrderDelivery(a, o): "deliveryfail|\(a)|\(o)"
        case let .refundResource(a, _, r, reason): "resourcerefund|\(a)|\(r)|\(reason ?? "")"
        }
    }
}

public struct RefundInfo: Codable, Sendable, Equatable {
    public var id: String
    public var chargeId: String
    public var amountMinor: Int64
    public var cashMinor: Int64
    public var giftMinor: Int64

    public init(id: String, chargeId: String, amountMinor: Int64, cashMinor: Int64, giftMinor: Int64) {
        self.id = id
        self.chargeId = chargeId
        self.amountMinor = amountMinor
        self.cashMinor = cashMinor
        self.giftMinor = giftMinor
    }
}

/// R7's distinct-payer rule as one credit carries it: the payer must be among the account's payers (on the recharge's
/// channel) of the last `windowSeconds`, or there must be fewer than `maxDistinct` of them.
public struct PayerCheck: Sendable, Equatable {
    public var payerId: String
    public var maxDistinct: Int
    public var windowSeconds: Int64
    public init(payerId: String, maxDistinct: Int, windowSeconds: Int64) {
        (self.payerId, self.maxDistinct, self.windowSeconds) = (payerId, maxDistinct, windowSeconds)
    }
}

extension CofferError {
    public static let payerLimitReached = CofferError(.rechargePayerLimit, "This account has received payments from too many different payers today; the payment was refused and is being returned to the payer.")
}
