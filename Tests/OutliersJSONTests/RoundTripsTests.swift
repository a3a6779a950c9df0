import Detection
import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

@Suite struct RoundTrips {
    static func randomRequest(_ generator: inout SplitMix64) -> Pb_OutliersRequest {
        let names = ["CPU", "mem", "", "a\"b\\c\n", "é值🙂", "\u{1}", "\u{0}", "\u{20000}\u{10FFFF}", "\u{7f}\u{2028}", " ", "/",
                     String(repeating: "x", count: 200)]
        return request((0..<Int.random(in: 0...40, using: &generator)).map { _ in
            var metric = Pb_Metric()
            if Bool.random(using: &generator) {
                let nanos = [0, 500_000_000, 123_000, 7, Int32.random(in: 0...999_999_999, using: &generator)].randomElement(using: &generator)!
                let seconds = [0, -1, RFC3339.minimumSeconds, RFC3339.maximumSeconds,
                               Int64.random(in: RFC3339.minimumSeconds...RFC3339.maximumSeconds, using: &generator)].randomElement(using: &generator)!
                metric.time = Google_Protobuf_Timestamp(seconds: seconds, nanos: nanos)
            }
            if Bool.random(using: &generator) { metric.name = names.randomElement(using: &generator)! }
            switch Int.random(in: 0...6, using: &generator) {
            case 0: metric.value = 0
            case 1: metric.value = .nan
            case 2: metric.value = [Double.infinity, -.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude, 1e21, 1e-7]
                .randomElement(using: &generator)!
            case 3:
                var bits: UInt64
                repeat { bits = UInt64.random(in: 0 ... .max, using: &generator) } while Double(bitPattern: bits).isNaN
                metric.value = Double(bitPattern: bits)
            default: metric.value = Double.random(in: -1e6...1e6, using: &generator)
            }
            return metric
        })
    }

    @Test func randomRequestsThroughOurCodecAndSwiftProtobufs() throws {
        var generator = SplitMix64(seed: 2024)
        for _ in 0..<500 {
            let original = Self.randomRequest(&generator)
            let ours = JSONCodec.encodeRequest(original)
            #expect(try JSONSerialization.jsonObject(with: Data(ours)) is [String: Any])
            // Ours → ours, bit for bit (NaN is Double.nan, which reads back as itself).
            #expect(same(try JSONCodec.decodeRequest(ours), original), "\(text(ours))")
            // Ours → swift-protobuf.
            #expect(same(try Pb_OutliersRequest(jsonUTF8Bytes: ours), original), "\(text(ours))")
            // swift-protobuf → ours.
            let theirs: [UInt8] = try original.jsonUTF8Bytes()
            #expect(same(try JSONCodec.decodeRequest(theirs), original), "\(text(theirs))")
            // Transcoding is swift-protobuf's serialization.
            let serialized: [UInt8] = try original.serializedBytes()
            #expect(try transcode(ours) == serialized)
            #expect(try transcode(theirs) == serialized)
            // As a bare array of metric objects too.
            if !original.metrics.isEmpty, ours.count > 13 {
                let bare = Array(ours[11..<(ours.count - 1)])  // {"metrics":[ … ]} → [ … ]
                #expect(try transcode(bare) == serialized, "\(text(bare))")
            }
        }
    }

    @Test func theDemoFileFromExamples() throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../examples/metrics.json")
        // The file is part of the repository: missing, it is a failure, not a skip.
        let bytes = Array(try Data(contentsOf: url))
        let request = try JSONCodec.decodeRequest(bytes)
        #expect(request.metrics.count == 1000)
        #expect(same(request, try Pb_OutliersRequest(jsonUTF8Bytes: bytes)))
        try expectTranscodingAgrees(bytes)
    }

    @Test func randomRequestsRoundTripThroughOurCodecAndSwiftProtobufs() throws {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let original = randomRequestWithAnyValueBits(&generator)
            let ours = JSONCodec.encodeRequest(original)
            // Ours → ours.
            #expect(sameAllowingAnyNaN(try JSONCodec.decodeRequest(ours), original))
            // Ours → swift-protobuf.
            #expect(sameAllowingAnyNaN(try Pb_OutliersRequest(jsonUTF8Bytes: ours), original), "\(String(decoding: ours, as: UTF8.self))")
            // swift-protobuf → ours.
            let theirs: [UInt8] = try original.jsonUTF8Bytes()
            #expect(sameAllowingAnyNaN(try JSONCodec.decodeRequest(theirs), original), "\(String(decoding: theirs, as: UTF8.self))")
            // Transcoding equals swift-protobuf's serialization of the decoded message.
            let expected: [UInt8] = try JSONCodec.decodeRequest(ours).serializedBytes()
            #expect(try transcode(ours) == expected)
        }
    }
}
