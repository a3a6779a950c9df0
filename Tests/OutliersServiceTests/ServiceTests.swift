import Detection
import Foundation
import H2GRPC
import SwiftProtobuf
import Testing
@testable import OutliersProto
@testable import OutliersService

private func request(_ values: [Double]) throws -> [UInt8] {
    var message = Pb_OutliersRequest()
    message.metrics = values.map { value in
        var metric = Pb_Metric()
        metric.name = "CPU"
        metric.value = value
        metric.time = Google_Protobuf_Timestamp(seconds: 1_590_156_791)
        return metric
    }
    return try message.serializedBytes()
}

@Test func detectAnswersTheArticleExample() throws {
    let bytes = try DetectService.detect(request([1, 2, 100, 1, 3, 200, 1]), detector: OutlierDetector())
    #expect(try Pb_OutliersResponse(serializedBytes: bytes).indices == [5])
    let demo = try DetectService.detect(request(DemoData.values()), detector: OutlierDetector())
    #expect(try Pb_OutliersResponse(serializedBytes: demo).indices == [7, 113, 835])
    #expect(try DetectService.detect([], detector: OutlierDetector()).isEmpty)  // empty request, empty response
}

@Test func detectNamesTheNonFiniteIndex() throws {
    let bytes = try request([1, 2, 3, .nan, 5])
    #expect {
        _ = try DetectService.detect(bytes, detector: OutlierDetector())
    } throws: { error in
        guard let status = error as? RPCError else { return false }
        return status.code == .invalidArgument && status.message.contains("metrics[3].value") && status.message.contains("NaN")
    }
}

@Test func detectRefusesGarbageAsInternal() {
    #expect {
        _ = try DetectService.detect([0x0A, 0x05, 0x19], detector: OutlierDetector())
    } throws: { error in
        (error as? RPCError)?.code == .internalError
    }
}

@Test func healthCheckAndUnknownService() throws {
    let health = HealthService(services: ["pb.Outliers"])
    guard case .unary(let check) = health.handlers["/grpc.health.v1.Health/Check"]! else {
        Issue.record("Check must be unary")
        return
    }
    let context = ServerCallContext(path: "/grpc.health.v1.Health/Check")
    for name in ["", "pb.Outliers"] {
        let bytes = try check(try Grpc_Health_V1_HealthCheckRequest.with { $0.service = name }.serializedBytes(), context)
        #expect(try Grpc_Health_V1_HealthCheckResponse(serializedBytes: bytes).status == .serving)
    }
    #expect {
        _ = try check(try Grpc_Health_V1_HealthCheckRequest.with { $0.service = "nope" }.serializedBytes(), context)
    } throws: { ($0 as? RPCError)?.code == .notFound }
    health.setAll(serving: false)
    let bytes = try check([], context)
    #expect(try Grpc_Health_V1_HealthCheckResponse(serializedBytes: bytes).status == .notServing)
}

@Test func reflectionListsServicesAndFindsFilesWithDependencies() throws {
    let reflection = try ReflectionService(services: OutliersBackend.serviceNames)
    func ask(_ build: (inout Grpc_Reflection_V1_ServerReflectionRequest) -> Void) throws -> Grpc_Reflection_V1_ServerReflectionResponse {
        let bytes = try reflection.answer(try Grpc_Reflection_V1_ServerReflectionRequest.with(build).serializedBytes())
        return try Grpc_Reflection_V1_ServerReflectionResponse(serializedBytes: bytes)
    }
    let list = try ask { $0.listServices = "" }
    #expect(list.listServicesResponse.service.map(\.name) == OutliersBackend.serviceNames.sorted())

    for symbol in ["pb.Outliers", "pb.Outliers.Detect", "pb.Metric", ".pb.OutliersRequest", "pb.Metric.value"] {
        let files = try ask { $0.fileContainingSymbol = symbol }.fileDescriptorResponse.fileDescriptorProto
            .map { try Google_Protobuf_FileDescriptorProto(serializedBytes: $0) }
        #expect(files.map(\.name) == ["outliers.proto", "google/protobuf/timestamp.proto"], "\(symbol)")
        #expect(files.first?.dependency == ["google/protobuf/timestamp.proto"])
    }
    let health = try ask { $0.fileByFilename = "grpc/health/v1/health.proto" }
    #expect(health.fileDescriptorResponse.fileDescriptorProto.count == 1)
    let nested = try ask { $0.fileContainingSymbol = "grpc.health.v1.HealthCheckResponse.ServingStatus" }
    #expect(nested.fileDescriptorResponse.fileDescriptorProto.count == 1)

    let missing = try ask { $0.fileContainingSymbol = "pb.Nope" }
    #expect(missing.errorResponse.errorCode == Int32(Status.Code.notFound.rawValue))
    let missingFile = try ask { $0.fileByFilename = "nope.proto" }
    #expect(missingFile.errorResponse.errorCode == Int32(Status.Code.notFound.rawValue))
    #expect(try ask { $0.host = "h"; $0.listServices = "*" }.validHost == "h")
}

@Test func reflectionServesBothVersionsFromOneImplementation() throws {
    let reflection = try ReflectionService(services: OutliersBackend.serviceNames)
    #expect(reflection.handlers.keys.sorted() == [
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
    ])
    // A v1alpha request answered by the v1 implementation parses as a v1alpha response.
    let request = try Grpc_Reflection_V1alpha_ServerReflectionRequest.with { $0.fileContainingSymbol = "pb.Outliers" }.serializedBytes() as [UInt8]
    let response = try Grpc_Reflection_V1alpha_ServerReflectionResponse(serializedBytes: try reflection.answer(request))
    #expect(response.fileDescriptorResponse.fileDescriptorProto.count == 2)
    #expect(response.originalRequest.fileContainingSymbol == "pb.Outliers")
}

/// Every service refuses a request it cannot parse the same way: INTERNAL, grpc-go's words.
@Test func everyServiceRefusesAnUnparsableRequestAsInternal() throws {
    let garbage: [UInt8] = [0x0A, 0x05, 0x19]
    func isUnmarshalFailure(_ error: any Error) -> Bool {
        guard let failure = error as? RPCError else { return false }
        return failure.code == .internalError && failure.message.hasPrefix("grpc: failed to unmarshal the request: ")
    }
    #expect(performing: { _ = try DetectService.detect(garbage, detector: OutlierDetector()) }, throws: isUnmarshalFailure)
    #expect(performing: { _ = try HealthService.serviceName(in: garbage) }, throws: isUnmarshalFailure)
    let reflection = try ReflectionService(services: OutliersBackend.serviceNames)
    #expect(performing: { _ = try reflection.answer(garbage) }, throws: isUnmarshalFailure)
}
