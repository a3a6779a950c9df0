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
///
/// Two levels: `canonicalMetricValue` reads the one layout every serializer writes
/// (time, name, value, in field order, one-byte lengths) with a compare per key, and
/// hands anything else to `anyMetricValue`, which accepts every field order, repeats
/// and unknown fields that swift-protobuf accepts. The canonical reader accepts a
/// subset of what the general one does, so the two can only agree.
public enum OutliersRequestValues {
    /// The values, whether or not the request has options.
    public static func decode(_ bytes: [UInt8]) -> [Double]? {
        bytes.withUnsafeBytes { decodeRequest($0)?.values }
    }

    public static func decode(_ bytes: UnsafeRawBufferPointer) -> [Double]? {
        decodeRequest(bytes)?.values
    }

    /// The values and the request's `options` (nil when the field is absent), or nil
    /// to decline. The options, a few bytes, are decoded by swift-protobuf; the
    /// reader declines when they do not decode or when the field comes twice (which
    /// protobuf merges: swift-protobuf decides then).
    public static func decodeRequest(_ bytes: [UInt8]) -> (values: [Double], options: Pb_DetectOptions?)? {
        bytes.withUnsafeBytes { decodeRequest($0) }
    }

    public static func decodeRequest(_ bytes: UnsafeRawBufferPointer) -> (values: [Double], options: Pb_DetectOptions?)? {
        var reader = WireReader(bytes)
        var values: [Double] = []
        var options: UnsafeRawBufferPointer?
        values.reserveCapacity(bytes.count / 20)
        while !reader.atEnd {
            if let metric = reader.shortField(key: metricsKey) {
                guard let value = canonicalMetricValue(metric) ?? anyMetricValue(metric) else { return nil }
                values.append(value)
                continue
            }
            guard let key = reader.key() else { return nil }
            if key == metricsKey {
                guard let metric = reader.lengthDelimited() else { return nil }
                guard let value = canonicalMetricValue(metric) ?? anyMetricValue(metric) else { return nil }
                values.append(value)
            } else if key == optionsKey {
                guard options == nil, let body = reader.lengthDelimited() else { return nil }
                options = body
            } else if key >> 3 == OutliersWire.OutliersRequest.metrics || key >> 3 == OutliersWire.OutliersRequest.options {
                // A known field with another wire type: let swift-protobuf decide.
                return nil
            } else {
                guard reader.skip(wireType: key & 7) else { return nil }
            }
        }
        guard let options else { return (values, nil) }
        guard let decoded = try? Pb_DetectOptions(serializedBytes: Array(options)) else { return nil }
        return (values, decoded)
    }

    // Keys (field number << 3 | wire type) as computed constants: a `static let`
    // would cost a lazy-initialisation check on every use in the loops below.
    @inline(__always) private static var metricsKey: Int {
        OutliersWire.OutliersRequest.metrics << 3 | OutliersWire.WireType.lengthDelimited
    }
    @inline(__always) private static var optionsKey: Int {
        OutliersWire.OutliersRequest.options << 3 | OutliersWire.WireType.lengthDelimited
    }
    @inline(__always) private static var timeKey: Int { OutliersWire.Metric.time << 3 | OutliersWire.WireType.lengthDelimited }
    @inline(__always) private static var nameKey: Int { OutliersWire.Metric.name << 3 | OutliersWire.WireType.lengthDelimited }
    @inline(__always) private static var valueKey: Int { OutliersWire.Metric.value << 3 | OutliersWire.WireType.fixed64 }
    @inline(__always) private static var secondsKey: Int { OutliersWire.Timestamp.seconds << 3 | OutliersWire.WireType.varint }
    @inline(__always) private static var nanosKey: Int { OutliersWire.Timestamp.nanos << 3 | OutliersWire.WireType.varint }

    /// The value of a metric written as `time? name? value` in that order, each at
    /// most once, with one-byte keys and lengths, the time holding `seconds? nanos?`
    /// varints of at most 8 bytes (which cannot overflow 64 bits); nil for anything
    /// else, which `anyMetricValue` then reads.
    @inline(__always)
    private static func canonicalMetricValue(_ metric: UnsafeRawBufferPointer) -> Double? {
        guard var position = metric.baseAddress else { return nil }
        let end = position + metric.count
        if position < end, position.load(as: UInt8.self) == timeKey {
            guard end - position >= 2 else { return nil }
            let length = Int(position.load(fromByteOffset: 1, as: UInt8.self))
            guard length < 0x80, end - position - 2 >= length else { return nil }
            guard isCanonicalTimestamp(position + 2, position + 2 + length) else { return nil }
            position += 2 + length
        }
        if position < end, position.load(as: UInt8.self) == nameKey {
            guard end - position >= 2 else { return nil }
            let length = Int(position.load(fromByteOffset: 1, as: UInt8.self))
            guard length < 0x80, end - position - 2 >= length,
                  isASCII(UnsafeRawBufferPointer(start: position + 2, count: length)) else { return nil }
            position += 2 + length
        }
        guard end - position == 9, position.load(as: UInt8.self) == valueKey else { return nil }
        return Double(bitPattern: UInt64(littleEndian: position.loadUnaligned(fromByteOffset: 1, as: UInt64.self)))
    }

    @inline(__always)
    private static func isCanonicalTimestamp(_ start: UnsafeRawPointer, _ end: UnsafeRawPointer) -> Bool {
        var position = start
        if position < end, position.load(as: UInt8.self) == secondsKey {
            position += 1
            guard skipShortVarint(&position, end) else { return false }
        }
        if position < end, position.load(as: UInt8.self) == nanosKey {
            position += 1
            guard skipShortVarint(&position, end) else { return false }
        }
        return position == end
    }

    /// Skips a varint of at most 8 bytes (56 bits: never an overflow to judge); false
    /// for a longer one, which `anyMetricValue` then judges. With 8 bytes to read, one
    /// load finds the last byte (the first without its high bit) instead of a loop.
    @inline(__always)
    private static func skipShortVarint(_ position: inout UnsafeRawPointer, _ end: UnsafeRawPointer) -> Bool {
        if end - position >= 8 {
            let word = UInt64(littleEndian: position.loadUnaligned(as: UInt64.self))
            let lastBytes = ~word & 0x8080_8080_8080_8080
            guard lastBytes != 0 else { return false }
            position += lastBytes.trailingZeroBitCount / 8 + 1
            return true
        }
        let limit = min(end, position + 8)
        while position < limit {
            let byte = position.load(as: UInt8.self)
            position += 1
            if byte < 0x80 { return true }
        }
        return false
    }

    /// `Metric.value` (last one wins, 0 when absent), after checking that the time is
    /// a well-formed Timestamp and the name ASCII, whatever the order of the fields.
    private static func anyMetricValue(_ bytes: UnsafeRawBufferPointer) -> Double? {
        typealias WireType = OutliersWire.WireType
        var reader = WireReader(bytes)
        var value = 0.0
        while !reader.atEnd {
            guard let key = reader.key() else { return nil }
            switch key {
            case valueKey:
                guard let bits = reader.fixed64() else { return nil }
                value = Double(bitPattern: bits)
            case nameKey:
                guard let name = reader.lengthDelimited(), isASCII(name) else { return nil }
            case timeKey:
                guard let time = reader.lengthDelimited(), isPlainMessage(time) else { return nil }
            default:
                // A known field with another wire type: let swift-protobuf decide.
                let field = key >> 3
                if field == OutliersWire.Metric.time || field == OutliersWire.Metric.name || field == OutliersWire.Metric.value {
                    return nil
                }
                guard reader.skip(wireType: key & 7) else { return nil }
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
            guard let key = reader.key() else { return false }
            let wireType = key & 7
            guard wireType == WireType.varint
                      || (key >> 3 > OutliersWire.Timestamp.nanos && wireType != WireType.lengthDelimited),
                  reader.skip(wireType: wireType) else { return false }
        }
        return true
    }
}

/// A bounds-checked cursor over protobuf wire bytes: a position and an end, so that
/// each read compares two pointers instead of indexing through the buffer.
struct WireReader {
    private var position: UnsafeRawPointer
    private let end: UnsafeRawPointer

    init(_ bytes: UnsafeRawBufferPointer) {
        // An empty buffer may have no base address; any pointer with end == position
        // reads nothing.
        let start = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        position = start
        end = start + bytes.count
    }

    var atEnd: Bool { position >= end }

    @inline(__always)
    mutating func varint() -> UInt64? {
        // One-byte varints (every tag here, most lengths) take the short way.
        if position < end {
            let first = position.load(as: UInt8.self)
            if first < 0x80 {
                position += 1
                return UInt64(first)
            }
        }
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while position < end {
            let byte = position.load(as: UInt8.self)
            position += 1
            if shift == 63 && byte > 1 { return nil }
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { return result }
            shift += 7
            if shift > 63 { return nil }
        }
        return nil
    }

    /// A field's key (field number << 3 | wire type); nil for field 0, a number beyond
    /// 2^29 - 1, or a key longer than 5 bytes.
    @inline(__always)
    mutating func key() -> Int? {
        let start = position
        // swift-protobuf refuses a key varint padded past 5 bytes (0x80 0x80 0x80 0x80
        // 0x81 0x80 0x80 0x00 is field 2^25 written in 8), so the shortcut must not
        // take one (found by Fuzz/FuzzRequestValues).
        guard let key = varint(), key <= UInt64(UInt32.max), position - start <= 5 else { return nil }
        let field = key >> 3
        guard field > 0, field <= 536_870_911 else { return nil }
        return Int(key)
    }

    /// The body of a field with this one-byte key and a one-byte length, if that is
    /// what comes next; otherwise nil, and nothing is read.
    @inline(__always)
    mutating func shortField(key: Int) -> UnsafeRawBufferPointer? {
        guard end - position >= 2, position.load(as: UInt8.self) == key else { return nil }
        let length = Int(position.load(fromByteOffset: 1, as: UInt8.self))
        guard length < 0x80, end - position - 2 >= length else { return nil }
        defer { position += 2 + length }
        return UnsafeRawBufferPointer(start: position + 2, count: length)
    }

    @inline(__always)
    mutating func fixed64() -> UInt64? {
        guard end - position >= 8 else { return nil }
        let value = position.loadUnaligned(as: UInt64.self)
        position += 8
        return UInt64(littleEndian: value)
    }

    @inline(__always)
    mutating func lengthDelimited() -> UnsafeRawBufferPointer? {
        guard let length = varint(), length <= UInt64(end - position) else { return nil }
        let start = position
        position += Int(length)
        return UnsafeRawBufferPointer(start: start, count: Int(length))
    }

    /// Skips one field body; false for groups (wire types 3, 4) and malformed bytes.
    @inline(__always)
    mutating func skip(wireType: Int) -> Bool {
        switch wireType {
        case OutliersWire.WireType.varint: return varint() != nil
        case OutliersWire.WireType.fixed64: return fixed64() != nil
        case OutliersWire.WireType.lengthDelimited: return lengthDelimited() != nil
        case OutliersWire.WireType.fixed32:
            guard end - position >= 4 else { return false }
            position += 4
            return true
        default: return false
        }
    }
}
