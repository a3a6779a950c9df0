import Foundation

/// grpc-gateway's rules for which HTTP request headers become gRPC metadata, and how
/// the backend's metadata comes back as HTTP headers (runtime.DefaultHeaderMatcher,
/// AnnotateContext and ForwardResponseMessage of grpc-gateway v1.6.4):
///
/// - `Authorization` → `authorization`;
/// - `Grpc-Metadata-<Key>` → `<key>`;
/// - the permanent HTTP request headers (`Accept`, `User-Agent`, `Origin`, …) →
///   `grpcgateway-<key>`;
/// - `X-Forwarded-For` with the client's address appended (or just the address), and
///   `X-Forwarded-Host` (or else `Host`);
/// - every other header stays at the gateway.
///
/// Back: response headers → `Grpc-Metadata-<key>`, trailers → `Grpc-Trailer-<key>`.
enum MetadataMapping {
    /// A header that cannot become metadata: named in the 400 the client gets.
    struct Refusal: Error, Equatable {
        let header: String
        let reason: String
        var message: String { "header \(header): \(reason)" }
    }

    static let metadataHeaderPrefix = "grpc-metadata-"
    static let gatewayMetadataPrefix = "grpcgateway-"
    static let trailerHeaderPrefix = "Grpc-Trailer-"
    static let responseMetadataPrefix = "Grpc-Metadata-"

    /// grpc-gateway's isPermanentHTTPHeader, lower case, Authorization aside (it goes
    /// as `authorization` itself: a credential is not copied under a second name).
    static let permanentHeaders: Set<String> = [
        "accept", "accept-charset", "accept-language", "accept-ranges", "cache-control", "content-type",
        "cookie", "date", "expect", "from", "host", "if-match", "if-modified-since", "if-none-match",
        "if-schedule-tag-match", "if-unmodified-since", "max-forwards", "origin", "pragma", "referer",
        "user-agent", "via", "warning",
    ]

    /// Keys the transport itself sets, or gRPC reserves: a client cannot set them.
    static let reservedKeys: Set<String> = ["content-type", "te", "user-agent", "host", "connection", "x-request-id"]

    /// Whether a header of this name (any case) plays any part here: the head's walk
    /// keeps only these.
    static func isRelevant(_ lowercasedName: String) -> Bool {
        lowercasedName == "authorization" || lowercasedName == "x-forwarded-for" || lowercasedName == "x-forwarded-host"
            || lowercasedName.hasPrefix(metadataHeaderPrefix) || permanentHeaders.contains(lowercasedName)
    }

    /// The metadata the backend gets for request headers `headers` (names in lower
    /// case, in the order they came), from a client at `clientAddress`.
    static func requestMetadata(_ headers: [(name: String, value: String)],
                                clientAddress: String?) -> Result<[(name: String, value: String)], Refusal> {
        var metadata: [(name: String, value: String)] = []
        var forwardedFor: [String] = []
        var forwardedHost: String?
        var host: String?
        for (name, value) in headers {
            let key: String
            if name == "authorization" {
                key = "authorization"
            } else if name == "x-forwarded-for" {
                forwardedFor.append(value)
                continue
            } else if name == "x-forwarded-host" {
                forwardedHost = forwardedHost ?? value
                continue
            } else if name.hasPrefix(metadataHeaderPrefix) {
                key = String(name.dropFirst(metadataHeaderPrefix.count))
                if let reason = refusal(ofKey: key) { return .failure(Refusal(header: displayName(name), reason: reason)) }
            } else if permanentHeaders.contains(name) {
                if name == "host" { host = value }
                key = gatewayMetadataPrefix + name
            } else {
                continue
            }
            if let reason = refusal(ofValue: value, key: key) {
                return .failure(Refusal(header: displayName(name), reason: reason))
            }
            metadata.append((key, value))
        }
        let forwarded = forwardedFor.joined(separator: ", ")
        if let reason = refusal(ofValue: forwarded, key: "x-forwarded-for") {
            return .failure(Refusal(header: "X-Forwarded-For", reason: reason))
        }
        if let clientAddress {
            metadata.append(("x-forwarded-for", forwarded.isEmpty ? clientAddress : "\(forwarded), \(clientAddress)"))
        } else if !forwarded.isEmpty {
            metadata.append(("x-forwarded-for", forwarded))
        }
        if let forwardedHost {
            if let reason = refusal(ofValue: forwardedHost, key: "x-forwarded-host") {
                return .failure(Refusal(header: "X-Forwarded-Host", reason: reason))
            }
            metadata.append(("x-forwarded-host", forwardedHost))
        } else if let host {
            metadata.append(("x-forwarded-host", host))
        }
        return .success(metadata)
    }

    /// Why `key` (from `Grpc-Metadata-<key>`) cannot be a metadata key, or nil.
    static func refusal(ofKey key: String) -> String? {
        if key.isEmpty { return "no metadata key after Grpc-Metadata-" }
        // gRPC's key grammar (HTTP/2 protocol spec): 0-9 a-z _ - . (names are lower case by now).
        if !key.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x7A).contains($0) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2E }) {
            return "\"\(key)\" is not a gRPC metadata key (0-9, a-z, _, - and . only)"
        }
        if key.hasPrefix("grpc-") { return "keys starting with grpc- are reserved by gRPC" }
        if reservedKeys.contains(key) { return "\(key) is set by the gateway, not the client" }
        return nil
    }

    /// Why `value` cannot be the value of `key`, or nil: printable ASCII for a text
    /// key, base64 for a binary (`-bin`) one, which travels as the client sent it.
    static func refusal(ofValue value: String, key: String) -> String? {
        if key.hasSuffix("-bin") {
            return isBase64(value) ? nil : "the value of a -bin key must be base64"
        }
        if !value.utf8.allSatisfy({ (0x20...0x7E).contains($0) }) {
            return "the value is not valid gRPC metadata (printable ASCII only; send bytes base64 in a -bin key)"
        }
        return nil
    }

    /// Standard or URL-safe base64, padded or not (gRPC's receivers accept both paddings).
    static func isBase64(_ value: String) -> Bool {
        var body = Array(value.utf8)
        while body.last == UInt8(ascii: "=") { body.removeLast() }
        guard value.utf8.count - body.count <= 2, body.count % 4 != 1 else { return false }
        if value.utf8.count != body.count, value.utf8.count % 4 != 0 { return false }
        return body.allSatisfy { byte in
            (0x41...0x5A).contains(byte) || (0x61...0x7A).contains(byte) || (0x30...0x39).contains(byte)
                || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "/") || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_")
        }
    }

    /// The backend's response metadata as HTTP response headers. A value that an HTTP
    /// header cannot carry (a control byte) is left out rather than sent broken.
    static func responseHeaders(headers: [(name: String, value: String)],
                                trailers: [(name: String, value: String)]) -> [(String, String)] {
        func carried(_ field: (name: String, value: String)) -> Bool {
            !field.name.isEmpty && field.value.utf8.allSatisfy { $0 == 0x09 || (0x20...0x7E).contains($0) }
        }
        return headers.filter(carried).map { (responseMetadataPrefix + $0.name, $0.value) }
            + trailers.filter(carried).map { (trailerHeaderPrefix + $0.name, $0.value) }
    }

    /// `grpc-metadata-foo-bin` → `Grpc-Metadata-Foo-Bin`, as error messages name headers.
    static func displayName(_ lowercasedName: String) -> String {
        lowercasedName.split(separator: "-", omittingEmptySubsequences: false)
            .map { $0.prefix(1).uppercased() + $0.dropFirst() }.joined(separator: "-")
    }
}
