import Foundation
import Logging

/// `--log-format json`: one JSON object per line on standard error, for log
/// collectors: `time` (RFC 3339, UTC, milliseconds), `level`, `logger` (the label),
/// `message`, then each metadata field as a key of its own, numbers (metadata given as
/// integers or doubles) as JSON numbers.
struct JSONLogHandler: LogHandler {
    let label: String
    var logLevel: Logger.Level = .info
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?

    /// One lock for every handler: lines from different threads never interleave.
    private static let output = NSLock()

    init(label: String) {
        self.label = label
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(level: Logger.Level, message: Logger.Message, metadata given: Logger.Metadata?, source: String,
             file: String, function: String, line number: UInt) {
        var fields = metadata
        if let provided = metadataProvider?.get() { fields.merge(provided) { _, new in new } }
        if let given { fields.merge(given) { _, new in new } }
        var line = "{\"time\":\"\(Self.timestamp())\",\"level\":\"\(level)\",\"logger\":\(Self.quoted(label)),\"message\":\(Self.quoted(message.description))"
        for key in fields.keys.sorted() where !["time", "level", "logger", "message"].contains(key) {
            line += ",\(Self.quoted(key)):\(Self.json(fields[key]!))"
        }
        line += "}\n"
        Self.output.lock()
        FileHandle.standardError.write(Data(line.utf8))
        Self.output.unlock()
    }

    static func json(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text): return quoted(text)
        case .stringConvertible(let convertible):
            if let number = convertible as? any BinaryInteger { return "\(number)" }
            if let number = convertible as? Double, number.isFinite { return "\(number)" }
            return quoted(convertible.description)
        case .array(let values): return "[" + values.map(json).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            return "{" + dictionary.keys.sorted().map { "\(quoted($0)):\(json(dictionary[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func timestamp() -> String {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        var parts = tm()
        var seconds = time.tv_sec
        gmtime_r(&seconds, &parts)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", parts.tm_year + 1900, parts.tm_mon + 1, parts.tm_mday,
                      parts.tm_hour, parts.tm_min, parts.tm_sec, Int(time.tv_nsec / 1_000_000))
    }
}
