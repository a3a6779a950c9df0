import Glibc

/// A failed system call and its errno.
public struct SystemError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The call, with what it was called on when that helps (`bind 127.0.0.1:80`).
    public let call: String
    public let code: Int32

    public init(call: String, code: Int32) {
        self.call = call
        self.code = code
    }

    public var description: String { "\(call): \(String(cString: strerror(code)))" }
}

/// A host name that getaddrinfo could not resolve.
public struct ResolutionError: Error, Sendable, CustomStringConvertible {
    public let host: String
    /// getaddrinfo's EAI_* code.
    public let code: Int32

    public var description: String { "cannot resolve \(host): \(String(cString: gai_strerror(code)))" }
}
