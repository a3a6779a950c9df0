import POSIXSupport

/// How a `GRPCServer` listens and what it accepts.
public struct GRPCServerConfiguration: Sendable {
    /// A name or address; every address it resolves to is bound (IPv4 and IPv6).
    public var host = "127.0.0.1"
    /// 0 picks a free port (see `GRPCServer.boundAddresses`).
    public var port = 9999
    /// Event-loop threads; each owns the connections it accepts.
    public var threads = CoreCount.available
    /// The receive limit: a larger request message gets RESOURCE_EXHAUSTED (gRPC's default, 4 MiB).
    public var maximumReceiveMessageLength = 4 * 1024 * 1024
    /// SETTINGS_MAX_CONCURRENT_STREAMS; clients queue calls beyond it.
    public var maximumConcurrentStreams: UInt32 = 1024
    /// SETTINGS_INITIAL_WINDOW_SIZE. nghttp2's 65,535 would make a 4 MiB message crawl
    /// through 64 round trips; 8 MiB lets it arrive in one flight.
    public var streamWindowSize = 8 * 1024 * 1024
    /// The connection-level receive window, shared by every stream (Envoy uses 256 MiB).
    public var connectionWindowSize = 64 * 1024 * 1024
    /// SETTINGS_MAX_HEADER_LIST_SIZE.
    public var maximumHeaderListSize = 16 * 1024
    /// Unary requests up to this size run on the event loop; larger ones on a worker.
    public var inlineHandlerLimit = 64 * 1024
    /// How long a graceful shutdown waits for calls in flight before closing anyway.
    public var drainTimeout: Duration = .seconds(10)
    /// gRPC over TLS (ALPN h2) instead of h2c; with a client CA, mutual TLS.
    public var tls: TLSServerCredentials?
    /// A TLS handshake that takes longer is dropped (a stalled or slow client costs a
    /// socket for this long, never a thread).
    public var tlsHandshakeTimeout: Duration = .seconds(10)

    /// How often clients may ping (grpc-go's keepalive.EnforcementPolicy, same defaults).
    public var keepalivePolicy = KeepalivePolicy()
    /// A connection older than this (±10 % jitter, so that connections made together do
    /// not all go at once) is asked to go: GOAWAY, its calls finish, then it closes; so
    /// that long-lived clients behind a Service reconnect and rebalance onto new servers
    /// (grpc-go's MaxConnectionAge). nil: connections live as long as their clients like.
    public var maximumConnectionAge: Duration?
    /// After the age's GOAWAY, calls still open this long are cut off (grpc-go's
    /// MaxConnectionAgeGrace). nil: they may take as long as they need.
    public var maximumConnectionAgeGrace: Duration?

    /// Told of every connection and call, on the connection's loop (metrics, per-call logs).
    public var callObservers: [any ServerCallObserver] = []

    public init() {}

    /// A client that pings more often than this allows, three times (grpc-go's
    /// maxPingStrikes is 2), gets GOAWAY ENHANCE_YOUR_CALM with "too_many_pings" and is
    /// disconnected. A ping is a strike when it comes sooner than `minimumInterval` after
    /// the previous one while calls are open, or sooner than two hours while none is open
    /// and `permitWithoutCalls` is false; any DATA or HEADERS the server sends in between
    /// forgives the strikes (the client had reason to ask).
    public struct KeepalivePolicy: Sendable {
        public var minimumInterval: Duration = .seconds(300)
        public var permitWithoutCalls = false
        public init() {}
    }
}
