import Foundation
import Logging
import Synchronization

/// Logs as JSON lines (`--log-format json`), one object a line: time, level, label, message, and the metadata (the
/// request id among it), for log shippers that read JSON. Messages never carry secrets: keys, passwords and tokens are
/// not logged anywhere (the test command greps the servers' logs for them).
public struct JSONLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level = .info
    let label: String
    let write: @Sendable (String) -> Void

    public init(label: String, write: @escaping @Sendable (String) -> Void = JSONLogHandler.standardOutput) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    private static let lock = Mutex(())
    public static let standardOutput: @Sendable (String) -> Void = { line in
        lock.withLock { _ in FileHandle.standardOutput.write(Data((line + "\n").utf8)) }
    }

    public func log(level: Logger.Level, message: Logger.Message, metadata extra: Logger.Metadata?, source: String,
                    file: String, function: String, line: UInt) {
        var fields: [String: Any] = ["time": Self.timestamp(), "level": level.rawValue, "label": label, "message": message.description]
        for (k, v) in metadata.merging(extra ?? [:], uniquingKeysWith: { $1 }) where fields[k] == nil { fields[k] = Self.plain(v) }
        guard let data = try? JSONSerialization.data(withJSONObject: fields, options: [.sortedKeys, .withoutEscapingSlashes]) else { return }
        write(String(decoding: data, as: UTF8.self))
    }

    static func plain(_ v: Logger.Metadata.Value) -> Any {
        switch v {
        case .string(let s): s
        case .stringConvertible(let c): c.description
        case .array(let a): a.map(plain)
        case .dictionary(let d): d.mapValues(plain)
        }
    }

    static func timestamp() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }
}
