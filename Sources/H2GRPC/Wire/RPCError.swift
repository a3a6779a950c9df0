/// A failed call: its code (never OK), its message, and the metadata the server sent with it.
public struct RPCError: Error, Sendable, CustomStringConvertible {
    public var code: Code
    public var message: String
    /// The trailers (of a Trailers-Only response too), `grpc-status` and `grpc-message` left out.
    public var metadata: [(name: String, value: String)]
    /// The response headers, when the server sent headers before failing.
    public var headers: [(name: String, value: String)]

    public init(code: Code, message: String, metadata: [(name: String, value: String)] = [],
                headers: [(name: String, value: String)] = []) {
        self.code = code
        self.message = message
        self.metadata = metadata
        self.headers = headers
    }

    public var description: String { Status(self).description }

    /// A status code other than OK: the codes of grpc/doc/statuscodes.md from 1, and
    /// any number from the wire that this version does not know (kept as it came).
    public struct Code: Sendable, Hashable, CustomStringConvertible {
        public let rawValue: Int

        private init(known code: Status.Code) { rawValue = code.rawValue }

        /// nil for OK, the one code that is not an error.
        public init?(_ code: Status.Code) {
            guard code != .ok else { return nil }
            self.init(known: code)
        }

        /// nil for 0 (OK).
        public init?(rawValue: Int) {
            self.init(Status.Code(rawValue: rawValue))
        }

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
        public var description: String { Status.Code(self).description }
    }
}
