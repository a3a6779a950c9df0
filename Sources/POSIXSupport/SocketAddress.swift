import CPOSIXShims  // sys/socket.h: SOCK_STREAM is not always visible through Glibc alone (a release build failed)
import Glibc

/// An IPv4 or IPv6 socket address: the one place that reads and writes sockaddrs.
public struct SocketAddress: Sendable, CustomStringConvertible {
    private var storage: sockaddr_storage

    /// `storage` holds a sockaddr_in or a sockaddr_in6.
    public init(_ storage: sockaddr_storage) {
        precondition(Int32(storage.ss_family) == AF_INET || Int32(storage.ss_family) == AF_INET6,
                     "SocketAddress of family \(storage.ss_family)")
        self.storage = storage
    }

    /// Copies the address at `address` (from getaddrinfo, accept, getsockname).
    public init(copying address: UnsafePointer<sockaddr>, length: socklen_t) {
        var storage = sockaddr_storage()
        withUnsafeMutableBytes(of: &storage) { raw in
            raw.copyMemory(from: UnsafeRawBufferPointer(start: address, count: min(Int(length), raw.count)))
        }
        self.init(storage)
    }

    /// AF_INET or AF_INET6.
    public var family: Int32 { Int32(storage.ss_family) }

    public var isIPv6: Bool { family == AF_INET6 }

    /// The length of the sockaddr for calls such as connect and bind.
    public var length: socklen_t {
        socklen_t(isIPv6 ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
    }

    public var port: Int {
        get {
            withUnsafeBytes(of: storage) { raw in
                isIPv6 ? Int(UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port))
                       : Int(UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port))
            }
        }
        set {
            let isIPv6 = isIPv6
            withUnsafeMutableBytes(of: &storage) { raw in
                if isIPv6 {
                    var address = raw.load(as: sockaddr_in6.self)
                    address.sin6_port = UInt16(newValue).bigEndian
                    raw.storeBytes(of: address, as: sockaddr_in6.self)
                } else {
                    var address = raw.load(as: sockaddr_in.self)
                    address.sin_port = UInt16(newValue).bigEndian
                    raw.storeBytes(of: address, as: sockaddr_in.self)
                }
            }
        }
    }

    /// The IP address as text: `127.0.0.1`, `::1`.
    public var ipAddress: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written = withUnsafeBytes(of: storage) { raw in
            if isIPv6 {
                var bytes = raw.load(as: sockaddr_in6.self).sin6_addr
                return inet_ntop(AF_INET6, &bytes, &text, socklen_t(text.count))
            }
            var bytes = raw.load(as: sockaddr_in.self).sin_addr
            return inet_ntop(AF_INET, &bytes, &text, socklen_t(text.count))
        }
        // inet_ntop fails only for an unknown family or a short buffer, neither possible here.
        precondition(written != nil, "inet_ntop failed")
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `127.0.0.1:8080`, `[::1]:8080`.
    public var description: String { isIPv6 ? "[\(ipAddress)]:\(port)" : "\(ipAddress):\(port)" }

    /// Calls `body` with the address as a sockaddr and its length.
    public func withSockaddr<Result, Failure: Error>(
        _ body: (UnsafePointer<sockaddr>, socklen_t) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        var copy = storage
        let length = length
        return try withUnsafeMutableBytes(of: &copy) { raw throws(Failure) in
            try body(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), length)
        }
    }

    /// Runs a call that fills in an address (accept, getsockname) and returns it with the
    /// call's result; nil when the call filled in none (accept would have blocked).
    public static func filledIn<Result>(
        by call: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) throws(SystemError) -> Result
    ) throws(SystemError) -> (Result, SocketAddress?) {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let result = try withUnsafeMutableBytes(of: &storage) { raw throws(SystemError) in
            try call(raw.baseAddress!.assumingMemoryBound(to: sockaddr.self), &length)
        }
        let family = Int32(storage.ss_family)
        return (result, family == AF_INET || family == AF_INET6 ? SocketAddress(storage) : nil)
    }

    /// Every TCP address `host` resolves to, in getaddrinfo's order, each once.
    /// `passive`: for bind (a nil host would be the wildcard). No AI_ADDRCONFIG:
    /// "localhost" must give ::1 too on a host whose only IPv6 is loopback.
    public static func resolve(host: String, port: Int, passive: Bool = false) throws(ResolutionError) -> [SocketAddress] {
        var hints = addrinfo()
        hints.ai_flags = passive ? AI_PASSIVE : 0
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        let code = getaddrinfo(host, String(port), &hints, &result)
        guard code == 0, let first = result else { throw ResolutionError(host: host, code: code) }
        defer { freeaddrinfo(first) }
        var addresses: [SocketAddress] = []
        var seen = Set<String>()
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let info = entry {
            entry = info.pointee.ai_next
            guard let address = info.pointee.ai_addr,
                  info.pointee.ai_family == AF_INET || info.pointee.ai_family == AF_INET6 else { continue }
            let socketAddress = SocketAddress(copying: address, length: info.pointee.ai_addrlen)
            if seen.insert(socketAddress.description).inserted { addresses.append(socketAddress) }
        }
        guard !addresses.isEmpty else { throw ResolutionError(host: host, code: EAI_NONAME) }
        return addresses
    }
}
