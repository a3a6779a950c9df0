import H2GRPC

/// `authorization: Bearer <token>` required on the calls of some services (the
/// bundled backend's pb.Outliers); health and reflection stay open, as probes and
/// grpcurl expect. Missing or wrong → UNAUTHENTICATED; the token is never logged
/// nor put in a message.
public struct BearerTokenAuth: Sendable {
    /// `Bearer <token>` as bytes, compared in constant time.
    private let token: [UInt8]

    /// nil when `token` is not one a header can carry: empty, or other than
    /// printable ASCII without spaces (RFC 6750's b64token and more).
    public init?(token: String) {
        let bytes = Array(token.utf8)
        guard !bytes.isEmpty, bytes.allSatisfy({ (0x21...0x7E).contains($0) }) else { return nil }
        self.token = bytes
    }

    /// Why a call with this metadata is refused, or nil when it carries the token.
    public func refusal(_ metadata: [(name: String, value: String)]) -> RPCError? {
        let values = metadata.filter { $0.name == "authorization" }
        guard let value = values.first?.value else {
            return RPCError(code: .unauthenticated, message: "missing authorization metadata: send \"authorization: Bearer <token>\"")
        }
        guard values.count == 1 else {
            return RPCError(code: .unauthenticated, message: "more than one authorization metadata value")
        }
        let bytes = Array(value.utf8)
        // RFC 6750 §2.1 / RFC 9110 §11.1: the scheme is case-insensitive.
        guard bytes.count > 7, String(decoding: bytes[..<7], as: UTF8.self).lowercased() == "bearer " else {
            return RPCError(code: .unauthenticated, message: "authorization metadata is not a Bearer token")
        }
        guard Self.constantTimeEqual(bytes[7...], token) else {
            return RPCError(code: .unauthenticated, message: "invalid bearer token")
        }
        return nil
    }

    /// Equal, in a time that depends on `expected`'s length only (not on where the
    /// first difference is, nor on `given`'s length).
    static func constantTimeEqual(_ given: ArraySlice<UInt8>, _ expected: [UInt8]) -> Bool {
        var difference: UInt8 = given.count == expected.count ? 0 : 1
        let start = given.startIndex
        for index in 0..<expected.count {
            let byte = index < given.count ? given[start + index] : 0
            difference |= byte ^ expected[index]
        }
        return difference == 0
    }

    /// `handlers` with those whose path is in one of `services` behind the check.
    public func guarding(_ handlers: [String: RPCHandler], services: [String]) -> [String: RPCHandler] {
        handlers.reduce(into: [:]) { guarded, entry in
            let (path, handler) = entry
            guard services.contains(where: { path.hasPrefix("/\($0)/") }) else {
                guarded[path] = handler
                return
            }
            guarded[path] = guarding(handler)
        }
    }

    private func guarding(_ handler: RPCHandler) -> RPCHandler {
        switch handler {
        case .unary(let body):
            return .unary { request, context throws(RPCError) in
                if let refusal = refusal(context.metadata) { throw refusal }
                return try body(request, context)
            }
        case .streaming(let body):
            return .streaming { context, writer in
                if let refusal = refusal(context.metadata) {
                    writer.fail(refusal)
                    return RefusedStream()
                }
                return body(context, writer)
            }
        }
    }
}

/// The observer of a streaming call refused before it began: its input is dropped.
private final class RefusedStream: ServerStreamObserver {
    func received(_ message: [UInt8]) {}
    func inputEnded() {}
    func cancelled() {}
}
