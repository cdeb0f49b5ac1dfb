import CofferCore
import CofferServices

/// The API's JSON shapes: money as decimal strings (M1), times as RFC 3339 UTC.
struct WalletView: Codable, Equatable {
    let accountId: String
    let currency: String
    let balance: String
    let available: String
    let cash: String
    let gift: String
    let share: String
    let frozen: String
    let advanceOutstanding: String
    let inArrears: Bool

    init(accountId: String, _ w: WalletBalances) {
        self.accountId = accountId
        currency = "CNY"
        balance = MoneyFormat.format(w.balanceMinor)
        available = MoneyFormat.format(w.availableMinor)
        cash = MoneyFormat.format(w.cashMinor)
        gift = MoneyFormat.format(w.giftMinor)
        share = MoneyFormat.format(w.shareMinor)
        frozen = MoneyFormat.format(w.frozenMinor)
        advanceOutstanding = MoneyFormat.format(w.advanceOutstandingMinor)
        inArrears = w.inArrears
    }
}

struct AccountView: Codable {
    let id: String, type: String, entityName: String, taxId: String?, contactEmail: String, currency: String
    let timeZone: String, createdAt: String, language: String
    init(_ a: AccountRecord) {
        id = a.id; type = a.type.rawValue; entityName = a.entityName; taxId = a.taxId; contactEmail = a.contactEmail
        currency = a.currency; timeZone = a.timeZone; createdAt = RFC3339.format(micros: a.createdAtMicros); language = a.language.rawValue
    }
}

struct UserJSON: Codable {
    let id: String, accountId: String, email: String, name: String, role: String, createdAt: String
    init(_ u: UserView) {
        id = u.id; accountId = u.accountId; email = u.email; name = u.name; role = u.role.rawValue
        createdAt = RFC3339.format(micros: u.createdAtMicros)
    }
}

struct ApiKeyJSON: Codable {
    let id: String, kind: String, accountId: String?, userId: String?, name: String, createdAt: String
    /// Present only in the response that created the key.
    let secret: String?
    init(_ k: CreatedApiKey) {
        id = k.id; kind = k.kind.rawValue; accountId = k.accountId; userId = k.userId; name = k.name
        createdAt = RFC3339.format(micros: k.createdAtMicros); secret = k.secret.isEmpty ? nil : k.secret
    }
}

struct FreezeView: Codable {
    let id: String, accountId: String, amount: String, captured: String, state: String
    let expiresAt: String?, reference: String?, createdAt: String, resolvedAt: String?
    init(_ f: FreezeRecord) {
        id = f.id; accountId = f.accountId; amount = MoneyFormat.format(f.amountMinor)
        captured = MoneyFormat.format(f.capturedMinor); state = f.state.rawValue
        expiresAt = f.expiresAtMicros.map { RFC3339.format(micros: $0) }; reference = f.reference
        createdAt = RFC3339.format(micros: f.createdAtMicros); resolvedAt = f.resolvedAtMicros.map { RFC3339.format(micros: $0) }
    }
}

struct ChargeView: Codable {
    let id: String, accountId: String, mode: String, amount: String, paidByCash: String, paidByGift: String
    let refunded: String, reference: String?, createdAt: String
    init(_ c: ChargeRecord) {
        id = c.id; accountId = c.accountId; mode = c.mode.rawValue; amount = MoneyFormat.format(c.amountMinor)
        paidByCash = MoneyFormat.format(c.cashMinor); paidByGift = MoneyFormat.format(c.giftMinor)
        refunded = MoneyFormat.format(c.refundedCashMinor + c.refundedGiftMinor); reference = c.reference
        createdAt = RFC3339.format(micros: c.createdAtMicros)
    }
}

struct RefundView: Codable {
    let id: String, chargeId: String, amount: String, toCash: String, toGift: String
    init(_ r: RefundInfo) {
        id = r.id; chargeId = r.chargeId; amount = MoneyFormat.format(r.amountMinor)
        toCash = MoneyFormat.format(r.cashMinor); toGift = MoneyFormat.format(r.giftMinor)
    }
}

struct RechargeJSON: Codable {
    /// `amount` is credited; `fee` (R4) is paid on top and never credited; `total` is what the channel collects.
    let id: String, accountId: String, channel: String, testChannel: Bool, amount: String, fee: String, total: String, state: String
    let channelTradeNo: String?, expiresAt: String, paidAt: String?, createdAt: String
    let payment: PaymentInstruction?
    init(_ v: RechargeView) {
        let r = v.recharge
        id = r.id; accountId = r.accountId; channel = r.channel; testChannel = v.testChannel
        amount = MoneyFormat.format(r.amountMinor); fee = MoneyFormat.format(r.feeMinor ?? 0); total = MoneyFormat.format(r.totalMinor)
        state = r.state.rawValue; channelTradeNo = r.channelTradeNo
        expiresAt = RFC3339.format(micros: r.expiresAtMicros); paidAt = r.paidAtMicros.map { RFC3339.format(micros: $0) }
        createdAt = RFC3339.format(micros: r.createdAtMicros); payment = v.payment
    }
}

struct TransactionView: Codable {
    let id: String, time: String, type: String, amount: String, cash: String, gift: String, frozen: String
    let balanceAfter: String, availableAfter: String, relatedType: String?, relatedId: String?
    let channelTradeNo: String?, memo: String?, entryId: String
    init(_ t: TransactionRecord) {
        let m = t.movement
        id = t.id; time = RFC3339.format(micros: t.createdAtMicros); type = m.type.rawValue; amount = MoneyFormat.format(m.amountMinor)
        cash = MoneyFormat.format(m.cashDeltaMinor); gift = MoneyFormat.format(m.giftDeltaMinor)
        frozen = MoneyFormat.format(m.frozenDeltaMinor); balanceAfter = MoneyFormat.format(m.balanceAfterMinor)
        availableAfter = MoneyFormat.format(m.availableAfterMinor); relatedType = t.relatedType; relatedId = t.relatedId
        channelTradeNo = t.channelTradeNo; memo = t.memo; entryId = t.entryId
    }
}

/// The answer to every ledger write: the entry, the wallet after it, and the object it touched.
struct LedgerWriteView: Codable {
    let entryId: String
    let kind: String
    let createdAt: String
    let wallet: WalletView
    let freeze: FreezeView?
    let charge: ChargeView?
    let refund: RefundView?
    init(_ r: LedgerReceipt) {
        entryId = r.entryId; kind = r.kind; createdAt = RFC3339.format(micros: r.createdAtMicros)
        wallet = WalletView(accountId: r.accountId, r.wallet)
        freeze = r.freeze.map(FreezeView.init); charge = r.charge.map(ChargeView.init); refund = r.refund.map(RefundView.init)
    }
}
