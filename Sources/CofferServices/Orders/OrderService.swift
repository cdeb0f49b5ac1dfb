import CofferCore
import Foundation

/// What the provider sends for an order (O1), before validation.
public struct OrderInput: Sendable {
    public var type: String
    public var productId: String
    public var specification: String
    public var durationMonths: Int
    public var resourceId: String?
    public var reference: String?
    /// A campaign order: a shorter expiry, a discount, coupons forbidden (O2).
    public var campaignExpiresInSeconds: Int64?
    public var campaignDiscountPercent: Int?
    public var couponsAllowed: Bool
    public init(type: String, productId: String, specification: String, durationMonths: Int, resourceId: String? = nil,
                reference: String? = nil, campaignExpiresInSeconds: Int64? = nil, campaignDiscountPercent: Int? = nil, couponsAllowed: Bool = true) {
        (self.type, self.productId, self.specification, self.durationMonths) = (type, productId, specification, durationMonths)
        (self.resourceId, self.reference, self.campaignExpiresInSeconds) = (resourceId, reference, campaignExpiresInSeconds)
        (self.campaignDiscountPercent, self.couponsAllowed) = (campaignDiscountPercent, couponsAllowed)
    }
}

/// A merged payment as answered: the payment, its orders as they are now, and the wallet after it.
public struct PaymentResult: Codable, Sendable, Equatable {
    public var payment: OrderPaymentRecord
    public var orders: [OrderRecord]
    public var wallet: WalletBalances
}

/// C6, C8: what paying these orders with these coupons would do, and for every usable coupon of the account whether it
/// would apply to these orders or which condition fails.
public struct PaymentPreview: Sendable, Equatable {
    public struct Offer: Sendable, Equatable {
        public var coupon: CouponRecord
        public var failure: CouponFailure?
    }
    public var orders: [OrderRecord]
    public var plan: PaymentPlan?
    /// Why the chosen combination cannot be paid (a coupon, the balance); nil when it can.
    public var refusal: CofferError?
    /// W4 as it would split today: gift first, then cash.
    public var giftMinor: Int64
    public var cashMinor: Int64
    public var offers: [Offer]
}

/// O1, O2, W7, C8: orders from the catalog, paid (merged, with coupons) through the ledger, delivered or failed.
public struct OrderService: Sendable {
    public static let maxDurationMonths = 60
    /// N2 events of order changes that move no money (the ledger's events are `LedgerEvent.Kind`).
    public static let plainEventTypes = ["order_cancelled", "order_expired"]
    let store: any CofferStore
    let writer: LedgerWriter
    let clock: any Clock
    let ids: IdGenerator
    let prepaid: PrepaidService

    public init(store: any CofferStore, writer: LedgerWriter, clock: any Clock, ids: IdGenerator, prepaid: PrepaidService) {
        (self.store, self.writer, self.clock, self.ids, self.prepaid) = (store, writer, clock, ids, prepaid)
    }

    public func create(accountId: String, _ input: OrderInput, idempotencyKey: String) async throws -> (OrderRecord, replayed: Bool) {
        guard let type = OrderType(rawValue: input.type), OrderType.purchases.contains(type) else {
            throw CofferError.invalidField("type", "must be new, renewal or upgrade (refund orders are made by refunds)")
        }
        guard (1...Self.maxDurationMonths).contains(input.durationMonths) else {
            throw CofferError.invalidField("durationMonths", "must be 1–\(Self.maxDurationMonths)")
        }
        let resourceId = try TextRules.optional(input.resourceId, field: "resourceId", max: 100)
        if type != .new && resourceId == nil { throw CofferError.invalidField("resourceId", "a \(type.rawValue) order names the resource") }
        let reference = try TextRules.optional(input.reference, field: "reference", max: 100)
        let expirySeconds = input.campaignExpiresInSeconds ?? OrderRecord.defaultExpirySeconds
        guard (60...OrderRecord.defaultExpirySeconds).contains(expirySeconds) else {
            throw CofferError.invalidField("campaign.expiresInSeconds", "must be 60–\(OrderRecord.defaultExpirySeconds) (15 days)")
        }
        let percent = input.campaignDiscountPercent ?? 0
        guard (0...99).contains(percent) else { throw CofferError.invalidField("campaign.discountPercent", "must be 0–99") }
        let ctx = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: [
            "order", accountId, type.rawValue, input.productId, input.specification, "\(input.durationMonths)", resourceId ?? "",
            reference ?? "", "\(input.campaignExpiresInSeconds ?? 0)", "\(percent)", "\(input.couponsAllowed)"].joined(separator: "|"))
        if let earlier: OrderRecord = try await Idempotent.replay(store, ctx) { return (earlier, true) }
        guard try await store.account(id: accountId) != nil else { throw CofferError.notFound(.accountNotFound, accountId) }
        guard let product = try await store.product(id: input.productId) else { throw CofferError.notFound(.productNotFound, input.productId) }
        guard let plan = product.plans.first(where: { $0.specification == input.specification }) else {
            throw CofferError(.planNotFound, "Product \(product.id) has no prepaid plan \"\(input.specification.prefix(100))\"; the catalog lists its plans.",
                              ["product": product.id])
        }
        if let resourceId, try await store.resource(accountId: accountId, id: resourceId) == nil {
            throw CofferError.notFound(.resourceNotFound, resourceId)
        }
        // The price of the day (O3): the plan's monthly price × months, the campaign's discount rounded down to the fen.
        let (list, overflow) = plan.monthlyPriceMinor.multipliedReportingOverflow(by: Int64(input.durationMonths))
        guard !overflow, list <= MoneyFormat.maxAbsMinor else { throw CofferError.arithmeticOverflow }
        let discount = Int64(Int128(list) * Int128(percent) / 100)
        let now = clock.nowMicros()
        let order = OrderRecord(id: ids.make("ord"), accountId: accountId, type: type, productId: product.id, productVersion: product.version,
                                specification: plan.specification, durationMonths: input.durationMonths, resourceId: resourceId,
                                listPriceMinor: list, discountMinor: discount, couponsAllowed: input.couponsAllowed,
                                expiresAtMicros: now + expirySeconds * 1_000_000, createdAtMicros: now, reference: reference)
        return try await Idempotent.write(store, ctx, order, at: now) { tx in try await tx.insertOrder(order) }
    }

    public func order(accountId: String, id: String) async throws -> OrderRecord {
        guard let o = try await store.order(accountId: accountId, id: id) else { throw CofferError.notFound(.orderNotFound, id) }
        return o
    }

    public func orders(_ query: OrderQuery) async throws -> [OrderRecord] { try await store.orders(query) }

    /// O2: unpaid → cancelled. Cancelling a cancelled order again under a new key says what state it is in.
    public func cancel(accountId: String, orderId: String, idempotencyKey: String) async throws -> (OrderRecord, replayed: Bool) {
        let ctx = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "cancel|\(accountId)|\(orderId)")
        if let earlier: OrderRecord = try await Idempotent.replay(store, ctx) { return (earlier, true) }
        var o = try await order(accountId: accountId, id: orderId)
        let now = clock.nowMicros()
        guard o.payable(at: now) else { throw CofferError.orderState(orderId, o.state == .unpaid ? .expired : o.state, wanted: "unpaid to be cancelled") }
        (o.state, o.resolvedAtMicros) = (.cancelled, now)
        let cancelled = o
        let event = webhookEvent("order_cancelled", cancelled, now: now)
        return try await Idempotent.write(store, ctx, cancelled, at: now) { tx in
            guard try await tx.cancelOrder(accountId: accountId, id: orderId, nowMicros: now) else {
                throw CofferError.orderState(orderId, .paid, wanted: "unpaid to be cancelled")
            }
            try await tx.insertWebhookEvents([event])
        }
    }

    /// W7, C8: pays the orders together; coupons first (C4 order), the rest frozen until delivery.
    public func pay(accountId: String, orderIds: [String], couponIds: [String], idempotencyKey: String,
                    actor: String) async throws -> (PaymentResult, replayed: Bool) {
        _ = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "")
        let outcome = try await writer.submit(LedgerRequest(
            .payOrders(accountId: accountId, paymentId: ids.make("pay"), orderIds: orderIds, couponIds: couponIds),
            idempotencyKey: idempotencyKey, actor: actor))
        let receipt = try outcome.get()
        // The first answer comes from the entry itself; a replay reads the payment and its orders as they are now.
        var payment = receipt.payment
        if payment == nil, let id = receipt.relatedId { payment = try await store.orderPayment(accountId: accountId, id: id) }
        guard let payment else { throw CofferError(.internalError, "the payment of entry \(receipt.entryId) is missing") }
        let made = Dictionary((receipt.orders ?? []).map { ($0.id, $0) }) { $1 }
        var orders: [OrderRecord] = []
        var delivered = false
        for id in payment.orderIds {
            var o: OrderRecord
            if let known = made[id] { o = known } else { o = try await order(accountId: accountId, id: id) }
            // O3: a renewal extends Coffer's own record of the term, so Coffer delivers it at once (the provider is told
            // by `order_delivered` and `resource_renewed`); new resources and upgrades wait for the provider.
            if o.type == .renewal, o.state == .paid {
                do {
                    o = try await resolve(accountId: accountId, orderId: o.id, delivered: true, idempotencyKey: "deliver:" + o.id, actor: "system:renewal").0
                } catch let e as CofferError where e.code == .resourceTermChanged || e.code == .resourceNotFound {
                    // The term moved after the payment (reclaimed meanwhile): the money and coupons go back at once.
                    o = try await resolve(accountId: accountId, orderId: o.id, delivered: false, idempotencyKey: "deliveryfail:" + o.id, actor: "system:renewal").0
                }
                delivered = true
            }
            orders.append(o)
        }
        let wallet = delivered ? (try await store.wallet(accountId: accountId) ?? receipt.wallet) : receipt.wallet
        return (PaymentResult(payment: payment, orders: orders, wallet: wallet), outcome.replayed)
    }

    public func preview(accountId: String, orderIds: [String], couponIds: [String]) async throws -> PaymentPreview {
        try LedgerCommand.payOrders(accountId: accountId, paymentId: "preview", orderIds: orderIds, couponIds: couponIds).validate()
        guard let wallet = try await store.wallet(accountId: accountId) else { throw CofferError.notFound(.accountNotFound, accountId) }
        let now = clock.nowMicros()
        var orders: [OrderRecord] = []
        for id in orderIds {
            let o = try await order(accountId: accountId, id: id)
            guard o.payable(at: now) else { throw CofferError.orderState(id, o.state == .unpaid ? .expired : o.state, wanted: "unpaid and not expired to be paid") }
            orders.append(o)
        }
        let all = try await store.coupons(accountId: accountId)
        var chosen: [CouponRecord] = []
        for id in couponIds {
            guard let c = all.first(where: { $0.id == id }) else { throw CofferError.notFound(.couponNotFound, id) }
            chosen.append(c)
        }
        let reserve = writer.reserveMinor
        let attempt = Result { () throws(CofferError) -> PaymentPlan in
            let p = try CouponRules.plan(orders: orders, coupons: chosen, paymentId: "preview", inArrears: wallet.inArrears, now: now)
            try LedgerRules.checkNewPurchase(wallet, amountMinor: p.walletMinor, reserveMinor: reserve)
            return p
        }
        let plan = try? attempt.get()
        let refusal: CofferError? = if case .failure(let e) = attempt { e } else { nil }
        let walletMinor = plan?.walletMinor ?? orders.reduce(0) { $0 + $1.dueMinor }
        let split = LedgerRules.split(wallet, amountMinor: walletMinor)
        let offers = all.filter { $0.state(at: now) == .unused }.map { c in
            switch CouponRules.applicableOrders(c, orders: orders, inArrears: wallet.inArrears, now: now) {
            case .success: PaymentPreview.Offer(coupon: c, failure: nil)
            case .failure(let f): PaymentPreview.Offer(coupon: c, failure: f)
            }
        }
        return PaymentPreview(orders: orders, plan: plan, refusal: refusal, giftMinor: split.giftMinor, cashMinor: split.cashMinor, offers: offers)
    }

    /// W7: the provider delivered (capture; O3: the resource's term is made or extended) or could not (release, coupons
    /// back). A new order's resource is `resourceId` (the provider's id for it; default `res-<order>`), registered with
    /// `resourceName` if it is not yet.
    public func resolve(accountId: String, orderId: String, delivered: Bool, idempotencyKey: String, actor: String,
                        resourceId: String? = nil, resourceName: String? = nil) async throws -> (OrderRecord, replayed: Bool) {
        _ = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "")
        guard delivered else {
            let outcome = try await writer.submit(LedgerRequest(.failOrderDelivery(accountId: accountId, orderId: orderId),
                                                                idempotencyKey: idempotencyKey, actor: actor))
            _ = try outcome.get()
            return (try await order(accountId: accountId, id: orderId), outcome.replayed)
        }
        let resourceId = try TextRules.optional(resourceId, field: "resourceId", max: 100)
        let resourceName = try TextRules.optional(resourceName, field: "resourceName", max: 100)
        for attempt in 0..<2 {
            let o = try await order(accountId: accountId, id: orderId)
            let now = clock.nowMicros()
            // Only a paid order gets a term; any other state is refused by the ledger with the order's state.
            let term = o.state == .paid ? try await prepaid.termChange(for: o, resourceId: resourceId, now: now) : nil
            if let term, o.type == .new, try await store.resource(accountId: accountId, id: term.resourceId) == nil {
                let name = resourceName ?? "\(o.productId) \(o.specification)"
                _ = try await store.transaction { tx in
                    try await tx.putResource(ResourceRecord(accountId: accountId, id: term.resourceId, productId: o.productId, name: name,
                                                            region: nil, projectId: nil, tags: [:], createdAtMicros: now, updatedAtMicros: now))
                }
            }
            let outcome = try await writer.submit(LedgerRequest(.deliverOrder(accountId: accountId, orderId: orderId, term: term),
                                                                idempotencyKey: idempotencyKey, actor: actor))
            switch outcome.result {
            case .success: return (try await order(accountId: accountId, id: orderId), outcome.replayed)
            // The term moved between reading it and the lock (another renewal): price it again, once.
            case .failure(let e) where e.code == .resourceTermChanged && attempt == 0: continue
            case .failure(let e): throw e
            }
        }
        throw CofferError(.resourceTermChanged, "Resource of order \(orderId) keeps changing; deliver again.")
    }

    /// O7: renewal orders that bring the resources to one expiry day, priced as `PrepaidService.unifiedExpiry` previews;
    /// the customer pays them together (the checkout), and Coffer delivers them like any renewal.
    public func unifyExpiry(accountId: String, day: Int, resourceIds: [String], idempotencyKey: String) async throws -> ([OrderRecord], replayed: Bool) {
        let ctx = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "unified|\(accountId)|\(day)|\(resourceIds.joined(separator: ","))")
        if let earlier: [OrderRecord] = try await Idempotent.replay(store, ctx) { return (earlier, true) }
        let lines = try await prepaid.unifiedExpiry(accountId: accountId, day: day, resourceIds: resourceIds).filter { $0.amountMinor > 0 }
        guard !lines.isEmpty else { throw CofferError.invalidField("day", "every chosen resource already expires on that day") }
        let now = clock.nowMicros()
        let orders = lines.map { l -> OrderRecord in
            var o = OrderRecord(id: ids.make("ord"), accountId: accountId, type: .renewal, productId: l.term.productId, productVersion: 0,
                                specification: l.term.specification, durationMonths: 1, resourceId: l.term.resourceId, listPriceMinor: l.amountMinor,
                                discountMinor: 0, couponsAllowed: true, expiresAtMicros: now + 86_400_000_000, createdAtMicros: now,
                                reference: UnifiedExpiry.orderReference)
            (o.termFromMicros, o.termToMicros) = (l.term.expiresAtMicros, l.newExpiresAtMicros)
            return o
        }
        return try await Idempotent.write(store, ctx, orders, at: now) { tx in
            for o in orders { try await tx.insertOrder(o) }
        }
    }

    /// O8, C7: refund (退订) a prepaid resource by the rule in `RefundRules`; the term ends. Returns the refund record.
    public func refundResource(accountId: String, resourceId: String, reason: String?, idempotencyKey: String,
                               actor: String) async throws -> (ResourceRefundRecord, replayed: Bool) {
        _ = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "")
        let reason = try TextRules.optional(reason, field: "reason", max: 200)
        let outcome = try await writer.submit(LedgerRequest(.refundResource(accountId: accountId, refundId: ids.make("rrf"), resourceId: resourceId,
                                                                            reason: reason), idempotencyKey: idempotencyKey, actor: actor))
        let receipt = try outcome.get()
        guard let id = receipt.relatedId, let record = try await store.resourceRefund(accountId: accountId, id: id) else {
            throw CofferError(.internalError, "the refund of entry \(receipt.entryId) is missing")
        }
        return (record, outcome.replayed)
    }

    /// O2: the jobs loop expires unpaid orders past their expiry.
    public func expireDue(limit: Int) async throws -> Int {
        let now = clock.nowMicros()
        let ids = self.ids
        return try await store.transaction { tx in
            let expired = try await tx.expireOrders(dueBeforeMicros: now, limit: limit)
            try await tx.insertWebhookEvents(expired.map { o in
                WebhookEventRecord(id: ids.make("evt"), accountId: o.accountId, type: "order_expired",
                                   data: LedgerDecisions.orderEventData(o), createdAtMicros: now)
            })
            return expired.count
        }
    }

    private func webhookEvent(_ type: String, _ o: OrderRecord, now: Int64) -> WebhookEventRecord {
        WebhookEventRecord(id: ids.make("evt"), accountId: o.accountId, type: type,
                           data: LedgerDecisions.orderEventData(o), createdAtMicros: now)
    }
}
