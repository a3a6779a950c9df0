import ZlibCompression

/// How a `GRPCChannel` connects and calls.
public struct GRPCClientConfiguration: Sendable {
    /// The largest response message accepted (gRPC's default receive limit, 4 MiB).
    public var maximumReceiveMessageLength = 4 * 1024 * 1024
    /// SETTINGS_INITIAL_WINDOW_SIZE, so large responses do not crawl.
    public var streamWindowSize = 8 * 1024 * 1024
    public var connectionWindowSize = 64 * 1024 * 1024
    /// Told on the channel's loop of what happens to its addresses, once per change, not
    /// per call: an address unreachable (its first failed connection after a good one, or
    /// the first ever) and reachable again, addresses a `dns:///` target gained or lost,
    /// a resolution that failed, a health check that took an address out or put it back.
    public var events: (@Sendable (ChannelEvent) -> Void)?
    /// How often a `dns:///host:port` target is resolved again (grpc's dns resolver
    /// re-resolves on connection failures only; Kubernetes clients want both). A failed
    /// connection to one of its addresses resolves it again at once, but never more than
    /// once per `minimumResolveSpacing`.
    public var resolveInterval: Duration = .seconds(30)
    public var minimumResolveSpacing: Duration = .seconds(1)
    /// How often each address is asked grpc.health.v1's Check (service ""): NOT_SERVING
    /// (or UNKNOWN, SERVICE_UNKNOWN) takes it out of the round robin until a Check says
    /// SERVING; UNIMPLEMENTED means no health service, and the connection alone decides.
    /// nil: no health checks.
    public var healthCheckInterval: Duration?
    /// HTTP/2 keepalive: a connection with calls open that has heard nothing from the
    /// server for this long sends a PING; no answer within `keepaliveTimeout` and the
    /// connection is taken for dead (a server that vanished without a FIN, a frozen
    /// process): its calls fail UNAVAILABLE at once instead of waiting for their
    /// deadlines, and new calls go to other addresses. nil: no pings (grpc's default).
    /// Servers limit pings (grpc-go: one per 5 minutes while calls are open unless
    /// configured otherwise); pinging only after a silence keeps within that in practice.
    public var keepaliveInterval: Duration?
    public var keepaliveTimeout: Duration = .seconds(10)
    /// Ping while no call is open too (grpc's PermitWithoutStream); servers must allow it.
    public var keepaliveWithoutCalls = false
    /// A connection attempt that takes longer fails (and backs off): the TCP connect, the
    /// TLS handshake and the server's first SETTINGS frame together.
    public var connectTimeout: Duration = .seconds(5)
    /// Reconnection backoff after a failed connection (gRPC's connection-backoff.md
    /// shape, with shorter defaults: a gateway should find a restarted backend fast).
    /// The cap bounds the time from a backend's return to the first call it serves:
    /// at most 0.5 s + 20% jitter (Tests/interop/test_chaos.py asserts under 1 s; with
    /// a 5 s cap a backend down for 1.6 s under load was found again 1.2 s after it
    /// returned). Calls fail fast (UNAVAILABLE) while every address backs off, so the
    /// cap costs only a refused connect per address every half second.
    public var backoff = Backoff()
    /// How often a call refused before the server processed it (GOAWAY, REFUSED_STREAM,
    /// a connection that failed before sending) is retried on another connection.
    public var transparentRetries = 3
    /// The `user-agent` of every call: applications put their own name first.
    public var userAgent = "h2grpc-swift/0.1"
    /// How request messages are compressed (grpc-encoding); nil: not at all. Responses
    /// in gzip or deflate are read either way (grpc-accept-encoding says so).
    public var compression: ZlibCoding?
    /// gRPC over TLS (ALPN h2), each server's certificate verified for its target's host
    /// (or the credentials' server name); nil: cleartext h2c.
    public var tls: TLSClientCredentials?

    public init() {}

    public struct Backoff: Sendable {
        public var initial: Duration = .milliseconds(100)
        public var multiplier = 1.6
        public var jitter = 0.2
        public var maximum: Duration = .milliseconds(500)

        public init() {}

        /// The delay before attempt `failures + 1`, jittered by ±`jitter`.
        public func delay(afterFailures failures: Int, random: Double = Double.random(in: -1...1)) -> Duration {
            var delay = initial
            for _ in 1..<max(1, failures) { delay = min(delay * multiplier, maximum) }
            return max(.zero, min(delay, maximum) * (1 + jitter * random))
        }
    }
}

/// What `GRPCClientConfiguration.events` is told.
public enum ChannelEvent: Sendable, Equatable {
    case unreachable(address: String, cause: String)
    case reachable(address: String)
    /// A `dns:///` target resolved to a new address, which joins the round robin.
    case added(address: String, target: String)
    /// An address left a `dns:///` target's resolution: no new calls; those in flight finish.
    case removed(address: String, target: String)
    /// A `dns:///` target could not be resolved: its last addresses stay in use.
    case resolutionFailed(target: String, cause: String)
    /// The address's health check answered `status` (NOT_SERVING, …): out of rotation.
    case notServing(address: String, status: String)
    /// The address's health check says SERVING again (or has no health service): back in rotation.
    case serving(address: String)
}

/// A successful call's answer.
public struct GRPCResponse: Sendable {
    public var message: [UInt8]
    /// Response headers, reserved ones left out.
    public var headers: [(name: String, value: String)]
    /// Trailers, `grpc-status` and `grpc-message` left out.
    public var trailers: [(name: String, value: String)]
}
