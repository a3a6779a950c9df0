import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

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

    @Test func valueForms() throws {
        let request = try decode(#"[{"value":1.5},{"value":"2.5"},{"value":"-3e2"},{"value":"NaN"},{"value":"Infinity"},{"value":"-Infinity"},{"value":1e308},{"value":-0.0},{"value":123456789012345678901234567890}]"#)
        let values = request.metrics.map(\.value)
        #expect(values[0] == 1.5 && values[1] == 2.5 && values[2] == -300)
        #expect(values[3].isNaN && values[4] == .infinity && values[5] == -.infinity)
        #expect(values[6] == 1e308 && values[7].sign == .minus && values[8] == 1.2345678901234568e29)
        for bad in [#""""#, #"" 1""#, #""0x10""#, #""1.5abc""#, #""inf""#, #""nan""#, #""+1""#, #""1e999""#, "true", "[1]", "{}"] {
            let error = failure(#"{"metrics":[{"value":1},{"value":2},{"value":\#(bad)}]}"#)
            #expect(error?.path == "metrics[2].value", "\(bad): \(String(describing: error))")
        }
    }
}
