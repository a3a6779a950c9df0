import CJansson
import Foundation
import Synchronization
import Glibc
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

private func decode(_ text: String) throws(JSONCodecError) -> Pb_OutliersRequest {
    try JSONCodec.decodeRequest(Array(text.utf8))
}

private func failure(_ text: String) -> JSONCodecError? {
    do {
        _ = try decode(text)
        return nil
    } catch {
        return error
    }
}

private func transcode(_ bytes: [UInt8]) throws -> [UInt8] {
    try bytes.withUnsafeBytes { raw in try JSONCodec.transcodeRequest(raw) }
}

// MARK: Accepted shapes

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

// MARK: Rejections

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

@Test func deepNestingIsAnErrorNotACrash() {
    let deep = String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000)
    #expect(failure(deep)?.description.contains("depth") == true)
    let deepObject = String(repeating: #"{"a":"#, count: 10_000) + "1" + String(repeating: "}", count: 10_000)
    #expect(failure(deepObject) != nil)
}

// MARK: Encoding

@Test func responsesAndErrors() throws {
    #expect(String(decoding: JSONCodec.encodeResponse(indices: [7, 113, 835]), as: UTF8.self) == #"{"indices":[7,113,835]}"#)
    #expect(String(decoding: JSONCodec.encodeResponse(indices: []), as: UTF8.self) == #"{"indices":[]}"#)
    let message = "line\n\"quoted\" \\ tab\t \u{1} é 值"
    let body = JSONCodec.encodeError(code: 3, message: message)
    let parsed = try JSONSerialization.jsonObject(with: Data(body)) as! [String: Any]
    #expect(parsed["code"] as? Int == 3)
    #expect(parsed["message"] as? String == message)
    #expect((parsed["details"] as? [Any])?.isEmpty == true)
}

@Test func timestampsFormatLikeProtojson() {
    #expect(RFC3339.format(seconds: 1_590_156_791, nanos: 0) == "2020-05-22T14:13:11Z")
    #expect(RFC3339.format(seconds: 0, nanos: 500_000_000) == "1970-01-01T00:00:00.500Z")
    #expect(RFC3339.format(seconds: -1, nanos: 1_000) == "1969-12-31T23:59:59.000001Z")
    #expect(RFC3339.format(seconds: -62_135_596_800, nanos: 1) == "0001-01-01T00:00:00.000000001Z")
    #expect(RFC3339.format(seconds: 253_402_300_799, nanos: 0) == "9999-12-31T23:59:59Z")
}

// MARK: Round trips and agreement with swift-protobuf

private func randomRequest(_ generator: inout some RandomNumberGenerator) -> Pb_OutliersRequest {
    var request = Pb_OutliersRequest()
    request.metrics = (0..<Int.random(in: 0...30, using: &generator)).map { _ in
        var metric = Pb_Metric()
        if Bool.random(using: &generator) {
            let nanos: Int32 = [0, 500_000_000, 123_000, 7, Int32.random(in: 0...999_999_999, using: &generator)].randomElement(using: &generator)!
            metric.time = Google_Protobuf_Timestamp(seconds: Int64.random(in: RFC3339.minimumSeconds...RFC3339.maximumSeconds, using: &generator),
                                                    nanos: nanos)
        }
        if Bool.random(using: &generator) { metric.name = ["CPU", "mem", "", "a\"b\\c\n", "é值🙂", "\u{1}"].randomElement(using: &generator)! }
        switch Int.random(in: 0...6, using: &generator) {
        case 0: metric.value = 0
        case 1: metric.value = .nan
        case 2: metric.value = [Double.infinity, -.infinity, -0.0, .leastNonzeroMagnitude, .greatestFiniteMagnitude].randomElement(using: &generator)!
        case 3: metric.value = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator))
        default: metric.value = Double.random(in: -1e6...1e6, using: &generator)
        }
        return metric
    }
    return request
}

private func same(_ a: Pb_OutliersRequest, _ b: Pb_OutliersRequest) -> Bool {
    a.metrics.count == b.metrics.count && zip(a.metrics, b.metrics).allSatisfy { x, y in
        x.hasTime == y.hasTime && x.time == y.time && x.name == y.name
            && (x.value.bitPattern == y.value.bitPattern || (x.value.isNaN && y.value.isNaN))
    }
}

@Test func randomRequestsRoundTripThroughOurCodecAndSwiftProtobufs() throws {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<300 {
        let original = randomRequest(&generator)
        let ours = JSONCodec.encodeRequest(original)
        // Ours → ours.
        #expect(same(try JSONCodec.decodeRequest(ours), original))
        // Ours → swift-protobuf.
        #expect(same(try Pb_OutliersRequest(jsonUTF8Bytes: ours), original), "\(String(decoding: ours, as: UTF8.self))")
        // swift-protobuf → ours.
        let theirs: [UInt8] = try original.jsonUTF8Bytes()
        #expect(same(try JSONCodec.decodeRequest(theirs), original), "\(String(decoding: theirs, as: UTF8.self))")
        // Transcoding equals swift-protobuf's serialization of the decoded message.
        let expected: [UInt8] = try JSONCodec.decodeRequest(ours).serializedBytes()
        #expect(try transcode(ours) == expected)
    }
}

@Test func largeBodies() throws {
    let values = (0..<100_000).map { Double($0 % 1000) / 7 }
    let body = "[" + values.map { $0.description }.joined(separator: ",") + "]"
    let request = try decode(body)
    #expect(request.metrics.map(\.value) == values)
    let bytes = try transcode(Array(body.utf8))
    #expect(OutliersRequestValues.decode(bytes) == values)
}

/// Live jansson allocations made by the counting thread while the counting allocator
/// is installed. The hook is process-wide and other tests decode in parallel, so only
/// the test's own thread is counted: its decodes allocate and free on that thread.
private let janssonLiveBlocks = Atomic<Int>(0)
private let janssonCountingThread = Atomic<UInt>(0)

@Test func janssonTreesAreFreedOnEveryPath() throws {
    // jansson's allocator hook counts blocks alive; every decode, success or error,
    // must give all of its tree back. A leaked tree per call would be thousands of blocks.
    janssonCountingThread.store(UInt(pthread_self()), ordering: .relaxed)
    json_set_alloc_funcs({ size in
        if janssonCountingThread.load(ordering: .relaxed) == UInt(pthread_self()) {
            janssonLiveBlocks.add(1, ordering: .relaxed)
        }
        return malloc(size)
    }, { pointer in
        if pointer != nil && janssonCountingThread.load(ordering: .relaxed) == UInt(pthread_self()) {
            janssonLiveBlocks.subtract(1, ordering: .relaxed)
        }
        free(pointer)
    })
    defer {
        json_set_alloc_funcs(malloc, free)
        janssonCountingThread.store(0, ordering: .relaxed)
    }
    let before = janssonLiveBlocks.load(ordering: .relaxed)
    let good = Array(#"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"value":1}]}"#.utf8)
    for _ in 0..<1_000 {
        #expect(try JSONCodec.decodeRequest(good).metrics.count == 2)
        for bad in [#"{"metrics":[{"valu":1}]}"#, #"{"metrics":[{"value":1}"#, #"[1,{"value":2}]"#, #"{"metrics":[],"x":1}"#] {
            #expect(failure(bad) != nil)
        }
        _ = try good.withUnsafeBytes { raw in try JSONCodec.transcodeWithJansson(raw) }
    }
    let drift = janssonLiveBlocks.load(ordering: .relaxed) - before
    #expect(drift == 0, "\(drift) jansson blocks still alive after 6,000 decodes")
}

// MARK: The plain-body scanner agrees with jansson

private func scannerAgrees(_ body: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) -> Bool {
    body.withUnsafeBytes { raw in
        guard let fast = PlainBodyScanner.transcode(raw) else { return false }
        let slow = Result { () throws(JSONCodecError) -> [UInt8] in try JSONCodec.transcodeWithJansson(raw) }
        #expect((try? slow.get()) == fast, "\(String(decoding: body, as: UTF8.self))", sourceLocation: sourceLocation)
        return true
    }
}

@Test func plainScannerTakesTheCommonShapes() throws {
    let article = try Data(contentsOf: URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("examples/metrics.json"))
    for body in [Array(article), Array("[1, 2, 100, 1, 3, 200, 1]".utf8), Array("{}".utf8), Array(#"{"metrics":null}"#.utf8),
                 Array(#" { "metrics" : [ { "value" : "NaN" , "name" : null } , { } ] } "#.utf8),
                 Array(" [ 5e-3, -0 ,1E+2]\n".utf8),
                 Array(#"[{"time":"2020-05-22T19:43:11.25+05:30","name":"CPU","value":-1.5E+2}]"#.utf8)] {
        #expect(scannerAgrees(body), "the scanner declined \(String(decoding: body.prefix(80), as: UTF8.self))")
    }
}

@Test func plainScannerDeclinesWhatItDoesNotKnow() {
    for body in [#"[{"name":"\u0041"}]"#, #"[{"name":"é"}]"#, #"[{"value":"1.5"}]"#, #"[{"valu":1}]"#,
                 #"[{"value":1,"value":2}]"#, #"{"metrics":[],"metrics":[]}"#, "[1,]", "[01]", "[1.]", "[1e400]",
                 "[1] x", "5", #"{"metrics":[1]"#, "[[1]]", #"{"metrics":[1]}"#, #"[1,{"value":1}]"#, #"[{},1]"#, #"[{"time":"2020-02-30T00:00:00Z"}]"#, ""] {
        #expect(Array(body.utf8).withUnsafeBytes { PlainBodyScanner.transcode($0) } == nil, "\(body)")
    }
}

@Test func plainScannerNeverDisagreesWithJanssonOnRandomAndMutatedBodies() {
    var generator = SystemRandomNumberGenerator()
    var taken = 0
    for round in 0..<3000 {
        var request = randomRequest(&generator)
        // Mostly ASCII names, so most bodies are plain.
        for i in request.metrics.indices where Int.random(in: 0..<4, using: &generator) > 0 {
            request.metrics[i].name = ["CPU", "", "mem"].randomElement(using: &generator)!
        }
        var body = JSONCodec.encodeRequest(request)
        if round % 2 == 1 {
            for _ in 0..<Int.random(in: 1...3, using: &generator) where !body.isEmpty {
                let position = Int.random(in: 0..<body.count, using: &generator)
                switch Int.random(in: 0...3, using: &generator) {
                case 0: body[position] = Array(#"{}[],:" 0123456789.eE+-nul\"#.utf8).randomElement(using: &generator)!
                case 1: body.remove(at: position)
                case 2: body.insert(Array(" \n,:{}[]\"1".utf8).randomElement(using: &generator)!, at: position)
                default: body[position] = UInt8.random(in: 0...255, using: &generator)
                }
            }
        }
        if scannerAgrees(body) { taken += 1 }
    }
    // Half the bodies are mutated and some names need escapes: a few hundred plain ones remain.
    #expect(taken > 400, "the scanner took only \(taken) of 3000 bodies")
}

@Test func exactFastPathEqualsStrtod() {
    var generator = SystemRandomNumberGenerator()
    func check(_ text: String) {
        Array(text.utf8).withUnsafeBytes { raw in
            if let fast = PlainBodyScanner.Cursor.exactDouble(raw) {
                #expect(fast.bitPattern == strtod(text, nil).bitPattern, "\(text)")
            }
        }
    }
    for text in ["0", "-0", "0.0", "1", "97.3", "33.76105022382199", "0.1", "123456789012345", "-0.000000000000000000001",
                 "9007199254740993", "1.7976931348623157", "0.30000000000000004"] { check(text) }
    for _ in 0..<200_000 {
        let value = Double.random(in: -1e6...1e6, using: &generator)
        check(value.description)
        check(String(format: "%.\(Int.random(in: 0...17, using: &generator))f", value))
    }
    // Digits beyond 2^53, or an exponent: left to strtod.
    #expect(Array("9007199254740993".utf8).withUnsafeBytes { PlainBodyScanner.Cursor.exactDouble($0) } == nil)
    #expect(Array("33.76105022382199".utf8).withUnsafeBytes { PlainBodyScanner.Cursor.exactDouble($0) } == 33.76105022382199)
    #expect(Array("1e5".utf8).withUnsafeBytes { PlainBodyScanner.Cursor.exactDouble($0) } == nil)
}

// MARK: The message limit

private func limitFailure(_ body: [UInt8], _ limit: Int) -> JSONCodecError? {
    let result = body.withUnsafeBytes { raw in
        Result { () throws(JSONCodecError) -> [UInt8] in try JSONCodec.transcodeRequest(raw, maximumMessageBytes: limit) }
    }
    if case .failure(let error) = result { return error }
    return nil
}

/// Both paths stop at the limit: the exact size passes, one byte less is refused.
@Test func transcodingStopsAtTheMessageLimit() throws {
    let plain = Array(("[" + (1...1000).map(String.init).joined(separator: ",") + "]").utf8)
    // Escapes send the body down jansson's path.
    let escaped = Array(#"[{"name":"\u0041","value":1}"#.utf8) + Array((2...1000).map { ",{\"value\":\($0)}" }.joined().utf8) + [UInt8(ascii: "]")]
    for body in [plain, escaped] {
        let full = try transcode(body)
        for limit in [full.count, full.count + 1, Int.max] {
            let bytes = try body.withUnsafeBytes { raw in try JSONCodec.transcodeRequest(raw, maximumMessageBytes: limit) }
            #expect(bytes == full)
        }
        for limit in [0, 1, full.count / 2, full.count - 1] {
            #expect(throws: JSONCodecError.self) {
                try body.withUnsafeBytes { raw in try JSONCodec.transcodeRequest(raw, maximumMessageBytes: limit) }
            }
            let error = limitFailure(body, limit)
            #expect(error?.isMessageTooLarge == true, "limit \(limit)")
        }
    }
    // The plain scanner says so itself, without jansson deciding.
    plain.withUnsafeBytes { raw in
        guard case .messageTooLarge = PlainBodyScanner.transcode(raw, limit: 100) else {
            Issue.record("the scanner did not stop at the limit")
            return
        }
    }
}

/// A syntax error in a body under the limit is still a syntax error, not a 413.
@Test func errorsUnderTheLimitAreNotTooLarge() {
    let error = limitFailure(Array("[1,2,".utf8), 1000)
    #expect(error != nil && error?.isMessageTooLarge == false)
}
