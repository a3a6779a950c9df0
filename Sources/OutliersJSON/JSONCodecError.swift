import CJansson

/// A body that is not the JSON we take: what, and where.
public struct JSONCodecError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    /// The JSON path of a wrong value, `metrics[3].time`; nil for syntax errors.
    public var path: String?
    /// Where jansson stopped, for syntax errors (1-based line and column, byte position).
    public var line: Int?
    public var column: Int?
    public var position: Int?

    /// The body is fine as far as it was read, but its protobuf message would be
    /// larger than the limit the conversion was given (the gateway answers 413).
    public var isMessageTooLarge = false

    public init(message: String, path: String? = nil, line: Int? = nil, column: Int? = nil, position: Int? = nil) {
        self.message = message
        self.path = path
        self.line = line
        self.column = column
        self.position = position
    }

    static func messageTooLarge(limit: Int) -> JSONCodecError {
        var error = JSONCodecError(message: "the request's protobuf message would be larger than \(limit) bytes")
        error.isMessageTooLarge = true
        return error
    }

    /// A NUL byte at `offset`, told as jansson tells its errors: 1-based line, column
    /// in characters and byte position, each counting the offending byte.
    static func nulByte(in body: UnsafeRawBufferPointer, at offset: Int) -> JSONCodecError {
        var line = 1
        var lineStart = 0
        for index in 0..<offset where body[index] == 0x0A {
            line += 1
            lineStart = index + 1
        }
        var column = 1
        for index in lineStart..<offset where body[index] & 0xC0 != 0x80 { column += 1 }
        return JSONCodecError(message: "NUL byte (0x00) is not allowed in JSON text", line: line, column: column, position: offset + 1)
    }

    init(syntax error: json_error_t) {
        var copy = error
        let text = withUnsafeBytes(of: &copy.text) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        self.init(message: text, line: Int(error.line), column: Int(error.column), position: Int(error.position))
    }

    public var description: String {
        if let path { return "\(path): \(message)" }
        if let line, let column { return "invalid JSON at line \(line), column \(column): \(message)" }
        return message
    }
}
