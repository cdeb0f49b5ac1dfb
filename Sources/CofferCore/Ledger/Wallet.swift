/// The materialized money of one account (W1, W2). Every field equals the sum of its postings (W9).
public struct WalletBalances: Codable, Equatable, Sendable {
    public var cashMinor: Int64
    public var giftMinor: Int64
    public var shareMinor: Int64
    public var frozenMinor: Int64
    public var advanceOutstandingMinor: Int64

    public init(cashMinor: Int64 = 0, giftMinor: Int64 = 0, shareMinor: Int64 = 0,
                frozenMinor: Int64 = 0, advanceOutstandingMinor: Int64 = 0) {
        self.cashMinor = cashMinor
        self.giftMinor = giftMinor
        self.shareMinor = shareMinor
        self.frozenMinor = frozenMinor
        self.advanceOutstandingMinor = advanceOutstandingMinor
    }

    public static let zero = WalletBalances()

    /// W2: balance = cash + gift + share.
    public var balanceMinor: Int64 { cashMinor + giftMinor + shareMinor }
    /// W2: available = balance − frozen.
    public var availableMinor: Int64 { balanceMinor - frozenMinor }
    /// W2: in arrears while balance < 0.
    public var inArrears: Bool { balanceMinor < 0 }

    /// The value a book contributes to this wallet, with the sign the wallet shows.
    public func value(of book: Book) -> Int64? {
        switch book {
        case .cash: cashMinor
        case .gift: giftMinor
        case .share: shareMinor
        case .frozen: frozenMinor
        case .advance: -advanceOutstandingMinor
        default: nil
        }
    }

    /// Invariants that hold after every successful operation (TIGER_STYLE: asserted on both sides of a write).
    public var invariantViolation: String? {
        if giftMinor < 0 { return "gift is negative" }
        if shareMinor < 0 { return "share is negative" }
        if frozenMinor < 0 { return "frozen is negative" }
        if advanceOutstandingMinor < 0 { return "advance outstanding is negative" }
        return nil
    }
}

/// Ledger books. Postings use the credit-positive convention: a positive amount credits the book, a negative one debits it,
/// and the postings of one entry sum to zero. The first five books belong to the customer's wallet; the rest are the
/// platform's counter-books, kept per customer account so that every entry lives entirely in one account's rows.
public enum Book: String, Codable, Sendable, CaseIterable {
    case cash, gift, share, frozen
    /// What the customer owes for advances (an asset of the platform, so it carries a debit balance).
    case advance
    case channelClearing = "channel_clearing"
    case revenue
    case giftExpense = "gift_expense"
    case adjustment
    /// Counter-book of `frozen`: a freeze moves no money, it reserves it, so it is a memo pair that still sums to zero.
    case holdControl = "hold_control"

    public static let walletBooks: [Book] = [.cash, .gift, .share, .frozen, .advance]
}

public struct Posting: Codable, Equatable, Sendable {
    public var book: Book
    public var amountMinor: Int64
    public init(_ book: Book, _ amountMinor: Int64) {
        self.book = book
        self.amountMinor = amountMinor
    }
}

/// W11 record types.
public enum TransactionType: String, Codable, Sendable, CaseIterable {
    case recharge, remittance
    case codeRedemption = "code_redemption"
    case giftGrant = "gift_grant"
    case deduction, freeze, unfreeze, refund, withdrawal
    case withdrawalReversal = "withdrawal_reversal"
    case transferIn = "transfer_in"
    case transferOut = "transfer_out"
    case adjustment
    case advance
    case advanceRepayment = "advance_repayment"
    /// C1: a coupon paid part of an order; the wallet does not move (the platform's promotion expense pays revenue).
    case couponUse = "coupon_use"
    /// A failed delivery gave the coupon's part back.
    case couponReturn = "coupon_return"
    /// W7: an order paid entirely by coupons was delivered; no money moves, the record says so.
    case orderDelivery = "order_delivery"
}

/// One line of 收支明细. `amountMinor` is always the signed change of *available* money, so that a freeze shows as money
/// leaving available and a release as money coming back; the cash/gift split and frozen change say where it moved.
public struct Movement: Codable, Equatable, Sendable {
    public var type: TransactionType
    public var amountMinor: Int64
    public var cashDeltaMinor: Int64
    public var giftDeltaMinor: Int64
    public var frozenDeltaMinor: Int64
    public var balanceAfterMinor: Int64
    public var availableAfterMinor: Int64
    /// The movement's postings, one amount per book; they sum to zero.
    public var books: BookAmounts
    /// The object this line is about when an entry's lines are about different ones (an order, a coupon).
    public var detail: String?

    public init(type: TransactionType, amountMinor: Int64, cashDeltaMinor: Int64, giftDeltaMinor: Int64,
                frozenDeltaMinor: Int64, balanceAfterMinor: Int64, availableAfterMinor: Int64, books: BookAmounts = .zero) {
        self.books = books
        self.type = type
        self.amountMinor = amountMinor
        self.cashDeltaMinor = cashDeltaMinor
        self.giftDeltaMinor = giftDeltaMinor
        self.frozenDeltaMinor = frozenDeltaMinor
        self.balanceAfterMinor = balanceAfterMinor
        self.availableAfterMinor = availableAfterMinor
    }
}

/// One signed amount per book (credit-positive, like `Posting`): the shape of one ledger row.
public struct BookAmounts: Codable, Equatable, Sendable {
    public var cash: Int64 = 0, gift: Int64 = 0, share: Int64 = 0, frozen: Int64 = 0, advance: Int64 = 0
    public var channelClearing: Int64 = 0, revenue: Int64 = 0, giftExpense: Int64 = 0, adjustment: Int64 = 0
    public var holdControl: Int64 = 0

    public static let zero = BookAmounts()
    public init() {}

    public init(_ postings: [Posting]) {
        for p in postings { self[p.book] += p.amountMinor }
    }

    public subscript(book: Book) -> Int64 {
        get {
            switch book {
            case .cash: cash
            case .gift: gift
            case .share: share
            case .frozen: frozen
            case .advance: advance
            case .channelClearing: channelClearing
            case .revenue: revenue
            case .giftExpense: giftExpense
            case .adjustment: adjustment
            case .holdControl: holdControl
            }
        }
        set {
            switch book {
            case .cash: cash = newValue
            case .gift: gift = newValue
            case .share: share = newValue
            case .frozen: frozen = newValue
            case .advance: advance = newValue
            case .channelClearing: channelClearing = newValue
            case .revenue: revenue = newValue
            case .giftExpense: giftExpense = newValue
            case .adjustment: adjustment = newValue
            case .holdControl: holdControl = newValue
            }
        }
    }

    /// Amounts are bounded by `MoneyFormat.maxAbsMinor`, so ten of them cannot overflow.
    public var sum: Int64 { Book.allCases.reduce(0) { $0 + self[$1] } }

    /// The non-zero amounts as postings, in book order.
    public var postings: [Posting] { Book.allCases.compactMap { self[$0] == 0 ? nil : Posting($0, self[$0]) } }
}
