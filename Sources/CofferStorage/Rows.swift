import CofferCore
import CofferServices
import SQLKit

/// Row → record mapping, shared by both backends.
enum Rows {
    static func account(_ r: any SQLRow) throws -> AccountRecord {
        AccountRecord(id: try r.decode(column: "id", as: String.self),
                      type: AccountType(rawValue: try r.decode(column: "type", as: String.self))!,
                      entityName: try r.decode(column: "entity_name", as: String.self),
                      taxId: try r.decode(column: "tax_id", as: String?.self),
                      contactEmail: try r.decode(column: "contact_email", as: String.self),
                      currency: try r.decode(column: "currency", as: String.self),
                      timeZone: try r.decode(column: "time_zone", as: String.self),
                      createdAtMicros: try r.decode(column: "created_at", as: Int64.self),
                      language: AccountLanguage(rawValue: try r.decode(column: "language", as: String.self)) ?? .zh)
    }

    static func user(_ r: any SQLRow) throws -> UserRecord {
        UserRecord(id: try r.decode(column: "id", as: String.self),
                   accountId: try r.decode(column: "account_id", as: String.self),
                   email: try r.decode(column: "email", as: String.self),
                   name: try r.decode(column: "name", as: String.self),
                   role: UserRole(rawValue: try r.decode(column: "role", as: String.self))!,
                   passwordHash: try r.decode(column: "password_hash", as: String.self),
                   createdAtMicros: try r.decode(column: "created_at", as: Int64.self))
    }

    static func apiKey(_ r: any SQLRow) throws -> ApiKeyRecord {
        ApiKeyRecord(id: try r.decode(column: "id", as: String.self),
                     kind: ApiKeyKind(rawValue: try r.decode(column: "kind", as: String.self))!,
                     accountId: try r.decode(column: "account_id", as: String?.self),
                     userId: try r.decode(column: "user_id", as: String?.self),
                     name: try r.decode(column: "name", as: String.self),
                     digest: try r.decode(column: "digest", as: String.self),
                     createdAtMicros: try r.decode(column: "created_at", as: Int64.self))
    }

    static func wallet(_ r: any SQLRow) throws -> WalletBalances {
        WalletBalances(cashMinor: try r.decode(column: "cash_minor", as: Int64.self),
                       giftMinor: try r.decode(column: "gift_minor", as: Int64.self),
                       shareMinor: try r.decode(column: "share_minor", as: Int64.self),
                       frozenMinor: try r.decode(column: "frozen_minor", as: Int64.self),
                       advanceOutstandingMinor: try r.decode(column: "advance_minor", as: Int64.self))
    }

    static func freeze(_ r: any SQLRow) throws -> FreezeRecord {
        FreezeRecord(id: try r.decode(column: "id", as: String.self),
                     accountId: try r.decode(column: "account_id", as: String.self),
                     amountMinor: try r.decode(column: "amount_minor", as: Int64.self),
                     capturedMinor: try r.decode(column: "captured_minor", as: Int64.self),
                     state: FreezeState(rawValue: try r.decode(column: "state", as: String.self))!,
                     expiresAtMicros: try r.decode(column: "expires_at", as: Int64?.self),
                     reference: try r.decode(column: "reference", as: String?.self),
                     createdAtMicros: try r.decode(column: "created_at", as: Int64.self),
                     resolvedAtMicros: try r.decode(column: "resolved_at", as: Int64?.self))
    }

    static func charge(_ r: any SQLRow) throws -> ChargeRecord {
        ChargeRecord(id: try r.decode(column: "id", as: String.self),
                     accountId: try r.decode(column: "account_id", as: String.self),
                     mode: ChargeMode(rawValue: try r.decode(column: "mode", as: String.self))!,
                     amountMinor: try r.decode(column: "amount_minor", as: Int64.self),
                     cashMinor: try r.decode(column: "cash_minor", as: Int64.self),
                     giftMinor: try r.decode(column: "gift_minor", as: Int64.self),
                     couponMinor: try r.decode(column: "coupon_minor", as: Int64.self),
                     refundedCashMinor: try r.decode(column: "refunded_cash_minor", as: Int64.self),
                     refundedGiftMinor: try r.decode(column: "refunded_gift_minor", as: Int64.self),
                     reference: try r.decode(column: "reference", as: String?.self),
                     createdAtMicros: try r.decode(column: "created_at", as: Int64.self))
    }

    static func recharge(_ r: any SQLRow) throws -> RechargeRecord {
        RechargeRecord(id: try r.decode(column: "id", as: String.self),
                       accountId: try r.decode(column: "account_id", as: String.self),
                       channel: try r.decode(column: "channel", as: String.self),
                       amountMinor: try r.decode(column: "amount_minor", as: Int64.self),
                       state: RechargeState(rawValue: try r.decode(column: "state", as: String.self))!,
                       channelTradeNo: try r.decode(column: "channel_trade_no", as: String?.self),
                       expiresAtMicros: try r.decode(column: "expires_at", as: Int64.self),
                       paidAtMicros: try r.decode(column: "paid_at", as: Int64?.self),
                       createdAtMicros: try r.decode(column: "created_at", as: Int64.self),
                       paymentKind: try r.decode(column: "payment_kind", as: String?.self),
                       paymentURL: try r.decode(column: "payment_url", as: String?.self),
                       feeMinor: try r.decode(column: "fee_minor", as: Int64.self).nonZero,
                       payerId: try r.decode(column: "payer_id", as: String?.self))
    }

    static func channelRefund(_ r: any SQLRow) throws -> ChannelRefundRecord {
        ChannelRefundRecord(id: try r.decode(column: "id", as: String.self),
                            accountId: try r.decode(column: "account_id", as: String.self),
                            rechargeId: try r.decode(column: "recharge_id", as: String.self),
                            channel: try r.decode(column: "channel", as: String.self),
                            channelTradeNo: try r.decode(column: "channel_trade_no", as: String.self),
                            purpose: ChannelRefundPurpose(rawValue: try r.decode(column: "purpose", as: String.self))!,
                            amountMinor: try r.decode(column: "amount_minor", as: Int64.self),
                            orderTotalMinor: try r.decode(column: "order_total_minor", as: Int64.self),
                            state: ChannelRefundState(rawValue: try r.decode(column: "state", as: String.self))!,
                            channelRefundNo: try r.decode(column: "channel_refund_no", as: String?.self),
                            lastError: try r.decode(column: "last_error", as: String?.self),
                            attempts: try r.decode(column: "attempts", as: Int.self),
                            nextAttemptAtMicros: try r.decode(column: "next_attempt_at", as: Int64.self),
                            createdAtMicros: try r.decode(column: "created_at", as: Int64.self),
                            resolvedAtMicros: try r.decode(column: "resolved_at", as: Int64?.self))
    }

    static func transaction(_ r: any SQLRow) throws -> TransactionRecord {
        TransactionRecord(
            id: try r.decode(column: "id", as: String.self),
            accountId: try r.decode(column: "account_id", as: String.self),
            entryId: try r.decode(column: "entry_id", as: String.self),
            movement: Movement(type: TransactionType(rawValue: try r.decode(column: "type", as: String.self))!,
                               amountMinor: try r.decode(column: "amount_minor", as: Int64.self),
                               cashDeltaMinor: try r.decode(column: "cash_delta_minor", as: Int64.self),
                               giftDeltaMinor: try r.decode(column: "gift_delta_minor", as: Int64.self),
                               frozenDeltaMinor: try r.decode(column: "frozen_delta_minor", as: Int64.self),
                               balanceAfterMinor: try r.decode(column: "balance_after_minor", as: Int64.self),
                               availableAfterMinor: try r.decode(column: "available_after_minor", as: Int64.self)),
            relatedType: try r.decode(column: "related_type", as: String?.self),
            relatedId: try r.decode(column: "related_id", as: String?.self),
            channelTradeNo: try r.decode(column: "channel_trade_no", as: String?.self),
            memo: try r.decode(column: "memo", as: String?.self),
            createdAtMicros: try r.decode(column: "created_at", as: Int64.self))
    }

    static func entry(_ r: any SQLRow) throws -> JournalEntryRecord {
        JournalEntryRecord(id: try r.decode(column: "id", as: String.self),
                           accountId: try r.decode(column: "account_id", as: String.self),
                           kind: try r.decode(column: "kind", as: String.self),
                           idempotencyKey: try r.decode(column: "idempotency_key", as: String.self),
                           actor: try r.decode(column: "actor", as: String.self),
                           memo: try r.decode(column: "memo", as: String?.self),
                           createdAtMicros: try r.decode(column: "created_at", as: Int64.self),
                           postings: [])
    }
}

extension Int64 {
    /// nil for zero: a recharge without a fee stores 0 and reads back as "no fee".
    var nonZero: Int64? { self == 0 ? nil : self }
}
