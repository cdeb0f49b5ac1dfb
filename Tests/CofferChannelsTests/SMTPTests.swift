@testable import CofferChannels
import CofferCore
import CofferServices
import Foundation
import Testing

/// Real e-mail (operations issue): the relay's settings and the message Coffer writes. The conversation itself is tested
/// against a real SMTP server (aiosmtpd with STARTTLS and AUTH) by scripts/smtp-test.py in the test command.
@Suite("SMTP notices")
struct SMTPTests {
    struct URLCase: Sendable, CustomStringConvertible {
        let url: String
        let expected: SMTPSettings?
        var description: String { url }
    }

    static let urls: [URLCase] = [
        URLCase(url: "smtp://coffer:s%40cret@mail.example.com:2525",
                expected: SMTPSettings(host: "mail.example.com", port: 2525, username: "coffer", password: "s@cret", from: "billing@example.com",
                                       security: .starttls, caFile: nil)),
        URLCase(url: "smtp://coffer:50%2541@mail.example.com",
                expected: SMTPSettings(host: "mail.example.com", port: 587, username: "coffer", password: "50%41", from: "billing@example.com",
                                       security: .starttls, caFile: nil)),
        URLCase(url: "smtp://mail.example.com",
                expected: SMTPSettings(host: "mail.example.com", port: 587, username: nil, password: nil, from: "billing@example.com",
                                       security: .starttls, caFile: nil)),
        URLCase(url: "smtp+plain://127.0.0.1",
                expected: SMTPSettings(host: "127.0.0.1", port: 25, username: nil, password: nil, from: "billing@example.com",
                                       security: .plain, caFile: nil)),
        // A password never crosses the network in the clear.
        URLCase(url: "smtp+plain://coffer:secret@127.0.0.1", expected: nil),
        URLCase(url: "smtps://mail.example.com", expected: nil),
        URLCase(url: "mail.example.com", expected: nil),
    ]

    @Test("The relay's URL: STARTTLS unless smtp+plain, default ports, percent-encoded passwords; anything else refused", arguments: urls)
    func parse(c: URLCase) {
        let parsed = try? SMTPSettings.parse(url: c.url, from: "billing@example.com", caFile: nil)
        #expect(parsed == c.expected)
    }

    @Test("Addresses that could end a header or a command are refused",
          arguments: [("a@b.cn", true), ("billing@example.com", true), ("a@b\r\nBcc: x@y.z", false), ("<a@b.cn>", false),
                      ("a b@c.cn", false), ("no-at.example.com", false), ("a@b@c.cn", false), ("用户@例子.cn", false)])
    func addresses(address: String, ok: Bool) {
        #expect(SMTPMessage.isAddress(address) == ok)
    }

    @Test("The message: UTF-8 subject as encoded words, the site message's id as Message-ID, the body in base64, the account's language")
    func message() throws {
        let subject = String(repeating: "充值到账", count: 10)
        let notice = Notice(messageId: "msg_0123", accountId: "acc_1", medium: .email, to: "c@customer.cn", subject: subject,
                            body: "充值 ¥1,234.50 已到账。\n.\nline", language: .zh)
        let text = SMTPMessage.render(notice, from: "billing@example.com", atMicros: 1_796_097_600_000_000)
        let split = try #require(text.range(of: "\r\n\r\n"))
        let head = String(text[..<split.lowerBound])
        let body = String(text[split.upperBound...])
        #expect(head.contains("Message-ID: <msg_0123@example.com>\r\n"))
        #expect(head.contains("Content-Language: zh-CN\r\n") && head.contains("Date: Tue, 01 Dec 2026 04:00:00 +0000\r\n"))
        // Every line short, ASCII, none starting with a dot (no dot-stuffing needed).
        for line in text.components(separatedBy: "\r\n") {
            #expect(line.utf8.count <= 998 && line.unicodeScalars.allSatisfy { $0.isASCII } && !line.hasPrefix("."), "\(line)")
        }
        let lines: [String] = head.components(separatedBy: "\r\n")
        let first = try #require(lines.firstIndex { $0.hasPrefix("Subject: ") })
        var words: [String] = [String(lines[first].dropFirst("Subject: ".count))]
        for line in lines[(first + 1)...] where line.hasPrefix(" ") { words.append(line.trimmingCharacters(in: .whitespaces)) }
        var decoded = ""
        for word in words {
            #expect(word.count <= 75 && word.hasPrefix("=?UTF-8?B?") && word.hasSuffix("?="))
            let b64 = String(word.dropFirst("=?UTF-8?B?".count).dropLast(2))
            decoded += String(decoding: Data(base64Encoded: b64) ?? Data(), as: UTF8.self)
        }
        #expect(decoded == subject && words.count > 1)
        let bodyBytes = try #require(Data(base64Encoded: body.replacingOccurrences(of: "\r\n", with: "")))
        #expect(String(decoding: bodyBytes, as: UTF8.self) == notice.body)
    }
}
