/// A gRPC status: a code and a human-readable message, as carried in the
/// `grpc-status` and `grpc-message` trailers. A value, not an error: it may be OK.
/// A call that failed throws an `RPCError`, whose code cannot be OK.
public struct Status: Sendable, Hashable, CustomStringConvertible {
    public var code: Code
    public var message: String

    public init(code: Code, message: String = "") {
        self.code = code
        self.message = message
    }

    /// The status a failed call ends with.
    public init(_ error: RPCError) {
        self.init(code: Code(error.code), message: error.message)
    }

    public static let ok = Status(code: .ok)

    public var description: String {
        message.isEmpty ? "\(code)" : "\(code): \(message)"
    }

    /// The status codes of grpc/doc/statuscodes.md. A struct around a private enum,
    /// so that a code number from the wire that this version does not know still
    /// round-trips (as `Code(rawValue:)`) instead of being lost.
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        private enum Known: Int, CaseIterable {
            case ok = 0, cancelled, unknown, invalidArgument, deadlineExceeded, notFound,
                 alreadyExists, permissionDenied, resourceExhausted, failedPrecondition,
                 aborted, outOfRange, unimplemented, internalError, unavailable, dataLoss,
                 unauthenticated
        }

        public let rawValue: Int

        public init(rawValue: Int) { self.rawValue = rawValue }
        private init(known: Known) { rawValue = known.rawValue }

        /// The code of a failed call.
        public init(_ code: RPCError.Code) { rawValue = code.rawValue }

        public static let ok = Code(known: .ok)
        public static let cancelled = Code(known: .cancelled)
        public static let unknown = Code(known: .unknown)
        public static let invalidArgument = Code(known: .invalidArgument)
        public static let deadlineExceeded = Code(known: .deadlineExceeded)
        public static let notFound = Code(known: .notFound)
        public static let alreadyExists = Code(known: .alreadyExists)
        public static let permissionDenied = Code(known: .permissionDenied)
        public static let resourceExhausted = Code(known: .resourceExhausted)
        public static let failedPrecondition = Code(known: .failedPrecondition)
        public static let aborted = Code(known: .aborted)
        public static let outOfRange = Code(known: .outOfRange)
        public static let unimplemented = Code(known: .unimplemented)
        public static let internalError = Code(known: .internalError)
        public static let unavailable = Code(known: .unavailable)
        public static let dataLoss = Code(known: .dataLoss)
        public static let unauthenticated = Code(known: .unauthenticated)

        /// The canonical upper-case name (`INVALID_ARGUMENT`), or the number when unknown.
        public var description: String {
            guard let known = Known(rawValue: rawValue) else { return "CODE_\(rawValue)" }
            switch known {
            case .ok: return "OK"
            case .cancelled: return "CANCELLED"
            case .unknown: return "UNKNOWN"
            case .invalidArgument: return "INVALID_ARGUMENT"
            case .deadlineExceeded: return "DEADLINE_EXCEEDED"
            case .notFound: return "NOT_FOUND"
            case .alreadyExists: return "ALREADY_EXISTS"
            case .permissionDenied: return "PERMISSION_DENIED"
            case .resourceExhausted: return "RESOURCE_EXHAUSTED"
            case .failedPrecondition: return "FAILED_PRECONDITION"
            case .aborted: return "ABORTED"
            case .outOfRange: return "OUT_OF_RANGE"
            case .unimplemented: return "UNIMPLEMENTED"
            case .internalError: return "INTERNAL"
            case .unavailable: return "UNAVAILABLE"
            case .dataLoss: return "DATA_LOSS"
            case .unauthenticated: return "UNAUTHENTICATED"
            }
        }

        /// Every code this version knows, 0 through 16.
        public static var allKnown: [Code] { Known.allCases.map { Code(known: $0) } }
    }
}

extension Status {
    /// Parses the `grpc-status` trailer: decimal digits, no sign, no leading zeros
    /// beyond "0" itself. Anything else is not a status (the caller maps it to UNKNOWN).
    static func parseCode(_ text: some StringProtocol) -> Code? {
        guard !text.isEmpty, text.count <= 10, text.allSatisfy({ $0.isASCII && $0.isNumber }),
              text == "0" || text.first != "0", let value = Int(text) else { return nil }
        return Code(rawValue: value)
    }
}
