import CJansson
import OutliersProto
import SwiftProtobuf
import Glibc

/// JSON ⇄ pb messages for the REST contract (DESIGN.md §2), parsed with jansson.
///
/// A /detect body is any of: proto3 JSON of OutliersRequest
/// (`{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3}]}`, with
/// `"options":{"method":"MAD","threshold":3,"groupByName":true,"details":true}`
/// when wanted), a bare array of such metric objects, or a bare array of numbers. Errors say what
/// went wrong and where: line and column for syntax, the JSON path
/// (`metrics[3].value`, or `[3].value` in a bare array) for a wrong type or an
/// unknown field. A bare array holds metric objects or numbers, not both; its first
/// element decides which.
public enum JSONCodec {
    /// Parses a body into a request message.
    public static func decodeRequest(_ body: UnsafeRawBufferPointer) throws(JSONCodecError) -> Pb_OutliersRequest {
        var request = Pb_OutliersRequest()
        let options = try walk(body) { metric in
            var message = Pb_Metric()
            if let time = metric.time { message.time = Google_Protobuf_Timestamp(seconds: time.seconds, nanos: time.nanos) }
            if let name = metric.name { message.name = String(decoding: name, as: UTF8.self) }
            message.value = metric.value
            request.metrics.append(message)
        }
        if let options { request.options = options }
        return request
    }

    public static func decodeRequest(_ body: [UInt8]) throws(JSONCodecError) -> Pb_OutliersRequest {
        // withUnsafeBytes rethrows untyped errors: carry the typed one out in a Result.
        let result = body.withUnsafeBytes { raw in
            Result { () throws(JSONCodecError) -> Pb_OutliersRequest in try decodeRequest(raw) }
        }
        return try result.get()
    }

    /// The same body straight to serialized `OutliersRequest` bytes, byte for byte
    /// what swift-protobuf serializes from `decodeRequest`, without building the
    /// messages (the gateway's hot path).
    ///
    /// Bodies in the plain shape every client sends go through `PlainBodyScanner`,
    /// one pass with no tree; anything else (escapes, non-ASCII, unknown or repeated
    /// keys, numeric strings, malformed input) through jansson, which also gives the
    /// precise error. Both write through `ProtobufMetricWriter`, so they agree.
    ///
    /// A message that would pass `maximumMessageBytes` throws `isMessageTooLarge`, as
    /// soon as that is known: the plain scanner stops there (memory bounded by the
    /// limit); the jansson path, which builds its tree first, is bounded by the body.
    ///
    /// The plain scanner takes bodies without `options` (it declines on the key);
    /// `overrides` (the gateway's query parameters) are laid over the body's options.
    public static func transcodeRequest(_ body: UnsafeRawBufferPointer, maximumMessageBytes: Int = .max,
                                        overrides: DetectOptionsOverrides = DetectOptionsOverrides()) throws(JSONCodecError) -> [UInt8] {
        switch PlainBodyScanner.transcode(body, limit: maximumMessageBytes) {
        case .message(let bytes):
            guard !overrides.isEmpty else { return bytes }
            return try appendingOptions(overrides.applied(to: Pb_DetectOptions()), to: bytes, limit: maximumMessageBytes)
        case .messageTooLarge: throw .messageTooLarge(limit: maximumMessageBytes)
        case .declined: return try transcodeWithJansson(body, maximumMessageBytes: maximumMessageBytes, overrides: overrides)
        }
    }

    /// The jansson path of `transcodeRequest`, for every body.
    static func transcodeWithJansson(_ body: UnsafeRawBufferPointer, maximumMessageBytes: Int = .max,
                                     overrides: DetectOptionsOverrides = DetectOptionsOverrides()) throws(JSONCodecError) -> [UInt8] {
        var writer = ProtobufMetricWriter(capacity: body.count / 2, limit: maximumMessageBytes)
        var options = try walk(body) { metric in
            writer.append(time: metric.time, name: metric.name, value: metric.value)
        }
        if writer.exceeded { throw .messageTooLarge(limit: maximumMessageBytes) }
        if !overrides.isEmpty { options = overrides.applied(to: options ?? Pb_DetectOptions()) }
        guard let options else { return writer.takeOutput() }
        return try appendingOptions(options, to: writer.takeOutput(), limit: maximumMessageBytes)
    }

    /// `message` with field 2, `options`, after its metrics: where swift-protobuf
    /// writes it (fields in number order), so the bytes stay what it would serialize.
    static func appendingOptions(_ options: Pb_DetectOptions, to message: [UInt8], limit: Int) throws(JSONCodecError) -> [UInt8] {
        // A message of a varint, a double and two bools cannot fail to serialize.
        let field: [UInt8] = try! options.serializedBytes()
        var output = message
        output.append(OutliersWire.key(OutliersWire.OutliersRequest.options, OutliersWire.WireType.lengthDelimited))
        output.append(UInt8(field.count))  // at most 15 bytes: a one-byte length
        output.append(contentsOf: field)
        guard output.count <= limit else { throw .messageTooLarge(limit: limit) }
        return output
    }

    /// `{"indices":[7,113,835]}`: "indices" always present, `[]` when empty.
    public static func encodeResponse(indices: [Int32]) -> [UInt8] {
        var output = Array(#"{"indices":["#.utf8)
        output.reserveCapacity(16 + indices.count * 6)
        for (position, index) in indices.enumerated() {
            if position > 0 { output.append(UInt8(ascii: ",")) }
            output.append(contentsOf: String(index).utf8)
        }
        output.append(contentsOf: "]}".utf8)
        return output
    }

    /// grpc-gateway v2's error body: `{"code":3,"message":"…","details":[]}`.
    public static func encodeError(code: Int, message: String) -> [UInt8] {
        var output = Array(#"{"code":"#.utf8)
        output.append(contentsOf: String(code).utf8)
        output.append(contentsOf: #","message":"#.utf8)
        appendString(message, to: &output)
        output.append(contentsOf: #","details":[]}"#.utf8)
        return output
    }

    /// proto3 JSON of a request, as swift-protobuf and protojson read it: times in
    /// UTC with Z and 0, 3, 6 or 9 fraction digits; NaN and infinities as strings.
    public static func encodeRequest(_ request: Pb_OutliersRequest) -> [UInt8] {
        var output = Array(#"{"metrics":["#.utf8)
        output.reserveCapacity(24 + request.metrics.count * 64)
        for (position, metric) in request.metrics.enumerated() {
            if position > 0 { output.append(UInt8(ascii: ",")) }
            output.append(UInt8(ascii: "{"))
            var first = true
            func key(_ name: String) {
                if !first { output.append(UInt8(ascii: ",")) }
                first = false
                output.append(UInt8(ascii: "\""))
                output.append(contentsOf: name.utf8)
                output.append(contentsOf: "\":".utf8)
            }
            if metric.hasTime {
                key("time")
                output.append(UInt8(ascii: "\""))
                output.append(contentsOf: RFC3339.format(seconds: metric.time.seconds, nanos: metric.time.nanos).utf8)
                output.append(UInt8(ascii: "\""))
            }
            if !metric.name.isEmpty {
                key("name")
                appendString(metric.name, to: &output)
            }
            if metric.value.bitPattern != 0 {
                key("value")
                appendDouble(metric.value, to: &output)
            }
            output.append(UInt8(ascii: "}"))
        }
        output.append(contentsOf: "]}".utf8)
        return output
    }

    // MARK: Decoding

    /// One metric as read from JSON; `name` points into the jansson tree.
    struct MetricFields {
        var time: (seconds: Int64, nanos: Int32)?
        var name: UnsafeRawBufferPointer?
        var value = 0.0
    }

    /// Parses `body` and calls `visit` for each metric in order; the options, when
    /// the body has them (an object, not null).
    @discardableResult
    static func walk(_ body: UnsafeRawBufferPointer, _ visit: (MetricFields) -> Void) throws(JSONCodecError) -> Pb_DetectOptions? {
        guard body.contains(where: { !($0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09) }) else {
            throw JSONCodecError(message: body.isEmpty ? "empty body: expected a JSON object or array"
                                     : "body has only white space: expected a JSON object or array")
        }
        // jansson 2.14 skips a raw NUL byte after a token ("[1\0, 2]" reads as [1, 2]);
        // JSON has no place for one (inside a string it is written \u0000).
        if let nul = memchr(body.baseAddress!, 0, body.count) {
            throw JSONCodecError.nulByte(in: body, at: body.baseAddress!.distance(to: UnsafeRawPointer(nul)))
        }
        var error = json_error_t()
        // JSON_ALLOW_NUL: a string may hold \u0000, as proto3 strings may (swift-protobuf
        // and protojson write and read it); strings are read by length, never as C strings.
        let flags = Int(JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_DECODE_INT_AS_REAL | JSON_ALLOW_NUL)
        guard let root = json_loadb(body.baseAddress!.assumingMemoryBound(to: CChar.self), body.count, flags, &error) else {
            throw JSONCodecError(syntax: error)
        }
        defer { json_decref(root) }
        var options: Pb_DetectOptions?
        switch root.pointee.type {
        case JSON_OBJECT:
            var iterator = json_object_iter(root)
            while let current = iterator {
                let keyPointer = json_object_iter_key(current)!
                let value = json_object_iter_value(current)!
                if strcmp(keyPointer, "metrics") == 0 {
                    switch value.pointee.type {
                    case JSON_NULL: break
                    case JSON_ARRAY: try walkMetrics(value, path: "metrics", bare: false, visit)
                    default: throw JSONCodecError(message: "expected an array of metrics, got \(typeName(value))", path: "metrics")
                    }
                } else if strcmp(keyPointer, "options") == 0 {
                    switch value.pointee.type {
                    case JSON_NULL: break
                    case JSON_OBJECT: options = try detectOptions(value, path: "options")
                    default: throw JSONCodecError(message: "expected an options object, got \(typeName(value))", path: "options")
                    }
                } else {
                    let key = shown(keyPointer)
                    throw JSONCodecError(message: "unknown field \"\(escaped(key))\" (an OutliersRequest has \"metrics\" and \"options\")", path: key)
                }
                iterator = json_object_iter_next(root, current)
            }
        case JSON_ARRAY:
            try walkMetrics(root, path: "", bare: true, visit)
        default:
            throw JSONCodecError(message: "expected a JSON object {\"metrics\":[…]} or an array, got \(typeName(root))")
        }
        return options
    }

    /// The metrics array: objects, or (in a bare array only) numbers as proto3 JSON
    /// writes doubles, including "NaN", "Infinity", "-Infinity" and numeric strings.
    private static func walkMetrics(_ array: UnsafeMutablePointer<json_t>, path: String, bare: Bool,
                                    _ visit: (MetricFields) -> Void) throws(JSONCodecError) {
        let count = json_array_size(array)
        guard count > 0 else { return }
        let first = json_array_get(array, 0)!.pointee.type
        let numbers = bare && (first == JSON_REAL || first == JSON_INTEGER || first == JSON_STRING)
        for index in 0..<count {
            let element = json_array_get(array, index)!
            let elementPath = "\(path)[\(index)]"
            if numbers {
                let type = element.pointee.type
                guard type == JSON_REAL || type == JSON_INTEGER || type == JSON_STRING else {
                    throw JSONCodecError(message: "expected a number (this array holds numbers), got \(typeName(element))",
                                         path: elementPath)
                }
                visit(MetricFields(value: try number(element, path: elementPath)))
            } else {
                guard element.pointee.type == JSON_OBJECT else {
                    let what = bare ? "a metric object (this array holds metric objects)" : "a metric object"
                    throw JSONCodecError(message: "expected \(what), got \(typeName(element))", path: elementPath)
                }
                visit(try metric(element, path: elementPath))
            }
        }
    }

    private static func metric(_ object: UnsafeMutablePointer<json_t>, path: String) throws(JSONCodecError) -> MetricFields {
        var fields = MetricFields()
        var iterator = json_object_iter(object)
        while let current = iterator {
            let keyPointer = json_object_iter_key(current)!
            let value = json_object_iter_value(current)!
            iterator = json_object_iter_next(object, current)
            switch (keyPointer[0], strcmp(keyPointer, "time"), strcmp(keyPointer, "name"), strcmp(keyPointer, "value")) {
            case (_, _, _, _) where value.pointee.type == JSON_NULL && isField(keyPointer):
                // null means the field's default, as in proto3 JSON (an unknown field is
                // an error even when null: it falls to the default case).
                continue
            case (_, 0, _, _):
                guard value.pointee.type == JSON_STRING else {
                    throw JSONCodecError(message: "expected an RFC 3339 time string, got \(typeName(value))", path: path + ".time")
                }
                let text = UnsafeRawBufferPointer(start: json_string_value(value), count: json_string_length(value))
                switch RFC3339.check(text) {
                case .success(let time):
                    fields.time = time
                case .failure(.malformed(let why)):
                    throw JSONCodecError(message: "invalid time \"\(escaped(shown(text)))\": \(why) (RFC 3339, like 2020-05-22T14:13:11Z or 2020-05-22T19:43:11.5+05:30)",
                                         path: path + ".time")
                case .failure(.outOfRange(let before)):
                    let bound = before ? "before 0001-01-01T00:00:00Z" : "after 9999-12-31T23:59:59.999999999Z"
                    throw JSONCodecError(message: "timestamp out of range: \"\(escaped(shown(text)))\" is \(bound)", path: path + ".time")
                }
            case (_, _, 0, _):
                guard value.pointee.type == JSON_STRING else {
                    throw JSONCodecError(message: "expected a string, got \(typeName(value))", path: path + ".name")
                }
                fields.name = UnsafeRawBufferPointer(start: json_string_value(value), count: json_string_length(value))
            case (_, _, _, 0):
                fields.value = try number(value, path: path + ".value")
            default:
                let key = shown(keyPointer)
                throw JSONCodecError(message: "unknown field \"\(escaped(key))\" (a Metric has time, name and value)", path: path + "." + key)
            }
        }
        return fields
    }

    /// A JSON number, or a string: "NaN", "Infinity", "-Infinity", or a number in
    /// JSON's own syntax ("1.5", "-2e3"), as proto3 JSON allows for doubles.
    static func number(_ value: UnsafeMutablePointer<json_t>, path: String) throws(JSONCodecError) -> Double {
        switch value.pointee.type {
        case JSON_REAL, JSON_INTEGER:
            return json_number_value(value)
        case JSON_STRING:
            // By length: with JSON_ALLOW_NUL, "1\u00002" must not read as "1".
            let text = String(decoding: UnsafeRawBufferPointer(start: json_string_value(value), count: json_string_length(value)),
                              as: UTF8.self)
            switch text {
            case "NaN": return .nan
            case "Infinity": return .infinity
            case "-Infinity": return -.infinity
            default:
                guard isJSONNumber(text), let parsed = Double(text) else {
                    throw JSONCodecError(message: "invalid number string \"\(escaped(shown(text)))\": expected a number, \"NaN\", \"Infinity\" or \"-Infinity\"",
                                         path: path)
                }
                guard parsed.isFinite else {
                    throw JSONCodecError(message: "number \"\(escaped(shown(text)))\" is out of range for a double", path: path)
                }
                return parsed
            }
        default:
            throw JSONCodecError(message: "expected a number or one of \"NaN\", \"Infinity\", \"-Infinity\", got \(typeName(value))",
                                 path: path)
        }
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    static func isJSONNumber(_ text: String) -> Bool {
        var bytes = Array(text.utf8)[...]
        if bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
        func digits() -> Int {
            let count = bytes.prefix { $0 >= 0x30 && $0 <= 0x39 }.count
            bytes = bytes.dropFirst(count)
            return count
        }
        let leading = bytes.first
        let integerDigits = digits()
        guard integerDigits > 0, !(leading == UInt8(ascii: "0") && integerDigits > 1) else { return false }
        if bytes.first == UInt8(ascii: ".") {
            bytes = bytes.dropFirst()
            guard digits() > 0 else { return false }
        }
        if bytes.first == UInt8(ascii: "e") || bytes.first == UInt8(ascii: "E") {
            bytes = bytes.dropFirst()
            if bytes.first == UInt8(ascii: "+") || bytes.first == UInt8(ascii: "-") { bytes = bytes.dropFirst() }
            guard digits() > 0 else { return false }
        }
        return bytes.isEmpty
    }

    /// "time", "name" or "value".
    private static func isField(_ key: UnsafePointer<CChar>) -> Bool {
        strcmp(key, "time") == 0 || strcmp(key, "name") == 0 || strcmp(key, "value") == 0
    }

    /// Text from the body for an error message: at most 64 bytes (cut at a character
    /// boundary, then "…"), so a huge key or string does not make a huge error.
    static func shown(_ bytes: UnsafeRawBufferPointer) -> String {
        let limit = 64
        guard bytes.count > limit else { return String(decoding: bytes, as: UTF8.self) }
        var end = limit
        while end > 0 && bytes[end] & 0xC0 == 0x80 { end -= 1 }
        return String(decoding: bytes[..<end], as: UTF8.self) + "…"
    }

    static func shown(_ key: UnsafePointer<CChar>) -> String {
        shown(UnsafeRawBufferPointer(start: key, count: strlen(key)))
    }

    static func shown(_ text: String) -> String {
        var text = text
        return text.withUTF8 { shown(UnsafeRawBufferPointer($0)) }
    }

    /// Quotes, backslashes and control characters escaped as JSON escapes them, for
    /// quoting body text inside a message.
    static func escaped(_ text: String) -> String {
        guard text.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) else { return text }
        var bytes: [UInt8] = []
        appendString(text, to: &bytes)
        return String(decoding: bytes.dropFirst().dropLast(), as: UTF8.self)
    }

    static func typeName(_ value: UnsafeMutablePointer<json_t>) -> String {
        switch value.pointee.type {
        case JSON_OBJECT: return "an object"
        case JSON_ARRAY: return "an array"
        case JSON_STRING: return "a string"
        case JSON_INTEGER, JSON_REAL: return "a number"
        case JSON_TRUE, JSON_FALSE: return "a boolean"
        default: return "null"
        }
    }

    // MARK: Encoding helpers

    /// A JSON string literal: quotes, backslash and control characters escaped, the
    /// rest kept as UTF-8.
    static func appendString(_ text: String, to output: inout [UInt8]) {
        output.append(UInt8(ascii: "\""))
        let hex = Array("0123456789abcdef".utf8)
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): output.append(contentsOf: [0x5C, 0x22])
            case UInt8(ascii: "\\"): output.append(contentsOf: [0x5C, 0x5C])
            case 0x0A: output.append(contentsOf: [0x5C, UInt8(ascii: "n")])
            case 0x0D: output.append(contentsOf: [0x5C, UInt8(ascii: "r")])
            case 0x09: output.append(contentsOf: [0x5C, UInt8(ascii: "t")])
            case 0x08: output.append(contentsOf: [0x5C, UInt8(ascii: "b")])
            case 0x0C: output.append(contentsOf: [0x5C, UInt8(ascii: "f")])
            case 0..<0x20:
                output.append(contentsOf: Array("\\u00".utf8))
                output.append(hex[Int(byte >> 4)])
                output.append(hex[Int(byte & 0xF)])
            default: output.append(byte)
            }
        }
        output.append(UInt8(ascii: "\""))
    }

    /// The shortest text that reads back as the same double (Swift's description),
    /// with NaN and the infinities as proto3 JSON's strings.
    static func appendDouble(_ value: Double, to output: inout [UInt8]) {
        if value.isNaN {
            output.append(contentsOf: "\"NaN\"".utf8)
        } else if value.isInfinite {
            output.append(contentsOf: (value < 0 ? "\"-Infinity\"" : "\"Infinity\"").utf8)
        } else {
            output.append(contentsOf: value.description.utf8)
        }
    }
}
