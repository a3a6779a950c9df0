import Foundation
import SwiftProtobuf
import Testing
@testable import OutliersProto

/// The fast reader must agree with swift-protobuf whenever it answers: same values
/// in the same order. When it declines (nil), swift-protobuf decides.
private func agree(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
    let message = try? Pb_OutliersRequest(serializedBytes: bytes)
    let full = message?.metrics.map(\.value.bitPattern)
    if let fast = OutliersRequestValues.decodeRequest(bytes) {
        #expect(fast.values.map(\.bitPattern) == full, sourceLocation: sourceLocation)
        // The options too: absent when the message has none, else the same message
        // (compared as bytes: a NaN threshold is not == to itself).
        let expected = message?.hasOptions == true ? message?.options : nil
        #expect((try? fast.options?.serializedBytes()) as [UInt8]?? == (try? expected?.serializedBytes()) as [UInt8]??,
                sourceLocation: sourceLocation)
    }
    #expect(OutliersRequestValues.decode(bytes)?.map(\.bitPattern) == OutliersRequestValues.decodeRequest(bytes)?.values.map(\.bitPattern),
            sourceLocation: sourceLocation)
}

private func randomOptions(_ generator: inout some RandomNumberGenerator) -> Pb_DetectOptions {
    Pb_DetectOptions.with {
        $0.method = [.zscore, .mad, .iqr, .UNRECOGNIZED(Int.random(in: 3...1000, using: &generator))].randomElement(using: &generator)!
        $0.threshold = [0, 1.5, 3, -1, .nan, Double.random(in: 0...10, using: &generator)].randomElement(using: &generator)!
        $0.groupByName = Bool.random(using: &generator)
        $0.details = Bool.random(using: &generator)
    }
}

private func randomRequest(_ generator: inout some RandomNumberGenerator) -> Pb_OutliersRequest {
    var request = Pb_OutliersRequest()
    let count = Int.random(in: 0...40, using: &generator)
    request.metrics = (0..<count).map { _ in
        var metric = Pb_Metric()
        if Bool.random(using: &generator) {
            metric.time = Google_Protobuf_Timestamp(seconds: Int64.random(in: -62_135_596_800...253_402_300_799, using: &generator),
                                                    nanos: Int32.random(in: 0...999_999_999, using: &generator))
        }
        if Bool.random(using: &generator) { metric.name = ["CPU", "mem", "", "disk io"].randomElement(using: &generator)! }
        switch Int.random(in: 0...5, using: &generator) {
        case 0: metric.value = 0
        case 1: metric.value = -0.0
        case 2: metric.value = .nan
        case 3: metric.value = Double(bitPattern: UInt64.random(in: 0...UInt64.max, using: &generator))
        default: metric.value = Double.random(in: -1e12...1e12, using: &generator)
        }
        return metric
    }
    if Bool.random(using: &generator) { request.options = randomOptions(&generator) }
    return request
}

@Test func fastReaderEqualsSwiftProtobufOnRandomRequests() throws {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<500 {
        let bytes: [UInt8] = try randomRequest(&generator).serializedBytes()
        let fast = OutliersRequestValues.decode(bytes)
        // Plain encodings of ASCII names are always taken by the fast path.
        #expect(fast != nil)
        agree(bytes)
    }
}

@Test func fastReaderNeverDisagreesOnMutatedBytes() throws {
    var generator = SystemRandomNumberGenerator()
    for _ in 0..<2000 {
        var bytes: [UInt8] = try randomRequest(&generator).serializedBytes()
        guard !bytes.isEmpty else { continue }
        for _ in 0..<Int.random(in: 1...4, using: &generator) {
            switch Int.random(in: 0...2, using: &generator) {
            case 0: bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            case 1: bytes.removeLast(Int.random(in: 0...min(3, bytes.count), using: &generator))
            default: bytes.insert(UInt8.random(in: 0...255, using: &generator), at: Int.random(in: 0...bytes.count, using: &generator))
            }
            if bytes.isEmpty { break }
        }
        agree(bytes)
    }
}

@Test func fastReaderHandlesTheEdgesOfTheWireFormat() {
    // Last value wins; unknown fields are skipped; a missing value is 0.
    let twoValues: [UInt8] = [0x0A, 18, 0x19] + bits(1.5) + [0x19] + bits(2.5)
    #expect(OutliersRequestValues.decode(twoValues) == [2.5])
    let unknownField: [UInt8] = [0x0A, 3, 0x20, 0x96, 0x01, 0x28, 0x01]  // metric{field4: 150}, request{field5: 1}
    #expect(OutliersRequestValues.decode(unknownField) == [0])
    #expect(OutliersRequestValues.decode([]) == [])
    #expect(OutliersRequestValues.decode([0x0A, 0]) == [0])
    // Declined: truncated, a group, field 0, a value as a varint, non-ASCII name.
    for declined: [UInt8] in [[0x0A, 5, 0x19], [0x0B], [0x02, 0x00], [0x0A, 2, 0x18, 0x01], [0x0A, 4, 0x12, 2, 0xC3, 0xA9]] {
        #expect(OutliersRequestValues.decode(declined) == nil, "\(declined)")
        agree(declined)
    }
}

private func bits(_ value: Double) -> [UInt8] {
    withUnsafeBytes(of: value.bitPattern.littleEndian) { Array($0) }
}

/// Found by Fuzz/FuzzRequestValues (kept in Fuzz/Corpora/FuzzRequestValues/): a key
/// varint padded to 8 bytes, field 2^25 with wire type 0, then a 5-byte varint.
/// swift-protobuf refuses keys longer than 5 bytes; the fast reader read it as an
/// unknown field and answered [], where the gateway must answer 400.
@Test func aKeyLongerThanFiveBytesIsDeclinedAsSwiftProtobufRefusesIt() {
    let paddedKey: [UInt8] = [0x80, 0x80, 0x80, 0x80, 0x81, 0x80, 0x80, 0x00, 0xFC, 0x80, 0x80, 0x80, 0x00]
    #expect(throws: BinaryDecodingError.self) { try Pb_OutliersRequest(serializedBytes: paddedKey) }
    #expect(OutliersRequestValues.decode(paddedKey) == nil)
    // The same padding inside a metric, and a 5-byte key (the longest allowed) still read.
    let paddedInMetric: [UInt8] = [0x0A, 14, 0x99, 0x80, 0x80, 0x80, 0x80, 0x00] + bits(1.5)  // value, key in 6 bytes
    #expect(throws: BinaryDecodingError.self) { try Pb_OutliersRequest(serializedBytes: paddedInMetric) }
    #expect(OutliersRequestValues.decode(paddedInMetric) == nil)
    agree(paddedInMetric)
    let fiveByteKey: [UInt8] = [0x8A, 0x80, 0x80, 0x80, 0x00, 0]  // field 1, wire type 2, an empty metric
    #expect(OutliersRequestValues.decode(fiveByteKey) == [0])
    agree(fiveByteKey)
}

/// A varint of `count` bytes for `value` (padded with 0x80 continuation bytes when the
/// value needs fewer): the reader's short path takes up to 8 bytes in one load.
private func varint(_ value: UInt64, bytes count: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    var rest = value
    for index in 0..<count {
        let last = index == count - 1
        bytes.append(UInt8(rest & 0x7F) | (last ? 0 : 0x80))
        rest >>= 7
    }
    return bytes
}

/// The canonical layout (time, name, value, in order) with timestamps whose varints
/// take every length from 1 to 10 bytes, with and without the other field and with
/// the name before or after: read by the short path where it applies, by the general
/// reader where not, and always as swift-protobuf reads them.
@Test func timestampVarintsOfEveryLengthAgreeWithSwiftProtobuf() throws {
    let value = bits(42.25)
    for secondsBytes in 0...10 {
        for nanosBytes in [0, 1, 4, 8, 9, 10] {
            var time: [UInt8] = []
            if secondsBytes > 0 { time += [0x08] + varint(1_590_156_791, bytes: secondsBytes) }
            if nanosBytes > 0 { time += [0x10] + varint(5, bytes: nanosBytes) }
            let name: [UInt8] = [0x12, 3] + Array("CPU".utf8)
            for metric in [[0x0A, UInt8(time.count)] + time + name + [0x19] + value,
                           name + [0x0A, UInt8(time.count)] + time + [0x19] + value,
                           [0x0A, UInt8(time.count)] + time + [0x19] + value] {
                let request: [UInt8] = [0x0A, UInt8(metric.count)] + metric + [0x0A, UInt8(metric.count)] + metric
                let full = try? Pb_OutliersRequest(serializedBytes: request)
                let fast = OutliersRequestValues.decode(request)
                if let full {
                    #expect(fast == full.metrics.map(\.value), "seconds in \(secondsBytes) bytes, nanos in \(nanosBytes)")
                } else {
                    #expect(fast == nil, "swift-protobuf refuses \(request)")
                }
            }
        }
    }
}

@Test func optionsAreReadOrDeclined() throws {
    let metric: [UInt8] = [0x0A, 9, 0x19] + bits(1.5)
    // Read: the options message, before or after the metrics, empty or not.
    let options = Pb_DetectOptions.with { $0.method = .mad; $0.threshold = 3; $0.details = true }
    let optionBytes: [UInt8] = try options.serializedBytes()
    for bytes in [metric + [0x12, UInt8(optionBytes.count)] + optionBytes, [0x12, UInt8(optionBytes.count)] + optionBytes + metric] {
        let read = try #require(OutliersRequestValues.decodeRequest(bytes))
        #expect(read.values == [1.5])
        #expect(read.options == options)
        agree(bytes)
    }
    #expect(OutliersRequestValues.decodeRequest(metric + [0x12, 0])?.options == Pb_DetectOptions())
    #expect(try #require(OutliersRequestValues.decodeRequest(metric)).options == nil)
    // Declined: options twice (protobuf merges them), options as a varint, malformed
    // options, metrics as a varint.
    for declined: [UInt8] in [metric + [0x12, 0, 0x12, 0], metric + [0x10, 0x01], metric + [0x12, 2, 0x08],
                              metric + [0x12, 1, 0x0B], [0x08, 0x01]] {
        #expect(OutliersRequestValues.decodeRequest(declined) == nil, "\(declined)")
        agree(declined)
    }
}
