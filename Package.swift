// swift-tools-version: 6.1
// The layout is ../shared/DESIGN.md §4: one module, one job; dependencies point down.
import PackageDescription

let package = Package(
    name: "outliers",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "outliers", targets: ["outliers"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // C system libraries, found with pkg-config (Debian: the -dev packages).
        .systemLibrary(name: "CMicroHTTPD", pkgConfig: "libmicrohttpd",
                       providers: [.apt(["libmicrohttpd-dev"])]),
        .systemLibrary(name: "CJansson", pkgConfig: "jansson",
                       providers: [.apt(["libjansson-dev"])]),
        .systemLibrary(name: "CNGHTTP2", pkgConfig: "libnghttp2",
                       providers: [.apt(["libnghttp2-dev"])]),

        // Generated swift-protobuf code and the embedded descriptors (for reflection).
        .target(name: "OutliersProto",
                dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]),

        // The statistics: pure Swift, no I/O, knows nothing of gRPC.
        .target(name: "Detection"),

        // The command line: commands only, no logic.
        .executableTarget(name: "outliers", dependencies: [
            "Detection", "OutliersProto",
            .product(name: "ArgumentParser", package: "swift-argument-parser"),
            .product(name: "Logging", package: "swift-log"),
        ]),

        .testTarget(name: "DetectionTests", dependencies: ["Detection"]),
    ],
    swiftLanguageModes: [.v6]
)
