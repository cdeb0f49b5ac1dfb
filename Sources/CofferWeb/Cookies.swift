import Foundation

enum Cookies {
    static let session = "coffer_session"
    /// The sign-in form's CSRF token before there is a session (double-submit cookie).
    static let signInCSRF = "coffer_signin"

    static func parse(_ header: String?) -> [String: String] {
        var out: [String: String] = [:]
        guard let header, header.utf8.count <= 8_192 else { return out }
        for part in header.split(separator: ";").prefix(50) {
            let kv = part.split(separator: "=", maxSplits: 1)
            guard kv.count == 2 else { continue }
            out[kv[0].trimmingCharacters(in: .whitespaces)] = kv[1].trimmingCharacters(in: .whitespaces)
        }
        return out
    }

    /// Session cookies are HttpOnly (no script reads them) and SameSite=Lax (not sent on cross-site posts).
    static func make(_ name: String, _ value: String, maxAgeSeconds: Int64?, httpOnly: Bool = true, secure: Bool) -> String {
        var c = "\(name)=\(value); Path=/; SameSite=Lax"
        if let maxAgeSeconds { c += "; Max-Age=\(maxAgeSeconds)" }
        if httpOnly { c += "; HttpOnly" }
        if secure { c += "; Secure" }
        return c
    }

    static func expire(_ name: String, secure: Bool) -> String { make(name, "", maxAgeSeconds: 0, secure: secure) }

    /// Only a path on this site: "//evil.example" and "https://…" become "/" (no open redirect).
    static func localPath(_ target: String) -> String {
        guard target.hasPrefix("/"), !target.hasPrefix("//"), !target.hasPrefix("/\\"), target.count <= 500,
              !target.utf8.contains(where: { $0 < 32 || $0 == 127 }) else { return "/" }
        return target
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<x.count { diff |= x[i] ^ y[i] }
        return diff == 0
    }
}
