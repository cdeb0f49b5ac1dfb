// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Coffer",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "coffer", targets: ["coffer"]),
    ],
    dependencies: [
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-auth.git", from: "2.5.0"),
        .package(url: "https://github.com/vapor/sql-kit.git", from: "3.36.0"),
        .package(url: "https://github.com/vapor/sqlite-kit.git", from: "4.5.2"),
        .package(url: "https://github.com/vapor/postgres-kit.git", from: "2.17.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-http-types.git", from: "1.8.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/swiftcsv/SwiftCSV.git", from: "0.10.0"),
        .package(url: "https://github.com/vapor/multipart-kit.git", from: "4.7.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache.git", from: "2.1.1"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/adam-fowler/compress-nio.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // The SMTP client of e-mail notices (STARTTLS); both already come with async-http-client.
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        .target(name: "CofferCore"),
        .target(name: "CofferServices", dependencies: [
            "CofferCore",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "HummingbirdBcrypt", package: "hummingbird-auth"),
            .product(name: "SwiftCSV", package: "SwiftCSV"),
            .product(name: "Metrics", package: "swift-metrics"),
        ]),
        .target(name: "CofferChannels", dependencies: [
            "CofferCore", "CofferServices",
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "_CryptoExtras", package: "swift-crypto"),
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            // WeChat Pay's platform certificates (X.509) when they are downloaded and rotated.
            .product(name: "X509", package: "swift-certificates"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOPosix", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        .target(name: "CofferStorage", dependencies: [
            "CofferCore", "CofferServices",
            .product(name: "SQLKit", package: "sql-kit"),
            .product(name: "SQLiteKit", package: "sqlite-kit"),
            .product(name: "PostgresKit", package: "postgres-kit"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .target(name: "CofferHTTP", dependencies: [
            "CofferCore", "CofferServices", "CofferChannels",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            .product(name: "HTTPTypes", package: "swift-http-types"),
            .product(name: "MultipartKit", package: "multipart-kit"),
            // gzip request bodies of usage ingestion (zlib).
            .product(name: "CompressNIO", package: "compress-nio"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ], resources: [.copy("Resources/openapi.yaml")]),
        // The console: server-rendered pages (Mustache), message catalogs, CSS; served beside the API.
        .target(name: "CofferWeb", dependencies: [
            "CofferCore", "CofferServices", "CofferChannels", "CofferHTTP",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Mustache", package: "swift-mustache"),
        ], resources: [.copy("Resources/templates"), .copy("Resources/locales"), .copy("Resources/static")]),
        .executableTarget(name: "coffer", dependencies: [
            "CofferCore", "CofferServices", "CofferStorage", "CofferHTTP", "CofferChannels", "CofferWeb",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        // Shared by the test targets only: fresh databases per test on SQLite and PostgreSQL.
        .target(name: "CofferTestSupport", dependencies: [
            "CofferCore", "CofferServices", "CofferStorage", "CofferChannels",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
        ]),
        .testTarget(name: "CofferCoreTests", dependencies: ["CofferCore", "CofferServices"]),
        .testTarget(name: "CofferStorageTests", dependencies: [
            "CofferCore", "CofferServices", "CofferStorage", "CofferChannels", "CofferTestSupport",
        ]),
        .testTarget(name: "CofferChannelsTests", dependencies: ["CofferCore", "CofferServices", "CofferChannels", "CofferTestSupport"]),
        .testTarget(name: "CofferHTTPTests", dependencies: [
            "CofferCore", "CofferServices", "CofferStorage", "CofferHTTP", "CofferChannels", "CofferTestSupport", "CofferWeb",
            .product(name: "Hummingbird", package: "hummingbird"),
            .product(name: "HummingbirdTesting", package: "hummingbird"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "CompressNIO", package: "compress-nio"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
            .product(name: "Crypto", package: "swift-crypto"),
        ]),
    ]
)
