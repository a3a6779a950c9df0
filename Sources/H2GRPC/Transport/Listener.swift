import CEpoll
import Glibc

/// A listening socket. Every event loop watches it (EPOLLEXCLUSIVE wakes one loop
/// per connection), and the loop that accepts a connection owns it.
final class Listener: Sendable {
    let fd: Int32
    let address: String
    let port: Int

    private init(fd: Int32, address: String, port: Int) {
        self.fd = fd
        self.address = address
        self.port = port
    }

    /// Binds every address `host` resolves to. The first port bound is reused for
    /// the others when `port` is 0, so one number reaches all of them.
    static func bind(host: String, port: Int) throws -> [Listener] {
        var hints = addrinfo()
        // No AI_ADDRCONFIG: "localhost" must give ::1 too on a host whose only IPv6 is loopback.
        hints.ai_flags = AI_PASSIVE
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let rv = getaddrinfo(host, String(port), &hints, &result)
        guard rv == 0, let first = result else {
            throw SystemError.address("cannot resolve \(host): \(String(cString: gai_strerror(rv)))")
        }
        defer { freeaddrinfo(first) }
        var listeners: [Listener] = []
        var lastError: Error = SystemError.address("no address for \(host)")
        var boundPort = port
        var seen = Set<String>()
        var hasIPv4 = false
        var probe: UnsafeMutablePointer<addrinfo>? = first
        while let info = probe {
            if info.pointee.ai_family == AF_INET { hasIPv4 = true }
            probe = info.pointee.ai_next
        }
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            do {
                let listener = try bindOne(info.pointee, port: boundPort, v6Only: hasIPv4)
                guard seen.insert(listener.address).inserted else {
                    listener.close()
                    continue
                }
                boundPort = listener.port
                listeners.append(listener)
            } catch {
                lastError = error
            }
        }
        guard !listeners.isEmpty else { throw lastError }
        return listeners
    }

    /// `v6Only`: when the host also has IPv4 addresses (bound separately); a lone
    /// "::" stays dual-stack, so IPv4 clients reach it too.
    private static func bindOne(_ info: addrinfo, port: Int, v6Only: Bool) throws -> Listener {
        let fd = socket(info.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError.call("socket", errno) }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if info.ai_family == AF_INET6 {
            var only: Int32 = v6Only ? 1 : 0
            setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &only, socklen_t(MemoryLayout<Int32>.size))
        }
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: info.ai_addr, count: Int(info.ai_addrlen)))
        }
        setPort(&storage, port)
        let bound = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(fd, $0, info.ai_addrlen) }
        }
        guard bound == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SystemError.call("bind \(describe(storage))", code)
        }
        guard listen(fd, 1024) == 0 else {
            let code = errno
            Glibc.close(fd)
            throw SystemError.call("listen", code)
        }
        var actual = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &actual) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        return Listener(fd: fd, address: describe(actual), port: portOf(actual))
    }

    /// Called on `loop`'s thread. Each loop gets its own handler object, so the
    /// loops share nothing but the file descriptor.
    func watch(on loop: EventLoop, _ accept: @escaping (Int32, String) -> Void) {
        try? loop.register(fd, events: EPOLLIN.rawValue | EPOLLEXCLUSIVE.rawValue,
                           handler: LoopAcceptor(listener: self, accept: accept))
    }

    func unwatch(on loop: EventLoop) {
        loop.unregister(fd)
    }

    func close() {
        Glibc.close(fd)
    }

    fileprivate func acceptAll(_ accept: (Int32, String) -> Void) {
        for _ in 0..<64 {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    cepoll_accept_nonblocking(fd, $0, &length)
                }
            }
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                return  // EAGAIN, or EMFILE and friends: try again on the next wake-up
            }
            var on: Int32 = 1
            setsockopt(client, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
            accept(client, Listener.describe(storage))
        }
    }

    static func describe(_ storage: sockaddr_storage) -> String {
        var copy = storage
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        let family = Int32(storage.ss_family)
        _ = withUnsafePointer(to: &copy) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, socklen_t(MemoryLayout<sockaddr_storage>.size), &host, socklen_t(host.count),
                            nil, 0, NI_NUMERICHOST)
            }
        }
        let name = String(decoding: host.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return family == AF_INET6 ? "[\(name)]:\(portOf(storage))" : "\(name):\(portOf(storage))"
    }

    static func portOf(_ storage: sockaddr_storage) -> Int {
        var copy = storage
        return withUnsafePointer(to: &copy) { pointer in
            if Int32(storage.ss_family) == AF_INET6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin6_port)) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { Int(UInt16(bigEndian: $0.pointee.sin_port)) }
        }
    }

    private static func setPort(_ storage: inout sockaddr_storage, _ port: Int) {
        let family = Int32(storage.ss_family)
        withUnsafeMutablePointer(to: &storage) { pointer in
            if family == AF_INET6 {
                pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_port = UInt16(port).bigEndian }
            } else {
                pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_port = UInt16(port).bigEndian }
            }
        }
    }
}

/// A listening TCP socket for another server library (the REST gateway's
/// libmicrohttpd): every address of `host` is tried and the first that binds wins.
public struct ListeningSocket: Sendable {
    public let fd: Int32
    /// `127.0.0.1:8080`, `[::1]:8080`.
    public let address: String
    public let port: Int

    public static func bind(host: String, port: Int) throws -> ListeningSocket {
        let listeners = try Listener.bind(host: host, port: port)
        // Keep the first (IPv4 first when the name has both); close the rest.
        let sorted = listeners.sorted { !$0.address.hasPrefix("[") && $1.address.hasPrefix("[") }
        for extra in sorted.dropFirst() { extra.close() }
        return ListeningSocket(fd: sorted[0].fd, address: sorted[0].address, port: sorted[0].port)
    }
}

/// The listener as seen by one loop.
private final class LoopAcceptor: EventHandler {
    let listener: Listener
    let accept: (Int32, String) -> Void
    init(listener: Listener, accept: @escaping (Int32, String) -> Void) {
        self.listener = listener
        self.accept = accept
    }
    func handleEvents(_ events: UInt32) { listener.acceptAll(accept) }
}
