import CofferCore
import CofferServices
import CofferStorage
import CofferTestSupport
import Foundation
import Synchronization
import Testing

/// A sender that records what it was given, and can be told to fail (an SMTP relay that is down).
final class RecordingSender: NoticeSender {
    let medium = NoticeMedium.email
    let sent = Mutex<[Notice]>([])
    let failing = Mutex(false)
    func send(_ notice: Notice) async throws {
        if failing.withLock({ $0 }) { throw CofferError(.channelUnreachable, "relay refused") }
        sent.withLock { $0.append(notice) }
    }
}

@Suite("Notices: the site-message outbox handed to e-mail senders")
struct NoticeTests {
    func paidRecharge(_ env: TestEnvironment, _ account: String) async throws {
        let (view, _) = try await env.engine.recharges.create(accountId: account, amountText: "66.00", channelName: "sandbox",
                                                              idempotencyKey: env.engine.ids.make("k"), actor: "test")
        let (headers, body) = try env.sandbox.signedNotification(rechargeId: view.recharge.id, tradeNo: "t-\(view.recharge.id)",
                                                                 amountMinor: 6_600, nowMicros: env.clock.nowMicros())
        _ = try await env.engine.recharges.handleNotification(channelName: "sandbox", headers: headers, body: body)
    }

    @Test("A credited recharge's message is e-mailed once to the account's contact; a failing relay keeps it for the next run",
          arguments: Backend.available)
    func outbox(backend: Backend) async throws {
        let sender = RecordingSender()
        var settings = CofferEngine.Settings()
        settings.noticeSenders = [sender]
        try await TestEnvironment.with(backend, settings: settings) { env in
            let account = try await env.createAccount().accountId
            sender.failing.withLock { $0 = true }
            try await paidRecharge(env, account)
            #expect(try await env.engine.jobs.runOnce().noticesDelivered == 0)
            #expect(try await env.store.undeliveredMessages(limit: 10).count == 1)

            sender.failing.withLock { $0 = false }
            #expect(try await env.engine.jobs.runOnce().noticesDelivered == 1)
            #expect(try await env.engine.jobs.runOnce().noticesDelivered == 0)
            let sent = sender.sent.withLock { $0 }
            let contact = try #require(try await env.store.account(id: account)).contactEmail
            #expect(sent.count == 1 && sent[0].to == contact && sent[0].accountId == account && sent[0].body.contains("66.00"))
            #expect(try await env.store.siteMessages(accountId: account, limit: 10).allSatisfy { $0.deliveredAtMicros != nil })
        }
    }

    @Test("The logging sender masks the address", arguments: [
        ("owner@example.com", "o***r@e***.com"), ("a@b.cn", "a***@b***.cn"), ("not-an-address", "***"),
        ("x1234567890123@4567890123456.com", "x***3@4***.com"), ("a@localhost", "a***@l***"), ("b@c.1234567", "b***@c***"),
    ])
    func mask(address: String, masked: String) {
        #expect(LoggingNoticeSender.mask(address) == masked)
    }
}
