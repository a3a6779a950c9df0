/// The HTTP/2 → gRPC fallback tables, written once, here. Servers must not use them
/// to pick a status; clients use them when a response carries no `grpc-status`.
enum StatusMapping {
    /// grpc/doc/http-grpc-status-mapping.md: an HTTP status without `grpc-status`.
    static func code(forHTTPStatus status: Int) -> RPCError.Code {
        switch status {
        case 400: return .internalError
        case 401: return .unauthenticated
        case 403: return .permissionDenied
        case 404: return .unimplemented
        case 429, 502, 503, 504: return .unavailable
        case 431: return .internalError
        default: return .unknown
        }
    }

    /// PROTOCOL-HTTP2.md "Errors": a RST_STREAM error code received by a client.
    /// STREAM_CLOSED is only logged by the protocol; it ends the call as INTERNAL here
    /// because the call cannot complete either way.
    static func code(forRSTStreamError error: UInt32) -> RPCError.Code {
        switch error {
        case 0x7: return .unavailable          // REFUSED_STREAM: safe to retry
        case 0x8: return .cancelled            // CANCEL
        case 0xB: return .resourceExhausted    // ENHANCE_YOUR_CALM
        case 0xC: return .permissionDenied     // INADEQUATE_SECURITY
        default: return .internalError         // NO_ERROR, PROTOCOL, INTERNAL, FLOW_CONTROL, …
        }
    }
}
