import Foundation
import SwiftProtobuf
import Testing
@testable import OutliersProto

/// The fast reader must agree with swift-protobuf whenever it answers: same values
/// in the same order. When it declines (nil), swift-protobuf decides.
private func agree(_ bytes: [UInt8], sourceLocation: SourceLocation = #_sourceLocation) {
    let full = try? Pb_OutliersRequest(serializedBytes: bytes).metrics.map(\.value.bitPattern)
    if let fast = OutliersRequestValues.decode(bytes) {
        #expect(fast.map(\.bitPattern) == full, sourceLocation: sourceLocation)
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
