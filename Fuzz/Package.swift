// swift-tools-version: 6.1
// libFuzzer targets for the outliers package, one executable each (`make fuzz`).
// A package of its own, as swift-protobuf's FuzzTesting/ is, so that the main
// package's build and tests never see -sanitize=fuzzer. Build:
//   swift build -c debug --package-path Fuzz --sanitize=fuzzer \
//     -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library
// (`--sanitize=fuzzer --sanitize=address` together drops the coverage instrumentation.)
import PackageDescription

let outliers: (String) -> Target.Dependency = { .product(name: $0, package: "outliers") }

let package = Package(
    name: "OutliersFuzz",
    dependencies: [
        .package(name: "outliers", path: ".."),
        // The same pin as the main package: one swift-protobuf in the graph.
        .package(url: "https://github.com/apple/swift-protobuf", exact: "1.39.0"),
    ],
    targets: [
        // Loopback sockets, descriptor counting, failure reports: shared by the targets.
        .target(name: "FuzzSupport"),
        .executableTarget(name: "FuzzJSONTranscode", dependencies: [
            "FuzzSupport", outliers("OutliersJSON"), outliers("OutliersProto"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .executableTarget(name: "FuzzDecimalParser", dependencies: ["FuzzSupport", outliers("OutliersJSON")]),
        .executableTarget(name: "FuzzRFC3339", dependencies: [
            "FuzzSupport", outliers("OutliersJSON"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .executableTarget(name: "FuzzRequestValues", dependencies: [
            "FuzzSupport", outliers("OutliersProto"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .executableTarget(name: "FuzzMessageDeframer", dependencies: ["FuzzSupport", outliers("H2GRPC")]),
        .executableTarget(name: "FuzzGRPCServer", dependencies: [
            "FuzzSupport", outliers("H2GRPC"), outliers("OutliersService"), outliers("OutliersProto"),
            .product(name: "SwiftProtobuf", package: "swift-protobuf"),
        ]),
        .executableTarget(name: "FuzzRESTGateway", dependencies: [
            "FuzzSupport", outliers("RESTGateway"), outliers("OutliersService"), outliers("H2GRPC"),
        ]),
    ],
    swiftLanguageModes: [.v6]
)
