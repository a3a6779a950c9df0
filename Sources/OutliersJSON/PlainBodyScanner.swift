import Glibc

/// One pass over a /detect body in the plain shape every client sends, straight to
/// protobuf bytes: no tree, no allocation per value.
///
/// jansson builds a tree of hash tables for 1000 metrics (about 1.7 ms for the
/// article's 72 KB body on this machine); this scanner reads the same bytes in a
/// fraction of that. It accepts only a strict subset of JSON: ASCII strings without
/// escapes, the keys `metrics`, `time`, `name` and `value` each at most once, numbers
/// in JSON's grammar (read by `DecimalParser`, which gives strtod's double, as
/// jansson has), nulls, and as values of doubles what proto3 JSON allows: numbers,
/// "NaN"/"Infinity"/"-Infinity", and numbers in strings ("1.5"). Bare arrays hold
/// metric objects or those values, as their first element decides. On anything else
/// it returns nil and jansson decides, with the precise error when there is one. So
/// it can only ever answer what jansson would.
enum PlainBodyScanner {
    /// What one pass made of a body.
    enum Outcome {
        /// The serialized request.
        case message([UInt8])
        /// The message passed the limit; the scan stopped there.
        case messageTooLarge
        /// Not the plain shape: jansson decides.
        case declined
    }

    static func transcode(_ body: UnsafeRawBufferPointer) -> [UInt8]? {
        if case .message(let bytes) = transcode(body, limit: .max) { return bytes }
        return nil
    }

    static func transcode(_ body: UnsafeRawBufferPointer, limit: Int) -> Outcome {
        // An empty body has no base address, and jansson words its error.
        guard let base = body.baseAddress?.assumingMemoryBound(to: UInt8.self) else { return .declined }
        // The protobuf is about a third of a body of metric objects; a bare array of
        // short numbers can take more than its body, and the writer grows then.
        var writer = ProtobufMetricWriter(capacity: body.count / 2 + 64, limit: limit)
        var cursor = Cursor(start: base, end: base + body.count)
        guard scan(&cursor, into: &writer) else {
            return writer.exceeded ? .messageTooLarge : .declined
        }
        return .message(writer.takeOutput())
    }

    private static func scan(_ cursor: inout Cursor, into writer: inout ProtobufMetricWriter) -> Bool {
        cursor.skipWhitespace()
        switch cursor.peek {
        case UInt8(ascii: "{"):
            cursor.advance()
            cursor.skipWhitespace()
            if cursor.peek != UInt8(ascii: "}") {
                guard cursor.key() == .metrics, cursor.colon() else { return false }
                if cursor.null() {
                    // "metrics": null is no metrics.
                } else {
                    guard cursor.metrics(into: &writer, bare: false) else { return false }
                }
                cursor.skipWhitespace()
            }
            guard cursor.peek == UInt8(ascii: "}") else { return false }
            cursor.advance()
        case UInt8(ascii: "["):
            guard cursor.metrics(into: &writer, bare: true) else { return false }
        default:
            return false
        }
        cursor.skipWhitespace()
        return cursor.atEnd
    }

    enum Key { case metrics, time, name, value }

    /// The bytes read so far and the rest, through raw pointers: every read is after
    /// a check against `end` (or `peek`, which gives 0 there).
    struct Cursor {
        var p: UnsafePointer<UInt8>
        let end: UnsafePointer<UInt8>
        /// The last time string parsed (its bytes in the body, between the quotes),
        /// and its value: clients often stamp every metric alike (the article's does).
        var lastTime: (text: UnsafePointer<UInt8>, count: Int, value: (seconds: Int64, nanos: Int32))?
        var lastTemplate: Template?

        init(start: UnsafePointer<UInt8>, end: UnsafePointer<UInt8>) {
            precondition(start <= end)
            p = start
            self.end = end
        }

        @inline(__always) var atEnd: Bool { p >= end }
        /// The current byte, or 0 at the end (0 never starts a valid token).
        @inline(__always) var peek: UInt8 { p < end ? p.pointee : 0 }

        @inline(__always) mutating func advance() { p += 1 }

        @inline(__always)
        mutating func skipWhitespace() {
            while p < end {
                switch p.pointee {
                case 0x20, 0x0A, 0x0D, 0x09: p += 1
                default: return
                }
            }
        }

        /// The next 8 bytes as a little-endian word; only when 8 are left.
        @inline(__always)
        func word() -> UInt64 {
            assert(end - p >= 8)
            return UInt64(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt64.self))
        }

        /// `null`, consumed when there.
        @inline(__always)
        mutating func null() -> Bool {
            guard end - p >= 4,
                  UInt32(littleEndian: UnsafeRawPointer(p).loadUnaligned(as: UInt32.self)) == Self.nullWord else { return false }
            p += 4
            return true
        }

        @inline(__always)
        mutating func literal(_ text: StaticString) -> Bool {
            let count = text.utf8CodeUnitCount
            guard end - p >= count, memcmp(p, text.utf8Start, count) == 0 else { return false }
            p += count
            return true
        }

        // The words of `"time"`, `"name"`, `"value"` (quotes included) and `null`, their
        // first byte lowest, to compare a key or a null with one load.
        @inline(__always) static var nullWord: UInt32 { 0x6C6C_756E }
        @inline(__always) static var quotedTimeWord: UInt64 { 0x2265_6D69_7422 }
        @inline(__always) static var quotedNameWord: UInt64 { 0x2265_6D61_6E22 }
        @inline(__always) static var quotedValueWord: UInt64 { 0x22_6575_6C61_7622 }

        /// A plain string: printable ASCII, no escapes. Returns its bytes, between the quotes.
        @inline(__always)
        mutating func plainString() -> UnsafeRawBufferPointer? {
            guard peek == UInt8(ascii: "\"") else { return nil }
            let start = p + 1
            var q = start
            while q < end {
                let byte = q.pointee
                if byte == UInt8(ascii: "\"") { break }
                guard byte >= 0x20, byte < 0x7F, byte != UInt8(ascii: "\\") else { return nil }
                q += 1
            }
            guard q < end else { return nil }
            p = q + 1
            return UnsafeRawBufferPointer(start: start, count: q - start)
        }

        @inline(__always)
        mutating func key() -> Key? {
            // The three metric keys in one load each: a plain string is exactly `time`
            // when its quote, these four bytes and its closing quote are there.
            if end - p >= 8 {
                let word = word()
                if word & 0xFFFF_FFFF_FFFF == Self.quotedTimeWord {
                    p += 6
                    return .time
                }
                if word & 0xFFFF_FFFF_FFFF == Self.quotedNameWord {
                    p += 6
                    return .name
                }
                if word & 0xFF_FFFF_FFFF_FFFF == Self.quotedValueWord {
                    p += 7
                    return .value
                }
            }
            guard let text = plainString() else { return nil }
            func equals(_ literal: StaticString) -> Bool {
                text.count == literal.utf8CodeUnitCount && memcmp(text.baseAddress!, literal.utf8Start, text.count) == 0
            }
            switch text.count {
            case 4: return equals("time") ? .time : equals("name") ? .name : nil
            case 5: return equals("value") ? .value : nil
            case 7: return equals("metrics") ? .metrics : nil
            default: return nil
            }
        }

        @inline(__always)
        mutating func colon() -> Bool {
            skipWhitespace()
            guard peek == UInt8(ascii: ":") else { return false }
            advance()
            skipWhitespace()
            return true
        }

        /// `[` element (`,` element)* `]`: metric objects, or (bare arrays only) values
        /// of doubles, as the first element decides (jansson's path decides so too).
        mutating func metrics(into writer: inout ProtobufMetricWriter, bare: Bool) -> Bool {
            guard peek == UInt8(ascii: "[") else { return false }
            advance()
            skipWhitespace()
            if peek == UInt8(ascii: "]") {
                advance()
                return true
            }
            let objects = peek == UInt8(ascii: "{")
            guard objects || bare else { return false }
            while true {
                skipWhitespace()
                if objects {
                    guard peek == UInt8(ascii: "{"), metric(into: &writer) else { return false }
                } else {
                    guard let value = doubleValue() else { return false }
                    writer.append(time: nil, name: nil, value: value)
                }
                if writer.exceeded { return false }
                skipWhitespace()
                switch peek {
                case UInt8(ascii: ","): advance()
                case UInt8(ascii: "]"):
                    advance()
                    return true
                default: return false
                }
            }
        }

        mutating func metric(into writer: inout ProtobufMetricWriter) -> Bool {
            let objectStart = p
            advance()  // {
            var time: (seconds: Int64, nanos: Int32)?
            var name: UnsafeRawBufferPointer?
            var value = 0.0
            var seen: (time: Bool, name: Bool, value: Bool) = (false, false, false)
            // A key already read (by the template), to take before reading another.
            var pendingKey: Key?
            if let template = lastTemplate, end - objectStart > template.count,
               Self.equalBytes(objectStart, template.text, template.count) {
                // The same bytes up to the value as the metric the template came from:
                // they parse the same, so its state there is this one's.
                p = objectStart + template.count
                time = template.time
                name = template.name
                seen = (template.seenTime, template.seenName, false)
                pendingKey = .value
            }
            skipWhitespace()
            if pendingKey != nil || peek != UInt8(ascii: "}") {
                while true {
                    let key: Key
                    if let pending = pendingKey {
                        key = pending
                        pendingKey = nil
                    } else {
                        skipWhitespace()
                        guard let read = self.key(), colon() else { return false }
                        key = read
                    }
                    let isNull = null()
                    switch key {
                    case .time:
                        guard !seen.time else { return false }
                        seen.time = true
                        if !isNull {
                            guard let parsed = timeValue() else { return false }
                            time = parsed
                        }
                    case .name:
                        guard !seen.name else { return false }
                        seen.name = true
                        if !isNull {
                            guard let text = plainString() else { return false }
                            name = text
                        }
                    case .value:
                        guard !seen.value else { return false }
                        if !isNull {
                            let valueStart = p
                            guard let number = doubleValue() else { return false }
                            value = number
                            if valueStart - objectStart <= Self.longestTemplate {
                                lastTemplate = Template(text: objectStart, count: valueStart - objectStart, time: time,
                                                        name: name, seenTime: seen.time, seenName: seen.name)
                            }
                        }
                        seen.value = true
                    case .metrics:
                        return false
                    }
                    skipWhitespace()
                    if peek == UInt8(ascii: ",") {
                        advance()
                        continue
                    }
                    break
                }
            }
            guard peek == UInt8(ascii: "}") else { return false }
            advance()
            writer.append(time: time, name: name, value: value)
            return true
        }

        /// Where the last metric with a value had its value: the bytes from its `{` to
        /// the value (its keys before it, their values and the value's key and colon),
        /// and what they parsed to. A metric whose bytes start alike parses alike
        /// that far (the parse of those bytes depends on nothing before them), so it
        /// takes the template's state and reads only its value and what follows:
        /// clients stamp many metrics alike (the article's every one), and their time
        /// and name are then read once.
        struct Template {
            var text: UnsafePointer<UInt8>
            var count: Int
            var time: (seconds: Int64, nanos: Int32)?
            var name: UnsafeRawBufferPointer?
            var seenTime: Bool
            var seenName: Bool
        }

        /// A longer prefix is rarely repeated, and comparing it could cost more than
        /// parsing it.
        @inline(__always) static var longestTemplate: Int { 256 }

        /// A time string, as `RFC3339.check` reads it; the same bytes as the last one
        /// are not parsed again.
        @inline(__always)
        mutating func timeValue() -> (seconds: Int64, nanos: Int32)? {
            guard peek == UInt8(ascii: "\"") else { return nil }
            if let cached = lastTime, end - p > cached.count + 1,
               (p + 1 + cached.count).pointee == UInt8(ascii: "\""),
               Self.equalBytes(p + 1, cached.text, cached.count) {
                // The cached text was a plain string, so these same bytes are one too.
                p += cached.count + 2
                return cached.value
            }
            guard let text = plainString(), let parsed = RFC3339.parse(text) else { return nil }
            lastTime = (text.baseAddress!.assumingMemoryBound(to: UInt8.self), text.count, parsed)
            return parsed
        }

        /// The first `count` bytes at `a` and `b` are equal (a time string is about 20
        /// bytes: a few word compares, no call).
        @inline(__always)
        static func equalBytes(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, _ count: Int) -> Bool {
            var offset = 0
            while count - offset >= 8 {
                if UnsafeRawPointer(a + offset).loadUnaligned(as: UInt64.self)
                    != UnsafeRawPointer(b + offset).loadUnaligned(as: UInt64.self) { return false }
                offset += 8
            }
            while offset < count {
                if a[offset] != b[offset] { return false }
                offset += 1
            }
            return true
        }

        /// A double as proto3 JSON writes one, as jansson's path reads it: a JSON
        /// number (nil when it overflows, which jansson refuses), "NaN", "Infinity",
        /// "-Infinity", or a JSON number in a string (nil when not finite, which the
        /// full decoder refuses too).
        @inline(__always)
        mutating func doubleValue() -> Double? {
            if peek == UInt8(ascii: "\"") {
                if let number = DecimalParser.parse(p + 1, end), number.end < end,
                   number.end.pointee == UInt8(ascii: "\""), number.value.isFinite {
                    p = number.end + 1
                    return number.value
                }
                if literal("\"NaN\"") { return .nan }
                if literal("\"Infinity\"") { return .infinity }
                if literal("\"-Infinity\"") { return -.infinity }
                return nil
            }
            guard let number = DecimalParser.parse(p, end), number.value.isFinite else { return nil }
            p = number.end
            return number.value
        }
    }
}
