import Detection
import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

@Suite struct LargeBodies {
    @Test func oneHundredThousandMetrics() throws {
        var generator = SplitMix64(seed: 1)
        let values = (0..<100_000).map { _ in Double.random(in: 0..<40, using: &generator) }
        var body = #"{"metrics":["#
        for (index, value) in values.enumerated() {
            if index > 0 { body += "," }
            body += #"{"time":"2020-05-22T14:13:\#(10 + index % 50)Z","name":"CPU","value":\#(value)}"#
        }
        body += "]}"
        let bytes = Array(body.utf8)
        let request = try JSONCodec.decodeRequest(bytes)
        #expect(request.metrics.count == 100_000)
        #expect(request.metrics.map(\.value.bitPattern) == values.map(\.bitPattern))
        #expect(request.metrics[99_999].time.seconds == 1_590_156_780 + 10 + 99_999 % 50)
        #expect(request.metrics.allSatisfy { $0.name == "CPU" })
        try expectTranscodingAgrees(bytes)
        #expect(try OutliersRequestValues.decode(transcode(bytes)) == values)

        let numbers = Array(("[" + values.map(\.description).joined(separator: ",") + "]").utf8)
        #expect(try JSONCodec.decodeRequest(numbers).metrics.map(\.value.bitPattern) == values.map(\.bitPattern))
        try expectTranscodingAgrees(numbers)
    }

    @Test func anErrorDeepInALargeBodyNamesItsIndex() {
        let body = "[" + (0..<50_000).map { $0 == 43_210 ? #"{"value":"x"}"# : #"{"value":1}"# }.joined(separator: ",") + "]"
        #expect(decodeError(body)?.path == "[43210].value")
        let numbers = "[" + (0..<50_000).map { $0 == 43_210 ? "{}" : "1" }.joined(separator: ",") + "]"
        #expect(decodeError(numbers)?.path == "[43210]")
    }

    @Test func aHugeStringAndAHugeArray() throws {
        let name = String(repeating: "é", count: 2_000_000)
        let body = Array(#"[{"name":"\#(name)","value":1}]"#.utf8)
        #expect(try JSONCodec.decodeRequest(body).metrics[0].name == name)
        try expectTranscodingAgrees(body)
        let zeros = Array(("[" + String(repeating: "0,", count: 300_000) + "0]").utf8)
        #expect(try JSONCodec.decodeRequest(zeros).metrics.count == 300_001)
    }

    @Test func largeBodies() throws {
        let values = (0..<100_000).map { Double($0 % 1000) / 7 }
        let body = "[" + values.map { $0.description }.joined(separator: ",") + "]"
        let request = try decode(body)
        #expect(request.metrics.map(\.value) == values)
        let bytes = try transcode(Array(body.utf8))
        #expect(OutliersRequestValues.decode(bytes) == values)
    }
}
