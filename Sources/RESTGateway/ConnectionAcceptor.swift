import CEpoll
import CMicroHTTPD
import Foundation
import H2GRPC
import Logging
import OutliersJSON
import POSIXSupport
import Synchronization

/// Accepts the gateway's connections on a thread of its own and hands each admitted
/// one to libmicrohttpd (`MHD_add_connection`); a connection over a limit gets a 503
/// JSON body at once and is closed, instead of waiting in the listen backlog.
final class ConnectionAcceptor: Sendable {
    private let listener: ListeningSocket
    private let wakeFD: Int32
    private let tracker: ConnectionTracker
    private let logger: Logger
    private let running = Atomic<Bool>(true)
    private let finished = DispatchSemaphore(value: 0)
    let refused = Atomic<Int>(0)
    /// The daemon the connections go to, as its address (an OpaquePointer is not Sendable).
    private let daemonAddress: UInt

    init(listener: ListeningSocket, daemon: OpaquePointer, tracker: ConnectionTracker, logger: Logger) throws {
        self.listener = listener
        self.tracker = tracker
        self.logger = logger
        daemonAddress = UInt(bitPattern: daemon)
        wakeFD = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard wakeFD >= 0 else { throw GatewayError("eventfd failed: \(String(cString: strerror(errno)))") }
    }

    func start() {
        let thread = Thread { [self] in
            acceptUntilStopped()
            finished.signal()
        }
        thread.name = "gateway-accept"
        thread.start()
    }

    /// Stops accepting and closes the listening socket: new clients are refused by the
    /// kernel from then on. Returns once the acceptor's thread is done.
    func stop() {
        running.store(false, ordering: .releasing)
        var one: UInt64 = 1
        _ = write(wakeFD, &one, 8)
        finished.wait()
        listener.close()
        close(wakeFD)
    }

    private func acceptUntilStopped() {
        var descriptors = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)]
        var lastResourceWarning: UInt64 = 0
        while running.load(ordering: .acquiring) {
            descriptors[0].revents = 0
            descriptors[1].revents = 0
            let ready = poll(&descriptors, 2, -1)
            guard ready > 0, running.load(ordering: .acquiring) else { continue }
            guard descriptors[0].revents != 0 else { continue }
            for _ in 0..<64 {
                let accepted: NonBlocking<(fd: Int32, peer: SocketAddress)>
                do {
                    accepted = try listener.accept()
                } catch where error.code == ECONNABORTED {
                    continue
                } catch {
                    // Out of descriptors or memory: the connection stays in the backlog; pause
                    // rather than spin, and say so at most once a second.
                    let now = MonotonicClock.now()
                    if now - lastResourceWarning > 1_000_000_000 {
                        lastResourceWarning = now
                        logger.warning("cannot accept connections", metadata: ["cause": "\(String(cString: strerror(error.code)))"])
                    }
                    pause(milliseconds: 50)
                    break
                }
                guard case .done(let connection) = accepted else { break }
                admit(fd: connection.fd, peer: connection.peer)
            }
        }
    }

    /// Waits on the wake-up descriptor, so that a shutdown is not delayed by the pause.
    private func pause(milliseconds: Int32) {
        var wake = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
        _ = poll(&wake, 1, milliseconds)
    }

    private func admit(fd: Int32, peer: SocketAddress) {
        let client = peer.ipAddress
        switch tracker.admit(fd: fd, client: client) {
        case .admitted(let id):
            var on: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            let added = peer.withSockaddr { address, length in
                MHD_add_connection(OpaquePointer(bitPattern: daemonAddress), fd, address, length)
            }
            // On failure libmicrohttpd has closed the socket itself.
            if added != MHD_Result.YES { tracker.closed(id: id) }
        case .gatewayFull(let open):
            refuse(fd, "the gateway is at its connection limit (\(open) open); try again later")
        case .clientFull(let open):
            refuse(fd, "too many connections from \(client) (\(open) open, the limit per client address)")
        }
    }

    private func refuse(_ fd: Int32, _ message: String) {
        refused.add(1, ordering: .relaxed)
        let body = JSONCodec.encodeError(code: Status.Code.unavailable.rawValue, message: message)
        var response = Array("HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\nRetry-After: 1\r\n\r\n".utf8)
        response += body
        _ = send(fd, response, response.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        ConnectionTracker.discardInput(fd)
        shutdown(fd, Int32(SHUT_WR))
        tracker.closeSoon(fd: fd)
    }
}
