import CofferCore
import Foundation

/// What an operator sends for a coupon (C1, C2), before validation.
public struct CouponInput: Sendable {
    public var kind: String
    public var value: String?
    public var percentOff: Int?
    public var maxDiscount: String?
    public var singleUse: Bool
    public var productsIncluded: [String]
    public var productsExcluded: [String]
    public var paymentType: String
    public var scenarios: [String]
    public var threshold: String?
    public var minMonths: Int?
    public var maxMonths: Int?
    public var validFromMicros: Int64?
    public var validUntilMicros: Int64
    public init(kind: String, value: String? = nil, percentOff: Int? = nil, maxDiscount: String? = nil, singleUse: Bool = true,
                productsIncluded: [String] = [], productsExcluded: [String] = [], paymentType: String = "prepaid",
                scenarios: [String] = [], threshold: String? = nil, minMonths: Int? = nil, maxMonths: Int? = nil,
                validFromMicros: Int64? = nil, validUntilMicros: Int64) {
        (self.kind, self.value, self.percentOff, self.maxDiscount, self.singleUse) = (kind, value, percentOff, maxDiscount, singleUse)
        (self.productsIncluded, self.productsExcluded, self.paymentType, self.scenarios) = (productsIncluded, productsExcluded, paymentType, scenarios)
        (self.threshold, self.minMonths, self.maxMonths) = (threshold, minMonths, maxMonths)
        (self.validFromMicros, self.validUntilMicros) = (validFromMicros, validUntilMicros)
    }
}

/// The answer to a grant: the coupons made, or the codes of a batch (shown in this answer only).
public struct CouponGrantResult: Codable, Sendable, Equatable {
    public var coupons: [CouponRecord]
    public var batchId: String?
    public var codes: [String]
}

/// C1–C6: operators grant coupons to accounts or print codes; customers redeem codes and list their coupons.
public struct CouponService: Sendable {
    public static let maxAccountsPerGrant = 1_000
    public static let maxCodesPerBatch = 10_000
    public static let maxCouponsPerAccount = 1_000
    /// C6: 8 letters, without I and O (read aloud and typed from print).
    public static let alphabet = Array("ABCDEFGHJKLMNPQRSTUVWXYZ")
    let store: any CofferStore
    let clock: any Clock
    let ids: IdGenerator
    let codeSettings: RechargeCodeSettings
    let inFlight = InFlightKeys()

    public init(store: any CofferStore, clock: any Clock, ids: IdGenerator, codeSettings: RechargeCodeSettings = .init()) {
        (self.store, self.clock, self.ids, self.codeSettings) = (store, clock, ids, codeSettings)
    }

    public static func newCode() -> String {
        var rng = SystemRandomNumberGenerator()
        return String((0..<8).map { _ in alphabet[Int(rng.next(upperBound: UInt32(alphabet.count)))] })
    }

    public static func normalize(_ typed: String) -> String? {
        let letters = typed.uppercased().filter { $0 != "-" && !$0.isWhitespace }
        guard letters.count == 8, letters.allSatisfy(alphabet.contains) else { return nil }
        return letters
    }

    /// C1, C2 checked once, for grants and code batches alike.
    public func template(_ input: CouponInput) throws -> CouponTemplate {
        guard let kind = CouponKind(rawValue: input.kind) else { throw CofferError.invalidField("kind", "must be voucher, cash or discount") }
        var value: Int64?, percent: Int?
        switch kind {
        case .voucher, .cash:
            guard let v = input.value else { throw CofferError.invalidField("value", "a \(kind.rawValue) coupon has a value") }
            guard input.percentOff == nil, input.maxDiscount == nil else {
                throw CofferError.invalidField("percentOff", "only a discount coupon has percentOff and maxDiscount")
            }
            value = try MoneyFormat.parsePositive(v, field: "value", maxMinor: 999_999_999)
        case .discount:
            guard let p = input.percentOff, (1...99).contains(p) else { throw CofferError.invalidField("percentOff", "a discount coupon takes 1–99 % off") }
            guard input.value == nil else { throw CofferError.invalidField("value", "a discount coupon has percentOff (and maxDiscount), not value") }
            percent = p
            value = try input.maxDiscount.map { try MoneyFormat.parsePositive($0, field: "maxDiscount", maxMinor: 999_999_999) }
        }
        guard let paymentType = ChargeMode(rawValue: input.paymentType) else { throw CofferError.invalidField("paymentType", "must be prepaid or postpaid") }
        // A settlement has no scenario and no purchase duration: such conditions on a postpaid coupon could never hold.
        if paymentType == .postpaid, !input.scenarios.isEmpty || input.minMonths != nil || input.maxMonths != nil {
            throw CofferError.invalidField("scenarios", "scenarios, minMonths and maxMonths are prepaid conditions; leave them out of a postpaid coupon")
        }
        var scenarios: [OrderType] = []
        for s in input.scenarios {
            guard let t = OrderType(rawValue: s), OrderType.purchases.contains(t) else { throw CofferError.invalidField("scenarios", "each must be new, renewal or upgrade") }
            if !scenarios.contains(t) { scenarios.append(t) }
        }
        for (field, list) in [("productsIncluded", input.productsIncluded), ("productsExcluded", input.productsExcluded)] {
            guard list.count <= 100, list.allSatisfy(ProductCatalog.validId) else {
                throw CofferError.invalidField(field, "at most 100 product ids")
            }
        }
        let threshold = try input.threshold.map { try MoneyFormat.parsePositive($0, field: "threshold") } ?? 0
        for (field, m) in [("minMonths", input.minMonths), ("maxMonths", input.maxMonths)] {
            if let m, !(1...OrderService.maxDurationMonths).contains(m) { throw CofferError.invalidField(field, "must be 1–\(OrderService.maxDurationMonths)") }
        }
        if let lo = input.minMonths, let hi = input.maxMonths, lo > hi { throw CofferError.invalidField("maxMonths", "must not be below minMonths") }
        let from = input.validFromMicros ?? clock.nowMicros()
        guard input.validUntilMicros > from, input.validUntilMicros > clock.nowMicros() else {
            throw CofferError.invalidField("validUntil", "must be in the future and after validFrom")
        }
        return CouponTemplate(kind: kind, valueMinor: value, percentOff: percent, singleUse: kind == .discount || input.singleUse,
                              conditions: CouponConditions(productsIncluded: input.productsIncluded, productsExcluded: input.productsExcluded,
                                                           paymentType: paymentType, scenarios: scenarios, thresholdMinor: threshold,
                                                           minMonths: input.minMonths, maxMonths: input.maxMonths),
                              validFromMicros: from, validUntilMicros: input.validUntilMicros)
    }

    /// C6: to accounts (one coupon each), or as a batch of `codeCount` codes; audited.
    public func grant(_ input: CouponInput, accountIds: [String], codeCount: Int?, idempotencyKey: String,
                      actor: String) async throws -> (CouponGrantResult, replayed: Bool) {
        let template = try template(input)
        guard (accountIds.isEmpty) != (codeCount == nil) else {
            throw CofferError.invalidField("accountIds", "give either accountIds or codeCount")
        }
        guard accountIds.count <= Self.maxAccountsPerGrant, Set(accountIds).count == accountIds.count else {
            throw CofferError.invalidField("accountIds", "1–\(Self.maxAccountsPerGrant) distinct accounts")
        }
        if let n = codeCount, !(1...Self.maxCodesPerBatch).contains(n) {
            throw CofferError.invalidField("codeCount", "must be 1–\(Self.maxCodesPerBatch)")
        }
        let ctx = try IdempotencyContext(scope: "platform", key: idempotencyKey, fingerprint: "coupons|\(OrderTextFingerprint.of(template))|\(accountIds.joined(separator: ","))|\(codeCount ?? 0)")
        if let earlier: CouponGrantResult = try await Idempotent.replay(store, ctx) { return (earlier, true) }
        for a in accountIds {
            guard try await store.account(id: a) != nil else { throw CofferError.notFound(.accountNotFound, a) }
            guard try await store.couponCount(accountId: a) < Self.maxCouponsPerAccount else {
                throw CofferError.invalidField("accountIds", "account \(a) holds \(Self.maxCouponsPerAccount) coupons already")
            }
        }
        let now = clock.nowMicros()
        let coupons = accountIds.map { template.coupon(id: ids.make("cpn"), accountId: $0, source: "grant:" + actor, nowMicros: now) }
        var codes: [String] = []
        var made: CouponBatchRecord?
        if let n = codeCount {
            var seen = Set<String>()
            while seen.count < n { seen.insert(Self.newCode()) }
            codes = seen.sorted()
            made = CouponBatchRecord(id: ids.make("cpb"), template: template, count: n, createdBy: actor, createdAtMicros: now)
        }
        let batch = made
        let what = batch.map { "batch \($0.id): \(codes.count) codes" } ?? "\(coupons.count) accounts: \(accountIds.prefix(20).joined(separator: ","))"
        let audit = AuditRecord(id: ids.make("aud"), accountId: accountIds.count == 1 ? accountIds[0] : nil, actor: actor,
                                action: "coupons.granted",
                                detail: "\(template.kind.rawValue) \(template.valueMinor.map(MoneyFormat.format) ?? "")\(template.percentOff.map { "\($0)%" } ?? "") to \(what)",
                                createdAtMicros: now)
        let result = CouponGrantResult(coupons: coupons, batchId: batch?.id, codes: codes)
        return try await Idempotent.write(store, ctx, result, at: now) { [codes] tx in
            try await tx.insertCoupons(coupons)
            if let batch { try await tx.insertCouponBatch(batch, codes: codes) }
            try await tx.insertAudit(audit)
        }
    }

    public static let codeNotFound = CofferError(.couponCodeNotFound, "No coupon code matches; check the 8 letters (I and O are not used).")

    /// C6: a code becomes a coupon of this account, once; failed attempts count against the account like recharge codes.
    public func redeem(accountId: String, typed: String, idempotencyKey: String) async throws -> (CouponRecord, replayed: Bool) {
        let ctx = try IdempotencyContext(scope: accountId, key: idempotencyKey, fingerprint: "coupon-code|\(accountId)|\(Self.normalize(typed) ?? typed)")
        return try await inFlight.run(IdempotencyKeyPair(scope: accountId, key: ctx.key)) {
            if let earlier: CouponRecord = try await Idempotent.replay(store, ctx) { return (earlier, true) }
            let now = clock.nowMicros()
            let attemptId = ids.make("cat")
            let settings = codeSettings
            let allowed = try await store.transaction { tx in
                try await tx.reserveCodeAttempt(accountId: accountId, id: attemptId, nowMicros: now,
                                                sinceMicros: now - settings.attemptWindowSeconds * 1_000_000, limit: settings.maxFailedAttempts)
            }
            guard allowed else { throw RechargeCodeService.attemptsExceeded }
            guard let code = Self.normalize(typed) else { throw Self.codeNotFound }
            let couponId = ids.make("cpn")
            let result: (CouponRecord, Bool) = try await store.transaction { tx in
                guard let r = try await tx.redeemCouponCode(code, accountId: accountId, nowMicros: now, make: { batch in
                    batch.template.coupon(id: couponId, accountId: accountId, source: "code:" + batch.id, nowMicros: now)
                }) else { throw Self.codeNotFound }
                switch r {
                case .redeemed(let c):
                    try await tx.deleteCodeAttempt(accountId: accountId, id: attemptId)
                    guard try await tx.claimIdempotency(scope: ctx.scope, key: ctx.key,
                                                        StoredIdempotency(requestHash: ctx.requestHash, responseJSON: String(decoding: try JSONEncoder().encode(c), as: UTF8.self)),
                                                        nowMicros: now) else { throw CofferError.idempotencyKeyInUse }
                    return (c, false)
                case let .alreadyRedeemed(by, couponId):
                    // Asking again for a code this account already has is not a guess.
                    if by == accountId { try await tx.deleteCodeAttempt(accountId: accountId, id: attemptId) }
                    guard by == accountId, let mine = try await store.coupon(accountId: accountId, id: couponId) else {
                        throw CofferError(.couponCodeRedeemed, "This coupon code has been redeemed already.")
                    }
                    return (mine, true)
                }
            }
            return result
        }
    }

    public func coupons(accountId: String) async throws -> [CouponRecord] { try await store.coupons(accountId: accountId) }
}

enum OrderTextFingerprint {
    static func of(_ t: CouponTemplate) -> String {
        String(decoding: (try? LedgerBatchApplier.encoder.encode(t)) ?? Data(), as: UTF8.self)
    }
}
