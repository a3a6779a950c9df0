import ZlibCompression

/// HTTP compression: request bodies in gzip or deflate decompressed as they stream in
/// (the body limit applying to the decompressed size), and answers in gzip for clients
/// that accept it.
extension Gateway {
    /// Answers smaller than this go as they are: gzip's 18-byte frame would outweigh
    /// what it saves (nginx's gzip_min_length is 20; Envoy's compressor 30; a typical
    /// detect answer is 15-40 bytes).
    static let compressionThreshold = 1024

    /// The coding of a request body's Content-Encoding: nil for none (absent, empty or
    /// identity), or why it is refused (415 naming it).
    struct UnsupportedContentEncoding: Error, Equatable {
        let reason: String
    }

    static func requestCoding(contentEncoding: String?) -> Result<ZlibCoding?, UnsupportedContentEncoding> {
        guard let contentEncoding else { return .success(nil) }
        let codings = contentEncoding.split(separator: ",").map { trimmedLowercase($0) }.filter { $0 != "identity" && !$0.isEmpty }
        guard let only = codings.first else { return .success(nil) }
        guard codings.count == 1 else {
            return .failure(UnsupportedContentEncoding(reason:
                "Content-Encoding \"\(contentEncoding)\" applies more than one coding; send one of gzip or deflate"))
        }
        guard let coding = ZlibCoding(name: only) else {
            return .failure(UnsupportedContentEncoding(reason:
                "unsupported Content-Encoding \"\(contentEncoding)\": send gzip, deflate or identity"))
        }
        return .success(coding)
    }

    /// Whether an Accept-Encoding header takes gzip: `gzip` or `*` with a q-value
    /// other than 0 (RFC 9110 §12.5.3), unless gzip itself is given q=0.
    static func acceptsGzip(_ acceptEncoding: String?) -> Bool {
        guard let acceptEncoding else { return false }
        var gzip: Bool?
        var star: Bool?
        for element in acceptEncoding.split(separator: ",") {
            let parts = element.split(separator: ";")
            guard let first = parts.first else { continue }
            let name = trimmedLowercase(first)
            var accepted = true
            for parameter in parts.dropFirst() {
                let pair = parameter.split(separator: "=", maxSplits: 1)
                if pair.count == 2, trimmedLowercase(pair[0]) == "q", let q = Double(trimmedLowercase(pair[1])) {
                    accepted = q > 0
                }
            }
            if name == "gzip" || name == "x-gzip" { gzip = accepted } else if name == "*" { star = accepted }
        }
        return gzip ?? star ?? false
    }

    /// `response` gzipped when the request accepts gzip and it is worth it.
    func compressedIfAccepted(_ response: HTTPResponse, for state: RequestState) -> HTTPResponse {
        guard state.acceptsGzip, response.body.count >= Self.compressionThreshold else { return response }
        var compressed = response
        compressed.body = Zlib.compress(response.body, as: .gzip)
        compressed.headers.append(("Content-Encoding", "gzip"))
        return compressed
    }

    /// A chunk of a compressed body, decompressed onto the body; a failure becomes the answer.
    func receiveCompressed(_ state: RequestState, _ chunk: UnsafeRawBufferPointer, _ inflater: Inflater) {
        do {
            try inflater.append(chunk, to: &state.body)
        } catch .tooLarge(let limit) {
            state.bodyTooLarge = true
            state.body = []
            state.response = errorResponse(.resourceExhausted,
                "request body decompresses to more than \(limit) bytes (the limit applies to the decompressed body)", httpStatus: 413)
            // The rest is read and dropped, not decompressed.
            state.closeAfterResponse = true
        } catch {
            state.body = []
            state.response = errorResponse(.invalidArgument, "request body \(error)")
        }
    }

    /// The compressed body is in: it must have ended with its stream.
    func finishCompressed(_ state: RequestState, _ inflater: Inflater) {
        do {
            try inflater.finish()
        } catch {
            state.body = []
            state.response = errorResponse(.invalidArgument, "request body \(error)")
        }
    }
}
