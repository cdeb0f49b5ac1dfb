import CofferCore

/// Filters of an account's order list (O2: by state, product and time), newest first.
public struct OrderQuery: Sendable {
    public var accountId: String
    public var states: [OrderState] = []
    public var productId: String?
    public var fromMicros: Int64?
    public var toMicros: Int64?
    /// Keyset cursor: orders created before this (created_at, id).
    public var before: (Int64, String)?
    public var limit: Int = 50
    public init(accountId: String) { self.accountId = accountId }
}

/// A batch of coupon codes (C6): the coupon each code becomes when redeemed.
public struct CouponTemplate: Codable, Sendable, Equatable {
    public var kind: CouponKind
    public var valueMinor: Int64?
    public var percentOff: Int?
    public var singleUse: Bool
    public var conditions: CouponConditions
    public var validFromMicros: Int64
    public var validUntilMicros: Int64
    public init(kind: CouponKind, valueMinor: Int64?, percentOff: Int?, singleUse: Bool, conditions: CouponConditions,
                validFromMicros: Int64, validUntilMicros: Int64) {
        (self.kind, self.valueMinor, self.percentOff, self.singleUse) = (kind, valueMinor, percentOff, singleUse)
        (self.conditions, self.validFromMicros, self.validUntilMicros) = (conditions, validFromMicros, validUntilMicros)
    }

    public func coupon(id: String, accountId: String, source: String, nowMicros: Int64) -> CouponRecord {
        CouponRecord(id: id, accountId: accountId, kind: kind, valueMinor: valueMinor, percentOff: percentOff, singleUse: singleUse,
                     conditions: conditions, validFromMicros: validFromMicros, validUntilMicros: validUntilMicros,
                     source: source, createdAtMicros: nowMicros)
    }
}

public struct CouponBatchRecord: Sendable, Equatable {
    public var id: String
    public var template: CouponTemplate
    public var count: Int
    public var createdBy: String
    public var createdAtMicros: Int64
    public init(id: String, template: CouponTemplate, count: Int, createdBy: String, createdAtMicros: Int64) {
        (self.id, self.template, self.count, self.createdBy, self.createdAtMicros) = (id, template, count, createdBy, createdAtMicros)
    }
}

public protocol OrderReads: Sendable {
    func order(accountId: String, id: String) async throws -> OrderRecord?
    func orders(_ query: OrderQuery) async throws -> [OrderRecord]
    func orderPayment(accountId: String, id: String) async throws -> OrderPaymentRecord?
    func coupon(accountId: String, id: String) async throws -> CouponRecord?
    /// Every coupon of the account, newest first (bounded by `CouponService.maxCouponsPerAccount`).
    func coupons(accountId: String) async throws -> [CouponRecord]
    func couponUses(accountId: String, orderId: String) async throws -> [CouponUseRecord]
    func couponCount(accountId: String) async throws -> Int
    /// O8: refund records (退订记录), newest first.
    func resourceRefunds(accountId: String) async throws -> [ResourceRefundRecord]
    func resourceRefund(accountId: String, id: String) async throws -> ResourceRefundRecord?
}

public protocol OrderWrites: Sendable {
    func insertOrder(_ order: OrderRecord) async throws
    /// unpaid → cancelled; false when the order was no longer unpaid.
    func cancelOrder(accountId: String, id: String, nowMicros: Int64) async throws -> Bool
    /// O2: unpaid orders past their expiry become expired; answers them.
    func expireOrders(dueBeforeMicros: Int64, limit: Int) async throws -> [OrderRecord]
    func insertCoupons(_ coupons: [CouponRecord]) async throws
    func insertCouponBatch(_ batch: CouponBatchRecord, codes: [String]) async throws
    /// Binds an unredeemed code to the coupon `make` builds from its batch's template; nil when the code is unknown,
    /// `.redeemed` with the account that has it when it was redeemed before.
    func redeemCouponCode(_ code: String, accountId: String, nowMicros: Int64,
                          make: @escaping @Sendable (CouponBatchRecord) -> CouponRecord) async throws -> CouponCodeRedemption?
}

public enum CouponCodeRedemption: Sendable, Equatable {
    case redeemed(CouponRecord)
    case alreadyRedeemed(byAccountId: String, couponId: String)
}

/// What the ledger's batch locks and loads for order commands (after the wallets, in key order).
public protocol OrderLedgerLocks: Sendable {
    func lockOrders(_ keys: [ObjectKey]) async throws -> [ObjectKey: OrderRecord]
    func lockCoupons(_ keys: [ObjectKey]) async throws -> [ObjectKey: CouponRecord]
    /// Every use of these coupons (a failed delivery needs to know whether another order still uses one).
    func couponUses(couponKeys: [ObjectKey]) async throws -> [ObjectKey: [CouponUseRecord]]
    /// The coupons the orders' payments used (for a failed delivery), by coupon.
    func couponKeys(usedByOrders keys: [ObjectKey]) async throws -> [ObjectKey]
    /// Unused coupons of one payment type valid at an instant, soonest expiry first (C2: what a settlement may use).
    func usableCouponKeys(accountId: String, paymentType: ChargeMode, atMicros: Int64, limit: Int) async throws -> [ObjectKey]
    /// Prepaid terms by (account, resource).
    func lockPrepaidTerms(_ keys: [ObjectKey]) async throws -> [ObjectKey: PrepaidTermRecord]
    /// O8: the delivered orders of a resource.
    func lockDeliveredOrders(ofResource key: ObjectKey) async throws -> [ObjectKey: OrderRecord]
}

/// What the lifecycle job and the pages read and write of prepaid terms outside the ledger.
public protocol PrepaidTermReads: Sendable {
    func prepaidTerm(accountId: String, resourceId: String) async throws -> PrepaidTermRecord?
    func prepaidTerms(accountId: String) async throws -> [PrepaidTermRecord]
    /// Terms not reclaimed whose expiry is before `expiringBeforeMicros` (and suspended ones), with their account's zone,
    /// oldest expiry first, after the key `after`.
    func dueTerms(expiringBeforeMicros: Int64, after: ObjectKey?, limit: Int) async throws -> [(PrepaidTermRecord, timeZone: String)]
}

public protocol PrepaidTermWrites: Sendable {
    func setAutoRenew(accountId: String, resourceId: String, autoRenew: Bool, nowMicros: Int64) async throws -> Bool
    /// Terms made outside a delivery (an import of resources bought before Coffer; the renewal benchmark's set-up).
    func insertPrepaidTerms(_ terms: [PrepaidTermRecord]) async throws
    /// Guarded by state and expiry as read: false when the term moved meanwhile.
    func updateTermLifecycle(_ term: PrepaidTermRecord, expectedState: PrepaidTermState, expectedExpiresAtMicros: Int64) async throws -> Bool
}
