import POSIXSupport

/// One resolved address of a channel target, and the connection to it.
/// Confined to the channel's event loop.
final class Endpoint: CustomStringConvertible {
    enum Health { case idle, connecting, ready, backingOff(until: UInt64) }

    let address: SocketAddress
    /// `host:port` as the user wrote it: the `:authority` of every call.
    let authority: String
    /// The authority's host: the name a TLS server's certificate must carry.
    let host: String
    var description: String { address.description }
    private let backoff: GRPCClientConfiguration.Backoff
    private let reachabilityChanged: (@Sendable (String, Bool, String?) -> Void)?
    /// What `reachabilityChanged` was last told (nil: nothing yet).
    private var reportedReachable: Bool?
    private(set) var connection: ClientConnection?
    private(set) var consecutiveFailures = 0
    private(set) var retryAt: UInt64 = 0
    private(set) var lastError: String?

    init(address: SocketAddress, authority: String, backoff: GRPCClientConfiguration.Backoff,
         reachabilityChanged: (@Sendable (String, Bool, String?) -> Void)? = nil) {
        self.address = address
        self.authority = authority
        host = (try? TargetResolver.split(authority).host) ?? authority
        self.backoff = backoff
        self.reachabilityChanged = reachabilityChanged
    }

    var health: Health {
        if let connection, connection.isUsable {
            return connection.state == .ready ? .ready : .connecting
        }
        if consecutiveFailures > 0 && MonotonicClock.now() < retryAt { return .backingOff(until: retryAt) }
        return .idle
    }

    func adopt(_ connection: ClientConnection) { self.connection = connection }

    func connectionSucceeded() {
        consecutiveFailures = 0
        lastError = nil
        // Told only as the end of an unreachable spell: a first connection that works is
        // what everyone expects.
        if reportedReachable == false { reachabilityChanged?(address.description, true, nil) }
        reportedReachable = true
    }

    func connectionFailed(_ connection: ClientConnection, message: String) {
        if self.connection === connection { self.connection = nil }
        consecutiveFailures += 1
        lastError = message
        if reportedReachable != false { reachabilityChanged?(address.description, false, message) }
        reportedReachable = false
        retryAt = backoff.delay(afterFailures: consecutiveFailures).deadline(from: MonotonicClock.now())
    }

    /// GOAWAY or exhausted stream ids: calls in flight finish there; new calls get a new connection.
    func connectionDraining(_ connection: ClientConnection) {
        if self.connection === connection { self.connection = nil }
    }

    func connectionClosed(_ connection: ClientConnection) {
        if self.connection === connection { self.connection = nil }
    }
}

/// `host:port` targets, resolved to every address.
enum TargetResolver {
    /// Splits `host:port` or `[v6]:port`.
    static func split(_ target: String) throws(RPCError) -> (host: String, port: Int) {
        let host: Substring
        let portText: Substring
        if target.hasPrefix("[") {
            guard let close = target.firstIndex(of: "]"), target[target.index(after: close)...].hasPrefix(":") else {
                throw RPCError(code: .invalidArgument, message: "bad target \"\(target)\": expected [address]:port")
            }
            host = target[target.index(after: target.startIndex)..<close]
            portText = target[target.index(close, offsetBy: 2)...]
        } else {
            guard let colon = target.lastIndex(of: ":") else {
                throw RPCError(code: .invalidArgument, message: "bad target \"\(target)\": expected host:port")
            }
            host = target[..<colon]
            portText = target[target.index(after: colon)...]
        }
        guard !host.isEmpty, let port = Int(portText), (1...65535).contains(port) else {
            throw RPCError(code: .invalidArgument, message: "bad target \"\(target)\": expected host:port with a port in 1...65535")
        }
        return (String(host), port)
    }

    /// Every address `host` resolves to (a DNS name with many, a headless Service).
    static func resolve(_ target: String) throws(RPCError) -> [SocketAddress] {
        let (host, port) = try split(target)
        do {
            return try SocketAddress.resolve(host: host, port: port)
        } catch {
            throw RPCError(code: .unavailable, message: error.description)
        }
    }
}
