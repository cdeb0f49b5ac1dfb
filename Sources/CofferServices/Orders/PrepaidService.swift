import CofferCore
import Foundation
import Logging

/// O3–O6: prepaid resources' terms — made and extended by deliveries, auto-renewed on the expiry day at the price of
/// that day, reminded, suspended and reclaimed by the jobs loop; the auto-renew switch.
public struct PrepaidService: Sendable {
    public static let plainEventTypes = ["resource_suspended", "resource_reclaimed"]
    let store: any CofferStore
    let writer: LedgerWriter
    let clock: any Clock
    let ids: IdGenerator
    let logger: Logger

    public init(store: any CofferStore, writer: LedgerWriter, clock: any Clock, ids: IdGenerator, logger: Logger = Logger(label: "coffer.prepaid")) {
        (self.store, self.writer, self.clock, self.ids, self.logger) = (store, writer, clock, ids, logger)
    }

    public func terms(accountId: String) async throws -> [PrepaidTermRecord] { try await store.prepaidTerms(accountId: accountId) }

    /// O3: the auto-renew flag, by the customer (finance) or the provider.
    public func setAutoRenew(accountId: String, resourceId: String, autoRenew: Bool) async throws -> PrepaidTermRecord {
        let now = clock.nowMicros()
        guard try await store.transaction({ tx in try await tx.setAutoRenew(accountId: accountId, resourceId: resourceId, autoRenew: autoRenew, nowMicros: now) }),
              let t = try await store.prepaidTerm(accountId: accountId, resourceId: resourceId) else {
            throw CofferError.notFound(.resourceNotFound, resourceId)
        }
        return t
    }

    /// The term a delivery of this order makes or extends (the calendar in the account's zone). Renewing early or in
    /// the grace period extends from the current expiry; renewing a suspended resource extends from now (the customer
    /// does not pay for the days it was suspended).
    public func termChange(for o: OrderRecord, resourceId: String?, now: Int64) async throws -> PrepaidTermChange {
        let tz = try await store.account(id: o.accountId)?.timeZone ?? "Asia/Shanghai"
        switch o.type {
        case .new:
            let id = resourceId ?? "res-" + o.id.dropFirst(4)
            return PrepaidTermChange(resourceId: id, specification: o.specification, expectedExpiresAtMicros: nil, startsAtMicros: now,
                                     expiresAtMicros: SettlementCalendar.addMonths(now, o.durationMonths, timeZone: tz))
        case .renewal, .upgrade:
            guard let id = o.resourceId, let t = try await store.prepaidTerm(accountId: o.accountId, resourceId: id) else {
                throw CofferError(.resourceNotFound, "Resource \(o.resourceId ?? "-") has no prepaid term to renew or change.", ["resource": o.resourceId ?? ""])
            }
            let base = t.state == .suspended ? max(t.expiresAtMicros, now) : t.expiresAtMicros
            var expires = o.type == .upgrade ? t.expiresAtMicros : SettlementCalendar.addMonths(base, o.durationMonths, timeZone: tz)
            // O7: a unified-expiry order extends to the date it was priced for, from the expiry it was priced from.
            if o.reference == UnifiedExpiry.orderReference, let from = o.termFromMicros, let to = o.termToMicros {
                guard from == t.expiresAtMicros, t.state == .active else {
                    throw CofferError(.resourceTermChanged, "Resource \(id)'s expiry changed since the unified expiry date was priced; price it again.")
                }
                expires = to
            }
            return PrepaidTermChange(resourceId: id, specification: o.specification, expectedExpiresAtMicros: t.expiresAtMicros,
                                     startsAtMicros: t.startsAtMicros, expiresAtMicros: expires)
        case .refund:
            throw CofferError.invalidField("orderId", "a refund order is not delivered")
        }
    }

    public struct UnifiedLine: Sendable, Equatable {
        public var term: PrepaidTermRecord
        public var newExpiresAtMicros: Int64
        public var amountMinor: Int64
    }

    /// O7: the new expiry of each resource (the next date with `day` of the month, same local time, not before the
    /// current expiry) and the prorated price at today's catalog price.
    public func unifiedExpiry(accountId: String, day: Int, resourceIds: [String]) async throws -> [UnifiedLine] {
        guard (1...28).contains(day) else { throw CofferError.invalidField("day", "must be 1–28 (a day every month has)") }
        guard (1...100).contains(resourceIds.count), Set(resourceIds).count == resourceIds.count else {
            throw CofferError.invalidField("resourceIds", "1–100 distinct resources")
        }
        let tz = try await store.account(id: accountId)?.timeZone ?? "Asia/Shanghai"
        var lines: [UnifiedLine] = []
        for id in resourceIds {
            guard let t = try await store.prepaidTerm(accountId: accountId, resourceId: id), t.state == .active else {
                throw CofferError(.resourceNotFound, "Resource \(id) is not a running prepaid resource of this account.", ["resource": id])
            }
            guard let monthly = try await store.product(id: t.productId)?.plans.first(where: { $0.specification == t.specification })?.monthlyPriceMinor else {
                throw CofferError(.planNotFound, "The catalog has no price for \(t.productId) \(t.specification) today.", ["product": t.productId])
            }
            let target = SettlementCalendar.nextDay(day, onOrAfter: t.expiresAtMicros, timeZone: tz)
            lines.append(UnifiedLine(term: t, newExpiresAtMicros: target,
                                     amountMinor: try UnifiedExpiry.proratedMinor(monthlyMinor: monthly, extensionSeconds: (target - t.expiresAtMicros) / 1_000_000)))
        }
        return lines
    }

    public struct RunReport: Sendable, Equatable {
        public var renewed = 0, renewalsRefused = 0, reminded = 0, suspended = 0, reclaimed = 0
    }

    /// One jobs-loop pass over the terms that expire within the reminder window (or already expired): O4 auto-renewals
    /// through the ledger writer in batches, O5 reminders, O6 suspensions and reclaims, each once.
    public func runDue(limit: Int = 2_000) async throws -> RunReport {
        var report = RunReport()
        let now = clock.nowMicros()
        var after: ObjectKey?
        var prices: [String: (Int64, Int64)?] = [:]
        /// The plan's monthly price and the product's version, today.
        func plan(_ productId: String, _ spec: String) async throws -> (monthlyMinor: Int64, version: Int64)? {
            let key = productId + "\u{1}" + spec
            if let p = prices[key] { return p }
            let product = try await store.product(id: productId)
            let p = product.flatMap { pr in pr.plans.first { $0.specification == spec }.map { ($0.monthlyPriceMinor, pr.version) } }
            prices[key] = p
            return p
        }
        func price(_ productId: String, _ spec: String) async throws -> Int64? { try await plan(productId, spec)?.monthlyMinor }
        while true {
            let page = try await store.dueTerms(expiringBeforeMicros: now + PrepaidLifecycle.remindFromMicros + PrepaidLifecycle.day, after: after, limit: limit)
            guard let last = page.last else { break }
            after = ObjectKey(last.0.accountId, last.0.resourceId)
            var renewals: [(term: PrepaidTermRecord, today: String, timeZone: String, request: LedgerRequest)] = []
            var lifecycle: [(PrepaidTermRecord, PrepaidTermState, SiteMessageRecord?, WebhookEventRecord?)] = []
            var wallets: [String: WalletBalances] = [:]
            for (t, tz) in page {
                let today = SettlementCalendar.day(of: now, timeZone: tz)
                switch PrepaidLifecycle.due(t, now: now, today: today) {
                case .none: continue
                case .suspend, .reclaim:
                    var changed = t
                    let suspending = t.state == .active
                    if suspending { (changed.state, changed.suspendedAtMicros) = (.suspended, now) } else { (changed.state, changed.reclaimedAtMicros) = (.reclaimed, now) }
                    changed.updatedAtMicros = now
                    let type = suspending ? "resource_suspended" : "resource_reclaimed"
                    let data = ["resourceId": t.resourceId, "productId": t.productId, "expiresAt": RFC3339.format(micros: t.expiresAtMicros), "state": changed.state.rawValue]
                    lifecycle.append((changed, t.state, message(type, t, tz), WebhookEventRecord(id: ids.make("evt"), accountId: t.accountId, type: type, data: data, createdAtMicros: now)))
                case .autoRenew:
                    guard let (monthly, version) = try await plan(t.productId, t.specification) else {
                        var changed = t
                        changed.renewAttemptDay = today
                        lifecycle.append((changed, t.state, nil, nil))
                        continue
                    }
                    var order = renewalOrder(t, monthlyMinor: monthly, now: now)
                    order.productVersion = version
                    let change = PrepaidTermChange(resourceId: t.resourceId, specification: t.specification, expectedExpiresAtMicros: t.expiresAtMicros,
                                                   startsAtMicros: t.startsAtMicros, expiresAtMicros: SettlementCalendar.addMonths(t.expiresAtMicros, 1, timeZone: tz))
                    // One key per term and expiry: a second instance, or a rerun after a crash, replays instead of charging again.
                    renewals.append((t, today, tz, LedgerRequest(.autoRenew(accountId: t.accountId, order: order, paymentId: ids.make("pay"), term: change),
                                                             idempotencyKey: "autorenew:\(t.resourceId):\(t.expiresAtMicros)", actor: "system:auto-renew")))
                case .remind:
                    // O5: no reminder when the auto-renewal will succeed (on, priced, and available covers it).
                    if t.autoRenew, let monthly = try await price(t.productId, t.specification) {
                        if wallets[t.accountId] == nil { wallets[t.accountId] = try await store.wallet(accountId: t.accountId) }
                        if let w = wallets[t.accountId], !w.inArrears, w.availableMinor >= monthly { continue }
                    }
                    var changed = t
                    changed.remindedDay = today
                    let days = (t.expiresAtMicros - now) / PrepaidLifecycle.day
                    lifecycle.append((changed, t.state, message(now < t.expiresAtMicros ? "resource_expiring" : "resource_expired", t, tz,
                                                                ["days": String(max(days, 0))]), nil))
                    report.reminded += 1
                }
            }
            // O4 through the writer: one batch for the page, each renewal a durable ledger entry.
            let outcomes = try await writer.submitAll(renewals.map(\.request))
            for ((t, today, tz, _), outcome) in zip(renewals, outcomes) {
                switch outcome.result {
                case .success: report.renewed += 1
                case .failure(let e):
                    report.renewalsRefused += 1
                    var changed = t
                    changed.renewAttemptDay = today
                    // O5: a refused auto-renewal is the day's reminder (recharge needed), once.
                    var msg: SiteMessageRecord?
                    if t.remindedDay != today {
                        changed.remindedDay = today
                        msg = message("resource_renewal_failed", t, tz, ["shortfall": e.parameters["shortfall"] ?? "0.00"])
                        report.reminded += 1
                    }
                    lifecycle.append((changed, t.state, msg, nil))
                }
            }
            if !lifecycle.isEmpty {
                let items = lifecycle
                let counted = try await store.transaction { tx in
                    var done: [PrepaidTermState] = []
                    for (t, expected, msg, event) in items {
                        guard try await tx.updateTermLifecycle(t, expectedState: expected, expectedExpiresAtMicros: t.expiresAtMicros) else { continue }
                        if let msg { try await tx.insertMessages([msg]) }
                        if let event { try await tx.insertWebhookEvents([event]) }
                        if t.state != expected { done.append(t.state) }
                    }
                    return done
                }
                report.suspended += counted.filter { $0 == .suspended }.count
                report.reclaimed += counted.filter { $0 == .reclaimed }.count
            }
            if page.count < limit { break }
        }
        return report
    }

    /// O4: the auto-renewal's order — one month at the catalog price of now.
    func renewalOrder(_ t: PrepaidTermRecord, monthlyMinor: Int64, now: Int64) -> OrderRecord {
        OrderRecord(id: ids.make("ord"), accountId: t.accountId, type: .renewal, productId: t.productId, productVersion: 0,
                    specification: t.specification, durationMonths: 1, resourceId: t.resourceId,
                    listPriceMinor: monthlyMinor, discountMinor: 0, couponsAllowed: false,
                    expiresAtMicros: now + OrderRecord.defaultExpirySeconds * 1_000_000, createdAtMicros: now, reference: "auto-renew")
    }

    /// The site message of a lifecycle step (zh/en text from the catalogs in the console; this stored text for e-mail).
    func message(_ kind: String, _ t: PrepaidTermRecord, _ tz: String, _ extra: [String: String] = [:]) -> SiteMessageRecord {
        let day = SettlementCalendar.day(of: t.expiresAtMicros, timeZone: tz)
        var p = ["resource": t.resourceId, "expires": day]
        p.merge(extra) { $1 }
        let (title, body): (String, String) = switch kind {
        case "resource_expiring": ("资源即将到期 Resource expiring", "资源 \(t.resourceId) 将于 \(day) 到期，请及时续费或充值。")
        case "resource_expired": ("资源已到期 Resource expired", "资源 \(t.resourceId) 已于 \(day) 到期，将在到期 7 天后停服，请尽快续费。")
        case "resource_renewal_failed": ("自动续费失败 Auto-renewal failed", "资源 \(t.resourceId) 自动续费未成功，请至少充值 \(p["shortfall"] ?? "") 元；明日将再次尝试。")
        case "resource_suspended": ("资源已停服 Resource suspended", "资源 \(t.resourceId) 到期未续费，已停服；7 天内续费可恢复，逾期将被回收。")
        default: ("资源已回收 Resource reclaimed", "资源 \(t.resourceId) 停服后未续费，已被回收，数据已删除。")
        }
        return SiteMessageRecord(id: ids.make("msg"), accountId: t.accountId, kind: kind, title: title, body: body,
                                 createdAtMicros: clock.nowMicros(), parameters: p)
    }
}
