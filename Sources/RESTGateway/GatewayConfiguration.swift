import H2GRPC

/// How the REST gateway listens, what it accepts and how it calls its backends.
public struct GatewayConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (see `RESTGateway.port`).
    public var port = 8080
    /// Backends, `host:port` each; a name resolving to many addresses is balanced over.
    public var backends = ["127.0.0.1:9999"]
    /// libmicrohttpd's worker threads (an epoll loop each).
    public var threads = max(1, System.coreCount)
    /// The deadline of a call without a `Grpc-Timeout` header.
    public var defaultTimeoutNanoseconds: Int64 = 10_000_000_000
    /// A larger body gets 413, before any of it is parsed.
    public var maximumBodyBytes = 16 * 1024 * 1024
    /// Per-connection memory of libmicrohttpd, which also bounds the request headers.
    public var connectionMemoryLimit = 64 * 1024
    /// Open connections at most; more are refused.
    public var maximumConnections = 4096
    /// A connection idle (or a client sending this slowly) for longer is closed.
    public var idleTimeoutSeconds = 30
    /// How long a graceful shutdown waits for requests in flight.
    public var drainTimeoutSeconds = 10.0
    public var client = GRPCClientConfiguration()

    public init() {}
}
