import Foundation
import AsyncHTTPClient
import NIOCore

/// Runs the Python halves of the interoperability tests (Tests/Interop), built on the PyPI packages the channel issue
/// names. The test command makes the virtual environment and sets COFFER_TEST_PYTHON; COFFER_REQUIRE_INTEROP=1 makes its
/// absence a failure instead of a skip.
public enum Interop {
    public static let python = ProcessInfo.processInfo.environment["COFFER_TEST_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
    public static let required = ProcessInfo.processInfo.environment["COFFER_REQUIRE_INTEROP"] == "1"
    public static let toolsDirectory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Tests/Interop")

    /// One request–answer run of a tool: JSON in on stdin, JSON out on stdout.
    public static func run(_ tool: String, _ command: String, _ request: [String: Any] = [:]) throws -> [String: Any] {
        guard let python else { throw TestFailure("COFFER_TEST_PYTHON is not set") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [toolsDirectory.appendingPathComponent(tool).path, command]
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        input.fileHandleForWriting.write(try JSONSerialization.data(withJSONObject: request))
        try input.fileHandleForWriting.close()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let stderr = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw TestFailure("\(tool) \(command) failed: \(stderr)") }
        guard let answer = try JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TestFailure("\(tool) \(command) answered no JSON object")
        }
        return answer
    }

    /// A loopback fake gateway (a Python HTTP server) for the length of `body`.
    public static func withFakeServer<R>(_ script: String, settings: [String: Any],
                                         _ body: (_ baseURL: String) async throws -> R) async throws -> R {
        guard let python else { throw TestFailure("COFFER_TEST_PYTHON is not set") }
        let settingsFile = FileManager.default.temporaryDirectory.appendingPathComponent("coffer-fake-\(UUID().uuidString).json")
        try JSONSerialization.data(withJSONObject: settings).write(to: settingsFile)
        defer { try? FileManager.default.removeItem(at: settingsFile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [toolsDirectory.appendingPathComponent(script).path, settingsFile.path]
        let output = Pipe(), input = Pipe()
        process.standardOutput = output
        // Held open for the fake's lifetime: it exits when this end closes, even if the test run is killed.
        process.standardInput = input
        try process.run()
        // The fake prints "port N" once it listens.
        var line = [UInt8]()
        while let byte = try output.fileHandleForReading.read(upToCount: 1)?.first, byte != UInt8(ascii: "\n") {
            line.append(byte)
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("port "), let port = Int(text.dropFirst(5)) else {
            process.terminate()
            throw TestFailure("\(script) did not start: \(text)")
        }
        // Stopped without `waitUntilExit()`, which spins a run loop on Linux and never returned here.
        func stop() async {
            try? input.fileHandleForWriting.close()
            process.terminate()
            for _ in 0..<100 where process.isRunning { try? await Task.sleep(for: .milliseconds(20)) }
        }
        do {
            let result = try await body("http://127.0.0.1:\(port)")
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
    }

    /// POSTs JSON to a fake's control endpoint and returns its JSON answer.
    public static func post(_ url: String, _ payload: [String: Any]) async throws -> [String: Any] {
        var request = HTTPClientRequest(url: url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(bytes: Array(try JSONSerialization.data(withJSONObject: payload))))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(30))
        let body = try await response.body.collect(upTo: 1 << 20)
        guard let answer = try JSONSerialization.jsonObject(with: Data(body.readableBytesView)) as? [String: Any] else {
            throw TestFailure("\(url) answered no JSON object")
        }
        return answer
    }
}
