import OutliersProto

/// Serializes metrics as the repeated `metrics` field of `pb.OutliersRequest`, byte
/// for byte as swift-protobuf serializes a `Pb_Metric`: time when set, name when not
/// empty, value when its bits are not zero (field numbers: `OutliersWire`).
///
/// With a `limit`, the writer stops at the first metric that would take the output
/// past it and sets `exceeded`: the caller stops converting, so memory is bounded by
/// the limit, not by the body.
struct ProtobufMetricWriter {
    private typealias Metric = OutliersWire.Metric
    private typealias Timestamp = OutliersWire.Timestamp
    private typealias WireType = OutliersWire.WireType
    private(set) var output: [UInt8] = []
    private var metric: [UInt8] = []
    let limit: Int
    /// A metric did not fit under `limit`; nothing more is written.
    private(set) var exceeded = false

    init(capacity: Int, limit: Int = .max) {
        self.limit = limit
        output.reserveCapacity(min(capacity, limit))
        metric.reserveCapacity(64)
    }

    mutating func append(time: (seconds: Int64, nanos: Int32)?, name: UnsafeRawBufferPointer?, value: Double) {
        guard !exceeded else { return }
        metric.removeAll(keepingCapacity: true)
        if let time {
            var length = 0
            if time.seconds != 0 { length += 1 + Self.varintSize(UInt64(bitPattern: time.seconds)) }
            if time.nanos != 0 { length += 1 + Self.varintSize(UInt64(bitPattern: Int64(time.nanos))) }
            metric.append(OutliersWire.key(Metric.time, WireType.lengthDelimited))
            Self.appendVarint(UInt64(length), to: &metric)
            if time.seconds != 0 {
                metric.append(OutliersWire.key(Timestamp.seconds, WireType.varint))
                Self.appendVarint(UInt64(bitPattern: time.seconds), to: &metric)
            }
            if time.nanos != 0 {
                metric.append(OutliersWire.key(Timestamp.nanos, WireType.varint))
                Self.appendVarint(UInt64(bitPattern: Int64(time.nanos)), to: &metric)
            }
        }
        if let name, !name.isEmpty {
            metric.append(OutliersWire.key(Metric.name, WireType.lengthDelimited))
            Self.appendVarint(UInt64(name.count), to: &metric)
            metric.append(contentsOf: name)
        }
        if value.bitPattern != 0 {
            metric.append(OutliersWire.key(Metric.value, WireType.fixed64))
            withUnsafeBytes(of: value.bitPattern.littleEndian) { metric.append(contentsOf: $0) }
        }
        let entryBytes = 1 + Self.varintSize(UInt64(metric.count)) + metric.count
        guard entryBytes <= limit - output.count else {
            exceeded = true
            return
        }
        output.append(OutliersWire.key(OutliersWire.OutliersRequest.metrics, WireType.lengthDelimited))
        Self.appendVarint(UInt64(metric.count), to: &output)
        output.append(contentsOf: metric)
    }

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest != 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    static func appendVarint(_ value: UInt64, to output: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            output.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        output.append(UInt8(value))
    }
}
