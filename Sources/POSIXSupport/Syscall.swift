import Glibc

/// What a call on a non-blocking descriptor gives: its result, or that it would block.
public enum NonBlocking<Result> {
    case done(Result)
    case wouldBlock
}

extension NonBlocking: Sendable where Result: Sendable {}
extension NonBlocking: Equatable where Result: Equatable {}

/// The one wrapper of the system calls that return -1 and set errno: EINTR is retried,
/// every other failure becomes a `SystemError`, so no result goes unchecked.
public enum Syscall {
    @discardableResult
    public static func run<Result: BinaryInteger>(_ name: @autoclosure () -> String,
                                                  _ call: () -> Result) throws(SystemError) -> Result {
        while true {
            let result = call()
            if result >= 0 { return result }
            let code = errno
            if code == EINTR { continue }
            throw SystemError(call: name(), code: code)
        }
    }

    /// The same for a non-blocking descriptor: EAGAIN and EWOULDBLOCK are `.wouldBlock`.
    public static func nonBlocking<Result: BinaryInteger>(_ name: @autoclosure () -> String,
                                                          _ call: () -> Result) throws(SystemError) -> NonBlocking<Result> {
        do {
            return .done(try run(name(), call))
        } catch where error.code == EAGAIN || error.code == EWOULDBLOCK {
            return .wouldBlock
        }
    }

    /// Closes a descriptor we own. close(2) frees the number even when it reports an error
    /// (EINTR, or EIO for data the peer will never get), and must not be retried, so there
    /// is nothing to do with a failure; EBADF alone would be our bug (a double close).
    public static func close(_ fd: Int32) {
        let result = Glibc.close(fd)
        assert(result == 0 || errno != EBADF, "close(\(fd)): not an open descriptor")
    }

    /// Sets an integer socket option.
    public static func setOption(_ fd: Int32, _ level: Int32, _ option: Int32, _ value: Int32,
                                 _ name: @autoclosure () -> String) throws(SystemError) {
        var value = value
        try run(name()) { setsockopt(fd, level, option, &value, socklen_t(MemoryLayout<Int32>.size)) }
    }

    /// TCP_NODELAY: gRPC's small frames must not wait for Nagle.
    public static func disableNagle(_ fd: Int32) throws(SystemError) {
        try setOption(fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1, "setsockopt TCP_NODELAY")
    }
}
