import Foundation
import H2GRPC
import OutliersJSON
import Testing
@testable import RESTGateway

@Test func statusTableIsGRPCGatewayV2s() {
    let expected: [(Status.Code, Int)] = [
        (.ok, 200), (.cancelled, 499), (.unknown, 500), (.invalidArgument, 400), (.deadlineExceeded, 504),
        (.notFound, 404), (.alreadyExists, 409), (.permissionDenied, 403), (.resourceExhausted, 429),
        (.failedPrecondition, 400), (.aborted, 409), (.outOfRange, 400), (.unimplemented, 501),
        (.internalError, 500), (.unavailable, 503), (.dataLoss, 500), (.unauthenticated, 401),
    ]
    #expect(expected.count == Status.Code.allKnown.count)
    for (code, status) in expected { #expect(code.httpStatus == status, "\(code)") }
    #expect(Status.Code(rawValue: 99).httpStatus == 500)
}

@Test func contentTypesMapToBodyFormats() {
    #expect(Gateway.bodyFormat(contentType: nil) == .json)
    for json in ["application/json", "application/json; charset=utf-8", "Application/JSON",
                 "application/x-www-form-urlencoded"] {
        #expect(Gateway.bodyFormat(contentType: json) == .json, "\(json)")
    }
    for binary in ["application/x-protobuf", "application/protobuf", "application/x-protobuf; messageType=pb.OutliersRequest"] {
        #expect(Gateway.bodyFormat(contentType: binary) == .protobuf, "\(binary)")
    }
    // A header that is there but names no media type is refused, not read as JSON.
    for refused in ["text/plain", "application/xml", "multipart/form-data; boundary=x", "application/grpc",
                    "", ";;;", " ; charset=utf-8"] {
        #expect(Gateway.bodyFormat(contentType: refused) == nil, "\(refused)")
    }
}

@Test func acceptPicksProtobufOnlyWhenAsked() {
    #expect(!Gateway.acceptsProtobuf(nil))
    #expect(!Gateway.acceptsProtobuf("*/*"))
    #expect(!Gateway.acceptsProtobuf("application/json"))
    #expect(Gateway.acceptsProtobuf("application/x-protobuf"))
    #expect(Gateway.acceptsProtobuf("application/json;q=0.5, application/x-protobuf"))
}

@Test func servedSpecIsTheRepositoryFile() throws {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("openapi.yaml")
    let file = try String(contentsOf: url, encoding: .utf8)
    // Run scripts/embed-openapi after editing openapi.yaml.
    #expect(OpenAPISpec.yaml == file)
    #expect(file.hasPrefix("openapi: 3.1"))
}

@Test func requestIDsMustBeValidMetadata() {
    for good in ["a", "client-42 (retry 1)", String(repeating: "x", count: 200), "~!@#$%^&*()"] {
        #expect(Gateway.validRequestID(good) == good, "\(good)")
    }
    for bad in ["", String(repeating: "x", count: 201), "ab\u{01}cd", "tab\there", "caf\u{e9}", "line\nbreak", "\u{7f}"] {
        #expect(Gateway.validRequestID(bad) == nil, "\(bad.debugDescription)")
    }
}

/// `serve` sizes its backend's limit with `largestMessage`: it must bound the densest
/// bodies there are (bare one-digit numbers, NaN strings, empty objects).
@Test func largestMessageBoundsTheDensestBodies() throws {
    for count in [1, 2, 10, 1000, 100_000] {
        for element in ["1", "9", "\"NaN\"", "{}", "{\"value\":1}", "0", "-1"] {
            let body = Array(("[" + Array(repeating: element, count: count).joined(separator: ",") + "]").utf8)
            let message = try body.withUnsafeBytes { raw in try JSONCodec.transcodeRequest(raw) }
            #expect(message.count <= GatewayConfiguration.largestMessage(forBodyBytes: body.count),
                    "\(count) × \(element): \(message.count) bytes from \(body.count)")
        }
    }
    // And it is tight: one-digit numbers come within 12 bytes of it.
    let dense = Array(("[" + Array(repeating: "1", count: 1000).joined(separator: ",") + "]").utf8)
    let message = try dense.withUnsafeBytes { raw in try JSONCodec.transcodeRequest(raw) }
    #expect(GatewayConfiguration.largestMessage(forBodyBytes: dense.count) - message.count <= 12)
}

@Test func generatedRequestIDsAre32HexDigitsAndDiffer() {
    #expect(Gateway.hexID(0x0123_4567_89AB_CDEF, 0xFEDC_BA98_7654_3210) == "0123456789abcdeffedcba9876543210")
    #expect(Gateway.hexID(0, 0) == String(repeating: "0", count: 32))
    let ids = (0..<100).map { _ in Gateway.makeRequestID() }
    #expect(Set(ids).count == ids.count)
    for id in ids {
        #expect(id.utf8.count == 32 && id.utf8.allSatisfy { (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }, "\(id)")
        #expect(Gateway.validRequestID(id) == id)
    }
}

@Test func mediaTypesDropOptionalWhitespaceAndParametersAndFoldASCIICase() {
    #expect(Gateway.mediaType(" \tApplication/JSON \t; charset=utf-8") == "application/json")
    #expect(Gateway.mediaType("text/json") == "text/json")
    #expect(Gateway.mediaType(";;") == "")
    #expect(Gateway.mediaType("   ") == "")
    // Only SP and HTAB are optional whitespace (RFC 9110 §5.6.3); other bytes stay.
    #expect(Gateway.mediaType("\u{00A0}application/json") == "\u{00A0}application/json")
    #expect(Gateway.trimmedLowercase(" Chunked ") == "chunked")
}
