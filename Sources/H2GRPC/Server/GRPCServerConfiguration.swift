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

    /// Told of every connection and call, on the connection's loop (metrics, per-call logs).
    public var callObservers: [any ServerCallObserver] = []

    public init() {}
}
