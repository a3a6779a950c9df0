import CMicroHTTPD
import Foundation

/// What the request head says about the body: its format, the answer's format, and
/// whether its length can be trusted.
extension Gateway {
    /// How a body of `contentType` is read: absent is JSON; present but without a
    /// media type (empty, `;;;`) names nothing the gateway reads.
    static func bodyFormat(contentType: String?) -> BodyFormat? {
        guard let contentType else { return .json }
        switch mediaType(contentType[...]) {
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
    static func framingError(_ inspection: HeaderInspection) -> String? {
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
            .map { trimmedLowercase($0) }
        if let last = codings.last, last != "chunked" {
            return "Transfer-Encoding \"\(inspection.transferEncodings.joined(separator: ", "))\" does not end in chunked"
        }
        return nil
    }

    /// One walk over the request head: what framing and metadata need of it.
    static func inspectHead(_ connection: OpaquePointer) -> HeaderInspection {
        var inspection = HeaderInspection()
        withUnsafeMutablePointer(to: &inspection) { pointer in
            _ = MHD_get_connection_values(connection, MHD_ValueKind.HEADER_KIND, inspectHeader, pointer)
        }
        return inspection
    }

    static func acceptsProtobuf(_ accept: String?) -> Bool {
        guard let accept else { return false }
        return accept.split(separator: ",").contains { part in
            let type = mediaType(part)
            return type == "application/x-protobuf" || type == "application/protobuf"
        }
    }

    /// The media type of a Content-Type or of one Accept element: the part before any
    /// `;`, without the optional whitespace (SP, HTAB: RFC 9110 §5.6.3) around it, in
    /// lower case. By hand rather than with Foundation's trimming, which showed in
    /// the gateway's profile at a percent of every request.
    static func mediaType(_ value: Substring) -> String {
        let utf8 = value.utf8
        let end = utf8.firstIndex(of: UInt8(ascii: ";")) ?? utf8.endIndex
        return trimmedLowercase(utf8[utf8.startIndex..<end])
    }

    /// A header element without the optional whitespace around it, ASCII letters in
    /// lower case (the tokens compared against are ASCII).
    static func trimmedLowercase(_ value: Substring) -> String {
        trimmedLowercase(value.utf8)
    }

    private static func trimmedLowercase(_ utf8: Substring.UTF8View) -> String {
        var bytes = utf8.drop { $0 == 0x20 || $0 == 0x09 }
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes = bytes.dropLast() }
        return String(decoding: bytes.map { (0x41...0x5A).contains($0) ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

}

/// What `framingError` and the metadata mapping need of the request head.
struct HeaderInspection {
    var contentLengths: [String] = []
    var transferEncodings: [String] = []
    var nameWithWhitespace: String?
    /// The headers `MetadataMapping` reads, names in lower case, in order.
    var metadataHeaders: [(name: String, value: String)] = []
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
    } else {
        let name = Gateway.trimmedLowercase(String(cString: key)[...])
        if MetadataMapping.isRelevant(name) {
            inspection.pointee.metadataHeaders.append((name, value.map { String(cString: $0) } ?? ""))
        }
    }
    return MHD_Result.YES
}
