import CMicroHTTPD
import Foundation

/// What the request head says about the body: its format, the answer's format, and
/// whether its length can be trusted.
extension Gateway {
    /// How a body of `contentType` is read: absent is JSON; present but without a
    /// media type (empty, `;;;`) names nothing the gateway reads.
    static func bodyFormat(contentType: String?) -> BodyFormat? {
        guard let contentType else { return .json }
        let mediaType = contentType.split(separator: ";", omittingEmptySubsequences: false).first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch mediaType {
        // curl -d sends application/x-www-form-urlencoded; the body is JSON all the same.
        case "application/json", "application/x-www-form-urlencoded", "text/json": return .json
        case "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf": return .protobuf
        default: return nil
        }
    }

    /// A request head whose body length is ambiguous (RFC 9112 §6.3, §6.1, §5.1): different
    /// Content-Length values, Content-Length with Transfer-Encoding, a Transfer-Encoding
    /// that does not end in chunked, or whitespace
    /// between a field name and its colon (libmicrohttpd keeps `Content-Length ` as a
    /// name of its own, and the body would be read as the next request).
    static func framingError(_ connection: OpaquePointer) -> String? {
        var inspection = HeaderInspection()
        withUnsafeMutablePointer(to: &inspection) { pointer in
            _ = MHD_get_connection_values(connection, MHD_ValueKind.HEADER_KIND, inspectHeader, pointer)
        }
        if let name = inspection.nameWithWhitespace {
            return "header field name \"\(name)\" has whitespace before its colon"
        }
        if Set(inspection.contentLengths).count > 1 {
            return "conflicting Content-Length headers: \(inspection.contentLengths.joined(separator: ", "))"
        }
        if !inspection.contentLengths.isEmpty && !inspection.transferEncodings.isEmpty {
            return "both Content-Length and Transfer-Encoding are given"
        }
        // §6.1: a body whose last coding is not chunked has no length the server can find.
        let codings = inspection.transferEncodings.joined(separator: ",").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let last = codings.last, last != "chunked" {
            return "Transfer-Encoding \"\(inspection.transferEncodings.joined(separator: ", "))\" does not end in chunked"
        }
        return nil
    }

    static func acceptsProtobuf(_ accept: String?) -> Bool {
        guard let accept else { return false }
        return accept.split(separator: ",").contains { part in
            let mediaType = part.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            return mediaType == "application/x-protobuf" || mediaType == "application/protobuf"
        }
    }

}

/// What `framingError` gathers from the request head.
struct HeaderInspection {
    var contentLengths: [String] = []
    var transferEncodings: [String] = []
    var nameWithWhitespace: String?
}

private func inspectHeader(cls: UnsafeMutableRawPointer?, kind: MHD_ValueKind, key: UnsafePointer<CChar>?,
                           value: UnsafePointer<CChar>?) -> MHD_Result {
    guard let cls, let key else { return MHD_Result.YES }
    let inspection = cls.assumingMemoryBound(to: HeaderInspection.self)
    if strcasecmp(key, "Content-Length") == 0 {
        inspection.pointee.contentLengths.append(value.map { String(cString: $0) } ?? "")
    } else if strcasecmp(key, "Transfer-Encoding") == 0 {
        inspection.pointee.transferEncodings.append(value.map { String(cString: $0) } ?? "")
    } else if strchr(key, 0x20) != nil || strchr(key, 0x09) != nil {
        inspection.pointee.nameWithWhitespace = String(cString: key)
    }
    return MHD_Result.YES
}
