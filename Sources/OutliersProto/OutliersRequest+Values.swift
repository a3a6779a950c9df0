import SwiftProtobuf

/// The metric values of a serialized `pb.OutliersRequest`, read straight from the
/// protobuf wire format without building a `Pb_Metric` per value.
///
/// Decoding 1000 metrics through swift-protobuf costs about a millisecond on this
/// machine (a Timestamp storage class per metric, generic metadata lookups);
/// detection itself costs microseconds. This reader walks the bytes once. It handles
/// exactly the plain, well-formed encoding every client produces; anything else
/// (a wire type it does not expect, a group, a non-ASCII name, malformed bytes)
/// makes it return nil, and the caller decodes the full message with
/// swift-protobuf, which gives the same values or the precise error. So it is a
/// shortcut that can never answer differently.
public enum OutliersRequestValues {
    public static func decode(_ bytes: [UInt8]) -> [Double]? {
        bytes.withUnsafeBytes { decode($0) }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) -> [Double]? {
        var reader = WireReader(bytes)
        var values: [Double] = []
        values.reserveCapacity(bytes.count / 20)
        while !reader.atEnd {
            guard let (field, wireType) = reader.tag() else { return nil }
            if field == OutliersWire.OutliersRequest.metrics && wireType == OutliersWire.WireType.lengthDelimited {
                guard let metric = reader.lengthDelimited(), let value = metricValue(metric) else { return nil }
                values.append(value)
            } else {
                guard reader.skip(wireType: wireType) else { return nil }
            }
        }
        return values
    }

    /// `Metric.value` (last one wins, 0 when absent), after checking that the time is
    /// a well-formed Timestamp and the name ASCII.
    private static func metricValue(_ bytes: UnsafeRawBufferPointer) -> Double? {
        typealias Metric = OutliersWire.Metric
        typealias WireType = OutliersWire.WireType
        var reader = WireReader(bytes)
        var value = 0.0
        while !reader.atEnd {
            guard let (field, wireType) = reader.tag() else { return nil }
            switch (field, wireType) {
            case (Metric.value, WireType.fixed64):
                guard let bits = reader.fixed64() else { return nil }
                value = Double(bitPattern: bits)
            case (Metric.name, WireType.lengthDelimited):
                guard let name = reader.lengthDelimited(), isASCII(name) else { return nil }
            case (Metric.time, WireType.lengthDelimited):
                guard let time = reader.lengthDelimited(), isPlainMessage(time) else { return nil }
            case (Metric.time, _), (Metric.name, _), (Metric.value, _):
                return nil  // a known field with another wire type: let swift-protobuf decide
            default:
                guard reader.skip(wireType: wireType) else { return nil }
            }
        }
        return value
    }

    @inline(__always)
    private static func isASCII(_ bytes: UnsafeRawBufferPointer) -> Bool {
        var combined: UInt8 = 0
        for byte in bytes { combined |= byte }
        return combined < 0x80
    }

    /// Fields of scalar wire types only (a Timestamp: seconds and nanos as varints).
    private static func isPlainMessage(_ bytes: UnsafeRawBufferPointer) -> Bool {
        typealias WireType = OutliersWire.WireType
        var reader = WireReader(bytes)
        while !reader.atEnd {
            guard let (field, wireType) = reader.tag(),
                  wireType == WireType.varint
                      || (field > OutliersWire.Timestamp.nanos && wireType != WireType.lengthDelimited),
                  reader.skip(wireType: wireType) else { return false }
        }
        return true
    }
}

/// A bounds-checked cursor over protobuf wire bytes.
struct WireReader {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var atEnd: Bool { offset >= bytes.count }

    @inline(__always)
    mutating func varint() -> UInt64? {
        // One-byte varints (every tag here, most lengths) take the short way.
        if offset < bytes.count, bytes[offset] < 0x80 {
            offset += 1
            return UInt64(bytes[offset - 1])
        }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while offset < bytes.count {
            let byte = bytes[offset]
            offset += 1
            if shift == 63 && byte > 1 { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// Field number and wire type; nil for field 0, a number beyond 2^29 - 1, or a
    /// key longer than 5 bytes.
    @inline(__always)
    mutating func tag() -> (Int, Int)? {
        let start = offset
        // swift-protobuf refuses a key varint padded past 5 bytes (0x80 0x80 0x80 0x80
        // 0x81 0x80 0x80 0x00 is field 2^25 written in 8), so the shortcut must not
        // take one (found by Fuzz/FuzzRequestValues).
        guard let key = varint(), key <= UInt64(UInt32.max), offset - start <= 5 else { return nil }
        let field = Int(key >> 3)
        guard field > 0, field <= 536_870_911 else { return nil }
        return (field, Int(key & 7))
    }

    @inline(__always)
    mutating func fixed64() -> UInt64? {
        guard bytes.count - offset >= 8 else { return nil }
        let value = bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
        offset += 8
        return UInt64(littleEndian: value)
    }

    @inline(__always)
    mutating func lengthDelimited() -> UnsafeRawBufferPointer? {
        guard let length = varint(), length <= UInt64(bytes.count - offset) else { return nil }
        let start = offset
        offset += Int(length)
        return UnsafeRawBufferPointer(rebasing: bytes[start..<offset])
    }

    /// Skips one field body; false for groups (wire types 3, 4) and malformed bytes.
    @inline(__always)
    mutating func skip(wireType: Int) -> Bool {
        switch wireType {
        case OutliersWire.WireType.varint: return varint() != nil
        case OutliersWire.WireType.fixed64: return fixed64() != nil
        case OutliersWire.WireType.lengthDelimited: return lengthDelimited() != nil
        case OutliersWire.WireType.fixed32:
            guard bytes.count - offset >= 4 else { return false }
            offset += 4
            return true
        default: return false
        }
    }
}
