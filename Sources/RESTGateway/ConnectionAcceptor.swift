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
/// JSON body at once and is closed, instead of waiting in the listen backlog. On HTTPS
/// a refused connection is just closed: a cleartext answer would be garbage to a TLS
/// client, and a handshake for a refusal is the work the limit is there to avoid.
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
    private let answersRefusals: Bool
    /// HTTPS only: admitted connections wait here for their first byte (see `sniff`).
    private let sniffFD: Int32

    init(listener: ListeningSocket, daemon: OpaquePointer, tracker: ConnectionTracker, isTLS: Bool, logger: Logger) throws {
        self.listener = listener
        answersRefusals = !isTLS
        sniffFD = isTLS ? epoll_create1(Int32(EPOLL_CLOEXEC)) : -1
        guard !isTLS || sniffFD >= 0 else { throw GatewayError("epoll_create1 failed: \(String(cString: strerror(errno)))") }
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
        if sniffFD >= 0 { close(sniffFD) }
    }

    /// Admitted HTTPS connections not yet handed to libmicrohttpd, by descriptor (the
    /// acceptor's thread alone touches it).
    private typealias Sniffing = [Int32: (id: UInt64, peer: SocketAddress)]

    private func acceptUntilStopped() {
        var descriptors = [pollfd(fd: listener.fd, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0),
                           pollfd(fd: sniffFD, events: Int16(POLLIN), revents: 0)]
        var sniffing = Sniffing()
        defer {
            for (fd, entry) in sniffing {
                tracker.closed(id: entry.id)
                close(fd)
            }
        }
        var lastResourceWarning: UInt64 = 0
        while running.load(ordering: .acquiring) {
            for index in descriptors.indices { descriptors[index].revents = 0 }
            let ready = poll(&descriptors, nfds_t(sniffFD >= 0 ? 3 : 2), -1)
            guard ready > 0, running.load(ordering: .acquiring) else { continue }
            if descriptors[2].revents != 0 { sniff(&sniffing) }
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
                admit(fd: connection.fd, peer: connection.peer, sniffing: &sniffing)
            }
        }
    }

    /// Waits on the wake-up descriptor, so that a shutdown is not delayed by the pause.
    private func pause(milliseconds: Int32) {
        var wake = pollfd(fd: wakeFD, events: Int16(POLLIN), revents: 0)
        _ = poll(&wake, 1, milliseconds)
    }

    private func admit(fd: Int32, peer: SocketAddress, sniffing: inout Sniffing) {
        let client = peer.ipAddress
        switch tracker.admit(fd: fd, client: client) {
        case .admitted(let id):
            var on: Int32 = 1
            setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            guard sniffFD >= 0 else { return handOver(fd: fd, id: id, peer: peer) }
            var event = epoll_event(events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLONESHOT.rawValue,
                                    data: epoll_data_t(fd: fd))
            guard epoll_ctl(sniffFD, EPOLL_CTL_ADD, fd, &event) == 0 else { return handOver(fd: fd, id: id, peer: peer) }
            sniffing[fd] = (id, peer)
        case .gatewayFull(let open):
            refuse(fd, "the gateway is at its connection limit (\(open) open); try again later")
        case .clientFull(let open):
            refuse(fd, "too many connections from \(client) (\(open) open, the limit per client address)")
        }
    }

    private func handOver(fd: Int32, id: UInt64, peer: SocketAddress) {
        let added = peer.withSockaddr { address, length in
            MHD_add_connection(OpaquePointer(bitPattern: daemonAddress), fd, address, length)
        }
        // On failure libmicrohttpd has closed the socket itself.
        if added != MHD_Result.YES { tracker.closed(id: id) }
    }

    /// HTTPS: a connection goes to libmicrohttpd once its first byte shows a TLS
    /// handshake record (0x16). One that starts otherwise is a cleartext HTTP client on
    /// the HTTPS port: it gets a 400 saying so in cleartext, as Go's net/http answers,
    /// instead of a TLS alert it cannot read. One that closes, or that the tracker cuts
    /// off at the header timeout (a shutdown, seen here as the end of input), is closed.
    private func sniff(_ sniffing: inout Sniffing) {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        let count = epoll_wait(sniffFD, &events, Int32(events.count), 0)
        for event in events.prefix(max(Int(count), 0)) {
            let fd = event.data.fd
            guard let entry = sniffing.removeValue(forKey: fd) else { continue }
            epoll_ctl(sniffFD, EPOLL_CTL_DEL, fd, nil)
            var first: UInt8 = 0
            let peeked = recv(fd, &first, 1, Int32(MSG_PEEK | MSG_DONTWAIT))
            if peeked == 1 && first == 0x16 {
                handOver(fd: fd, id: entry.id, peer: entry.peer)
            } else if peeked == 1 {
                tracker.closed(id: entry.id)
                let body = JSONCodec.encodeError(code: Status.Code.invalidArgument.rawValue,
                                                 message: "this port speaks HTTPS: the client sent cleartext HTTP; use https://")
                answer(fd, status: "400 Bad Request", body: body, retryAfter: false)
            } else if peeked < 0 && (errno == EAGAIN || errno == EINTR) {
                var again = epoll_event(events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue | EPOLLONESHOT.rawValue,
                                        data: epoll_data_t(fd: fd))
                if epoll_ctl(sniffFD, EPOLL_CTL_ADD, fd, &again) == 0 {
                    sniffing[fd] = entry
                } else {
                    handOver(fd: fd, id: entry.id, peer: entry.peer)
                }
            } else {
                tracker.closed(id: entry.id)
                close(fd)
            }
        }
    }

    private func refuse(_ fd: Int32, _ message: String) {
        refused.add(1, ordering: .relaxed)
        guard answersRefusals else {
            ConnectionTracker.discardInput(fd)
            shutdown(fd, Int32(SHUT_RDWR))
            tracker.closeSoon(fd: fd)
            return
        }
        answer(fd, status: "503 Service Unavailable",
               body: JSONCodec.encodeError(code: Status.Code.unavailable.rawValue, message: message), retryAfter: true)
    }

    /// Writes a whole cleartext answer and closes the connection a moment later.
    private func answer(_ fd: Int32, status: String, body: [UInt8], retryAfter: Bool) {
        var response = Array("HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\(retryAfter ? "Retry-After: 1\r\n" : "")\r\n".utf8)
        response += body
        _ = send(fd, response, response.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
        ConnectionTracker.discardInput(fd)
        shutdown(fd, Int32(SHUT_WR))
        tracker.closeSoon(fd: fd)
    }
}
