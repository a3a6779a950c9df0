import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

// Every accepted shape and every rejection with its exact message and path; round
// trips against swift-protobuf's proto3 JSON; transcoding against swift-protobuf's
// serialization. (OutliersJSONTests.swift holds the first, shorter suite.)

private func decode(_ text: String) throws(JSONCodecError) -> Pb_OutliersRequest {
    try JSONCodec.decodeRequest(Array(text.utf8))
}

private func decodeError(_ bytes: [UInt8]) -> JSONCodecError? {
    do {
        _ = try JSONCodec.decodeRequest(bytes)
        return nil
    } catch {
        // transcodeRequest must refuse the same body with the same error.
        let transcoded = bytes.withUnsafeBytes { raw in
            Result { () throws(JSONCodecError) -> [UInt8] in try JSONCodec.transcodeRequest(raw) }
        }
        if case .failure(let other) = transcoded {
            #expect(other == error)
        } else {
            Issue.record("transcodeRequest accepted what decodeRequest refused: \(error)")
        }
        return error
    }
}

private func decodeError(_ text: String) -> JSONCodecError? {
    decodeError(Array(text.utf8))
}

private func transcode(_ bytes: [UInt8]) throws(JSONCodecError) -> [UInt8] {
    try bytes.withUnsafeBytes { raw in Result { () throws(JSONCodecError) -> [UInt8] in try JSONCodec.transcodeRequest(raw) } }.get()
}

/// decodeRequest and transcodeRequest agree: the transcoded bytes (by PlainBodyScanner
/// when the body is plain, else by jansson) are swift-protobuf's serialization of the
/// decoded message, equal to what the jansson path alone writes, and parse back.
private func expectTranscodingAgrees(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
    let request = try JSONCodec.decodeRequest(bytes)
    let expected: [UInt8] = try request.serializedBytes()
    let wire = try transcode(bytes)
    #expect(wire == expected, sourceLocation: sourceLocation)
    let janssonOnly = try bytes.withUnsafeBytes { raw in
        Result { () throws(JSONCodecError) -> [UInt8] in try JSONCodec.transcodeWithJansson(raw) }
    }.get()
    #expect(janssonOnly == expected, sourceLocation: sourceLocation)
    #expect(same(try Pb_OutliersRequest(serializedBytes: wire), request), sourceLocation: sourceLocation)
}

/// Equal field by field, doubles by bit pattern.
private func same(_ a: Pb_OutliersRequest, _ b: Pb_OutliersRequest) -> Bool {
    a.metrics.count == b.metrics.count && zip(a.metrics, b.metrics).allSatisfy { x, y in
        x.hasTime == y.hasTime && x.time.seconds == y.time.seconds && x.time.nanos == y.time.nanos
            && x.name == y.name && x.value.bitPattern == y.value.bitPattern
    }
}

private func metric(time: (Int64, Int32)? = nil, name: String = "", value: Double = 0) -> Pb_Metric {
    var metric = Pb_Metric()
    if let time { metric.time = Google_Protobuf_Timestamp(seconds: time.0, nanos: time.1) }
    metric.name = name
    metric.value = value
    return metric
}

private func request(_ metrics: [Pb_Metric]) -> Pb_OutliersRequest {
    var request = Pb_OutliersRequest()
    request.metrics = metrics
    return request
}

private func text(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self)
}

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
}

@Suite struct Times {
    @Test(arguments: [
        // Offsets.
        ("2020-05-22T14:13:11Z", 1_590_156_791, 0),
        ("2020-05-22T19:43:11+05:30", 1_590_156_791, 0),
        ("2020-05-22T06:13:11-08:00", 1_590_156_791, 0),
        ("2020-05-22T14:13:11+00:00", 1_590_156_791, 0),
        ("2020-05-22T14:13:11-00:00", 1_590_156_791, 0),
        ("2020-05-23T04:13:11+14:00", 1_590_156_791, 0),  // Kiribati; swift-protobuf refuses above 13
        ("2020-05-23T14:12:11+23:59", 1_590_156_791, 0),
        ("2020-05-21T14:14:11-23:59", 1_590_156_791, 0),
        ("2020-01-01T00:00:00+05:30", 1_577_817_000, 0),  // the offset moves the day back
        // 0 to 9 fraction digits.
        ("2020-05-22T14:13:11.1Z", 1_590_156_791, 100_000_000),
        ("2020-05-22T14:13:11.12Z", 1_590_156_791, 120_000_000),
        ("2020-05-22T14:13:11.123Z", 1_590_156_791, 123_000_000),
        ("2020-05-22T14:13:11.1234Z", 1_590_156_791, 123_400_000),
        ("2020-05-22T14:13:11.12345Z", 1_590_156_791, 123_450_000),
        ("2020-05-22T14:13:11.123456Z", 1_590_156_791, 123_456_000),
        ("2020-05-22T14:13:11.1234567Z", 1_590_156_791, 123_456_700),
        ("2020-05-22T14:13:11.12345678Z", 1_590_156_791, 123_456_780),
        ("2020-05-22T14:13:11.123456789Z", 1_590_156_791, 123_456_789),
        ("2020-05-22T14:13:11.000000000Z", 1_590_156_791, 0),
        ("2020-05-22T19:43:11.5+05:30", 1_590_156_791, 500_000_000),
        // Before 1970: negative seconds, nanos still count forward.
        ("1969-12-31T23:59:59.999Z", -1, 999_000_000),
        ("1900-01-01T00:00:00Z", -2_208_988_800, 0),
        // The range, at both ends.
        ("0001-01-01T00:00:00Z", -62_135_596_800, 0),
        ("0001-01-01T05:30:00+05:30", -62_135_596_800, 0),
        ("9999-12-31T23:59:59.999999999Z", 253_402_300_799, 999_999_999),
        ("9999-12-31T22:59:59-01:00", 253_402_300_799, 0),
        // Leap years.
        ("2024-02-29T00:00:00Z", 1_709_164_800, 0),
        ("2000-02-29T12:00:00Z", 951_825_600, 0),
        ("1600-02-29T00:00:00Z", -11_670_998_400, 0),
        ("2023-12-31T23:59:59Z", 1_704_067_199, 0),
        ("2024-12-31T00:00:00Z", 1_735_603_200, 0),
    ] as [(String, Int64, Int32)])
    func accepted(text: String, seconds: Int64, nanos: Int32) throws {
        let body = #"{"metrics":[{"time":"\#(text)"}]}"#
        let metric = try decode(body).metrics[0]
        #expect(metric.hasTime)
        #expect(metric.time.seconds == seconds && metric.time.nanos == nanos, "\(text) → \(metric.time)")
        try expectTranscodingAgrees(Array(body.utf8))
        // swift-protobuf agrees (it takes offsets only up to 13 hours and no year 0).
        if !text.hasSuffix("+14:00") && !text.hasSuffix("23:59") {
            #expect(try Pb_OutliersRequest(jsonString: body).metrics[0].time == metric.time)
        }
    }

    static let shape = #"(RFC 3339, like 2020-05-22T14:13:11Z or 2020-05-22T19:43:11.5+05:30)"#

    @Test(arguments: [
        ("", "expected the form YYYY-MM-DDTHH:MM:SSZ, with an optional fraction of 1 to 9 digits and Z or an offset ±HH:MM"),
        ("2020-05-22T14:13:11", "expected the form YYYY-MM-DDTHH:MM:SSZ, with an optional fraction of 1 to 9 digits and Z or an offset ±HH:MM"),
        ("20-05-22T14:13:11Z  ", "the year must be 4 digits"),
        ("2020/05/22T14:13:11Z", "expected '-' after the year at offset 4"),
        ("2020-5-22T14:13:11Z ", "the month must be 2 digits"),
        ("2020-05-22 14:13:11Z", "expected 'T' between the date and the time at offset 10"),
        ("2020-05-22t14:13:11Z", "'t' must be an uppercase 'T'"),
        ("2020-05-22T14:13:11z", "'z' must be an uppercase 'Z'"),
        ("2020-05-22T14.13.11Z", "expected ':' after the hour at offset 13"),
        ("2020-13-01T00:00:00Z", "month 13 is not 01–12"),
        ("2020-00-01T00:00:00Z", "month 00 is not 01–12"),
        ("2020-04-31T00:00:00Z", "day 31 is not 01–30 for 2020-04"),
        ("2020-01-00T00:00:00Z", "day 00 is not 01–31 for 2020-01"),
        ("2023-02-29T00:00:00Z", "day 29 is not 01–28 for 2023-02"),
        ("1900-02-29T00:00:00Z", "day 29 is not 01–28 for 1900-02"),
        ("2100-02-29T00:00:00Z", "day 29 is not 01–28 for 2100-02"),
        ("2020-05-22T24:00:00Z", "hour 24 is not 00–23"),
        ("2020-05-22T14:60:00Z", "minute 60 is not 00–59"),
        ("2016-12-31T23:59:60Z", "second 60 is not 00–59 (leap seconds are not representable)"),
        ("2020-05-22T14:13:11.Z", "'.' must be followed by 1 to 9 digits"),
        ("2020-05-22T14:13:11.1234567890Z", "more than 9 fractional digits"),
        ("2020-05-22T14:13:11+5:30", "the offset must be ±HH:MM"),
        ("2020-05-22T14:13:11+05:30:00", "the offset must be ±HH:MM"),
        ("2020-05-22T14:13:11+0530", "the offset must be ±HH:MM"),
        ("2020-05-22T14:13:11+24:00", "offset 24:00 is not within ±23:59"),
        ("2020-05-22T14:13:11+05:60", "offset 05:60 is not within ±23:59"),
        ("2020-05-22T14:13:11 Z", "expected 'Z' or an offset ±HH:MM at offset 19"),
        ("2020-05-22T14:13:11.5", "missing 'Z' or an offset ±HH:MM at the end"),
        ("2020-05-22T14:13:11ZZ", "unexpected characters after the time zone"),
        ("2020-05-22T14:13:11Z\u{0}", "unexpected characters after the time zone"),
        (" 2020-05-22T14:13:11Z", "the year must be 4 digits"),
        ("１２３４-05-22T14:13:11Z", "the year must be 4 digits"),
    ])
    func malformed(text: String, why: String) {
        let escaped = text.replacingOccurrences(of: "\u{0}", with: "\\u0000")
        let error = decodeError(#"{"metrics":[{"value":1},{"value":2},{"time":"\#(escaped)","value":3}]}"#)
        #expect(error?.path == "metrics[2].time")
        #expect(error?.message == #"invalid time "\#(escaped)": \#(why) \#(Self.shape)"#)
        #expect(error?.line == nil && error?.column == nil)
        // In a bare array the path has no "metrics".
        #expect(decodeError(#"[{"time":"\#(escaped)"}]"#)?.path == "[0].time")
    }

    @Test(arguments: [
        ("0000-12-31T23:59:59Z", true),
        ("0000-12-31T23:00:00-01:00", true),  // 0001-01-01T00:00:00Z, but year 0000 is refused (as swift-protobuf; Go takes it)
        ("0000-01-01T00:00:00Z", true),
        ("0001-01-01T00:00:00+00:01", true),
        ("0001-01-01T00:00:00.999999999+00:01", true),
        ("9999-12-31T23:59:59-00:01", false),
        ("9999-12-31T23:59:59.999999999-23:59", false),
    ])
    func outOfRange(text: String, before: Bool) {
        let error = decodeError(#"{"metrics":[{"time":"\#(text)"}]}"#)
        #expect(error?.path == "metrics[0].time")
        let bound = before ? "before 0001-01-01T00:00:00Z" : "after 9999-12-31T23:59:59.999999999Z"
        #expect(error?.message == #"timestamp out of range: "\#(text)" is \#(bound)"#)
        #expect(error?.description == #"metrics[0].time: timestamp out of range: "\#(text)" is \#(bound)"#)
    }

    @Test func wrongTypes() {
        for (json, got) in [("5", "a number"), ("true", "a boolean"), ("false", "a boolean"), ("[]", "an array"), ("{}", "an object"),
                            (#"["2020-05-22T14:13:11Z"]"#, "an array")] {
            let error = decodeError(#"{"metrics":[{"time":\#(json)}]}"#)
            #expect(error == JSONCodecError(message: "expected an RFC 3339 time string, got \(got)", path: "metrics[0].time"))
        }
        // Unix seconds are not a Timestamp in proto3 JSON.
        #expect(decodeError(#"[{"time":1590156791}]"#)?.path == "[0].time")
    }

    @Test func aLongBadTimeIsShortenedInTheMessage() {
        let long = String(repeating: "9", count: 1000)
        let error = decodeError(#"[{"time":"\#(long)"}]"#)
        #expect(error?.message.contains(String(repeating: "9", count: 64) + "…\"") == true)
        #expect((error?.message.count ?? 0) < 300)
    }

    @Test func randomValidTimesAgreeWithSwiftProtobuf() throws {
        var generator = SeededGenerator(seed: 7)
        for _ in 0..<2000 {
            let seconds = Int64.random(in: RFC3339.minimumSeconds...RFC3339.maximumSeconds, using: &generator)
            let nanos = Int32.random(in: 0...999_999_999, using: &generator)
            let formatted = RFC3339.format(seconds: seconds, nanos: nanos)
            // What swift-protobuf writes, we write.
            let theirs: [UInt8] = try request([metric(time: (seconds, nanos))]).jsonUTF8Bytes()
            #expect(text(theirs) == #"{"metrics":[{"time":"\#(formatted)"}]}"#)
            let metric = try decode(#"[{"time":"\#(formatted)"}]"#).metrics[0]
            #expect(metric.time.seconds == seconds && metric.time.nanos == nanos, "\(formatted)")
        }
    }

    @Test func formatting() {
        #expect(RFC3339.format(seconds: 1_590_156_791, nanos: 0) == "2020-05-22T14:13:11Z")
        #expect(RFC3339.format(seconds: 1_590_156_791, nanos: 100_000_000) == "2020-05-22T14:13:11.100Z")
        #expect(RFC3339.format(seconds: 1_590_156_791, nanos: 123_456_000) == "2020-05-22T14:13:11.123456Z")
        #expect(RFC3339.format(seconds: 1_590_156_791, nanos: 1) == "2020-05-22T14:13:11.000000001Z")
        #expect(RFC3339.format(seconds: -1, nanos: 0) == "1969-12-31T23:59:59Z")
        #expect(RFC3339.format(seconds: RFC3339.minimumSeconds, nanos: 0) == "0001-01-01T00:00:00Z")
        #expect(RFC3339.format(seconds: RFC3339.maximumSeconds, nanos: 999_999_999) == "9999-12-31T23:59:59.999999999Z")
        // What proto3 JSON cannot hold becomes the nearest instant it can.
        #expect(RFC3339.format(seconds: 10, nanos: -1) == "1970-01-01T00:00:09.999999999Z")
        #expect(RFC3339.format(seconds: 10, nanos: 1_500_000_000) == "1970-01-01T00:00:11.500Z")
        #expect(RFC3339.format(seconds: .max, nanos: .max) == "9999-12-31T23:59:59.999999999Z")
        #expect(RFC3339.format(seconds: .min, nanos: .min) == "0001-01-01T00:00:00Z")
        #expect(RFC3339.format(seconds: RFC3339.maximumSeconds + 1, nanos: 0) == "9999-12-31T23:59:59.999999999Z")
    }

    @Test func calendarArithmeticMatchesForEveryDayOfFourHundredYears() {
        var days = RFC3339.daysFromCivil(year: 1600, month: 1, day: 1)
        for year in 1600..<2000 {
            for month in 1...12 {
                for day in 1...RFC3339.daysIn(month: month, year: year) {
                    #expect(RFC3339.daysFromCivil(year: year, month: month, day: day) == days)
                    let civil = RFC3339.civilFromDays(days)
                    if civil.year != year || civil.month != month || civil.day != day {
                        Issue.record("\(year)-\(month)-\(day) → \(civil)")
                    }
                    days += 1
                }
            }
        }
        #expect(RFC3339.daysFromCivil(year: 1970, month: 1, day: 1) == 0)
    }
}

@Suite struct Values {
    @Test(arguments: [
        ("97.3", 97.3),
        ("0", 0.0),
        ("-0", -0.0),
        ("-0.0", -0.0),
        ("1e2", 100.0),
        ("1E+2", 100.0),
        ("-2.5e-3", -0.0025),
        ("1.7976931348623157e308", Double.greatestFiniteMagnitude),
        ("5e-324", Double.leastNonzeroMagnitude),
        ("1e-400", 0.0),  // underflow is zero, as strtod and Go's ParseFloat give
        ("123456789012345678901234567890", 1.2345678901234568e29),  // JSON_DECODE_INT_AS_REAL
        ("9007199254740993", 9_007_199_254_740_992.0),  // rounds to nearest even
        ("0.1", 0.1),
        (#""1.5""#, 1.5),
        (#""-2e3""#, -2000.0),
        (#""0""#, 0.0),
        (#""-0""#, -0.0),
        (#""1E5""#, 100_000.0),
        (#""123456789012345678901234567890""#, 1.2345678901234568e29),
        (#""1e-400""#, 0.0),
        (#""Infinity""#, Double.infinity),
        (#""-Infinity""#, -Double.infinity),
    ] as [(String, Double)])
    func accepted(json: String, expected: Double) throws {
        let body = #"{"metrics":[{"value":\#(json)}]}"#
        let value = try decode(body).metrics[0].value
        #expect(value.bitPattern == expected.bitPattern, "\(json) → \(value)")
        try expectTranscodingAgrees(Array(body.utf8))
        #expect(try Pb_OutliersRequest(jsonString: body).metrics[0].value.bitPattern == expected.bitPattern)
    }

    @Test func nanIsAccepted() throws {
        let value = try decode(#"[{"value":"NaN"}]"#).metrics[0].value
        #expect(value.isNaN && value.bitPattern == Double.nan.bitPattern)
        try expectTranscodingAgrees(Array(#"[{"value":"NaN"}]"#.utf8))
    }

    static let stringRule = #"expected a number, "NaN", "Infinity" or "-Infinity""#

    @Test(arguments: ["", " 1", "1 ", "0x10", "1.5abc", "inf", "-inf", "nan", "NAN", "infinity", "+Infinity", "-NaN",
                      "+1", ".5", "1.", "01", "-01", "-", "1e", "1e+", "e5", "1_000", "1,5", "Infinity ", "١"])
    func badNumberStrings(string: String) {
        let error = decodeError(#"{"metrics":[{"value":1},{"value":2},{"value":3},{"value":"\#(string)"}]}"#)
        #expect(error == JSONCodecError(message: #"invalid number string "\#(string)": \#(Self.stringRule)"#, path: "metrics[3].value"))
        #expect(error?.description == #"metrics[3].value: invalid number string "\#(string)": \#(Self.stringRule)"#)
        // In a bare array of numbers the path is the element's.
        #expect(decodeError(#"[1, "\#(string)"]"#)?.path == "[1]")
    }

    @Test func numberStringsThatOverflow() {
        for string in ["1e400", "-1e400", "1.8e308"] {
            #expect(decodeError(#"[{"value":"\#(string)"}]"#)
                    == JSONCodecError(message: #"number "\#(string)" is out of range for a double"#, path: "[0].value"))
        }
        // A long one is shortened in the message.
        let long = "1" + String(repeating: "0", count: 400)
        #expect(decodeError(#"["\#(long)"]"#)
                == JSONCodecError(message: #"number "\#("1" + String(repeating: "0", count: 63))…" is out of range for a double"#, path: "[0]"))
    }

    @Test func numbersThatOverflowAreJanssonsError() {
        let error = decodeError(#"{"metrics":[{"value":1e400}]}"#)
        #expect(error == JSONCodecError(message: "real number overflow near '1e400'", line: 1, column: 26, position: 26))
        #expect(error?.description == "invalid JSON at line 1, column 26: real number overflow near '1e400'")
        #expect(decodeError("[-1e400]")?.message == "real number overflow near '-1e400'")
        #expect(decodeError("[1" + String(repeating: "0", count: 400) + "]")?.message.hasPrefix("real number overflow") == true)
    }

    @Test func wrongTypes() {
        for (json, got) in [("true", "a boolean"), ("false", "a boolean"), ("[1]", "an array"), (#"{"value":1}"#, "an object")] {
            let error = decodeError(#"{"metrics":[{"value":1},{"value":2},{"value":3},{"value":\#(json)}]}"#)
            #expect(error == JSONCodecError(message: #"expected a number or one of "NaN", "Infinity", "-Infinity", got \#(got)"#,
                                            path: "metrics[3].value"))
        }
        #expect(decodeError(#"[{"value":{}}]"#)?.description
                == #"[0].value: expected a number or one of "NaN", "Infinity", "-Infinity", got an object"#)
    }

    @Test func numberStringGrammar() {
        let accepted = ["0", "-0", "1", "10", "1.0", "0.5", "-0.5", "1e5", "1E5", "1e+5", "1e-5", "1.5e10", "123456789"]
        let refused = ["", "-", "+1", "01", "00", "1.", ".1", "1e", "1e+", "1ee5", "1.5.5", "--1", "1-", " 1", "0x1", "Infinity"]
        for string in accepted { #expect(JSONCodec.isJSONNumber(string), "\(string)") }
        for string in refused { #expect(!JSONCodec.isJSONNumber(string), "\(string)") }
    }

    @Test func aNULInsideANumberStringIsNotCutShort() {
        #expect(decodeError(#"[{"value":"1\u00002"}]"#)?.path == "[0].value")
        #expect(decodeError(#"["1\u0000"]"#)?.message == #"invalid number string "1\u0000": expected a number, "NaN", "Infinity" or "-Infinity""#)
    }
}

@Suite struct Rejections {
    @Test func namesMustBeStrings() {
        for (json, got) in [("5", "a number"), ("true", "a boolean"), ("[]", "an array"), ("{}", "an object")] {
            #expect(decodeError(#"{"metrics":[{"name":"a"},{"name":\#(json)}]}"#)
                    == JSONCodecError(message: "expected a string, got \(got)", path: "metrics[1].name"))
            #expect(decodeError(#"[{}, {"name":\#(json)}]"#)?.description == "[1].name: expected a string, got \(got)")
        }
    }

    @Test func unknownFieldsInAMetric() {
        let error = decodeError(#"{"metrics":[{},{},{},{"value":1,"foo":2}]}"#)
        #expect(error == JSONCodecError(message: #"unknown field "foo" (a Metric has time, name and value)"#, path: "metrics[3].foo"))
        #expect(error?.description == #"metrics[3].foo: unknown field "foo" (a Metric has time, name and value)"#)
        #expect(decodeError(#"[{}, {"valu":1}]"#)?.path == "[1].valu")
        #expect(decodeError(#"[{"Value":1}]"#)?.path == "[0].Value")  // names are case sensitive
        #expect(decodeError(#"[{"values":1}]"#)?.path == "[0].values")
        #expect(decodeError(#"[{"tim":1}]"#)?.path == "[0].tim")
        #expect(decodeError(#"[{"":1}]"#)?.path == "[0].")
        #expect(decodeError(#"[{"timestamp":"2020-05-22T14:13:11Z"}]"#)?.path == "[0].timestamp")
        // Even when null, an unknown field is unknown.
        #expect(decodeError(#"[{"foo":null}]"#)?.path == "[0].foo")
        // A key with a quote or a control character is escaped in the message.
        #expect(decodeError(#"[{"a\"b\n":1}]"#)?.message == #"unknown field "a\"b\n" (a Metric has time, name and value)"#)
        // A huge key is shortened.
        let long = String(repeating: "k", count: 10_000)
        let longError = decodeError(#"[{"\#(long)":1}]"#)
        #expect(longError?.path == "[0]." + String(repeating: "k", count: 64) + "…")
        #expect((longError?.description.count ?? 0) < 300)
    }

    @Test func unknownFieldsAtTheTop() {
        #expect(decodeError(#"{"metric":[]}"#)
                == JSONCodecError(message: #"unknown field "metric" (an OutliersRequest has only "metrics")"#, path: "metric"))
        #expect(decodeError(#"{"metrics":[],"indices":[1]}"#)?.description
                == #"indices: unknown field "indices" (an OutliersRequest has only "metrics")"#)
        #expect(decodeError(#"{"Metrics":[]}"#)?.path == "Metrics")
    }

    @Test func wrongTypesNameTheirPath() {
        let objects = "a metric object (this array holds metric objects)"
        let cases: [(String, String, String)] = [
            (#"{"metrics":"x"}"#, "metrics", "expected an array of metrics, got a string"),
            (#"{"metrics":{}}"#, "metrics", "expected an array of metrics, got an object"),
            (#"{"metrics":1}"#, "metrics", "expected an array of metrics, got a number"),
            (#"{"metrics":true}"#, "metrics", "expected an array of metrics, got a boolean"),
            // Inside "metrics" only metric objects, as proto3 JSON has it.
            (#"{"metrics":[{},1]}"#, "metrics[1]", "expected a metric object, got a number"),
            (#"{"metrics":[1,2]}"#, "metrics[0]", "expected a metric object, got a number"),
            (#"{"metrics":[null]}"#, "metrics[0]", "expected a metric object, got null"),
            (#"{"metrics":[[]]}"#, "metrics[0]", "expected a metric object, got an array"),
            (#"{"metrics":[{},"NaN"]}"#, "metrics[1]", "expected a metric object, got a string"),
            // In a bare array, numbers or metric objects as its first element says.
            ("[1, 2, true]", "[2]", "expected a number (this array holds numbers), got a boolean"),
            ("[1, null]", "[1]", "expected a number (this array holds numbers), got null"),
            ("[1, [2]]", "[1]", "expected a number (this array holds numbers), got an array"),
            ("[null]", "[0]", "expected \(objects), got null"),
            ("[[1]]", "[0]", "expected \(objects), got an array"),
            ("[true, 1]", "[0]", "expected \(objects), got a boolean"),
            ("[{}, false]", "[1]", "expected \(objects), got a boolean"),
        ]
        for (body, path, message) in cases {
            let error = decodeError(body)
            #expect(error == JSONCodecError(message: message, path: path), "\(body)")
            #expect(error?.description == "\(path): \(message)")
        }
    }

    @Test func topLevelValuesOtherThanObjectOrArray() {
        let expected = #"expected a JSON object {"metrics":[…]} or an array, got "#
        for (body, got) in [("5", "a number"), (#""text""#, "a string"), ("true", "a boolean"), ("false", "a boolean"), ("null", "null")] {
            let error = decodeError(body)
            #expect(error == JSONCodecError(message: expected + got), "\(body)")
            #expect(error?.description == expected + got)
        }
    }

    @Test func emptyAndBlankBodies() throws {
        let empty = JSONCodecError(message: "empty body: expected a JSON object or array")
        #expect(decodeError([]) == empty)
        #expect(decodeError([]).map(\.description) == "empty body: expected a JSON object or array")
        // A buffer with no base address at all.
        #expect(throws: empty) { try JSONCodec.decodeRequest(UnsafeRawBufferPointer(start: nil, count: 0)) }
        #expect(throws: empty) { try JSONCodec.transcodeRequest(UnsafeRawBufferPointer(start: nil, count: 0)) }
        for blank in [" ", "\n", " \t\r\n "] {
            #expect(decodeError(blank) == JSONCodecError(message: "body has only white space: expected a JSON object or array"))
        }
    }

    @Test func syntaxErrorsCarryJanssonsTextLineAndColumn() {
        let cases: [(String, String, Int, Int, Int)] = [
            ("[1,2", "']' expected near end of file", 1, 4, 4),
            ("[1,2,]", "unexpected token near ']'", 1, 6, 6),
            (#"{"metrics":[1,2,]}"#, "unexpected token near ']'", 1, 17, 17),
            ("[1,\n2,\n}", "unexpected token near '}'", 3, 1, 8),
            ("nul", "invalid token near 'nul'", 1, 3, 3),
            ("[1 2]", "']' expected near '2'", 1, 4, 4),
            ("[NaN]", "invalid token near 'NaN'", 1, 4, 4),
            ("[01]", "invalid token near '0'", 1, 2, 2),
            ("[+1]", "invalid token near '+'", 1, 2, 2),
            ("[\"a\tb\"]", "control character 0x9 near '\"a'", 1, 3, 3),
            ("[\"\\ud800\"]", "invalid Unicode '\\uD800' near '\"\\ud800\"'", 1, 9, 9),
            ("[{\"a\\u0000b\":1}]", "NUL byte in object key not supported near '\"a\\u0000b\"'", 1, 12, 12),
        ]
        for (body, message, line, column, position) in cases {
            let error = decodeError(body)
            #expect(error == JSONCodecError(message: message, line: line, column: column, position: position), "\(body)")
            #expect(error?.path == nil)
            #expect(error?.description == "invalid JSON at line \(line), column \(column): \(message)")
        }
        // Columns count characters, the position counts bytes.
        #expect(decodeError(#"["é"] x"#) == JSONCodecError(message: "end of file expected near 'x'", line: 1, column: 7, position: 8))
    }

    @Test func duplicateKeys() {
        let top = decodeError(#"{"metrics":[],"metrics":[]}"#)
        #expect(top == JSONCodecError(message: #"duplicate object key near '"metrics"'"#, line: 1, column: 23, position: 23))
        for field in ["time", "name", "value"] {
            let error = decodeError(#"{"metrics":[{"\#(field)":null,"\#(field)":null}]}"#)
            #expect(error?.message == #"duplicate object key near '"\#(field)"'"#)
            #expect(error?.line == 1 && error?.column != nil)
        }
        // Escapes do not hide a duplicate.
        #expect(decodeError(#"[{"value":1,"v\u0061lue":2}]"#)?.message.hasPrefix("duplicate object key") == true)
    }

    @Test func everyTruncationOfABodyIsASyntaxError() {
        let body = #"{"metrics":[{"time":"2020-05-22T14:13:11.5+05:30","name":"C\"P\u00e9U 🙂","value":-97.3e1},{"value":"NaN"}]}"#
        let bytes = Array(body.utf8)
        for end in 1..<bytes.count {
            let error = decodeError(Array(bytes[..<end]))
            #expect(error?.line == 1 && error?.column != nil && error?.position != nil, "\(text(Array(bytes[..<end])))")
        }
        #expect(decodeError(bytes) == nil)
    }

    @Test func trailingGarbage() {
        for body in ["[1] x", "[1]]", "{} {}", #"{"metrics":[]},"#, "[] //", "[]\n["] {
            let error = decodeError(body)
            #expect(error?.line != nil && error?.message.hasPrefix("end of file expected") == true, "\(body): \(String(describing: error))")
        }
        // Trailing white space is fine.
        #expect(decodeError("[1] \n\t\r ") == nil)
    }

    @Test func deepNestingIsAnErrorNotACrash() {
        for (open, close) in [("[", "]"), (#"{"a":"#, "}"), (#"[{"metrics":"#, "}]")] {
            let body = String(repeating: open, count: 10_000) + "1" + String(repeating: close, count: 10_000)
            let error = decodeError(body)
            #expect(error?.message.hasPrefix("maximum parsing depth reached") == true, "\(String(describing: error))")
            #expect(error?.line == 1)
        }
        // Within jansson's limit (2048), the nesting is a type error at the top.
        let nested = String(repeating: "[", count: 2000) + String(repeating: "]", count: 2000)
        #expect(decodeError(nested) == JSONCodecError(message: "expected a metric object (this array holds metric objects), got an array",
                                                      path: "[0]"))
    }

    @Test func invalidUTF8() {
        let cases: [([UInt8], String)] = [
            (Array(#"[{"name":""#.utf8) + [0xFF] + Array(#""}]"#.utf8), "unable to decode byte 0xff"),
            (Array(#"[{"name":""#.utf8) + [0xC0, 0x80] + Array(#""}]"#.utf8), "unable to decode byte 0xc0"),  // overlong NUL
            (Array(#"[{"name":""#.utf8) + [0xED, 0xA0, 0x80] + Array(#""}]"#.utf8), "unable to decode byte 0xed"),  // a surrogate
            (Array(#"[{"name":""#.utf8) + [0xE2, 0x82] + Array(#""}]"#.utf8), "unable to decode byte 0xe2"),  // cut short
            (Array(#"[{"name":""#.utf8) + [0xF4, 0x90, 0x80, 0x80] + Array(#""}]"#.utf8), "unable to decode byte 0xf4"),  // past U+10FFFF
            (Array(#"[{""#.utf8) + [0xFE] + Array(#"":1}]"#.utf8), "unable to decode byte 0xfe"),  // in a key
            ([0x5B, 0x80, 0x5D], "unable to decode byte 0x80"),  // outside a string
        ]
        for (bytes, message) in cases {
            let error = decodeError(bytes)
            #expect(error?.message.hasPrefix(message) == true, "\(bytes): \(String(describing: error))")
            #expect(error?.line == 1 && error?.column != nil)
        }
    }

    @Test func aNULByteAnywhereIsAnError() {
        // jansson 2.14 alone would read [1\0, 2] as [1, 2] and [true\0] as [true].
        let expected = "NUL byte (0x00) is not allowed in JSON text"
        let cases: [([UInt8], Int, Int, Int)] = [
            ([0x5B, 0x31, 0x00, 0x5D], 1, 3, 3),
            (Array("[1\u{0}, 2, 3]".utf8), 1, 3, 3),
            (Array("[true\u{0}]".utf8), 1, 6, 6),
            (Array("[1]\u{0}".utf8), 1, 4, 4),
            ([0x00], 1, 1, 1),
            (Array("[\"é\",\n 2,\u{0}]".utf8), 2, 4, 11),
            (Array(#"[{"name":""#.utf8) + [0x00] + Array(#""}]"#.utf8), 1, 11, 11),
        ]
        for (bytes, line, column, position) in cases {
            #expect(decodeError(bytes) == JSONCodecError(message: expected, line: line, column: column, position: position), "\(bytes)")
        }
    }
}

@Suite struct LargeBodies {
    @Test func oneHundredThousandMetrics() throws {
        var generator = SeededGenerator(seed: 1)
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
}

@Suite struct Encoding {
    @Test func responses() {
        #expect(text(JSONCodec.encodeResponse(indices: [7, 113, 835])) == #"{"indices":[7,113,835]}"#)
        #expect(text(JSONCodec.encodeResponse(indices: [5])) == #"{"indices":[5]}"#)
        #expect(text(JSONCodec.encodeResponse(indices: [])) == #"{"indices":[]}"#)
        #expect(text(JSONCodec.encodeResponse(indices: [0, 9, 10, 99, 100, .max, .min, -1]))
                == #"{"indices":[0,9,10,99,100,2147483647,-2147483648,-1]}"#)
        var response = Pb_OutliersResponse()
        #expect(text(JSONCodec.encodeResponse(response)) == #"{"indices":[]}"#)
        response.indices = [2, 5]
        #expect(text(JSONCodec.encodeResponse(response)) == #"{"indices":[2,5]}"#)
    }

    @Test func responsesReadBackWithSwiftProtobuf() throws {
        var generator = SeededGenerator(seed: 3)
        for _ in 0..<200 {
            let indices = (0..<Int.random(in: 0...20, using: &generator)).map { _ in Int32.random(in: .min ... .max, using: &generator) }
            #expect(try Pb_OutliersResponse(jsonUTF8Bytes: JSONCodec.encodeResponse(indices: indices)).indices == indices)
        }
    }

    @Test func errors() throws {
        #expect(text(JSONCodec.encodeError(code: 3, message: "bad")) == #"{"code":3,"message":"bad","details":[]}"#)
        #expect(text(JSONCodec.encodeError(code: 14, message: "")) == #"{"code":14,"message":"","details":[]}"#)
        #expect(text(JSONCodec.encodeError(code: 3, message: "a\"b\\c\nd\u{1}\u{1f}\u{7f}é"))
                == #"{"code":3,"message":"a\"b\\c\nd\u0001\u001f"# + "\u{7f}é\",\"details\":[]}")
        let messages = [
            "line\n\"quoted\" \\ tab\t \u{1} é 值 🙂 \u{20000}",
            String((0..<0x20).map { Character(Unicode.Scalar(UInt8($0))) }),
            "/ \u{2028} \u{2029} \u{feff} <script>",
            #"metrics[3].value: expected a number or one of "NaN", "Infinity", "-Infinity", got an object"#,
            "",
        ]
        for (code, message) in zip([3, 13, 0, -1, 16], messages) {
            let body = JSONCodec.encodeError(code: code, message: message)
            #expect(!body.contains(where: { $0 < 0x20 }))
            let parsed = try #require(try JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])
            #expect(parsed["code"] as? Int == code)
            #expect(parsed["message"] as? String == message)
            #expect((parsed["details"] as? [Any])?.isEmpty == true)
            #expect(parsed.count == 3)
        }
    }

    @Test func requestsInTheirExactForm() {
        #expect(text(JSONCodec.encodeRequest(AcceptedShapes.expected))
                == #"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3}]}"#)
        #expect(text(JSONCodec.encodeRequest(Pb_OutliersRequest())) == #"{"metrics":[]}"#)
        // Fields at their default are left out, as proto3 JSON writes them; -0.0 is not a default.
        #expect(text(JSONCodec.encodeRequest(request([metric(), metric(value: -0.0), metric(value: 2)])))
                == #"{"metrics":[{},{"value":-0.0},{"value":2.0}]}"#)
        #expect(text(JSONCodec.encodeRequest(request([metric(value: .nan), metric(value: .infinity), metric(value: -.infinity)])))
                == #"{"metrics":[{"value":"NaN"},{"value":"Infinity"},{"value":"-Infinity"}]}"#)
        #expect(text(JSONCodec.encodeRequest(request([metric(time: (0, 0)), metric(time: (-1, 500_000_000)), metric(time: (1, 1000)),
                                                           metric(time: (2, 7))])))
                == #"{"metrics":[{"time":"1970-01-01T00:00:00Z"},{"time":"1969-12-31T23:59:59.500Z"},"#
                + #"{"time":"1970-01-01T00:00:01.000001Z"},{"time":"1970-01-01T00:00:02.000000007Z"}]}"#)
        #expect(text(JSONCodec.encodeRequest(request([metric(name: "a\"b\u{0}", value: 1e20), metric(value: 1e-7), metric(value: .leastNonzeroMagnitude)])))
                == #"{"metrics":[{"name":"a\"b\u0000","value":1e+20},{"value":1e-07},{"value":5e-324}]}"#)
    }

    @Test func doublesAreShortestRoundTripJSONNumbers() throws {
        var generator = SeededGenerator(seed: 11)
        var values: [Double] = [0, -0.0, 1, -1, 0.1, 97.3, 1e20, 1e21, 1e-7, 1.2345678901234568e17, .greatestFiniteMagnitude,
                                -.greatestFiniteMagnitude, .leastNonzeroMagnitude, .leastNormalMagnitude, .ulpOfOne, 1 / 3]
        values += (0..<3000).map { _ in
            var bits: UInt64
            repeat { bits = UInt64.random(in: 0 ... .max, using: &generator) } while !Double(bitPattern: bits).isFinite
            return Double(bitPattern: bits)
        }
        for value in values {
            var bytes: [UInt8] = []
            JSONCodec.appendDouble(value, to: &bytes)
            let written = text(bytes)
            #expect(JSONCodec.isJSONNumber(written), "\(written)")
            #expect(written == value.description)
            // jansson reads it back to the same bits.
            let back = try decode("[\(written)]").metrics[0].value
            #expect(back.bitPattern == value.bitPattern, "\(written)")
        }
    }

    @Test func timestampsOutsideTheRangeAreWrittenAsTheNearestOneThatReadsBack() throws {
        let odd = request([metric(time: (RFC3339.maximumSeconds + 100, 0)), metric(time: (.min, 0)), metric(time: (5, -1)),
                           metric(time: (5, 2_000_000_000))])
        let body = JSONCodec.encodeRequest(odd)
        let back = try JSONCodec.decodeRequest(body)
        #expect(back.metrics.map(\.time.seconds) == [RFC3339.maximumSeconds, RFC3339.minimumSeconds, 4, 7])
        #expect(back.metrics.map(\.time.nanos) == [999_999_999, 0, 999_999_999, 0])
        #expect(try Pb_OutliersRequest(jsonUTF8Bytes: body).metrics.map(\.time) == back.metrics.map(\.time))
    }
}

@Suite struct RoundTrips {
    static func randomRequest(_ generator: inout SeededGenerator) -> Pb_OutliersRequest {
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
        var generator = SeededGenerator(seed: 2024)
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
        guard let data = try? Data(contentsOf: url) else { return }  // not every checkout has it yet
        let bytes = Array(data)
        let request = try JSONCodec.decodeRequest(bytes)
        #expect(request.metrics.count == 1000)
        #expect(same(request, try Pb_OutliersRequest(jsonUTF8Bytes: bytes)))
        try expectTranscodingAgrees(bytes)
    }
}

@Suite struct Memory {
    @Test func tenThousandDecodesAndFailures() throws {
        let body = Array(#"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"value":1}]}"#.utf8)
        let bad = Array(#"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"valu":1}]}"#.utf8)
        let broken = Array(#"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"value":1}"#.utf8)
        for _ in 0..<10_000 {
            #expect(try JSONCodec.decodeRequest(body).metrics.count == 2)
            #expect(try transcode(body).count == 35)
            #expect(throws: JSONCodecError.self) { try transcode(bad) }
            #expect(throws: JSONCodecError.self) { try JSONCodec.decodeRequest(bad) }
            #expect(throws: JSONCodecError.self) { try JSONCodec.decodeRequest(broken) }
        }
    }

    @Test func decodesOnManyThreadsAtOnce() async throws {
        var generator = SeededGenerator(seed: 5)
        let requests = (0..<16).map { _ in RoundTrips.randomRequest(&generator) }
        let bodies = requests.map { JSONCodec.encodeRequest($0) }
        let expected: [[UInt8]] = try requests.map { try $0.serializedBytes() }
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<bodies.count {
                let body = bodies[index]
                let wire = expected[index]
                group.addTask {
                    var ok = true
                    for _ in 0..<200 {
                        ok = ok && (try? transcode(body)) == wire
                        ok = ok && (try? JSONCodec.decodeRequest(body).serializedBytes()) == wire
                    }
                    return (index, ok)
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == bodies.count && results.values.allSatisfy { $0 })
    }
}

/// A small deterministic generator (SplitMix64), so a failure can be replayed.
struct SeededGenerator: RandomNumberGenerator {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
