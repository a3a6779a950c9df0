import CEpoll
import Glibc
import POSIXSupport

/// A listening socket of the gRPC server. Every event loop watches it (EPOLLEXCLUSIVE
/// wakes one loop per connection), and the loop that accepts a connection owns it.
final class Listener: Sendable {
    private let socket: ListeningSocket

    private init(_ socket: ListeningSocket) {
        self.socket = socket
    }

    /// Binds every address `host` resolves to (see `ListeningSocket.bindAll`).
    static func bind(host: String, port: Int) throws -> [Listener] {
        try ListeningSocket.bindAll(host: host, port: port).map(Listener.init)
    }

    /// `127.0.0.1:9999`, `[::1]:9999`.
    var address: String { socket.address }
    var port: Int { socket.port }

    /// Called on `loop`'s thread. Each loop gets its own handler object, so the
    /// loops share nothing but the file descriptor.
    func watch(on loop: EventLoop, _ accept: @escaping (Int32, String) -> Void) throws(SystemError) {
        try loop.register(socket.fd, events: EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue,
                          handler: LoopAcceptor(socket: socket, accept: accept))
    }

    func unwatch(on loop: EventLoop) {
        loop.unregister(socket.fd)
    }

    func close() {
        socket.close()
    }
}

/// The listener as seen by one loop.
private final class LoopAcceptor: EventHandler {
    let socket: ListeningSocket
    let accept: (Int32, String) -> Void

    init(socket: ListeningSocket, accept: @escaping (Int32, String) -> Void) {
        self.socket = socket
        self.accept = accept
    }

    func handleEvents(_ events: UInt32) {
        for _ in 0..<64 {
            let client: Int32
            let peer: SocketAddress
            do throws(SystemError) {
                guard case .done(let accepted) = try socket.accept() else { return }
                (client, peer) = accepted
            } catch where error.code == ECONNABORTED {
                continue  // the client left before we took it
            } catch {
                return  // EMFILE and friends: try again on the next wake-up
            }
            do {
                try Syscall.disableNagle(client)
            } catch {
                Syscall.close(client)
                continue
            }
            accept(client, peer.description)
        }
    }
}
