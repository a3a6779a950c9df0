import CEpoll
import CMicroHTTPD
import Foundation
import H2GRPC
import Logging
import POSIXSupport
import Synchronization

/// Every client connection of the gateway, from accept to libmicrohttpd's close
/// notice: how many there are (in all and per client address), when each must have
/// finished its request head or body, and which ones wait for a backend while their
/// client may hang up.
///
/// libmicrohttpd alone cannot do this: its connection limit stops it accepting (new
/// clients then hang in the listen backlog), and its timeout only measures silence, so
/// a client sending one byte a second holds a connection for ever. The gateway accepts
/// connections itself (`ConnectionAcceptor`), admits or refuses each here, and hands
/// the admitted ones to libmicrohttpd with `MHD_add_connection`.
///
/// A deadline is enforced with `shutdown(2)` on the socket, which libmicrohttpd sees
/// as the client going away; it closes the connection and tells us. Its close notice
/// comes before it closes the descriptor (daemon.c, `MHD_cleanup_connections`), and
/// the notice takes this tracker's lock, so a descriptor shut down under the lock is
/// still the connection's own.
final class ConnectionTracker: Sendable {
    struct Limits: Sendable {
        var connections: Int
        var connectionsPerClient: Int
        var headerNanoseconds: UInt64
        var bodyNanoseconds: UInt64
        var idleNanoseconds: UInt64
    }

    enum Admission: Equatable {
        case admitted(id: UInt64)
        case gatewayFull(open: Int)
        case clientFull(open: Int)
    }

    /// Why the tracker cut a connection off.
    enum Cutoff: String, Sendable {
        case headerTimeout = "request head not received in time"
        case bodyTimeout = "request body not received in time"
    }

    private struct Tracked {
        let fd: Int32
        let client: String
        /// Monotonic nanoseconds by which the current phase must end; nil while a
        /// request is being answered (the backend's deadline governs that).
        var deadline: UInt64?
        var deadlineCutoff = Cutoff.headerTimeout
        var cutoff: Cutoff?
        /// Called once if the client hangs up while its request waits for a backend.
        var hangup: (@Sendable () -> Void)?
    }

    private struct State {
        var connections: [UInt64: Tracked] = [:]
        var idByDescriptor: [Int32: UInt64] = [:]
        var perClient: [String: Int] = [:]
        var nextID: UInt64 = 1
        /// Refused sockets, kept a moment so that the 503 is read before the close.
        var closing: [(fd: Int32, at: UInt64)] = []
    }

    let limits: Limits
    private let state = Mutex(State())
    private let logger: Logger
    /// The watchdog's epoll set: hang-ups of suspended connections, and `wake`.
    private let epollFD: Int32
    private let wakeFD: Int32
    private let running = Atomic<Bool>(true)
    private let watchdogStarted = Atomic<Bool>(false)
    private let watchdogFinished = DispatchSemaphore(value: 0)
    let cutoffs = Atomic<Int>(0)

    init(limits: Limits, logger: Logger) throws {
        self.limits = limits
        self.logger = logger
        epollFD = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epollFD >= 0 else { throw GatewayError("epoll_create1 failed: \(String(cString: strerror(errno)))") }
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else {
            close(epollFD)
            throw GatewayError("eventfd failed: \(String(cString: strerror(errno)))")
        }
        var event = epoll_event(events: EPOLLIN.rawValue, data: epoll_data_t(u64: 0))
        guard epoll_ctl(epollFD, EPOLL_CTL_ADD, wakeFD, &event) == 0 else {
            close(epollFD)
            close(wakeFD)
            throw GatewayError("epoll_ctl failed: \(String(cString: strerror(errno)))")
        }
    }

    // MARK: Admission (the acceptor's thread)

    /// Counts a freshly accepted socket in, or says why not.
    func admit(fd: Int32, client: String) -> Admission {
        let now = MonotonicClock.now()
        return state.withLock { state in
            let total = state.connections.count
            guard total < limits.connections else { return .gatewayFull(open: total) }
            let fromClient = state.perClient[client, default: 0]
            guard fromClient < limits.connectionsPerClient else { return .clientFull(open: fromClient) }
            let id = state.nextID
            state.nextID += 1
            state.connections[id] = Tracked(fd: fd, client: client, deadline: now + limits.headerNanoseconds)
            state.idByDescriptor[fd] = id
            state.perClient[client] = fromClient + 1
            return .admitted(id: id)
        }
    }

    /// libmicrohttpd took the socket (its start notice): the id for its socket context.
    func started(fd: Int32) -> UInt64? {
        state.withLock { $0.idByDescriptor[fd] }
    }

    /// libmicrohttpd is about to close the socket (its close notice), or refused it.
    func closed(id: UInt64) {
        let hangup: (@Sendable () -> Void)? = state.withLock { state in
            guard let tracked = state.connections.removeValue(forKey: id) else { return nil }
            if state.idByDescriptor[tracked.fd] == id { state.idByDescriptor[tracked.fd] = nil }
            let left = state.perClient[tracked.client, default: 1] - 1
            state.perClient[tracked.client] = left > 0 ? left : nil
            if tracked.hangup != nil { epoll_ctl(epollFD, EPOLL_CTL_DEL, tracked.fd, nil) }
            return tracked.hangup
        }
        // A connection closed while its request still waits: its client is gone.
        hangup?()
    }

    /// A socket refused with a 503 already written: closed a little later, so that the
    /// client reads the answer before the close (a close with its request unread would
    /// reset the connection and could destroy the answer).
    func closeSoon(fd: Int32) {
        let closeNow = state.withLock { state -> Bool in
            guard state.closing.count < 1024 else { return true }
            state.closing.append((fd, MonotonicClock.now() + 500_000_000))
            return false
        }
        if closeNow { close(fd) }
    }

    var openConnections: Int { state.withLock { $0.connections.count } }

    // MARK: Phases (libmicrohttpd's threads)

    /// The head is in; the body must follow within the body timeout. Returns the
    /// connection's client address (for X-Forwarded-For), in the same lock.
    @discardableResult
    func headReceived(id: UInt64) -> String? {
        setDeadline(id: id, after: limits.bodyNanoseconds, cutoff: .bodyTimeout)
    }

    /// The whole request is in: no deadline while it is answered.
    func bodyReceived(id: UInt64) {
        state.withLock { $0.connections[id]?.deadline = nil }
    }

    /// The answer went out; the next request's head, on a kept-alive connection, must
    /// be complete within the idle timeout.
    func requestCompleted(id: UInt64) {
        setDeadline(id: id, after: limits.idleNanoseconds, cutoff: .headerTimeout)
    }

    func cutoff(id: UInt64) -> Cutoff? {
        state.withLock { $0.connections[id]?.cutoff }
    }

    /// Returns the connection's client address.
    @discardableResult
    private func setDeadline(id: UInt64, after nanoseconds: UInt64, cutoff: Cutoff) -> String? {
        let deadline = MonotonicClock.now() + nanoseconds
        return state.withLock { state in
            state.connections[id]?.deadline = deadline
            state.connections[id]?.deadlineCutoff = cutoff
            return state.connections[id]?.client
        }
    }

    // MARK: Hang-ups while a request waits for its backend

    /// A suspended connection is not polled by libmicrohttpd, so a client that hangs
    /// up would go unnoticed until the backend answers. Watches the socket for the
    /// peer's close (EPOLLRDHUP) and calls `action` once when it comes.
    func watchHangup(id: UInt64, _ action: @escaping @Sendable () -> Void) {
        state.withLock { state in
            guard let tracked = state.connections[id], tracked.hangup == nil else { return }
            var event = epoll_event(events: EPOLLRDHUP.rawValue | EPOLLONESHOT.rawValue, data: epoll_data_t(u64: id))
            guard epoll_ctl(epollFD, EPOLL_CTL_ADD, tracked.fd, &event) == 0 else {
                logger.debug("cannot watch a connection for hang-ups", metadata: ["errno": "\(errno)"])
                return
            }
            state.connections[id]?.hangup = action
        }
    }

    /// The answer is ready: stop watching before libmicrohttpd has the socket again.
    func unwatchHangup(id: UInt64) {
        state.withLock { state in
            guard let tracked = state.connections[id], tracked.hangup != nil else { return }
            epoll_ctl(epollFD, EPOLL_CTL_DEL, tracked.fd, nil)
            state.connections[id]?.hangup = nil
        }
    }

    // MARK: The watchdog thread

    /// Runs deadlines and hang-ups until `stop`, on a thread of its own.
    func startWatchdog() {
        guard !watchdogStarted.exchange(true, ordering: .acquiringAndReleasing) else { return }
        let thread = Thread { [self] in
            watch()
            watchdogFinished.signal()
        }
        thread.name = "gateway-watchdog"
        thread.start()
    }

    /// Stops the watchdog (if it ran) and closes the tracker's descriptors; once only.
    func stop() {
        guard running.exchange(false, ordering: .acquiringAndReleasing) else { return }
        if watchdogStarted.load(ordering: .acquiring) {
            var one: UInt64 = 1
            _ = write(wakeFD, &one, 8)
            // The watchdog uses the descriptors until it returns.
            watchdogFinished.wait()
        }
        let leftovers = state.withLock { state -> [Int32] in
            defer { state.closing.removeAll() }
            return state.closing.map(\.fd)
        }
        for fd in leftovers { close(fd) }
        close(epollFD)
        close(wakeFD)
    }

    private func watch() {
        let tick: Int32 = 100  // ms: deadlines are enforced within a tick of passing
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while running.load(ordering: .acquiring) {
            let count = epoll_wait(epollFD, &events, Int32(events.count), tick)
            if count > 0 {
                for event in events[0..<Int(count)] where event.data.u64 != 0 {
                    hangupEvent(id: event.data.u64)
                }
            }
            enforceDeadlines()
        }
    }

    private func hangupEvent(id: UInt64) {
        let action: (@Sendable () -> Void)? = state.withLock { state in
            guard let tracked = state.connections[id], let action = tracked.hangup else { return nil }
            // EPOLLRDHUP also comes for a half-close after pipelined bytes: only an
            // end of stream with nothing left to read, or an error, is a hang-up.
            var byte: UInt8 = 0
            let peeked = recv(tracked.fd, &byte, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            guard peeked == 0 || (peeked < 0 && errno != EAGAIN && errno != EINTR) else { return nil }
            epoll_ctl(epollFD, EPOLL_CTL_DEL, tracked.fd, nil)
            state.connections[id]?.hangup = nil
            return action
        }
        action?()
    }

    private func enforceDeadlines() {
        let now = MonotonicClock.now()
        let (cut, closing) = state.withLock { state -> ([(String, Cutoff)], [Int32]) in
            var cut: [(String, Cutoff)] = []
            for (id, tracked) in state.connections {
                guard let deadline = tracked.deadline, now > deadline else { continue }
                // The descriptor is the connection's own: its close notice needs this lock.
                shutdown(tracked.fd, Int32(SHUT_RDWR))
                state.connections[id]?.deadline = nil
                state.connections[id]?.cutoff = tracked.deadlineCutoff
                cut.append((tracked.client, tracked.deadlineCutoff))
            }
            var due: [Int32] = []
            state.closing.removeAll { entry in
                guard now >= entry.at else { return false }
                due.append(entry.fd)
                return true
            }
            return (cut, due)
        }
        for fd in closing {
            Self.discardInput(fd)
            close(fd)
        }
        guard !cut.isEmpty else { return }
        cutoffs.add(cut.count, ordering: .relaxed)
        logger.debug("cut off slow clients", metadata: [
            "count": "\(cut.count)", "first": "\(cut[0].0)", "reason": "\(cut[0].1.rawValue)"])
    }

    /// Reads and drops what a refused client sent, so that the close is a FIN.
    static func discardInput(_ fd: Int32) {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        for _ in 0..<4 {
            guard recv(fd, &buffer, buffer.count, Int32(MSG_DONTWAIT)) > 0 else { return }
        }
    }
}
