/// Told of a server's connections and calls, for metrics and per-call logs
/// (`GRPCServerConfiguration.callObservers`). Called on the connection's event loop,
/// inline: an observer must be quick and must not block.
public protocol ServerCallObserver: Sendable {
    /// A call's request headers arrived (before it is routed).
    func callStarted(_ call: ServerCallStart)
    /// The call's status went out, or the call ended without one (the client reset the
    /// stream or went away: CANCELLED).
    func callEnded(_ call: ServerCallEnd)
    func connectionOpened(peer: String)
    func connectionClosed(peer: String)
}

extension ServerCallObserver {
    public func connectionOpened(peer: String) {}
    public func connectionClosed(peer: String) {}
}

public struct ServerCallStart: Sendable {
    /// `/package.Service/Method` as requested.
    public let path: String
    /// Whether the server has a handler for `path`: a metrics label should not take an
    /// arbitrary client's paths (one series per path would grow without bound).
    public let isRegistered: Bool
    public let peer: String
}

public struct ServerCallEnd: Sendable {
    public let path: String
    public let isRegistered: Bool
    public let peer: String
    public let status: Status
    /// From the request headers to the status (or the end).
    public let nanoseconds: UInt64
    /// Request message bytes received (as framed on the wire, after the 5-byte prefixes).
    public let requestBytes: Int
    public let responseBytes: Int
}
