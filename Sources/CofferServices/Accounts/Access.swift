import CofferCore

/// Who is calling, resolved from an API key or a console session.
public enum Principal: Sendable, Equatable {
    /// The provider's own services and staff: a platform key.
    case operatorKey(keyId: String)
    /// A user of one account, through an account key.
    case user(accountId: String, userId: String, role: UserRole, keyId: String)
    /// A member of the provider's staff signed in to the operator desk.
    case staff(operatorId: String)
    /// A user signed in to the console (no API key involved).
    case consoleUser(accountId: String, userId: String, role: UserRole)

    public var actor: String {
        switch self {
        case .operatorKey(let k): "operator-key:\(k)"
        case .user(_, let u, _, let k): "user:\(u)/key:\(k)"
        case .staff(let o): "operator:\(o)"
        case .consoleUser(_, let u, _): "user:\(u)/console"
        }
    }
    public var isOperator: Bool {
        switch self {
        case .operatorKey, .staff: true
        case .user, .consoleUser: false
        }
    }
}

/// What a route needs. One rule on every route: another account's objects are "not found" (404, nothing revealed);
/// the caller's own account with too small a role is "forbidden" (403, W12).
public enum Permission: Sendable {
    /// Any user of the account: see the account's profile.
    case member
    /// Owner or finance (管理财务): balances, records, recharges (W12).
    case finance
    /// The owner: users and API keys.
    case owner
    /// Platform operators only: gifts, adjustments, advances, freezes and charges from the provider's services (Z4).
    case operatorOnly
}

public enum Access {
    public static func check(_ principal: Principal, account accountId: String, needs: Permission) throws(CofferError) {
        switch principal {
        case .operatorKey, .staff:
            return
        case let .user(own, _, role, _), let .consoleUser(own, _, role):
            guard own == accountId else { throw .notFound(.accountNotFound, accountId) }
            switch needs {
            case .member: return
            case .finance: if role == .owner || role == .finance { return }
            case .owner: if role == .owner { return }
            case .operatorOnly: break
            }
            throw .forbidden
        }
    }

    public static func requireOperator(_ principal: Principal) throws(CofferError) {
        guard principal.isOperator else { throw .forbidden }
    }
}
