import POSIXSupport

/// One target of a channel, as the user wrote it: `host:port`, resolved once when the
/// channel is made (grpc-go's passthrough), or `dns:///host:port`, resolved again every
/// resolve interval and after a connection fails (grpc's dns resolver), so that the
/// addresses of a Kubernetes headless Service can change under a running channel.
struct ChannelTarget: Sendable, CustomStringConvertible {
    /// As given, `dns:///backends:9999` or `127.0.0.1:9999`.
    let description: String
    /// `host:port`: the `:authority` of every call.
    let authority: String
    let host: String
    let port: Int
    let reResolves: Bool

    static let dnsScheme = "dns:"

    /// Parses `host:port`, `[v6]:port`, `dns:///host:port` or `dns:host:port` (RFC 3986
    /// as grpc's naming doc spells it); a DNS server in the target's authority
    /// (`dns://8.8.8.8/host:port`) is refused: the system's resolver is used.
    init(parsing text: String) throws(RPCError) {
        description = text
        var rest = Substring(text)
        if rest.hasPrefix(Self.dnsScheme) {
            rest = rest.dropFirst(Self.dnsScheme.count)
            if rest.hasPrefix("//") {
                rest = rest.dropFirst(2)
                guard rest.hasPrefix("/") else {
                    throw RPCError(code: .invalidArgument, message: "bad target \"\(text)\": a DNS server in the target is not supported (the system's resolver is used); write dns:///host:port")
                }
                rest = rest.dropFirst()
            }
            reResolves = true
        } else {
            guard !rest.contains("://") else {
                throw RPCError(code: .invalidArgument, message: "bad target \"\(text)\": the schemes are dns:///host:port (resolved again) and plain host:port (resolved once)")
            }
            reResolves = false
        }
        authority = String(rest)
        (host, port) = try Self.split(authority, in: text)
    }

    /// Splits `host:port` or `[v6]:port`.
    static func split(_ target: String, in text: String? = nil) throws(RPCError) -> (host: String, port: Int) {
        let shown = text ?? target
        let host: Substring
        let portText: Substring
        if target.hasPrefix("[") {
            guard let close = target.firstIndex(of: "]"), target[target.index(after: close)...].hasPrefix(":") else {
                throw RPCError(code: .invalidArgument, message: "bad target \"\(shown)\": expected [address]:port")
            }
            host = target[target.index(after: target.startIndex)..<close]
            portText = target[target.index(close, offsetBy: 2)...]
        } else {
            guard let colon = target.lastIndex(of: ":") else {
                throw RPCError(code: .invalidArgument, message: "bad target \"\(shown)\": expected host:port")
            }
            host = target[..<colon]
            portText = target[target.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else {
            throw RPCError(code: .invalidArgument, message: "bad target \"\(shown)\": expected host:port with a port in 1...65535")
        }
        return (String(host), port)
    }

    /// Every address the host resolves to now (a DNS name with many, a headless Service).
    /// Blocks in getaddrinfo: never on an event loop once the channel runs.
    func resolve() throws(RPCError) -> [SocketAddress] {
        do {
            return try SocketAddress.resolve(host: host, port: port)
        } catch {
            throw RPCError(code: .unavailable, message: error.description)
        }
    }
}
