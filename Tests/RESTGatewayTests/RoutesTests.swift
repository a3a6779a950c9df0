import Foundation
import H2GRPC
import Testing
@testable import RESTGateway

@Test func statusTableIsGRPCGatewayV2s() {
    let expected: [(GRPCStatus.Code, Int)] = [
        (.ok, 200), (.cancelled, 499), (.unknown, 500), (.invalidArgument, 400), (.deadlineExceeded, 504),
        (.notFound, 404), (.alreadyExists, 409), (.permissionDenied, 403), (.resourceExhausted, 429),
        (.failedPrecondition, 400), (.aborted, 409), (.outOfRange, 400), (.unimplemented, 501),
        (.internalError, 500), (.unavailable, 503), (.dataLoss, 500), (.unauthenticated, 401),
    ]
    #expect(expected.count == GRPCStatus.Code.allKnown.count)
    for (code, status) in expected { #expect(HTTPStatusTable.httpStatus(for: code) == status, "\(code)") }
    #expect(HTTPStatusTable.httpStatus(for: GRPCStatus.Code(rawValue: 99)) == 500)
}

@Test func contentTypesMapToBodyFormats() {
    #expect(RESTGateway.bodyFormat(contentType: nil) == .json)
    for json in ["application/json", "application/json; charset=utf-8", "Application/JSON",
                 "application/x-www-form-urlencoded", ""] {
        #expect(RESTGateway.bodyFormat(contentType: json) == .json, "\(json)")
    }
    for binary in ["application/x-protobuf", "application/protobuf", "application/x-protobuf; messageType=pb.OutliersRequest"] {
        #expect(RESTGateway.bodyFormat(contentType: binary) == .protobuf, "\(binary)")
    }
    for refused in ["text/plain", "application/xml", "multipart/form-data; boundary=x", "application/grpc"] {
        #expect(RESTGateway.bodyFormat(contentType: refused) == nil, "\(refused)")
    }
}

@Test func acceptPicksProtobufOnlyWhenAsked() {
    #expect(!RESTGateway.acceptsProtobuf(nil))
    #expect(!RESTGateway.acceptsProtobuf("*/*"))
    #expect(!RESTGateway.acceptsProtobuf("application/json"))
    #expect(RESTGateway.acceptsProtobuf("application/x-protobuf"))
    #expect(RESTGateway.acceptsProtobuf("application/json;q=0.5, application/x-protobuf"))
}

@Test func servedSpecIsTheRepositoryFile() throws {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("openapi.yaml")
    let file = try String(contentsOf: url, encoding: .utf8)
    // Run scripts/embed-openapi after editing openapi.yaml.
    #expect(OpenAPISpec.yaml == file)
    #expect(file.hasPrefix("openapi: 3.1"))
}
