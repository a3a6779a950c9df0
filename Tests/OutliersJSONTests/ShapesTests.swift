import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

@Suite struct AcceptedShapes {
    @Test func theArticlesExampleInAllThreeShapes() throws {
        let values: [Double] = [1, 2, 100, 1, 3, 200, 1]
        let numbers = "[1, 2, 100, 1, 3, 200, 1]"
        let objects = "[" + values.map { #"{"value":\#($0)}"# }.joined(separator: ",") + "]"
        let message = #"{"metrics":\#(objects)}"#
        for body in [numbers, objects, message] {
            let request = try decode(body)
            #expect(request.metrics.map(\.value) == values, "\(body)")
            #expect(request.metrics.allSatisfy { !$0.hasTime && $0.name.isEmpty })
            try expectTranscodingAgrees(Array(body.utf8))
        }
        // All three give the same protobuf bytes.
        let wires = try [numbers, objects, message].map { body throws(JSONCodecError) in try transcode(Array(body.utf8)) }
        #expect(wires[0] == wires[1] && wires[1] == wires[2])
    }

    @Test func theFullMetricForm() throws {
        let request = try decode(#"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3}]}"#)
        #expect(same(request, Self.expected))
        // Key order does not matter, nor does white space.
        let reordered = try decode(" {\n \"metrics\" : [ { \"value\" : 97.3 ,\t\"name\":\"CPU\", \"time\":\"2020-05-22T14:13:11Z\" } ] }\r\n")
        #expect(same(reordered, Self.expected))
        // A bare array of metric objects is the same.
        #expect(same(try decode(#"[{"name":"CPU","time":"2020-05-22T14:13:11Z","value":97.3}]"#), Self.expected))
        try expectTranscodingAgrees(Array(#"[{"name":"CPU","time":"2020-05-22T14:13:11Z","value":97.3}]"#.utf8))
    }

    static let expected = request([metric(time: (1_590_156_791, 0), name: "CPU", value: 97.3)])

    @Test func emptyRequests() throws {
        for body in ["{}", #"{"metrics":[]}"#, #"{"metrics":null}"#, "[]", " [ ] ", "{ }"] {
            #expect(try decode(body).metrics.isEmpty, "\(body)")
            #expect(try transcode(Array(body.utf8)).isEmpty, "\(body)")
        }
    }

    @Test func aBareArrayHoldsNumbersOrMetricObjectsItsFirstElementDecides() throws {
        // Numbers take every proto3 form of a double, strings included.
        let numbers = #"[1, "2.5", -3.5, "NaN", "-Infinity", "1e2"]"#
        let values = try decode(numbers).metrics.map(\.value)
        #expect(values[0] == 1 && values[1] == 2.5 && values[2] == -3.5 && values[3].isNaN && values[4] == -.infinity && values[5] == 100)
        try expectTranscodingAgrees(Array(numbers.utf8))
        #expect(decodeError(#"[1, {"value":2}]"#) == JSONCodecError(message: "expected a number (this array holds numbers), got an object", path: "[1]"))
        #expect(decodeError(#"[{"value":1}, 2]"#)
                == JSONCodecError(message: "expected a metric object (this array holds metric objects), got a number", path: "[1]"))
        #expect(decodeError(#"["x"]"#)?.path == "[0]")
    }

    @Test func nullAndMissingFieldsTakeTheirDefaults() throws {
        let request = try decode(#"{"metrics":[{"time":null,"name":null,"value":null},{},{"value":0},{"name":""}]}"#)
        #expect(request.metrics.count == 4)
        for metric in request.metrics {
            #expect(!metric.hasTime && metric.name.isEmpty && metric.value.bitPattern == 0)
        }
        // Every metric is still there on the wire, as an empty message.
        #expect(try transcode(Array(#"[{},{"value":null}]"#.utf8)) == [0x0A, 0x00, 0x0A, 0x00])
        try expectTranscodingAgrees(Array(#"[{"time":null,"name":null,"value":null},{}]"#.utf8))
    }

    @Test func namesAreAnyJSONString() throws {
        let cases: [(String, String)] = [
            (#""CPU""#, "CPU"),
            (#""disk \"io\" \\ / \/ \b\f\n\r\t""#, "disk \"io\" \\ / / \u{8}\u{c}\n\r\t"),
            (#""é 值 🙂""#, "é 值 🙂"),
            (#""\u00e9 \u503c \ud83d\ude42""#, "é 值 🙂"),
            (#""\ud840\udc00 𠀀""#, "\u{20000} \u{20000}"),  // from U+20000 up too
            (#""a\u0000b""#, "a\u{0}b"),  // proto3 strings may hold NUL (JSON_ALLOW_NUL)
            (#""\u001f\u007f""#, "\u{1f}\u{7f}"),
            (#""""#, ""),
        ]
        for (json, name) in cases {
            let body = #"[{"name":\#(json),"value":1}]"#
            let request = try decode(body)
            #expect(request.metrics[0].name == name, "\(json)")
            #expect(Array(request.metrics[0].name.utf8) == Array(name.utf8))
            try expectTranscodingAgrees(Array(body.utf8))
        }
        // A long name (length varint of two bytes, metric length over 127).
        let long = String(repeating: "n", count: 300)
        let body = #"[{"name":"\#(long)","value":1,"time":"2020-05-22T14:13:11Z"}]"#
        #expect(try decode(body).metrics[0].name == long)
        try expectTranscodingAgrees(Array(body.utf8))
    }

    @Test func repeatedNamesAndTimesAreNotMixedUp() throws {
        // The decoder reuses the last time and name when the text repeats: check that a
        // change is always seen.
        let body = #"""
        [{"time":"2020-05-22T14:13:11Z","name":"CPU"},{"time":"2020-05-22T14:13:11Z","name":"CPU"},
         {"time":"2020-05-22T14:13:12Z","name":"CPX"},{"name":"CPU"},{"time":"2020-05-22T14:13:11Z"},
         {"time":"2020-05-22T14:13:11+00:00","name":"CPU"}]
        """#
        let request = try decode(body)
        #expect(request.metrics.map(\.hasTime) == [true, true, true, false, true, true])
        #expect(request.metrics.map(\.time.seconds) == [1_590_156_791, 1_590_156_791, 1_590_156_792, 0, 1_590_156_791, 1_590_156_791])
        #expect(request.metrics.map(\.name) == ["CPU", "CPU", "CPX", "CPU", "", "CPU"])
        try expectTranscodingAgrees(Array(body.utf8))
    }

    @Test func threeBodyShapesGiveTheSameValues() throws {
        let object = try decode(#"{"metrics":[{"value":1},{"value":2},{"value":100}]}"#)
        let metrics = try decode(#"[{"value":1},{"value":2},{"value":100}]"#)
        let numbers = try decode("[1, 2, 100]")
        for request in [object, metrics, numbers] { #expect(request.metrics.map(\.value) == [1, 2, 100]) }
        #expect(try decode(#"{"metrics":[]}"#).metrics.isEmpty)
        #expect(try decode(#"{"metrics":null}"#).metrics.isEmpty)
        #expect(try decode("{}").metrics.isEmpty)
        #expect(try decode("[]").metrics.isEmpty)
        #expect(try decode(" \n[1,2,100,1,3,200,1]\n ").metrics.count == 7)
        // Numbers in a bare array take proto3 JSON's double forms.
        let forms = try decode(#"["1","2.5",-3,"NaN","Infinity","-Infinity"]"#).metrics.map(\.value)
        #expect(forms[0] == 1 && forms[1] == 2.5 && forms[2] == -3 && forms[3].isNaN && forms[4] == .infinity && forms[5] == -.infinity)
    }

    @Test func metricFieldsAndDefaults() throws {
        let request = try decode(#"[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"name":null,"time":null,"value":null},{}]"#)
        #expect(request.metrics[0].time == Google_Protobuf_Timestamp(seconds: 1_590_156_791))
        #expect(request.metrics[0].name == "CPU")
        #expect(request.metrics[0].value == 97.3)
        for empty in request.metrics.dropFirst() {
            #expect(!empty.hasTime && empty.name.isEmpty && empty.value == 0)
        }
        #expect(try decode(#"[{"name":"disk \u00e9 \"io\""}]"#).metrics[0].name == "disk é \"io\"")
    }
}
