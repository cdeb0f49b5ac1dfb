import CofferCore
import CofferServices
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Where e-mail notices go: an SMTP relay (RFC 5321) with STARTTLS (RFC 3207) and AUTH PLAIN (RFC 4616).
public struct SMTPSettings: Sendable, Equatable {
    public enum Security: String, Sendable { case starttls, plain }
    public var host: String
    public var port: Int
    public var username: String?
    public var password: String?
    public var from: String
    /// STARTTLS is required unless the URL says `smtp+plain://` (a relay on the same machine or network only).
    public var security: Security
    /// PEM file of the certificate authorities to trust instead of the system's (a private relay's own CA).
    public var caFile: String?
    public var timeoutSeconds: Int64 = 30

    /// `smtp://user:password@host:587` (STARTTLS required, the default port 587) or `smtp+plain://host:25`.
    public static func parse(url: String, from: String, caFile: String?) throws(CofferError) -> SMTPSettings {
        guard let c = URLComponents(string: url), let scheme = c.scheme, let host = c.host, !host.isEmpty else {
            throw CofferError.invalidField("smtp-url", "smtp://user:password@host:587 or smtp+plain://host:25")
        }
        let security: Security
        switch scheme {
        case "smtp": security = .starttls
        case "smtp+plain": security = .plain
        default: throw CofferError.invalidField("smtp-url", "the scheme is smtp (STARTTLS required) or smtp+plain")
        }
        guard SMTPMessage.isAddress(from) else { throw CofferError.invalidField("smtp-from", "an e-mail address such as billing@example.com") }
        // URLComponents gives user and password percent-decoded already (decoding again would break a password with a %).
        let username = c.user
        if username != nil, security == .plain {
            throw CofferError.invalidField("smtp-url", "a password is sent over STARTTLS only (smtp://, not smtp+plain://)")
        }
        return SMTPSettings(host: host, port: c.port ?? (security == .starttls ? 587 : 25), username: username,
                            password: c.password, from: from, security: security, caFile: caFile)
    }
}

public enum SMTPError: Error, CustomStringConvertible {
    case closed
    case reply(command: String, code: Int, text: String)
    case malformedReply
    case notOffered(String)
    case invalidAddress

    public var description: String {
        switch self {
        case .closed: "the SMTP server closed the connection (or it timed out)"
        case let .reply(command, code, text): "the SMTP server answered \(command) with \(code) \(text.prefix(200))"
        case .malformedReply: "the SMTP server's reply is not SMTP"
        case .notOffered(let what): "the SMTP server does not offer \(what)"
        case .invalidAddress: "an address of the notice is not a plain e-mail address"
        }
    }
}

/// Sends each notice over its own connection: notices are few, and a connection per notice leaves no state between runs.
/// Throwing leaves the notice in the outbox for the next run (at least once; the Message-ID lets a reader spot a repeat).
public struct SMTPNoticeSender: NoticeSender {
    public let medium = NoticeMedium.email
    let settings: SMTPSettings
    let tls: NIOSSLContext?
    let clock: any Clock

    public init(settings: SMTPSettings, clock: any Clock = SystemClock()) throws {
        self.settings = settings
        self.clock = clock
        if settings.security == .starttls {
            var config = TLSConfiguration.makeClientConfiguration()
            config.minimumTLSVersion = .tlsv12
            if let ca = settings.caFile { config.trustRoots = .file(ca) }
            tls = try NIOSSLContext(configuration: config)
        } else {
            tls = nil
        }
    }

    public func send(_ notice: Notice) async throws {
        guard SMTPMessage.isAddress(notice.to) else { throw SMTPError.invalidAddress }
        let message = SMTPMessage.render(notice, from: settings.from, atMicros: clock.nowMicros())
        let (stream, continuation) = AsyncThrowingStream.makeStream(of: String.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(settings.timeoutSeconds))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(SMTPLineReader(continuation)) }
            }
            .connect(host: settings.host, port: settings.port).get()
        // One deadline for the whole conversation: closing the channel ends the reader, and the waiting read throws.
        let deadline = channel.eventLoop.scheduleTask(in: .seconds(settings.timeoutSeconds)) { channel.close(promise: nil) }
        defer {
            deadline.cancel()
            channel.close(promise: nil)
        }
        var session = SMTPSession(channel: channel, replies: stream.makeAsyncIterator())
        _ = try await session.reply("greeting", expect: [220])
        var capabilities = try await session.command("EHLO coffer", expect: [250])
        if let tls {
            guard capabilities.contains(where: { $0.uppercased() == "STARTTLS" }) else { throw SMTPError.notOffered("STARTTLS") }
            _ = try await session.command("STARTTLS", expect: [220])
            let host = settings.host
            try await channel.eventLoop.submit {
                // SNI takes a name, never an address; the certificate is checked against the host either way.
                let name = host.allSatisfy { $0.isHexDigit || $0 == "." || $0 == ":" } ? nil : host
                try channel.pipeline.syncOperations.addHandler(try NIOSSLClientHandler(context: tls, serverHostname: name), position: .first)
            }.get()
            capabilities = try await session.command("EHLO coffer", expect: [250])
        }
        if let user = settings.username {
            guard capabilities.contains(where: { $0.uppercased().hasPrefix("AUTH") && $0.uppercased().contains("PLAIN") }) else {
                throw SMTPError.notOffered("AUTH PLAIN")
            }
            let token = Data(([0] + Array(user.utf8) + [0] + Array((settings.password ?? "").utf8))).base64EncodedString()
            _ = try await session.command("AUTH PLAIN " + token, expect: [235], shown: "AUTH PLAIN")
        }
        _ = try await session.command("MAIL FROM:<\(settings.from)>", expect: [250])
        _ = try await session.command("RCPT TO:<\(notice.to)>", expect: [250, 251])
        _ = try await session.command("DATA", expect: [354])
        // Every line of the message is a header or base64: none starts with a dot, so nothing needs dot-stuffing.
        _ = try await session.command(message + "\r\n.", expect: [250], shown: "the message")
        _ = try? await session.command("QUIT", expect: [221])
    }
}

/// Lines from the server, handed to the conversation as they arrive.
final class SMTPLineReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let continuation: AsyncThrowingStream<String, any Error>.Continuation
    var pending: [UInt8] = []

    init(_ continuation: AsyncThrowingStream<String, any Error>.Continuation) { self.continuation = continuation }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        pending += buffer.readBytes(length: buffer.readableBytes) ?? []
        while let end = pending.firstIndex(of: UInt8(ascii: "\n")) {
            var line = pending[..<end]
            if line.last == UInt8(ascii: "\r") { line = line.dropLast() }
            continuation.yield(String(decoding: line, as: UTF8.self))
            pending.removeSubrange(...end)
        }
        // A limit on everything: SMTP lines are at most 512 octets (RFC 5321 4.5.3.1.5).
        if pending.count > 4096 { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        continuation.finish(throwing: SMTPError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        continuation.finish(throwing: error)
        context.close(promise: nil)
    }
}

struct SMTPSession {
    let channel: any Channel
    var replies: AsyncThrowingStream<String, any Error>.AsyncIterator

    /// Sends a command and reads its reply; `shown` names it in errors instead of its text (a password, a whole message).
    mutating func command(_ text: String, expect codes: Set<Int>, shown: String? = nil) async throws -> [String] {
        try await channel.writeAndFlush(ByteBuffer(string: text + "\r\n")).get()
        return try await reply(shown ?? String(text.prefix(60)), expect: codes)
    }

    /// A reply's text lines (multi-line replies are `250-…` up to `250 …`).
    mutating func reply(_ command: String, expect codes: Set<Int>) async throws -> [String] {
        var lines: [String] = []
        while true {
            guard let line = try await replies.next() else { throw SMTPError.closed }
            let bytes = Array(line.utf8)
            guard bytes.count >= 3, let code = Int(String(decoding: bytes[0..<3], as: UTF8.self)), lines.count < 100 else {
                throw SMTPError.malformedReply
            }
            lines.append(bytes.count > 4 ? String(decoding: bytes[4...], as: UTF8.self) : "")
            if bytes.count == 3 || bytes[3] == UInt8(ascii: " ") {
                guard codes.contains(code) else { throw SMTPError.reply(command: command, code: code, text: lines.joined(separator: " ")) }
                return lines
            }
        }
    }
}

/// The message itself (RFC 5322, MIME): UTF-8 subject as an encoded word, the body in base64.
enum SMTPMessage {
    /// An address as Coffer accepts one (`TextRules.email`), in plain ASCII without the characters that could end a
    /// header line or an SMTP command.
    static func isAddress(_ s: String) -> Bool {
        (try? TextRules.email(s)) != nil
            && s.unicodeScalars.allSatisfy { $0.value > 0x20 && $0.value < 0x7F && !"<>()[]\\,;:\"".unicodeScalars.contains($0) }
    }

    static func render(_ notice: Notice, from: String, atMicros: Int64) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss '+0000'"
        let date = formatter.string(from: Date(timeIntervalSince1970: Double(atMicros) / 1_000_000))
        let domain = from.split(separator: "@").last.map(String.init) ?? "coffer"
        let headers = [
            "From: \(from)",
            "To: \(notice.to)",
            "Subject: \(encodedWords(notice.subject))",
            "Date: \(date)",
            // The site message's id: a notice sent twice (at least once delivery) is seen as the same message.
            "Message-ID: <\(notice.messageId)@\(domain)>",
            "Content-Language: \(notice.language == .zh ? "zh-CN" : "en")",
            "MIME-Version: 1.0",
            "Content-Type: text/plain; charset=UTF-8",
            "Content-Transfer-Encoding: base64",
        ]
        let body = Data(notice.body.utf8).base64EncodedString(options: [.lineLength76Characters, .endLineWithCarriageReturn, .endLineWithLineFeed])
        return headers.joined(separator: "\r\n") + "\r\n\r\n" + body
    }

    /// RFC 2047 encoded words of at most 75 characters, split between characters (never inside one).
    static func encodedWords(_ text: String) -> String {
        var words: [String] = []
        var chunk = ""
        for ch in text {
            if (chunk + String(ch)).utf8.count > 45 {
                words.append(chunk)
                chunk = ""
            }
            chunk.append(ch)
        }
        if !chunk.isEmpty || words.isEmpty { words.append(chunk) }
        return words.map { "=?UTF-8?B?" + Data($0.utf8).base64EncodedString() + "?=" }.joined(separator: "\r\n ")
    }
}
