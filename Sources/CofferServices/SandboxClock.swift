import CofferCore
import Foundation
import Synchronization

/// A clock that a test or the sandbox can move forward.
public protocol AdjustableClock: Clock {
    func advance(seconds: Int64)
}

extension ManualClock: AdjustableClock {}

/// The sandbox clock (`--sandbox-clock`, on with `--demo`), like Stripe's test clocks: the system's time plus an offset that
/// only grows, so a provider can walk an integration through expiries, cycles and renewals in seconds. The offset is kept in
/// a file beside the data, so a restart does not send time backwards (ids and cursors are ordered by time).
public final class SandboxClock: AdjustableClock {
    /// At most ten years ahead in all: ids carry 13 hex digits of microseconds, enough until 2112.
    public static let maxOffsetSeconds: Int64 = 10 * 366 * 86_400
    private let base: any Clock
    private let offsetMicros: Mutex<Int64>
    private let path: String?

    public init(base: any Clock = SystemClock(), path: String?) {
        self.base = base
        self.path = path
        let saved = path.flatMap { FileManager.default.contents(atPath: $0) }.flatMap { Int64(String(decoding: $0, as: UTF8.self)) } ?? 0
        offsetMicros = Mutex(min(max(0, saved), Self.maxOffsetSeconds * 1_000_000))
    }

    public func nowMicros() -> Int64 { base.nowMicros() + offsetMicros.withLock { $0 } }
    public var offsetSeconds: Int64 { offsetMicros.withLock { $0 } / 1_000_000 }

    public func advance(seconds: Int64) {
        let value = offsetMicros.withLock { o -> Int64 in
            o = min(o + max(0, seconds) * 1_000_000, Self.maxOffsetSeconds * 1_000_000)
            return o
        }
        if let path { FileManager.default.createFile(atPath: path, contents: Data(String(value).utf8), attributes: [.posixPermissions: 0o600]) }
    }
}

/// `POST /v1/sandbox/clock`: moves the clock of every time rule forward (W10: the same key moves it once).
public struct SandboxTime: Sendable {
    public static let maxAdvanceSeconds: Int64 = 400 * 86_400
    public struct Advanced: Codable, Sendable, Equatable {
        public var advancedSeconds: Int64
        public var nowMicros: Int64
    }
    let clock: any AdjustableClock
    let store: any CofferStore

    public init(clock: any AdjustableClock, store: any CofferStore) { (self.clock, self.store) = (clock, store) }

    public func advance(seconds: Int64, idempotencyKey: String) async throws -> (Advanced, replayed: Bool) {
        guard (1...Self.maxAdvanceSeconds).contains(seconds) else {
            throw CofferError.invalidField("advanceSeconds", "must be a whole number of seconds from 1 to \(Self.maxAdvanceSeconds) (400 days)")
        }
        let ctx = try IdempotencyContext(scope: "platform", key: idempotencyKey, fingerprint: "sandbox-clock|\(seconds)")
        if let earlier: Advanced = try await Idempotent.replay(store, ctx) { return (earlier, true) }
        let now = clock.nowMicros()
        let answer = Advanced(advancedSeconds: seconds, nowMicros: now + seconds * 1_000_000)
        let (stored, replayed) = try await Idempotent.write(store, ctx, answer, at: now) { _ in }
        // Moved once the key is claimed: a replay (or a concurrent copy of the request) answers without moving it again.
        if !replayed { clock.advance(seconds: seconds) }
        return (stored, replayed)
    }
}
