import Glibc
import OutliersProto

/// Serializes metrics as the repeated `metrics` field of `pb.OutliersRequest`, byte
/// for byte as swift-protobuf serializes a `Pb_Metric`: time when set, name when not
/// empty, value when its bits are not zero (field numbers: `OutliersWire`).
///
/// With a `limit`, the writer stops at the first metric that would take the output
/// past it and sets `exceeded`: the caller stops converting, so memory is bounded by
/// the limit, not by the body.
///
/// The bytes go through a pointer into a buffer of its own, each metric's size
/// computed first and the room for it made before any byte is written (an Array's
/// per-byte append checks capacity and uniqueness every time). Not copyable, so the
/// buffer has one owner, which frees it when the writer's life ends.
struct ProtobufMetricWriter: ~Copyable {
    private typealias Metric = OutliersWire.Metric
    private typealias Timestamp = OutliersWire.Timestamp
    private typealias WireType = OutliersWire.WireType
    private var base: UnsafeMutablePointer<UInt8>
    private var capacity: Int
    /// Bytes written, at the start of `base`.
    private(set) var count = 0
    let limit: Int
    /// A metric did not fit under `limit`; nothing more is written.
    private(set) var exceeded = false
    /// The last entry written, when it has a value: where it starts and how long it
    /// is, its time, and where its name's bytes are in it (offsets into `base`, which
    /// `grow` moves; no pointer into the caller's memory, which may be gone by the
    /// next append). Clients stamp many metrics alike (the article's every one), and
    /// an entry with the same time and name and a nonzero value differs from the last
    /// only in its last 8 bytes, so it is a copy of it and a store.
    private var lastEntry: LastEntry?
    private struct LastEntry {
        var offset: Int
        var count: Int
        var time: (seconds: Int64, nanos: Int32)?
        var nameOffset: Int
        var nameCount: Int
    }

    init(capacity: Int, limit: Int = .max) {
        self.limit = limit
        self.capacity = max(64, min(capacity, limit))
        base = .allocate(capacity: self.capacity)
    }

    deinit {
        base.deallocate()
    }

    /// A copy of the bytes written.
    func takeOutput() -> [UInt8] {
        Array(UnsafeBufferPointer(start: base, count: count))
    }

    @inline(__always)
    mutating func append(time: (seconds: Int64, nanos: Int32)?, name: UnsafeRawBufferPointer?, value: Double) {
        guard !exceeded else { return }
        if value.bitPattern != 0, let last = lastEntry, Self.same(time, last.time), sameName(name, last) {
            appendCopy(of: last, value: value)
            return
        }
        let nameCount = name?.count ?? 0
        var timeLength = 0
        if let time {
            if time.seconds != 0 { timeLength += 1 + Self.varintSize(UInt64(bitPattern: time.seconds)) }
            if time.nanos != 0 { timeLength += 1 + Self.varintSize(UInt64(bitPattern: Int64(time.nanos))) }
        }
        var metricLength = time == nil ? 0 : 1 + Self.varintSize(UInt64(timeLength)) + timeLength
        if nameCount > 0 { metricLength += 1 + Self.varintSize(UInt64(nameCount)) + nameCount }
        if value.bitPattern != 0 { metricLength += 9 }
        let entryBytes = 1 + Self.varintSize(UInt64(metricLength)) + metricLength
        guard entryBytes <= limit - count else {
            exceeded = true
            return
        }
        if capacity - count < entryBytes { grow(toHold: entryBytes) }
        // Every write below stays inside the buffer.
        precondition(entryBytes <= capacity - count)

        var p = base + count
        p.write(OutliersWire.key(OutliersWire.OutliersRequest.metrics, WireType.lengthDelimited))
        p.writeVarint(UInt64(metricLength))
        if let time {
            p.write(OutliersWire.key(Metric.time, WireType.lengthDelimited))
            p.writeVarint(UInt64(timeLength))
            if time.seconds != 0 {
                p.write(OutliersWire.key(Timestamp.seconds, WireType.varint))
                p.writeVarint(UInt64(bitPattern: time.seconds))
            }
            if time.nanos != 0 {
                p.write(OutliersWire.key(Timestamp.nanos, WireType.varint))
                p.writeVarint(UInt64(bitPattern: Int64(time.nanos)))
            }
        }
        var nameOffset = 0
        if let name, nameCount > 0 {
            p.write(OutliersWire.key(Metric.name, WireType.lengthDelimited))
            p.writeVarint(UInt64(nameCount))
            nameOffset = p - base
            UnsafeMutableRawPointer(p).copyMemory(from: name.baseAddress!, byteCount: nameCount)
            p += nameCount
        }
        if value.bitPattern != 0 {
            p.write(OutliersWire.key(Metric.value, WireType.fixed64))
            UnsafeMutableRawPointer(p).storeBytes(of: value.bitPattern.littleEndian, as: UInt64.self)
            p += 8
        }
        // The sizes computed above are the bytes written.
        assert(p - (base + count) == entryBytes)
        lastEntry = value.bitPattern != 0
            ? LastEntry(offset: count, count: entryBytes, time: time, nameOffset: nameOffset, nameCount: nameCount) : nil
        count += entryBytes
    }

    /// The entry `last` again with `value` in its last 8 bytes (its fixed64 value).
    @inline(__always)
    private mutating func appendCopy(of last: LastEntry, value: Double) {
        guard last.count <= limit - count else {
            exceeded = true
            return
        }
        if capacity - count < last.count { grow(toHold: last.count) }
        precondition(last.count <= capacity - count && last.offset + last.count <= count)
        let p = base + count
        p.update(from: base + last.offset, count: last.count - 8)
        UnsafeMutableRawPointer(p + last.count - 8).storeBytes(of: value.bitPattern.littleEndian, as: UInt64.self)
        // The copy is this writer's own serialization of the same time, name and a value.
        assert(p[last.count - 9] == OutliersWire.key(Metric.value, WireType.fixed64))
        lastEntry = LastEntry(offset: count, count: last.count, time: last.time,
                              nameOffset: last.nameOffset - last.offset + count, nameCount: last.nameCount)
        count += last.count
    }

    @inline(__always)
    private static func same(_ a: (seconds: Int64, nanos: Int32)?, _ b: (seconds: Int64, nanos: Int32)?) -> Bool {
        switch (a, b) {
        case (nil, nil): true
        case let (a?, b?): a.seconds == b.seconds && a.nanos == b.nanos
        default: false
        }
    }

    /// `name` has the bytes of `last`'s name; an empty name is no name (neither is written).
    @inline(__always)
    private func sameName(_ name: UnsafeRawBufferPointer?, _ last: LastEntry) -> Bool {
        let count = name?.count ?? 0
        guard count == last.nameCount else { return false }
        return count == 0 || memcmp(name!.baseAddress!, base + last.nameOffset, count) == 0
    }

    /// At least twice the room, and enough for `needed` more bytes.
    @inline(never)
    private mutating func grow(toHold needed: Int) {
        let newCapacity = max(2 * capacity, count + needed)
        let newBase = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        newBase.update(from: base, count: count)
        base.deallocate()
        base = newBase
        capacity = newCapacity
    }

    @inline(__always)
    static func varintSize(_ value: UInt64) -> Int {
        // 7 bits a byte; 0 takes one.
        (64 - (value | 1).leadingZeroBitCount + 6) / 7
    }
}

private extension UnsafeMutablePointer<UInt8> {
    @inline(__always)
    mutating func write(_ byte: UInt8) {
        pointee = byte
        self += 1
    }

    @inline(__always)
    mutating func writeVarint(_ value: UInt64) {
        var value = value
        while value >= 0x80 {
            write(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        write(UInt8(value))
    }
}
