/// The ledger's rules for orders (W7, C1–C8, O2): pay, deliver, delivery failed. Called by `LedgerDecisions.decide`.
extension LedgerDecisions {
    static func decideOrder(_ command: LedgerCommand, actor: String, wallet: WalletBalances, in s: LedgerSnapshot,
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
                // O4: a resource that was reclaimed or refunded cannot be renewed; refused before any money is frozen,
                // under the same lock as a refund of it.
                if o.type == .renewal, let r = o.resourceId {
                    let t = s.prepaidTerms[ObjectKey(accountId, r)]
                    guard let t, t.state != .reclaimed else {
                        throw CofferError(.resourceTermChanged, "Resource \(r) was reclaimed or refunded; it cannot be renewed.",
                                          ["state": t?.state.rawValue ?? "none"])
                    }
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
        case let .deliverOrder(_, orderId, term):
            var o = try paidOrder(s, accountId, orderId)
            let (effect, split) = try LedgerRules.deliverOrder(wallet, frozenMinor: o.frozenMinor, orderId: orderId)
            d = LedgerDecision(accountId: accountId, walletBefore: wallet, effect: effect)
            if let freezeId = o.freezeId { d.changes.append(.freezeResolved(try resolvedOrderFreeze(s, accountId, freezeId, .captured, now))) }
            (o.state, o.cashMinor, o.giftMinor, o.resolvedAtMicros) = (.delivered, split.cashMinor, split.giftMinor, now)
            if let term {
                guard o.type == .new || o.resourceId == term.resourceId else {
                    throw .invalidField("resourceId", "order \(orderId) is for resource \(o.resourceId ?? "-")")
                }
                let t = try termChange(term, s, accountId, o.productId, now)
                o.resourceId = term.resourceId
                // O8: the stretch this order paid for.
                (o.termFromMicros, o.termToMicros) = switch o.type {
                case .new: (term.startsAtMicros, term.expiresAtMicros)
                case .renewal: (max(term.expectedExpiresAtMicros ?? now, now), term.expiresAtMicros)
                case .upgrade: (now, term.expiresAtMicros)
                case .refund: throw CofferError.invalidField("orderId", "a refund order is not delivered")
                }
                d.changes.append(t)
                if case let .termChanged(record, _) = t { d.events.append(termEvent(o.type == .new ? .resourceCreated : .resourceRenewed, record, o)) }
            }
            d.changes.append(.orderChanged(o, from: .paid))
            d.events.insert(orderEvent(.orderDelivered, o, ["paidByCash": MoneyFormat.format(o.cashMinor), "paidByGift": MoneyFormat.format(o.giftMinor)]), at: 0)
            d.related = RelatedObject("order", orderId)
        case let .autoRenew(_, order, paymentId, term):
            // O4: at the price of the day, from available (W3: no arrears, no shortfall); frozen and captured in one entry
            // so that the order, its payment and its freeze look like any paid and delivered order.
            try requireNewOrder(s, accountId, order.id)
            var e = try LedgerRules.freeze(wallet, amountMinor: order.dueMinor, reserveMinor: s.reserveMinor)
            let (captured, split) = try LedgerRules.capture(e.wallet, frozenMinor: order.dueMinor, captureMinor: order.dueMinor)
            e.append(captured)
            d = LedgerDecision(accountId: accountId, walletBefore: wallet, effect: e.checked())
            var o = order
            let freezeId = OrderRecord.freezeId(orderId: o.id)
            (o.state, o.paymentId, o.frozenMinor, o.freezeId, o.paidAtMicros) = (.delivered, paymentId, o.dueMinor, freezeId, now)
            (o.cashMinor, o.giftMinor, o.resolvedAtMicros) = (split.cashMinor, split.giftMinor, now)
            (o.termFromMicros, o.termToMicros) = (term.expectedExpiresAtMicros ?? now, term.expiresAtMicros)
            let t = try termChange(term, s, accountId, o.productId, now)
            d.changes = [
                .freezeCreated(FreezeRecord(id: freezeId, accountId: accountId, amountMinor: o.dueMinor, capturedMinor: o.dueMinor, state: .captured,
                                            reference: "order:" + o.id, createdAtMicros: now, resolvedAtMicros: now)),
                .orderCreated(o), t,
                .paymentCreated(OrderPaymentRecord(id: paymentId, accountId: accountId, orderIds: [o.id], couponIds: [], dueMinor: o.dueMinor,
                                                   couponMinor: 0, frozenMinor: o.dueMinor, createdAtMicros: now)),
            ]
            if case let .termChanged(record, _) = t {
                d.events = [orderEvent(.orderDelivered, o, ["paidByCash": MoneyFormat.format(o.cashMinor), "paidByGift": MoneyFormat.format(o.giftMinor),
                                                             "autoRenewal": "true"]),
                            termEvent(.resourceRenewed, record, o)]
            }
            d.related = RelatedObject("order", o.id)
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
        case let .refundResource(_, refundId, resourceId, reason):
            guard var term = s.prepaidTerms[ObjectKey(accountId, resourceId)] else { throw .notFound(.resourceNotFound, resourceId) }
            guard term.state != .reclaimed else {
                throw CofferError(.resourceTermChanged, "Resource \(resourceId) was reclaimed or refunded already.", ["state": term.state.rawValue])
            }
            let orders = s.orders.values.filter { $0.accountId == accountId && $0.resourceId == resourceId }
            // C7: each cash coupon gets back the unused share of what it paid for each of the resource's orders.
            var backByOrder: [String: Int64] = [:], backByCoupon: [String: Int64] = [:]
            for (key, uses) in s.couponUses where key.accountId == accountId && s.coupons[key]?.kind == .cash {
                for u in uses where u.returnedAtMicros == nil {
                    guard let o = orders.first(where: { $0.id == u.orderId }), o.state == .delivered, let from = o.termFromMicros, let to = o.termToMicros else { continue }
                    let back = RefundRules.unusedShare(u.amountMinor, from: from, to: to, now: now)
                    backByOrder[o.id, default: 0] += back
                    backByCoupon[key.id, default: 0] += back
                }
            }
            let lines = RefundRules.lines(orders: orders, cashCouponBack: backByOrder, now: now)
            let record = ResourceRefundRecord(id: refundId, accountId: accountId, resourceId: resourceId, productId: term.productId,
                                              specification: term.specification, lines: lines, reason: reason, actor: actor, createdAtMicros: now)
            var e = LedgerEffect(wallet)
            var couponChanges: [ObjectChange] = []
            for (couponId, back) in backByCoupon.sorted(by: { $0.key < $1.key }) where back > 0 {
                guard let coupon = s.coupons[ObjectKey(accountId, couponId)] else { continue }
                e.platformMove(.couponReturn, back, from: .revenue, to: .giftExpense, detail: couponId)
                var c = coupon
                c.remainingMinor = min(c.valueMinor ?? 0, c.remainingMinor + back)
                (c.storedState, c.usedAtMicros) = (.unused, nil)
                couponChanges.append(.couponChanged(c, before: coupon))
            }
            if record.cashMinor + record.giftMinor > 0 {
                try e.move(.refund, cash: record.cashMinor, gift: record.giftMinor, counter: .revenue, detail: resourceId)
            }
            guard !e.movements.isEmpty else {
                throw CofferError(.nothingToRefund, "Resource \(resourceId) has nothing left to refund: its paid terms are used up.")
            }
            d = LedgerDecision(accountId: accountId, walletBefore: wallet, effect: e.checked())
            let before = term
            (term.state, term.reclaimedAtMicros, term.updatedAtMicros) = (.reclaimed, now, now)
            // O8: the refund is also an order in the list, carrying what went back and the stretch given back.
            let version = orders.map(\.productVersion).max() ?? 0
            var refundOrder = OrderRecord(
                id: OrderRecord.refundOrderId(refundId: refundId), accountId: accountId, type: .refund, productId: term.productId,
                productVersion: version, specification: term.specification, durationMonths: 0, resourceId: resourceId,
                listPriceMinor: try Checked.add(Checked.add(record.cashMinor, record.giftMinor), record.cashCouponMinor), discountMinor: 0,
                couponsAllowed: false,
                expiresAtMicros: now, createdAtMicros: now, reference: refundId)
            (refundOrder.state, refundOrder.cashMinor, refundOrder.giftMinor) = (.refunded, record.cashMinor, record.giftMinor)
            (refundOrder.couponMinor, refundOrder.resolvedAtMicros) = (record.cashCouponMinor, now)
            (refundOrder.termFromMicros, refundOrder.termToMicros) = (now, max(now, before.expiresAtMicros))
            try requireNewOrder(s, accountId, refundOrder.id)
            d.changes = [.termChanged(term, before: before), .resourceRefunded(record), .orderCreated(refundOrder)] + couponChanges
            d.events = [LedgerEvent(.resourceRefunded, accountId: accountId, [
                "resourceId": resourceId, "refund": refundId, "cash": MoneyFormat.format(record.cashMinor), "gift": MoneyFormat.format(record.giftMinor),
                "cashCoupon": MoneyFormat.format(record.cashCouponMinor)])]
            d.related = RelatedObject("resource_refund", refundId)
            d.memo = reason
        default:
            preconditionFailure("not an order command")
        }
        return d
    }

    /// What the provider is told of an order (N2): ids, amounts as decimal strings, its own reference.
    public static func orderEvent(_ kind: LedgerEvent.Kind, _ o: OrderRecord, _ extra: [String: String] = [:]) -> LedgerEvent {
        LedgerEvent(kind, accountId: o.accountId, orderEventData(o).merging(extra) { $1 })
    }

    /// What every order event says of its order (the ledger's and the services' alike).
    public static func orderEventData(_ o: OrderRecord) -> [String: String] {
        var p = ["order": o.id, "type": o.type.rawValue, "productId": o.productId, "specification": o.specification,
                 "durationMonths": String(o.durationMonths), "amountDue": MoneyFormat.format(o.dueMinor),
                 "paidByCoupon": MoneyFormat.format(o.couponMinor), "frozen": MoneyFormat.format(o.frozenMinor), "state": o.state.rawValue]
        if let r = o.resourceId { p["resourceId"] = r }
        if let r = o.reference { p["reference"] = r }
        return p
    }

    private static func termChange(_ change: PrepaidTermChange, _ s: LedgerSnapshot, _ accountId: String, _ productId: String,
                                   _ now: Int64) throws(CofferError) -> ObjectChange {
        let before = s.prepaidTerms[ObjectKey(accountId, change.resourceId)]
        return .termChanged(try PrepaidLifecycle.apply(change, to: before, accountId: accountId, productId: productId, now: now), before: before)
    }

    static func termEvent(_ kind: LedgerEvent.Kind, _ t: PrepaidTermRecord, _ o: OrderRecord) -> LedgerEvent {
        LedgerEvent(kind, accountId: t.accountId, ["resourceId": t.resourceId, "productId": t.productId, "specification": t.specification,
                                                    "expiresAt": RFC3339.format(micros: t.expiresAtMicros), "order": o.id, "state": t.state.rawValue])
    }

    private static func requireNewOrder(_ s: LedgerSnapshot, _ accountId: String, _ id: String) throws(CofferError) {
        guard s.orders[ObjectKey(accountId, id)] == nil else { throw CofferError(.duplicateId, "An order with id \(id) already exists.") }
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
