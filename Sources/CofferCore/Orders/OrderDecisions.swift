/// The ledger's rules for orders (W7, C1–C8, O2): pay, deliver, delivery failed. Called by `LedgerDecisions.decide`.
extension LedgerDecisions {
    static func decideOrder(_ command: LedgerCommand, wallet: WalletBalances, in s: LedgerSnapshot,
                            nowMicros now: Int64) throws(CofferError) -> LedgerDecision {
        let accountId = command.accountId
        var d: LedgerDecision
        switch command {
        case let .payOrders(_, paymentId, orderIds, couponIds):
            var orders: [OrderRecord] = []
            for id in orderIds {
                guard let o = s.orders[ObjectKey(accountId, id)] else { throw .notFound(.orderNotFound, id) }
                guard o.payable(at: now) else {
                    throw .orderState(id, o.state == .unpaid ? .expired : o.state, wanted: "unpaid and not expired to be paid")
                }
                orders.append(o)
            }
            var coupons: [CouponRecord] = []
            for id in couponIds {
                guard let c = s.coupons[ObjectKey(accountId, id)] else { throw .notFound(.couponNotFound, id) }
                coupons.append(c)
            }
            let plan = try CouponRules.plan(orders: orders, coupons: coupons, paymentId: paymentId,
                                            inArrears: wallet.inArrears, now: now)
            d = LedgerDecision(accountId: accountId, walletBefore: wallet,
                               effect: try LedgerRules.payOrders(wallet, plan: plan, reserveMinor: s.reserveMinor))
            for (o, line) in zip(orders, plan.lines) {
                var paid = o
                paid.state = .paid
                paid.paymentId = paymentId
                paid.couponMinor = line.couponMinor
                paid.frozenMinor = line.walletMinor
                paid.paidAtMicros = now
                if line.walletMinor > 0 {
                    let freezeId = OrderRecord.freezeId(orderId: o.id)
                    paid.freezeId = freezeId
                    try requireNewFreeze(s, accountId, freezeId)
                    d.changes.append(.freezeCreated(FreezeRecord(
                        id: freezeId, accountId: accountId, amountMinor: line.walletMinor, capturedMinor: 0, state: .active,
                        reference: "order:" + o.id, createdAtMicros: now)))
                }
                d.changes.append(.orderChanged(paid, from: .unpaid))
                d.events.append(orderEvent(.orderPaid, paid, ["payment": paymentId]))
            }
            for c in plan.coupons { d.changes.append(.couponChanged(c, before: s.coupons[ObjectKey(accountId, c.id)]!)) }
            d.changes += plan.uses.map { .couponUsed($0) }
            d.changes.append(.paymentCreated(OrderPaymentRecord(
                id: paymentId, accountId: accountId, orderIds: orderIds, couponIds: couponIds, dueMinor: plan.dueMinor,
                couponMinor: plan.couponMinor, frozenMinor: plan.walletMinor, createdAtMicros: now)))
            d.related = RelatedObject("order_payment", paymentId)
        case let .deliverOrder(_, orderId):
            var o = try paidOrder(s, accountId, orderId)
            let (effect, split) = try LedgerRules.deliverOrder(wallet, frozenMinor: o.frozenMinor, orderId: orderId)
            d = LedgerDecision(accountId: accountId, walletBefore: wallet, effect: effect)
            if let freezeId = o.freezeId { d.changes.append(.freezeResolved(try resolvedOrderFreeze(s, accountId, freezeId, .captured, now))) }
            (o.state, o.cashMinor, o.giftMinor, o.resolvedAtMicros) = (.delivered, split.cashMinor, split.giftMinor, now)
            d.changes.append(.orderChanged(o, from: .paid))
            d.events = [orderEvent(.orderDelivered, o, ["paidByCash": MoneyFormat.format(o.cashMinor), "paidByGift": MoneyFormat.format(o.giftMinor)])]
            d.related = RelatedObject("order", orderId)
        case let .failOrderDelivery(_, orderId):
            var o = try paidOrder(s, accountId, orderId)
            var returns: [CouponUseRecord] = []
            var couponChanges: [ObjectChange] = []
            for couponKey in s.couponUses.keys.filter({ $0.accountId == accountId }).sorted() {
                let uses = s.couponUses[couponKey] ?? []
                guard let mine = uses.first(where: { $0.orderId == orderId && $0.returnedAtMicros == nil }),
                      let coupon = s.coupons[couponKey] else { continue }
                let stillUsed = uses.contains { $0.orderId != orderId && $0.returnedAtMicros == nil }
                var returned = mine
                returned.returnedAtMicros = now
                returns.append(returned)
                couponChanges.append(.couponChanged(CouponRules.giveBack(coupon, returning: mine.amountMinor, stillUsed: stillUsed), before: coupon))
                couponChanges.append(.couponUseReturned(returned))
            }
            precondition(returns.reduce(0) { $0 + $1.amountMinor } == o.couponMinor, "coupon uses of \(orderId) not loaded")
            d = LedgerDecision(accountId: accountId, walletBefore: wallet,
                               effect: try LedgerRules.failOrderDelivery(wallet, frozenMinor: o.frozenMinor, returns: returns))
            if let freezeId = o.freezeId { d.changes.append(.freezeResolved(try resolvedOrderFreeze(s, accountId, freezeId, .released, now))) }
            (o.state, o.resolvedAtMicros) = (.deliveryFailed, now)
            d.changes.append(.orderChanged(o, from: .paid))
            d.changes += couponChanges
            d.events = [orderEvent(.orderDeliveryFailed, o, ["released": MoneyFormat.format(o.frozenMinor)])]
            d.related = RelatedObject("order", orderId)
        default:
            preconditionFailure("not an order command")
        }
        return d
    }

    /// What the provider is told of an order (N2): ids, amounts as decimal strings, its own reference.
    public static func orderEvent(_ kind: LedgerEvent.Kind, _ o: OrderRecord, _ extra: [String: String] = [:]) -> LedgerEvent {
        var p = ["order": o.id, "type": o.type.rawValue, "productId": o.productId, "specification": o.specification,
                 "durationMonths": String(o.durationMonths), "amountDue": MoneyFormat.format(o.dueMinor),
                 "paidByCoupon": MoneyFormat.format(o.couponMinor), "frozen": MoneyFormat.format(o.frozenMinor), "state": o.state.rawValue]
        if let r = o.resourceId { p["resourceId"] = r }
        if let r = o.reference { p["reference"] = r }
        p.merge(extra) { $1 }
        return LedgerEvent(kind, accountId: o.accountId, p)
    }

    private static func paidOrder(_ s: LedgerSnapshot, _ accountId: String, _ id: String) throws(CofferError) -> OrderRecord {
        guard let o = s.orders[ObjectKey(accountId, id)] else { throw .notFound(.orderNotFound, id) }
        guard o.state == .paid else { throw .orderState(id, o.state, wanted: "paid to be delivered or to fail delivery") }
        return o
    }

    private static func requireNewFreeze(_ s: LedgerSnapshot, _ accountId: String, _ id: String) throws(CofferError) {
        guard s.freezes[ObjectKey(accountId, id)] == nil else { throw CofferError(.duplicateId, "A freeze with id \(id) already exists.") }
    }

    private static func resolvedOrderFreeze(_ s: LedgerSnapshot, _ accountId: String, _ id: String, _ state: FreezeState,
                                            _ now: Int64) throws(CofferError) -> FreezeRecord {
        guard var f = s.freezes[ObjectKey(accountId, id)] else { throw .notFound(.freezeNotFound, id) }
        guard f.state == .active else { throw .freezeAlreadyResolved(id, state: f.state.rawValue) }
        (f.state, f.capturedMinor, f.resolvedAtMicros) = (state, state == .captured ? f.amountMinor : 0, now)
        return f
    }
}
