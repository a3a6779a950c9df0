import Glibc

/// SIGINT and SIGTERM, caught from before the servers start until the command has
/// drained: `install` first, start the servers, then `waitForTermination`. SIGHUP, the
/// usual "reload", runs `waitForTermination`'s reload and waits on.
///
/// A self-pipe, so that no signal is lost: the handler (which may run on any thread)
/// only writes the signal's number to the pipe, and the waiting thread reads it. (The
/// earlier dispatch source was created after the servers started and after the
/// signals were set to be ignored; a signal in between was dropped and the process
/// never exited.)
enum SignalWaiter {
    /// The pipe's write end, for the handler; set once in `install`, before any signal
    /// can reach the handler.
    nonisolated(unsafe) private static var writeEnd: Int32 = -1
    nonisolated(unsafe) private static var readEnd: Int32 = -1

    static func install() {
        var ends: [Int32] = [-1, -1]
        guard pipe(&ends) == 0 else { fatalError("pipe failed: errno \(errno)") }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        readEnd = ends[0]
        writeEnd = ends[1]
        for number in [SIGINT, SIGTERM, SIGHUP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { number in
                var byte = UInt8(truncatingIfNeeded: number)
                _ = write(SignalWaiter.writeEnd, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = SA_RESTART
            guard sigaction(number, &action, nil) == 0 else { fatalError("sigaction failed: errno \(errno)") }
        }
    }

    /// Blocks until SIGINT or SIGTERM has arrived (since `install`); returns which. Each
    /// SIGHUP meanwhile runs `reload` on this thread.
    static func waitForTermination(reload: () -> Void = {}) -> Int32 {
        precondition(readEnd >= 0, "SignalWaiter.install() must come first")
        var byte: UInt8 = 0
        while true {
            let count = read(readEnd, &byte, 1)
            if count == 1 && Int32(byte) == SIGHUP {
                reload()
                continue
            }
            if count == 1 { return Int32(byte) }
            if count < 0 && errno == EINTR { continue }
            fatalError("reading the signal pipe failed: errno \(errno)")
        }
    }
}
