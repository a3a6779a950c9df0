import CMicroHTTPD
import OutliersJSON
import OutliersProto

/// /detect's query parameters: the request's options, as grpc-gateway maps query
/// parameters onto the fields of the request message (`options.method=MAD`, by proto
/// or JSON name), with short forms (`method=mad`, `threshold=3`, `group_by_name=true`,
/// `details`). They replace the body's options field by field, for every body shape.
/// An unknown parameter or a bad value is refused, naming it: a misspelt option that
/// was silently ignored would answer with another rule than the one asked for.
enum DetectQuery {
    /// Why a query was refused.
    struct Refusal: Error, Equatable {
        var message: String
    }

    enum Field { case method, threshold, groupByName, details }

    static let fields: [String: Field] = {
        var names: [String: Field] = [:]
        for (name, field) in [("method", Field.method), ("threshold", .threshold), ("group_by_name", .groupByName),
                              ("groupByName", .groupByName), ("details", .details)] {
            names[name] = field
            names["options." + name] = field
        }
        return names
    }()

    static let accepted = "method, threshold, group_by_name and details (each also as options.NAME)"

    /// The overrides the parameters give; `value` is nil for a parameter without `=`
    /// (`?details`), which sets a boolean to true.
    static func overrides(_ parameters: [(name: String, value: String?)]) -> Result<DetectOptionsOverrides, Refusal> {
        var overrides = DetectOptionsOverrides()
        var given: [Field: String] = [:]
        for (name, value) in parameters {
            // `?&&method=mad`: an empty piece between ampersands is nothing, as Go's
            // url.ParseQuery (and so grpc-gateway) reads it.
            if name.isEmpty && value == nil { continue }
            guard let field = fields[name] else {
                return .failure(Refusal(message: "unknown query parameter \"\(shown(name))\": /detect takes \(accepted)"))
            }
            if let earlier = given[field] {
                let how = earlier == name ? "twice" : "twice, as \(earlier) and as \(name)"
                return .failure(Refusal(message: "query parameter \(name) is given \(how)"))
            }
            given[field] = name
            func bad(_ what: String) -> Result<DetectOptionsOverrides, Refusal> {
                .failure(Refusal(message: "query parameter \(name)=\(shown(value ?? "")): \(what)"))
            }
            switch field {
            case .method:
                guard let value else { return bad("give a method: \(DetectMethodName.choices)") }
                if let method = DetectMethodName.method(named: value) {
                    overrides.method = method
                } else if let number = Int(value), let method = DetectMethodName.method(number: Double(number)) {
                    overrides.method = method
                } else {
                    return bad("unknown method (\(DetectMethodName.choices))")
                }
            case .threshold:
                guard let value, let threshold = number(value) else { return bad("expected a number") }
                guard threshold.isFinite, threshold >= 0 else {
                    return bad("the threshold must be a finite number >= 0 (0 means the method's default)")
                }
                overrides.threshold = threshold
            case .groupByName, .details:
                guard let flag = value.map(boolean) ?? true else { return bad("expected true or false") }
                if field == .groupByName { overrides.groupByName = flag } else { overrides.details = flag }
            }
        }
        return .success(overrides)
    }

    /// Go's strconv.ParseBool, which grpc-gateway uses.
    static func boolean(_ text: String) -> Bool? {
        switch text {
        case "1", "t", "T", "true", "TRUE", "True": true
        case "0", "f", "F", "false", "FALSE", "False": false
        default: nil
        }
    }

    /// A decimal number in JSON's grammar, or with a leading "+" or a bare fraction
    /// ("+3", ".5", "3."), as Go's ParseFloat reads them; no hex, no "inf".
    static func number(_ text: String) -> Double? {
        var digits = text
        if digits.hasPrefix("+") { digits.removeFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy({ (0x30...0x39).contains($0) || $0 == 0x2E || $0 == 0x2D
                                                         || $0 == 0x2B || $0 == 0x65 || $0 == 0x45 }),
              digits.utf8.contains(where: { (0x30...0x39).contains($0) }) else { return nil }
        return Double(digits)
    }

    /// A parameter as the client gave it, cut to 64 characters for a message.
    static func shown(_ text: String) -> String {
        text.count > 64 ? String(text.prefix(64)) + "…" : text
    }
}

extension Gateway {
    /// The request's query parameters in order (libmicrohttpd has decoded them).
    static func queryParameters(_ connection: OpaquePointer) -> [(name: String, value: String?)] {
        var parameters: [(name: String, value: String?)] = []
        withUnsafeMutablePointer(to: &parameters) { pointer in
            _ = MHD_get_connection_values(connection, MHD_ValueKind.GET_ARGUMENT_KIND, collectParameter, pointer)
        }
        return parameters
    }
}

private func collectParameter(cls: UnsafeMutableRawPointer?, kind: MHD_ValueKind, key: UnsafePointer<CChar>?,
                              value: UnsafePointer<CChar>?) -> MHD_Result {
    guard let cls, let key else { return MHD_Result.YES }
    let parameters = cls.assumingMemoryBound(to: [(name: String, value: String?)].self)
    parameters.pointee.append((String(cString: key), value.map { String(cString: $0) }))
    return MHD_Result.YES
}
