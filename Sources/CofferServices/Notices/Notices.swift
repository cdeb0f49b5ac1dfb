import Metrics
import CofferCore
import Logging
import Synchronization

public enum NoticeMedium: String, Sendable { case email, sms }

/// One site message on its way out by e-mail or SMS.
public struct Notice: Sendable, Equatable {
    public var messageId: String
    public var accountId: String
    public var medium: NoticeMedium
    public var to: String
    public var subject: String
    public var body: String
    public var language: AccountLanguage = .zh

    public init(messageId: String, accountId: String, medium: NoticeMedium, to: String, subject: String, body: String,
                language: AccountLanguage = .zh) {
        (self.messageId, self.accountId, self.medium, self.to, self.subject, self.body, self.language)
            = (messageId, accountId, medium, to, subject, body, language)
    }
}

/// How a site message reads in an account's language (the console's catalogs); without one, the text it was written with.
public protocol NoticeRenderer: Sendable {
    func render(_ message: SiteMessageRecord, language: AccountLanguage) -> (subject: String, body: String)
}

/// Where notices leave Coffer: an SMTP relay or an SMS gateway in production. Throwing means "not sent, try again".
public protocol NoticeSender: Sendable {
    var medium: NoticeMedium { get }
    func send(_ notice: Notice) async throws
}

/// The only sender Coffer has so far: it writes one log line per notice and sends nothing. The README says so.
public struct LoggingNoticeSender: NoticeSender {
    public let medium: NoticeMedium
    let logger: Logger
    public init(medium: NoticeMedium, logger: Logger = Logger(label: "coffer.notices")) {
        self.medium = medium
        self.logger = logger
    }

    public func send(_ notice: Notice) async throws {
        logger.info("\(medium.rawValue) notice (logged, not sent) to \(Self.mask(notice.to)): \(notice.subject) [\(notice.messageId)]")
    }

    /// o***r@e***.com: enough to tell recipients apart in a log, not a list of addresses (nor a place for numbers an
    /// address may hold: only two characters of the name and one of the domain are kept, and a letters-only top level).
    public static func mask(_ address: String) -> String {
        let parts = address.split(separator: "@", maxSplits: 1)
        guard parts.count == 2, let first = parts[0].first, let last = parts[0].last, let domainFirst = parts[1].first else { return "***" }
        let tld = parts[1].split(separator: ".").last.map(String.init) ?? ""
        let keptTLD = parts[1].contains(".") && (1...10).contains(tld.count) && tld.allSatisfy { $0.isASCII && $0.isLetter } ? "." + tld : ""
        return "\(first)***\(parts[0].count > 1 ? String(last) : "")@\(domainFirst)***\(keptTLD)"
    }
}

/// Hands undelivered site messages to the senders, oldest first: the site_messages table is the outbox. Delivery is at
/// least once — a crash between sending and marking sends that message again — which suits a notice and never moves money.
public struct NoticeDelivery: Sendable {
    let store: any CofferStore
    let senders: [any NoticeSender]
    let clock: any Clock
    let logger: Logger
    let renderer: (any NoticeRenderer)?

    public init(store: any CofferStore, senders: [any NoticeSender], clock: any Clock, renderer: (any NoticeRenderer)? = nil,
                logger: Logger = Logger(label: "coffer.notices")) {
        self.renderer = renderer
        self.store = store
        self.senders = senders
        self.clock = clock
        self.logger = logger
    }

    /// Returns how many messages were delivered. A message whose sender fails stays in the outbox for the next run.
    public func deliverPending(limit: Int = 100) async throws -> Int {
        guard let email = senders.first(where: { $0.medium == .email }) else { return 0 }
        var delivered: [ObjectKey] = []
        var contacts: [String: (email: String, language: AccountLanguage)] = [:]   // one read per account, however many messages it has waiting
        let pending = try await store.undeliveredMessages(limit: limit)
        // The outbox's depth as this run saw it (at most `limit`).
        Gauge(label: "coffer_outbox_pending").record(pending.count)
        for message in pending {
            if contacts[message.accountId] == nil {
                contacts[message.accountId] = try await store.account(id: message.accountId).map { ($0.contactEmail, $0.language) }
            }
            guard let contact = contacts[message.accountId] else { continue }
            let text = renderer?.render(message, language: contact.language) ?? (subject: message.title, body: message.body)
            // Accounts have a contact e-mail and no phone number yet: SMS has a port and no recipients.
            let notice = Notice(messageId: message.id, accountId: message.accountId, medium: .email, to: contact.email,
                                subject: text.subject, body: text.body, language: contact.language)
            do {
                try await email.send(notice)
                delivered.append(ObjectKey(message.accountId, message.id))
            } catch {
                logger.error("notice \(message.id) not sent, kept for the next run: \(String(describing: error))")
            }
        }
        try await store.markDelivered(delivered, atMicros: clock.nowMicros())
        return delivered.count
    }
}
