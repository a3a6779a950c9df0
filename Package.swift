// swift-tools-version: 6.1
// The layout is ../shared/DESIGN.md §4: one module, one job; dependencies point down.
import PackageDescription

let package = Package(
    name: "outliers",
    products: [
        .executable(name: "outliers", targets: ["outliers"]),
        // `outliers bench` runs this one, built next to it.
        .executable(name: "outliers-bench", targets: ["outliers-bench"]),
        // For the fuzz package (Fuzz/Package.swift), which depends on this one by path.
        .library(name: "OutliersProto", targets: ["OutliersProto"]),
        .library(name: "OutliersJSON", targets: ["OutliersJSON"]),
        .library(name: "H2GRPC", targets: ["H2GRPC"]),
        .library(name: "OutliersService", targets: ["OutliersService"]),
        .library(name: "RESTGateway", targets: ["RESTGateway"]),
        .library(name: "POSIXSupport", targets: ["POSIXSupport"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // C system libraries, found with pkg-config (Debian: the -dev packages).
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd",
                       providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CJansson", pkgConfig: "jansson",
                       providers: [.apt(["libjansson-dev"])]),
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2",
                       providers: [.apt(["libnghttp2-dev"])]),
        .systemLibrary(name: "CEpoll"),
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // What Swift's Glibc module cannot reach (accept4 needs _GNU_SOURCE).
        .target(name: "CPOSIXShims"),
        // OpenSSL (libssl-dev) for gRPC over TLS: contexts, sessions, ALPN h2, errors in
        // words; its macros and its ALPN callback are C, so they live here.
        .target(name: "COpenSSL", linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        // GnuTLS (libgnutls28-dev) under libmicrohttpd's HTTPS: the gateway's certificate
        // generations (reloaded on SIGHUP) and client-certificate verification.
        .target(name: "CGnuTLS", linkerSettings: [.linkedLibrary("gnutls"), .linkedLibrary("microhttpd")]),

        // POSIX, not gRPC: the syscall wrapper, socket addresses, listening sockets,
        // the monotonic clock, the core count.
        .target(name: "POSIXSupport", dependencies: ["CPOSIXShims"]),
        .testTarget(name: "POSIXSupportTests", dependencies: ["POSIXSupport"]),

        // Generated swift-protobuf code and the embedded descriptors (for reflection).
        .target(name: "OutliersProto",
                dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),

        .testTarget(name: "OutliersProtoTests", dependencies: ["OutliersProto"]),

        // The statistics: pure Swift, no I/O, knows nothing of gRPC.
        .target(name: "Detection"),

        // gRPC over HTTP/2 on nghttp2: wire format, status, server (and client). Knows
        // nothing of outliers: services register handlers by method path.
        // gzip and deflate over the system zlib, streaming and bounded: HTTP's
        // Content-Encoding and gRPC's grpc-encoding.
        .target(name: "ZlibCompression", dependencies: ["CZlib"]),
        .testTarget(name: "ZlibCompressionTests", dependencies: ["ZlibCompression"]),

        .target(name: "H2GRPC", dependencies: [
            "CNGHTTP2", "CEpoll", "COpenSSL", "POSIXSupport", "ZlibCompression",
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "H2GRPCTests", dependencies: ["H2GRPC", "POSIXSupport", "ZlibCompression"]),

        // pb.Outliers Detect through Detection, plus grpc.health.v1 and reflection.
        .target(name: "OutliersService", dependencies: [
            "Detection", "H2GRPC", "OutliersProto",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        .testTarget(name: "OutliersServiceTests", dependencies: ["OutliersService", "OutliersJSON"]),

        // jansson codec: JSON ⇄ pb messages with precise errors (line, column, path).
        .target(name: "OutliersJSON", dependencies: [
            "CJansson", "OutliersProto",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .testTarget(name: "OutliersJSONTests", dependencies: ["OutliersJSON", "Detection"]),

        // The REST front: libmicrohttpd, routes, error mapping, /metrics.
        .target(name: "RESTGateway", dependencies: [
            "CGnuTLS", "CMicroHTTPD", "Detection", "H2GRPC", "OutliersJSON", "OutliersProto", "POSIXSupport", "ZlibCompression",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            .product(name: "Logging", package: "swift-log"),
            .product(name: "Metrics", package: "swift-metrics"),
            .product(name: "Prometheus", package: "swift-prometheus"),
        ]),
        .testTarget(name: "RESTGatewayTests", dependencies: ["RESTGateway", "ZlibCompression"]),

        // The client side of the contract: the article's demo request, one Detect call,
        // and the load generator behind `outliers detect --calls`.
        .target(name: "OutliersClient", dependencies: [
            "POSIXSupport",
            "Detection", "H2GRPC", "OutliersJSON", "OutliersProto",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .testTarget(name: "OutliersClientTests", dependencies: ["OutliersClient", "OutliersProto"]),

        // `outliers bench`: JSON against protobuf, size and speed (statistics, codecs, reports).
        .target(name: "SerializationBench", dependencies: [
            "Detection", "OutliersClient", "OutliersJSON", "OutliersProto", "OutliersService", "POSIXSupport", "ZlibCompression",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .testTarget(name: "SerializationBenchTests", dependencies: [
            "SerializationBench", "Detection", "OutliersClient", "OutliersJSON", "OutliersProto",
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),

        // The command line: commands only, no logic.
        .executableTarget(name: "outliers", dependencies: [
            "H2GRPC", "OutliersClient", "OutliersJSON", "OutliersService", "RESTGateway", "POSIXSupport", "ZlibCompression",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),
        // `outliers bench` as a program of its own, so that the commands above do not link
        // SerializationBench (nor its allocation counter); `outliers bench` execs it.
        .executableTarget(name: "outliers-bench", dependencies: [
            "SerializationBench",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
        ]),

        .testTarget(name: "DetectionTests", dependencies: ["Detection"]),
    ],
    swiftLanguageModes: [.v6]
)
