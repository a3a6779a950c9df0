import Detection
import Foundation
import H2GRPC
import OutliersJSON
import SwiftProtobuf
import Testing
@testable import OutliersProto
@testable import OutliersService

/// Whole requests with options and the answers numpy and scipy give, from
/// Tests/fixtures/robust.json ("requests", written by make_robust_fixtures.py).
struct RequestFixture: CustomTestStringConvertible, Sendable {
    let name: String
    /// The request and the answer, as proto3 JSON text.
    let request: String
    let response: String
    var testDescription: String { name }

    static let all: [RequestFixture] = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures/robust.json")
        // A missing or unreadable fixture file is a failure, not a skip.
        let root = try! JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let requests = root["requests"] as! [[String: Any]]
        precondition(requests.count >= 30, "robust.json has too few requests: \(requests.count)")
        return requests.map { entry in
            func text(_ key: String) -> String {
                String(decoding: try! JSONSerialization.data(withJSONObject: entry[key]!), as: UTF8.self)
            }
            return RequestFixture(name: entry["name"] as! String, request: text("request"), response: text("response"))
        }
    }()
}

@Test("the service answers numpy's and scipy's numbers for every method, threshold and grouping",
      arguments: RequestFixture.all)
func detectWithOptionsMatchesNumpy(_ fixture: RequestFixture) throws {
    // swift-protobuf reads the fixture's JSON: an independent reader of our codec's input.
    let request = try Pb_OutliersRequest(jsonString: fixture.request)
    let expected = try Pb_OutliersResponse(jsonString: fixture.response)
    let answer = try Pb_OutliersResponse(serializedBytes: DetectService.detect(try request.serializedBytes(),
                                                                                 detector: OutlierDetector()))
    #expect(answer == expected)

    // The gateway's path: our JSON codec to protobuf bytes, the same answer, and the
    // answer's JSON as swift-protobuf reads it.
    let transcoded = try Array(fixture.request.utf8).withUnsafeBytes { try JSONCodec.transcodeRequest($0) }
    #expect(transcoded == (try request.serializedBytes() as [UInt8]))
    let json = JSONCodec.encodeResponse(answer)
    #expect(try Pb_OutliersResponse(jsonUTF8Bytes: json) == expected)
}

private func metrics(_ values: [Double], names: [String]? = nil) -> [Pb_Metric] {
    values.enumerated().map { index, value in
        Pb_Metric.with {
            $0.value = value
            $0.name = names?[index] ?? "CPU"
        }
    }
}

private func detect(_ request: Pb_OutliersRequest) throws -> Pb_OutliersResponse {
    try Pb_OutliersResponse(serializedBytes: DetectService.detect(try request.serializedBytes(), detector: OutlierDetector()))
}

@Test func noOptionsAnswersByteForByteAsTheArticle() throws {
    let request = Pb_OutliersRequest.with { $0.metrics = metrics(DemoData.values()) }
    let bytes = try DetectService.detect(try request.serializedBytes(), detector: OutlierDetector())
    #expect(bytes == (try Pb_OutliersResponse.with { $0.indices = [7, 113, 835] }.serializedBytes() as [UInt8]))
    // Options that say what the article says give the same bytes.
    var same = request
    same.options = Pb_DetectOptions()
    #expect(try DetectService.detect(try same.serializedBytes(), detector: OutlierDetector()) == bytes)
}

@Test func badThresholdsAndMethodsAreInvalidArguments() throws {
    for threshold in [-1, -.infinity, .infinity, .nan, -Double.leastNonzeroMagnitude] {
        let request = Pb_OutliersRequest.with {
            $0.metrics = metrics([1, 2, 3])
            $0.options.threshold = threshold
        }
        #expect {
            _ = try detect(request)
        } throws: { error in
            guard let status = error as? RPCError else { return false }
            return status.code == .invalidArgument && status.message.hasPrefix("options.threshold:")
        }
    }
    let unknown = Pb_OutliersRequest.with {
        $0.metrics = metrics([1, 2, 3])
        $0.options.method = .UNRECOGNIZED(7)
    }
    #expect {
        _ = try detect(unknown)
    } throws: { error in
        (error as? RPCError)?.code == .invalidArgument && (error as? RPCError)?.message.contains("unknown method 7") == true
    }
}

@Test func aNonFiniteValueIsNamedByItsRequestIndexInAnySeries() throws {
    let request = Pb_OutliersRequest.with {
        $0.metrics = metrics([1, 2, 3, .infinity], names: ["a", "b", "a", "b"])
        $0.options.groupByName = true
        $0.options.method = .mad
    }
    #expect {
        _ = try detect(request)
    } throws: { error in
        (error as? RPCError)?.code == .invalidArgument && (error as? RPCError)?.message.hasPrefix("metrics[3].value:") == true
    }
}

@Test func degenerateSeries() throws {
    // Empty: no indices; details give one empty series without grouping, none with it.
    for method in [Pb_DetectOptions.Method.zscore, .mad, .iqr] {
        let empty = try detect(Pb_OutliersRequest.with { $0.options.method = method; $0.options.details = true })
        #expect(empty.indices.isEmpty && empty.outliers.isEmpty)
        #expect(empty.series.map(\.count) == [0])
        let grouped = try detect(Pb_OutliersRequest.with {
            $0.options.method = method; $0.options.details = true; $0.options.groupByName = true
        })
        #expect(grouped.series.isEmpty)
        // One value: its own center, no outlier.
        let one = try detect(Pb_OutliersRequest.with { $0.metrics = metrics([42.5]); $0.options.method = method; $0.options.details = true })
        #expect(one.indices.isEmpty)
        #expect(one.series.first?.center == 42.5 && one.series.first?.spread == 0)
    }
    // A constant series: no rule finds anything. All equal but one: the MAD and the
    // IQR are 0, so MAD and IQR take the one value away from the center, with an
    // infinite score (what the formulas say; openapi.yaml and the README say so too).
    let constant = try detect(Pb_OutliersRequest.with { $0.metrics = metrics([3.25, 3.25, 3.25, 3.25]); $0.options.method = .mad })
    #expect(constant.indices.isEmpty)
    for method in [Pb_DetectOptions.Method.mad, .iqr] {
        let almost = try detect(Pb_OutliersRequest.with {
            $0.metrics = metrics([3.25, 3.25, 3.25, 3.25, 3.25, 3.5]); $0.options.method = method; $0.options.details = true
        })
        #expect(almost.indices == [5])
        #expect(almost.outliers.first?.score == .infinity)
    }
}

@Test func theFastReaderPathAndTheFullDecoderAgree() throws {
    // Options without names take the fast reader's values; with details or grouping the
    // full message. A request whose options come twice (merged by protobuf) is the
    // full decoder's: the answer must not depend on the path.
    let values = DemoData.values()
    var request = Pb_OutliersRequest.with { $0.metrics = metrics(values) }
    request.options.method = .iqr
    let fast = try detect(request)
    var bytes: [UInt8] = try request.serializedBytes()
    // A second options field setting the threshold: protobuf merges the two.
    bytes += [0x12, 0x09, 0x11] + withUnsafeBytes(of: (1.0).bitPattern.littleEndian, Array.init)
    #expect(OutliersRequestValues.decodeRequest(bytes) == nil)
    let merged = try Pb_OutliersResponse(serializedBytes: DetectService.detect(bytes, detector: OutlierDetector()))
    var expected = request
    expected.options.threshold = 1
    #expect(merged == (try detect(expected)))
    #expect(fast.indices == [7, 113, 835])
}
