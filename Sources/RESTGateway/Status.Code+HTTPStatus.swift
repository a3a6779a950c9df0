import H2GRPC

extension Status.Code {
    /// grpc-gateway v2's `HTTPStatusFromCode`, the one table from gRPC status to HTTP
    /// status. FAILED_PRECONDITION is 400, not 412, deliberately (as there).
    var httpStatus: Int {
        switch self {
        case .ok: return 200
        case .cancelled: return 499
        case .invalidArgument, .failedPrecondition, .outOfRange: return 400
        case .unauthenticated: return 401
        case .permissionDenied: return 403
        case .notFound: return 404
        case .alreadyExists, .aborted: return 409
        case .resourceExhausted: return 429
        case .unimplemented: return 501
        case .unavailable: return 503
        case .deadlineExceeded: return 504
        default: return 500  // UNKNOWN, INTERNAL, DATA_LOSS, and codes this version does not know
        }
    }
}
