/// Which browser origins may call the gateway (`--cors-origin`), and the headers that
/// tell a browser so (the Fetch standard's CORS protocol). Off unless configured: a
/// gateway without origins sends no CORS headers and answers OPTIONS 405, as before.
public struct CORSPolicy: Sendable, Equatable {
    /// Exact origins (`https://app.example`, `http://localhost:3000`), or `*` for any.
    public let origins: [String]

    /// How long a browser may cache a preflight's answer, in seconds.
    static let maxAgeSeconds = 600

    /// Request headers a browser may send beyond the CORS-safelisted ones: what the
    /// gateway reads or forwards. `Grpc-Metadata-*` is matched by prefix.
    static let allowedRequestHeaders: Set<String> = [
        "content-type", "authorization", "accept", "grpc-timeout", "x-request-id", "content-encoding",
    ]

    public init(origins: [String]) {
        self.origins = origins
    }

    /// `--cors-origin`'s value: origins separated by commas, spaces around them ignored.
    public static func origins(fromList list: String) -> [String] {
        list.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingASCIISpaces() }
    }

    /// Why `origin` cannot be a `--cors-origin` entry, or nil: `*`, or a scheme, host
    /// and optional port, as browsers send Origin (no path, no trailing slash).
    public static func problem(with origin: String) -> String? {
        if origin == "*" { return nil }
        guard let schemeEnd = origin.range(of: "://") else { return "\"\(origin)\" is not an origin (scheme://host[:port])" }
        let scheme = origin[..<schemeEnd.lowerBound]
        let authority = origin[schemeEnd.upperBound...]
        guard !scheme.isEmpty, scheme.allSatisfy({ $0.isLetter || $0.isNumber || "+-.".contains($0) }) else {
            return "\"\(origin)\" has no valid scheme"
        }
        guard !authority.isEmpty, !authority.contains("/"), !authority.contains("?"), !authority.contains("#"),
              authority.utf8.allSatisfy({ (0x21...0x7E).contains($0) }) else {
            return "\"\(origin)\" is not an origin: scheme://host[:port], without a path"
        }
        return nil
    }

    /// The value of Access-Control-Allow-Origin for a request from `origin`, or nil
    /// when that origin is not allowed (or the request has none).
    func allowOrigin(for origin: String?) -> String? {
        guard let origin else { return nil }
        if origins.contains("*") { return "*" }
        // Origins compare as the browser serializes them: scheme and host in lower case.
        return origins.contains { $0.lowercased() == origin.lowercased() } ? origin : nil
    }

    /// The requested headers (Access-Control-Request-Headers) the gateway accepts, as
    /// the browser spelled them; the others are left out, and the browser refuses the
    /// request naming them.
    static func allowedHeaders(requested: String?) -> [String] {
        guard let requested else { return [] }
        return requested.split(separator: ",").map { $0.trimmingASCIISpaces() }.filter { name in
            let lower = name.lowercased()
            return allowedRequestHeaders.contains(lower) || lower.hasPrefix(MetadataMapping.metadataHeaderPrefix)
        }
    }

    /// Access-Control-Expose-Headers for a response with `headers`: X-Request-Id and
    /// the metadata headers it carries (a browser script sees no other header).
    static func exposedHeaders(_ headers: [(String, String)]) -> String {
        var names = ["X-Request-Id"]
        for (name, _) in headers where name.hasPrefix(MetadataMapping.responseMetadataPrefix)
            || name.hasPrefix(MetadataMapping.trailerHeaderPrefix) {
            if !names.contains(name) { names.append(name) }
        }
        return names.joined(separator: ", ")
    }
}

extension Substring {
    func trimmingASCIISpaces() -> String {
        var slice = self[...]
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return String(slice)
    }
}
