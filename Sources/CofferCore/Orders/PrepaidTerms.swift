/// Prepaid resources (O3–O6): each has an expiry and an auto-renew flag; after expiry it is suspended after a grace period
/// and reclaimed after a further one. The lifecycle is a pure function of the term and the time; the jobs loop acts on it.

public enum PrepaidTermState: String, Codable, Sendable, CaseIterable {
    case active, suspended, reclaimed
}

public struct PrepaidTermRecord: Codable, Sendable, Equatable {
    public var accountId: String
    public var resourceId: String
    public var productId: String
    public var specification: String
    public var state: PrepaidTermState
    public var autoRenew: Bool
    public var startsAtMicros: Int64
    public var expiresAtMicros: Int64
    public var suspendedAtMicros: Int64?
    public var reclaimedAtMicros: Int64?
    /// The account-local day (yyyy-MM-dd) of the last auto-renew attempt and of the last reminder: once a day each.
    public var renewAttemptDay: String?
    public var remindedDay: String?
    public var createdAtMicros: Int64
    public var updatedAtMicros: Int64

    public init(accountId: String, resourceId: String, productId: String, specification: String, autoRenew: Bool, startsAtMicros: Int64,
                expiresAtMicros: Int64, createdAtMicros: Int64) {
        (self.accountId, self.resourceId, self.productId, self.specification) = (accountId, resourceId, productId, specification)
        (self.state, self.autoRenew, self.startsAtMicros, self.expiresAtMicros) = (.active, autoRenew, startsAtMicros, expiresAtMicros)
        (self.createdAtMicros, self.updatedAtMicros) = (createdAtMicros, createdAtMicros)
    }
}

/// What a delivery does to a resource's term: made (new), extended (renewal) or its specification changed (upgrade).
/// The service computes the calendar dates (months in the account's zone); the decision checks that the term it read is
/// still the term under the lock (`expectedExpiresAtMicros`).
public struct PrepaidTermChange: Codable, Sendable, Equatable {
    public var resourceId: String
    public var specification: String
    /// nil: the resource has no term yet (a new order).
    public var expectedExpiresAtMicros: Int64?
    public var startsAtMicros: Int64
    public var expiresAtMicros: Int64
    public init(resourceId: String, specification: String, expectedExpiresAtMicros: Int64?, startsAtMicros: Int64, expiresAtMicros: Int64) {
        (self.resourceId, self.specification, self.expectedExpiresAtMicros) = (resourceId, specification, expectedExpiresAtMicros)
        (self.startsAtMicros, self.expiresAtMicros) = (startsAtMicros, expiresAtMicros)
    }
}

/// O4–O6 as one pure function.
public enum PrepaidLifecycle {
    public static let day: Int64 = 86_400_000_000
    /// O6 *defaults*: suspended 7 days after expiry, reclaimed 7 days after that.
    public static let graceMicros: Int64 = 7 * day
    public static let reclaimAfterMicros: Int64 = 7 * day
    /// O5: reminders from 7 days before to 6 days after expiry.
    public static let remindFromMicros: Int64 = 7 * day
    public static let remindUntilMicros: Int64 = 6 * day

    public enum Step: Sendable, Equatable {
        case suspend, reclaim
        /// O4: try the auto-renewal today (again tomorrow if it fails, until suspended).
        case autoRenew
        /// O5: today's reminder is due (the caller skips it when the auto-renewal will succeed).
        case remind
        case none
    }

    /// What is due for this term now, `today` being the account-local day of `now`. One step at a time, most urgent first.
    public static func due(_ t: PrepaidTermRecord, now: Int64, today: String) -> Step {
        switch t.state {
        case .reclaimed:
            return .none
        case .suspended:
            if now >= (t.suspendedAtMicros ?? t.expiresAtMicros + graceMicros) + reclaimAfterMicros { return .reclaim }
            return .none
        case .active:
            if now >= t.expiresAtMicros + graceMicros { return .suspend }
            if t.autoRenew, now >= t.expiresAtMicros, t.renewAttemptDay != today { return .autoRenew }
            if now >= t.expiresAtMicros - remindFromMicros, now < t.expiresAtMicros + remindUntilMicros, t.remindedDay != today {
                return .remind
            }
            return .none
        }
    }

    /// A term change checked against the term under the lock: a new term must not exist; an extension or upgrade needs the
    /// term it was computed from, not reclaimed.
    public static func apply(_ change: PrepaidTermChange, to existing: PrepaidTermRecord?, accountId: String, productId: String,
                             now: Int64) throws(CofferError) -> PrepaidTermRecord {
        guard let expected = change.expectedExpiresAtMicros else {
            guard existing == nil else {
                throw CofferError(.resourceTermChanged, "Resource \(change.resourceId) already has a prepaid term; renew it instead.")
            }
            return PrepaidTermRecord(accountId: accountId, resourceId: change.resourceId, productId: productId, specification: change.specification,
                                     autoRenew: false, startsAtMicros: change.startsAtMicros, expiresAtMicros: change.expiresAtMicros,
                                     createdAtMicros: now)
        }
        guard var t = existing else { throw .notFound(.resourceNotFound, change.resourceId) }
        guard t.state != .reclaimed else {
            throw CofferError(.resourceTermChanged, "Resource \(t.resourceId) was reclaimed; it cannot be renewed.", ["state": t.state.rawValue])
        }
        guard t.expiresAtMicros == expected else {
            throw CofferError(.resourceTermChanged, "Resource \(t.resourceId)'s expiry changed meanwhile; price the renewal again.")
        }
        precondition(change.expiresAtMicros >= t.expiresAtMicros, "a term never shrinks")
        t.specification = change.specification
        t.expiresAtMicros = change.expiresAtMicros
        // O4: a renewal revives a suspended resource.
        if t.state == .suspended, change.expiresAtMicros > now { (t.state, t.suspendedAtMicros) = (.active, nil) }
        t.renewAttemptDay = nil
        t.remindedDay = nil
        t.updatedAtMicros = now
        return t
    }
}

/// O7: the unified expiry date (统一到期日). Each chosen resource is renewed from its expiry to the next date with the
/// chosen day of the month (same local time of day), for the prorated price: the plan's monthly price × 12 / 365 per
/// day of the extension, counted in seconds and rounded half up to the fen.
public enum UnifiedExpiry {
    public static let yearSeconds: Int64 = 365 * 86_400
    /// The reference of the renewal orders it makes: their delivery extends to the priced date, not by months.
    public static let orderReference = "unified-expiry"

    public static func proratedMinor(monthlyMinor: Int64, extensionSeconds: Int64) throws(CofferError) -> Int64 {
        precondition(monthlyMinor > 0 && extensionSeconds >= 0)
        let numerator = Int128(monthlyMinor) * 12 * Int128(extensionSeconds)
        let amount = (numerator * 2 + Int128(yearSeconds)) / (Int128(yearSeconds) * 2)
        guard amount <= Int128(MoneyFormat.maxAbsMinor) else { throw .arithmeticOverflow }
        return Int64(amount)
    }
}
