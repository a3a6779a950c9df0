import Detection
import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

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
        var generator = SplitMix64(seed: 7)
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

    @Test(arguments: [
        ("2020-05-22T14:13:11Z", 1_590_156_791, 0),
        ("2020-05-22T14:13:11.5Z", 1_590_156_791, 500_000_000),
        ("2020-05-22T14:13:11.123456789Z", 1_590_156_791, 123_456_789),
        ("2020-05-22T14:13:11.000000001Z", 1_590_156_791, 1),
        ("2020-05-22T19:43:11+05:30", 1_590_156_791, 0),
        ("2020-05-22T06:13:11-08:00", 1_590_156_791, 0),
        ("1970-01-01T00:00:00Z", 0, 0),
        ("1969-12-31T23:59:59.999Z", -1, 999_000_000),
        ("0001-01-01T00:00:00Z", -62_135_596_800, 0),
        ("9999-12-31T23:59:59.999999999Z", 253_402_300_799, 999_999_999),
        ("2024-02-29T00:00:00Z", 1_709_164_800, 0),
        ("2000-02-29T12:00:00Z", 951_825_600, 0),
    ] as [(String, Int64, Int32)])
    func timesAreRFC3339WithAnyOffset(text: String, seconds: Int64, nanos: Int32) throws {
        let time = try decode(#"[{"time":"\#(text)"}]"#).metrics[0].time
        #expect(time.seconds == seconds)
        #expect(time.nanos == nanos)
    }

    @Test(arguments: ["2020-05-22 14:13:11Z", "2020-05-22t14:13:11Z", "2020-05-22T14:13:11z", "2020-05-22T14:13:11",
                      "2020-05-22T14:13:11.Z", "2020-05-22T14:13:11.1234567890Z", "2023-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
                      "2020-13-01T00:00:00Z", "2020-04-31T00:00:00Z", "2020-05-22T24:00:00Z", "2020-05-22T14:60:00Z",
                      "2020-05-22T14:13:60Z", "0000-12-31T00:00:00Z", "0001-01-01T00:00:00+00:01", "9999-12-31T23:59:59-00:01",
                      "2020-05-22T14:13:11+5:30", "2020-05-22T14:13:11+05:30:00", "20-05-22T14:13:11Z", ""])
    func badTimesAreRejectedWithTheirPath(text: String) {
        let error = failure(#"{"metrics":[{"value":1},{"time":"\#(text)"}]}"#)
        #expect(error?.path == "metrics[1].time", "\(text)")
    }

    @Test func timestampsFormatLikeProtojson() {
        #expect(RFC3339.format(seconds: 1_590_156_791, nanos: 0) == "2020-05-22T14:13:11Z")
        #expect(RFC3339.format(seconds: 0, nanos: 500_000_000) == "1970-01-01T00:00:00.500Z")
        #expect(RFC3339.format(seconds: -1, nanos: 1_000) == "1969-12-31T23:59:59.000001Z")
        #expect(RFC3339.format(seconds: -62_135_596_800, nanos: 1) == "0001-01-01T00:00:00.000000001Z")
        #expect(RFC3339.format(seconds: 253_402_300_799, nanos: 0) == "9999-12-31T23:59:59Z")
    }
}
