#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// QR codes from libqrencode (Debian `libqrencode4`), loaded at run time: Coffer builds without the library, and a
/// server without it shows the payment link instead of the picture and says why.
public enum QRCode {
    private typealias EncodeString = @convention(c) (UnsafePointer<CChar>?, Int32, Int32, Int32, Int32) -> UnsafeMutableRawPointer?
    private typealias Free = @convention(c) (UnsafeMutableRawPointer?) -> Void

    private struct Library: @unchecked Sendable {
        let encode: EncodeString
        let free: Free
    }

    private static let library: Library? = {
        for name in ["libqrencode.so.4", "libqrencode.so", "libqrencode.4.dylib", "libqrencode.dylib"] {
            guard let handle = dlopen(name, RTLD_NOW) else { continue }
            guard let e = dlsym(handle, "QRcode_encodeString"), let f = dlsym(handle, "QRcode_free") else { continue }
            return Library(encode: unsafeBitCast(e, to: EncodeString.self), free: unsafeBitCast(f, to: Free.self))
        }
        return nil
    }()

    /// libqrencode keeps global state while it encodes; one encoding at a time.
    private static let lock = Mutex(())

    public static var available: Bool { library != nil }

    /// The modules of a QR code (true = dark), row by row; nil when the library is missing or the text does not fit.
    public static func matrix(_ text: String) -> [[Bool]]? {
        guard let lib = library, text.utf8.count <= 1_000 else { return nil }
        return lock.withLock { _ in
            // version 0 = smallest that fits, level M (1), mode 8-bit (2), case-sensitive.
            guard let code = text.withCString({ lib.encode($0, 0, 1, 2, 1) }) else { return nil }
            defer { lib.free(code) }
            // struct QRcode { int version; int width; unsigned char *data; }
            let width = Int(code.load(fromByteOffset: 4, as: Int32.self))
            guard width > 0, width <= 177, let data = code.load(fromByteOffset: 8, as: UnsafePointer<UInt8>?.self) else { return nil }
            return (0..<width).map { y in (0..<width).map { x in data[y * width + x] & 1 == 1 } }
        }
    }

    /// An SVG picture of the code with the standard four-module quiet zone.
    public static func svg(_ text: String, moduleSize: Int = 6) -> String? {
        guard let m = matrix(text) else { return nil }
        let size = (m.count + 8) * moduleSize
        var path = ""
        for (y, row) in m.enumerated() {
            for (x, dark) in row.enumerated() where dark {
                path += "M\(x + 4) \(y + 4)h1v1h-1z"
            }
        }
        return """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(size)" height="\(size)" viewBox="0 0 \(m.count + 8) \(m.count + 8)" \
            shape-rendering="crispEdges"><rect width="100%" height="100%" fill="#fff"/><path fill="#000" d="\(path)"/></svg>
            """
    }
}
