/// Prepaid orders (O1, O2) and what a payment of them changes (W7, C8).

public enum OrderType: String, Codable, Sendable, CaseIterable {
    case new, renewal, upgrade
    /// O8: made by a refund (退订) of a prepaid resource, already `refunded`; never created, paid or a coupon scenario.
    case refund

    /// What a provider may create and a coupon may name as its scenario.
    public static let purchases: [OrderType] = [.new, .renewal, .upgrade]
}

public enum OrderState: String, Codable, Sendable, CaseIterable {
    case unpaid, paid, delivered
    case deliveryFailed = "delivery_failed"
    case cancelled, expired
    /// A refund order's only state.
    case refunded
}

public struct OrderRecord: Codable, Sendable, Equatable {
    /// O2 *default*: an unpaid order expires after 15 days.
    public static let defaultExpirySeconds: Int64 = 15 * 86_400

    public var id: String
    public var accountId: String
    public var type: OrderType
    public var productId: String
    public var productVersion: Int64
    public var specification: String
    public var durationMonths: Int
    public var resourceId: String?
    /// Catalog price × months at the time of the order; `discountMinor` is the campaign's; due = list − discount.
    public var listPriceMinor: Int64
    public var discountMinor: Int64
    public var dueMinor: Int64
    /// A campaign order may forbid coupons (O2).
    public var couponsAllowed: Bool
    public var state: OrderState
    public var expiresAtMicros: Int64
    public var createdAtMicros: Int64
    /// Set by the payment: its id, what coupons paid, what was frozen (W7) and the freeze holding it.
    public var paymentId: String?
    public var couponMinor: Int64
    public var frozenMinor: Int64
    public var freezeId: String?
    /// Set by the delivery's capture (W4: how the frozen amount was finally paid).
    public var cashMinor: Int64
    public var giftMinor: Int64
    public var paidAtMicros: Int64?
    public var resolvedAtMicros: Int64?
    /// The provider's own reference (its order number), shown beside ours.
    public var reference: String?
    /// O8: the stretch of the resource's term this order paid for (set on delivery), so that a refund knows its unused share.
    public var termFromMicros: Int64?
    public var termToMicros: Int64?

    public init(id: String, accountId: String, type: OrderType, productId: String, productVersion: Int64, specification: String,
                durationMonths: Int, resourceId: String?, listPriceMinor: Int64, discountMinor: Int64, couponsAllowed: Bool,
                expiresAtMicros: Int64, createdAtMicros: Int64, reference: String?) {
        (self.id, self.accountId, self.type, self.productId, self.productVersion) = (id, accountId, type, productId, productVersion)
        (self.specification, self.durationMonths, self.resourceId) = (specification, durationMonths, resourceId)
        (self.listPriceMinor, self.discountMinor, self.dueMinor) = (listPriceMinor, discountMinor, listPriceMinor - discountMinor)
        (self.couponsAllowed, self.state, self.expiresAtMicros, self.createdAtMicros) = (couponsAllowed, .unpaid, expiresAtMicros, createdAtMicros)
        (self.couponMinor, self.frozenMinor, self.cashMinor, self.giftMinor, self.reference) = (0, 0, 0, 0, reference)
    }

    /// The freeze of a paid order is named after the order, so that delivery finds it without a lookup.
    public static func freezeId(orderId: String) -> String { "ofz_" + orderId }

    /// O8: a refund's order is named after the refund.
    public static func refundOrderId(refundId: String) -> String { "ord_" + refundId }

    /// Payable now: unpaid and not past its expiry (the jobs loop may not have marked it expired yet).
    public func payable(at now: Int64) -> Bool { state == .unpaid && now < expiresAtMicros }
}

/// One merged payment (C8): the orders it paid and how.
public struct OrderPaymentRecord: Codable, Sendable, Equatable {
    public var id: String
    public var accountId: String
    public var orderIds: [String]
    public var couponIds: [String]
    public var dueMinor: Int64
    public var couponMinor: Int64
    public var frozenMinor: Int64
    public var createdAtMicros: Int64
    public init(id: String, accountId: String, orderIds: [String], couponIds: [String], dueMinor: Int64, couponMinor: Int64,
                frozenMinor: Int64, createdAtMicros: Int64) {
        (self.id, self.accountId, self.orderIds, self.couponIds) = (id, accountId, orderIds, couponIds)
        (self.dueMinor, self.couponMinor, self.frozenMinor, self.createdAtMicros) = (dueMinor, couponMinor, frozenMinor, createdAtMicros)
    }
}

/// O8: a refund (退订) of a prepaid resource: what each of its orders gave back.
public struct ResourceRefundRecord: Codable, Sendable, Equatable {
    public struct Line: Codable, Sendable, Equatable {
        public var orderId: String
        public var cashMinor: Int64
        public var giftMinor: Int64
        /// Cash coupons' part given back to the coupons (C7); vouchers and discounts are not.
        public var cashCouponMinor: Int64
        public init(orderId: String, cashMinor: Int64, giftMinor: Int64, cashCouponMinor: Int64) {
            (self.orderId, self.cashMinor, self.giftMinor, self.cashCouponMinor) = (orderId, cashMinor, giftMinor, cashCouponMinor)
        }
    }
    public var id: String
    public var accountId: String
    public var resourceId: String
    public var productId: String
    public var specification: String
    public var lines: [Line]
    public var reason: String?
    public var actor: String
    public var createdAtMicros: Int64
    public var cashMinor: Int64 { lines.reduce(0) { $0 + $1.cashMinor } }
    public var giftMinor: Int64 { lines.reduce(0) { $0 + $1.giftMinor } }
    public var cashCouponMinor: Int64 { lines.reduce(0) { $0 + $1.cashCouponMinor } }
    public init(id: String, accountId: String, resourceId: String, productId: String, specification: String, lines: [Line], reason: String?,
                actor: String, createdAtMicros: Int64) {
        (self.id, self.accountId, self.resourceId, self.productId, self.specification) = (id, accountId, resourceId, productId, specification)
        (self.lines, self.reason, self.actor, self.createdAtMicros) = (lines, reason, actor, createdAtMicros)
    }
}

/// O8, C7: the refund rule. Each delivered order of the resource paid for a stretch [from, to) of its term; what has
/// not been used of it — (to − max(now, from)) / (to − from), 0 when it is over — comes back: that share of the cash and
/// of the gift it paid, each rounded down to the fen (never more than was paid), and that share of each cash coupon's
/// part, to the coupon. Vouchers and discounts are not returned. Nothing is refunded twice: the term ends (reclaimed).
public enum RefundRules {
    public static func unusedShare(_ amountMinor: Int64, from: Int64, to: Int64, now: Int64) -> Int64 {
        guard to > from, amountMinor > 0 else { return 0 }
        let unused = max(0, to - max(now, from))
        return Int64(Int128(amountMinor) * Int128(min(unused, to - from)) / Int128(to - from))
    }

    /// `cashCouponBack`: per order, what its cash coupons get back (the unused share of each use, summed).
    public static func lines(orders: [OrderRecord], cashCouponBack: [String: Int64], now: Int64) -> [ResourceRefundRecord.Line] {
        orders.sorted { $0.id < $1.id }.compactMap { o in
            guard o.state == .delivered, let from = o.termFromMicros, let to = o.termToMicros else { return nil }
            let line = ResourceRefundRecord.Line(orderId: o.id, cashMinor: unusedShare(o.cashMinor, from: from, to: to, now: now),
                                                 giftMinor: unusedShare(o.giftMinor, from: from, to: to, now: now),
                                                 cashCouponMinor: cashCouponBack[o.id] ?? 0)
            return line
        }
    }
}

extension CofferError {
    public static func orderState(_ id: String, _ state: OrderState, wanted: String) -> CofferError {
        .init(.orderStateConflict, "Order \(id) is \(state.rawValue); it must be \(wanted).", ["state": state.rawValue, "order": id])
    }
}
