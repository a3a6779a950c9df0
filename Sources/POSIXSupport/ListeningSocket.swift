import CPOSIXShims
import Glibc

/// A non-blocking listening TCP socket.
public struct ListeningSocket: Sendable {
    public let fd: Int32
    /// The address bound, the port filled in when 0 was asked.
    public let localAddress: SocketAddress

    /// `127.0.0.1:8080`, `[::1]:8080`.
    public var address: String { localAddress.description }
    public var port: Int { localAddress.port }

    private init(fd: Int32, localAddress: SocketAddress) {
        self.fd = fd
        self.localAddress = localAddress
    }

    /// Binds every address `host` resolves to. The first port bound is reused for the
    /// others when `port` is 0, so one number reaches all of them. Throws the last
    /// failure when none binds.
    public static func bindAll(host: String, port: Int, backlog: Int32 = 1024) throws -> [ListeningSocket] {
        let addresses = try SocketAddress.resolve(host: host, port: port, passive: true)
        // An IPv6 socket takes IPv4 too unless IPV6_V6ONLY; when the host has IPv4
        // addresses of its own they are bound separately. A lone "::" stays dual-stack.
        let v6Only = addresses.contains { !$0.isIPv6 }
        var sockets: [ListeningSocket] = []
        var lastError: Error?
        var boundPort = port
        for var address in addresses {
            address.port = boundPort
            do {
                let socket = try bindOne(address, v6Only: v6Only, backlog: backlog)
                boundPort = socket.port
                sockets.append(socket)
            } catch {
                lastError = error
            }
        }
        guard !sockets.isEmpty else { throw lastError ?? ResolutionError(host: host, code: EAI_NONAME) }
        return sockets
    }

    /// One socket for another server library (the REST gateway's libmicrohttpd): every
    /// address of `host` is bound and the first IPv4 one kept (else the first IPv6).
    public static func bind(host: String, port: Int) throws -> ListeningSocket {
        let sockets = try bindAll(host: host, port: port)
        let kept = sockets.first { !$0.localAddress.isIPv6 } ?? sockets[0]
        for socket in sockets where socket.fd != kept.fd { socket.close() }
        return kept
    }

    private static func bindOne(_ address: SocketAddress, v6Only: Bool, backlog: Int32) throws(SystemError) -> ListeningSocket {
        let fd = try Syscall.run("socket") {
            socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        }
        do throws(SystemError) {
            try Syscall.setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1, "setsockopt SO_REUSEADDR")
            if address.isIPv6 {
                try Syscall.setOption(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, v6Only ? 1 : 0, "setsockopt IPV6_V6ONLY")
            }
            try address.withSockaddr { pointer, length throws(SystemError) in
                _ = try Syscall.run("bind \(address)") { Glibc.bind(fd, pointer, length) }
            }
            try Syscall.run("listen") { listen(fd, backlog) }
            let (_, bound) = try SocketAddress.filledIn { pointer, length throws(SystemError) in
                try Syscall.run("getsockname") { getsockname(fd, pointer, length) }
            }
            guard let bound else { throw SystemError(call: "getsockname", code: EAFNOSUPPORT) }
            return ListeningSocket(fd: fd, localAddress: bound)
        } catch {
            Syscall.close(fd)
            throw error
        }
    }

    /// The next connection, non-blocking and close-on-exec (accept4), with its peer.
    /// ECONNABORTED (a client gone before it was accepted) is a failure the caller skips.
    public func accept() throws(SystemError) -> NonBlocking<(fd: Int32, peer: SocketAddress)> {
        let (result, peer) = try SocketAddress.filledIn { pointer, length throws(SystemError) in
            try Syscall.nonBlocking("accept4") {
                cposix_accept4(fd, pointer, length, Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue))
            }
        }
        switch result {
        case .done(let client):
            // A TCP listener's peers are IPv4 or IPv6.
            guard let peer else { preconditionFailure("accept4 gave no IP peer address") }
            return .done((client, peer))
        case .wouldBlock:
            return .wouldBlock
        }
    }

    public func close() {
        Syscall.close(fd)
    }
}
