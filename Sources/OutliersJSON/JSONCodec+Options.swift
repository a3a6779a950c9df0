import CJansson
import Glibc
import OutliersProto

/// The request's `options` object (pb.DetectOptions in proto3 JSON) and the answer's
/// detail fields.
extension JSONCodec {
    /// `{"method":"MAD","threshold":3,"groupByName":true,"details":true}`: the method
    /// by name (any case) or number, the threshold as a finite double >= 0 in any form
    /// proto3 JSON takes,
    /// the flags as booleans, each key also in its proto name (`group_by_name`), null
    /// for the default.
    static func detectOptions(_ object: UnsafeMutablePointer<json_t>, path: String) throws(JSONCodecError) -> Pb_DetectOptions {
        var options = Pb_DetectOptions()
        var seen: [String: String] = [:]
        var iterator = json_object_iter(object)
        while let current = iterator {
            let keyPointer = json_object_iter_key(current)!
            let value = json_object_iter_value(current)!
            iterator = json_object_iter_next(object, current)
            let key = String(cString: keyPointer)
            guard let field = Self.optionsFields[key] else {
                let shownKey = shown(keyPointer)
                throw JSONCodecError(message: "unknown field \"\(escaped(shownKey))\" (options have method, threshold, groupByName and details)",
                                     path: path + "." + shownKey)
            }
            if let earlier = seen[field] {
                throw JSONCodecError(message: "given twice, as \"\(earlier)\" and as \"\(key)\"", path: path + "." + key)
            }
            seen[field] = key
            if value.pointee.type == JSON_NULL { continue }
            let fieldPath = path + "." + key
            switch field {
            case "method": options.method = try method(value, path: fieldPath)
            case "threshold":
                // The backend refuses these too; refused here, a query parameter that
                // replaces the field cannot hide a body that breaks the schema.
                let threshold = try number(value, path: fieldPath)
                guard threshold.isFinite, threshold >= 0 else {
                    throw JSONCodecError(message: "\(threshold) is not a finite number >= 0 (0 means the method's default)",
                                         path: fieldPath)
                }
                options.threshold = threshold
            case "groupByName": options.groupByName = try boolean(value, path: fieldPath)
            default: options.details = try boolean(value, path: fieldPath)
            }
        }
        return options
    }

    /// JSON name and proto name to the field.
    private static let optionsFields = [
        "method": "method", "threshold": "threshold", "groupByName": "groupByName",
        "group_by_name": "groupByName", "details": "details",
    ]

    private static func method(_ value: UnsafeMutablePointer<json_t>, path: String) throws(JSONCodecError) -> Pb_DetectOptions.Method {
        switch value.pointee.type {
        case JSON_STRING:
            let text = String(decoding: UnsafeRawBufferPointer(start: json_string_value(value), count: json_string_length(value)),
                              as: UTF8.self)
            guard let method = DetectMethodName.method(named: text) else {
                throw JSONCodecError(message: "unknown method \"\(escaped(shown(text)))\" (\(DetectMethodName.choices))", path: path)
            }
            return method
        case JSON_INTEGER, JSON_REAL:
            let number = json_number_value(value)
            guard let method = DetectMethodName.method(number: number) else {
                throw JSONCodecError(message: "unknown method number \(number) (\(DetectMethodName.choices))", path: path)
            }
            return method
        default:
            throw JSONCodecError(message: "expected a method name (\(DetectMethodName.choices)), got \(typeName(value))", path: path)
        }
    }

    private static func boolean(_ value: UnsafeMutablePointer<json_t>, path: String) throws(JSONCodecError) -> Bool {
        switch value.pointee.type {
        case JSON_TRUE: return true
        case JSON_FALSE: return false
        default: throw JSONCodecError(message: "expected true or false, got \(typeName(value))", path: path)
        }
    }

    // MARK: Encoding the answer

    /// `{"indices":[…]}`, then `"outliers"` and `"series"` when the answer has them
    /// (with options.details). Their entries carry every field, zeros included: an
    /// outlier at index 0 reads better as `"index":0` than as no index, and proto3
    /// JSON readers take both.
    public static func encodeResponse(_ response: Pb_OutliersResponse) -> [UInt8] {
        var output = encodeResponse(indices: response.indices)
        guard !response.outliers.isEmpty || !response.series.isEmpty else { return output }
        output.removeLast()  // the closing brace
        if !response.outliers.isEmpty {
            output.append(contentsOf: #","outliers":["#.utf8)
            for (position, outlier) in response.outliers.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                output.append(contentsOf: #"{"index":"#.utf8)
                output.append(contentsOf: String(outlier.index).utf8)
                output.append(contentsOf: #","name":"#.utf8)
                appendString(outlier.name, to: &output)
                output.append(contentsOf: #","value":"#.utf8)
                appendDouble(outlier.value, to: &output)
                output.append(contentsOf: #","score":"#.utf8)
                appendDouble(outlier.score, to: &output)
                output.append(UInt8(ascii: "}"))
            }
            output.append(UInt8(ascii: "]"))
        }
        if !response.series.isEmpty {
            output.append(contentsOf: #","series":["#.utf8)
            for (position, series) in response.series.enumerated() {
                if position > 0 { output.append(UInt8(ascii: ",")) }
                output.append(contentsOf: #"{"name":"#.utf8)
                appendString(series.name, to: &output)
                output.append(contentsOf: #","count":"#.utf8)
                output.append(contentsOf: String(series.count).utf8)
                for (key, value) in [("center", series.center), ("spread", series.spread),
                                     ("lower", series.lower), ("upper", series.upper)] {
                    output.append(contentsOf: ",\"\(key)\":".utf8)
                    appendDouble(value, to: &output)
                }
                output.append(UInt8(ascii: "}"))
            }
            output.append(UInt8(ascii: "]"))
        }
        output.append(UInt8(ascii: "}"))
        return output
    }
}

/// The methods' names, as requests give them: the enum's names in any case
/// (`MAD`, `mad`), or its numbers.
public enum DetectMethodName {
    public static let choices = "ZSCORE, MAD or IQR"

    public static func method(named text: String) -> Pb_DetectOptions.Method? {
        switch text.uppercased() {
        case "ZSCORE": .zscore
        case "MAD": .mad
        case "IQR": .iqr
        default: nil
        }
    }

    public static func method(number: Double) -> Pb_DetectOptions.Method? {
        switch number {
        case 0: .zscore
        case 1: .mad
        case 2: .iqr
        default: nil
        }
    }
}
