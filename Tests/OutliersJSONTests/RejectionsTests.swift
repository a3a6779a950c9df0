import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

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
                == JSONCodecError(message: #"unknown field "metric" (an OutliersRequest has "metrics" and "options")"#, path: "metric"))
        #expect(decodeError(#"{"metrics":[],"indices":[1]}"#)?.description
                == #"indices: unknown field "indices" (an OutliersRequest has "metrics" and "options")"#)
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

    @Test func wrongTypesAndUnknownFieldsNameTheirPath() {
        let cases: [(String, String)] = [
            (#"{"metrics":[{"value":1},{"value":2},{"value":3},{"value":"x"}]}"#, "metrics[3].value"),
            (#"{"metrics":[{"name":5}]}"#, "metrics[0].name"),
            (#"{"metrics":[{"time":5}]}"#, "metrics[0].time"),
            (#"{"metrics":[{"valu":5}]}"#, "metrics[0].valu"),
            (#"{"metric":[]}"#, "metric"),
            (#"{"metrics":{}}"#, "metrics"),
            (#"{"metrics":[1,"2"]}"#, "metrics[0]"),
            (#"{"metrics":[{"value":1},null]}"#, "metrics[1]"),
            (#"[1, 2, true]"#, "[2]"),
            (#"[[1]]"#, "[0]"),
            (#"[{"value":1},2]"#, "[1]"),
            (#"[1,{"value":2}]"#, "[1]"),
            (#"[1,"x"]"#, "[1]"),
            (#"[{"value":1},{"value":false}]"#, "[1].value"),
        ]
        for (body, path) in cases {
            let error = failure(body)
            #expect(error?.path == path, "\(body): \(String(describing: error))")
            #expect(error?.description.hasPrefix(path + ": ") == true)
        }
        #expect(failure("5")?.description.contains("expected a JSON object") == true)
        #expect(failure(#""text""#) != nil)
    }

    @Test func syntaxErrorsSayLineAndColumn() {
        for body in ["[1,2", "[1,2]]", "{\"metrics\":[1,2,]}", "[1,\n2,\n}", "nul", "[1 2]", "{\"metrics\":[1]} x"] {
            let error = failure(body)
            #expect(error?.line != nil && error?.column != nil, "\(body)")
            #expect(error?.description.contains("line") == true, "\(body)")
        }
        #expect(failure("[1,\n2,\n}")?.line == 3)
        #expect(failure("")?.description.contains("empty body") == true)
        #expect(failure(" \n\t ")?.description.contains("white space") == true)
        #expect(failure(#"{"metrics":[],"metrics":[]}"#)?.description.contains("duplicate") == true)
        #expect(failure(#"[{"value":1,"value":2}]"#) != nil)
        // Invalid UTF-8 and overflowing numbers.
        #expect(throws: JSONCodecError.self) { try JSONCodec.decodeRequest([0x5B, 0x22, 0xFF, 0x22, 0x5D]) }
        #expect(failure("[1e400]") != nil)
    }

    @Test func deepArraysAndObjectsAreErrorsNotCrashes() {
        let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
        #expect(failure(deep)?.description.contains("depth") == true)
        let deepObject = String(repeating: #"{"a":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000)
        #expect(failure(deepObject) != nil)
    }
}
