/// A gRPC status: a code and a human-readable message, as carried in the
/// `grpc-status` and `grpc-message` trailers.
public struct GRPCStatus: Error, Sendable, Hashable, CustomStringConvertible {
    public var code: Code
    public var message: String

    public init(_ code: Code, _ message: String = "") {
        self.code = code
        self.message = message
    }

    public static let ok = GRPCStatus(.ok)

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
        private init(_ known: Known) { rawValue = known.rawValue }

        public static let ok = Code(.ok)
        public static let cancelled = Code(.cancelled)
        public static let unknown = Code(.unknown)
        public static let invalidArgument = Code(.invalidArgument)
        public static let deadlineExceeded = Code(.deadlineExceeded)
        public static let notFound = Code(.notFound)
        public static let alreadyExists = Code(.alreadyExists)
        public static let permissionDenied = Code(.permissionDenied)
        public static let resourceExhausted = Code(.resourceExhausted)
        public static let failedPrecondition = Code(.failedPrecondition)
        public static let aborted = Code(.aborted)
        public static let outOfRange = Code(.outOfRange)
        public static let unimplemented = Code(.unimplemented)
        public static let internalError = Code(.internalError)
        public static let unavailable = Code(.unavailable)
        public static let dataLoss = Code(.dataLoss)
        public static let unauthenticated = Code(.unauthenticated)

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
        public static var allKnown: [Code] { Known.allCases.map(Code.init) }
    }
}

extension GRPCStatus {
    /// Parses the `grpc-status` trailer: decimal digits, no sign, no leading zeros
    /// beyond "0" itself. Anything else is not a status (the caller maps it to UNKNOWN).
    public static func parseCode(_ text: some StringProtocol) -> Code? {
        guard !text.isEmpty, text.count <= 10, text.allSatisfy({ $0.isASCII && $0.isNumber }),
              text == "0" || text.first != "0", let value = Int(text) else { return nil }
        return Code(rawValue: value)
    }
}
