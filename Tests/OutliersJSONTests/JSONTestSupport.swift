import Detection
import Foundation
import OutliersProto
import SwiftProtobuf
import Testing
@testable import OutliersJSON

// Helpers of every OutliersJSON test file; the tests are one file per feature:
// shapes, values, times, rejections, large bodies, encoding, round trips, the plain
// scanner against jansson, the message limit, memory.

func decode(_ text: String) throws(JSONCodecError) -> Pb_OutliersRequest {
    try JSONCodec.decodeRequest(Array(text.utf8))
}

func decodeError(_ bytes: [UInt8]) -> JSONCodecError? {
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

func decodeError(_ text: String) -> JSONCodecError? {
    decodeError(Array(text.utf8))
}

func transcode(_ bytes: [UInt8]) throws(JSONCodecError) -> [UInt8] {
    try bytes.withUnsafeBytes { raw in Result { () throws(JSONCodecError) -> [UInt8] in try JSONCodec.transcodeRequest(raw) } }.get()
}

/// decodeRequest and transcodeRequest agree: the transcoded bytes (by PlainBodyScanner
/// when the body is plain, else by jansson) are swift-protobuf's serialization of the
/// decoded message, equal to what the jansson path alone writes, and parse back.
func expectTranscodingAgrees(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) throws {
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
func same(_ a: Pb_OutliersRequest, _ b: Pb_OutliersRequest) -> Bool {
    a.metrics.count == b.metrics.count && zip(a.metrics, b.metrics).allSatisfy { x, y in
        x.hasTime == y.hasTime && x.time.seconds == y.time.seconds && x.time.nanos == y.time.nanos
            && x.name == y.name && x.value.bitPattern == y.value.bitPattern
    }
}

func metric(time: (Int64, Int32)? = nil, name: String = "", value: Double = 0) -> Pb_Metric {
    var metric = Pb_Metric()
    if let time { metric.time = Google_Protobuf_Timestamp(seconds: time.0, nanos: time.1) }
    metric.name = name
    metric.value = value
    return metric
}

func request(_ metrics: [Pb_Metric]) -> Pb_OutliersRequest {
    var request = Pb_OutliersRequest()
    request.metrics = metrics
    return request
}

func text(_ bytes: [UInt8]) -> String {
    String(decoding: bytes, as: UTF8.self)
}

/// The error decodeRequest gives, or nil (transcodeRequest not consulted: for loops
/// that count what jansson allocates).
func failure(_ text: String) -> JSONCodecError? {
    do {
        _ = try decode(text)
        return nil
    } catch {
        return error
    }
}

/// A random request: any time in range, names that need escapes, any value bits.
func randomRequestWithAnyValueBits(_ generator: inout some RandomNumberGenerator) -> Pb_OutliersRequest {
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

/// Equal field by field, doubles by bit pattern except that any NaN equals any NaN
/// (a NaN's payload does not survive JSON).
func sameAllowingAnyNaN(_ a: Pb_OutliersRequest, _ b: Pb_OutliersRequest) -> Bool {
    a.metrics.count == b.metrics.count && zip(a.metrics, b.metrics).allSatisfy { x, y in
        x.hasTime == y.hasTime && x.time == y.time && x.name == y.name
            && (x.value.bitPattern == y.value.bitPattern || (x.value.isNaN && y.value.isNaN))
    }
}
