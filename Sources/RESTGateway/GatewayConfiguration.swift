import H2GRPC
import OutliersProto
import POSIXSupport

/// How the REST gateway listens, what it accepts and how it calls its backends.
public struct GatewayConfiguration: Sendable {
    public var host = "127.0.0.1"
    /// 0 picks a free port (see `RESTGateway.port`).
    public var port = 8080
    /// Backends, `host:port` or `dns:///host:port` each; a name resolving to many
    /// addresses is balanced over.
    public var backends = ["127.0.0.1:9999"]
    /// More families for /metrics, after the gateway's own (`serve`: its backend's).
    public var additionalMetrics: (@Sendable () -> [UInt8])?
    /// libmicrohttpd's worker threads (an epoll loop each).
    public var threads = CoreCount.available
    /// The deadline of a call without a `Grpc-Timeout` header.
    public var defaultTimeoutNanoseconds: Int64 = 10_000_000_000
    /// A larger body gets 413, before any of it is parsed.
    public var maximumBodyBytes = 16 * 1024 * 1024
    /// The largest protobuf message the gateway sends its backend (the backend's
    /// receive limit, gRPC's default 4 MiB). A body whose message would be larger gets
    /// 413 while it is converted, so a retry that can never succeed is not invited.
    public var maximumMessageBytes = 4 * 1024 * 1024
    /// Per-connection memory of libmicrohttpd, which also bounds the request headers.
    public var connectionMemoryLimit = 64 * 1024
    /// Open connections at most; a connection beyond gets 503 at once and is closed.
    public var maximumConnections = 4096
    /// Open connections from one client address at most, so that one client cannot
    /// take every connection; beyond it, 503 at once.
    public var maximumConnectionsPerClient = 1024
    /// Requests being served at most (0: no cap but the connection limits); past it a
    /// new request gets 503 with Retry-After at once, as Envoy's overload manager answers.
    public var maximumRequestsInFlight = 0
    /// Request body bytes held by all requests together at most (0: no cap); a request
    /// whose body would pass it gets 503 with Retry-After, its body dropped.
    public var maximumBufferedBodyBytes = 0
    /// A connection idle (or a client sending this slowly) for longer is closed.
    public var idleTimeoutSeconds = 30
    /// From accepting a connection to the end of the request head: a client that sends
    /// its head slowly (one byte a second keeps the idle timeout happy) is cut off.
    public var headerTimeoutSeconds = 10.0
    /// From the end of the head to the end of the body.
    public var bodyTimeoutSeconds = 60.0
    /// HTTPS: the certificate (reloadable) and, for mutual TLS, the clients' CA; nil:
    /// cleartext HTTP.
    public var tls: HTTPSCredentials?
    /// Browser origins allowed to call the gateway; nil: no CORS at all.
    public var cors: CORSPolicy?
    /// The web page at `/` (`--no-ui`: off, its routes are 404).
    public var servesWebPage = true
    /// One log line per request (`--access-log off`: none).
    public var accessLog = true
    /// How long a graceful shutdown waits for requests in flight.
    public var drainTimeoutSeconds = 10.0
    public var client: GRPCClientConfiguration = {
        var client = GRPCClientConfiguration()
        client.userAgent = UserAgent.outliersClient
        return client
    }()

    public init() {}

    /// The largest protobuf message a body of `bodyBytes` can become: the densest body
    /// is a bare array of one-digit numbers, `1,` (2 bytes), each an 11-byte Metric
    /// entry (tag, length, tag and an 8-byte double). `serve` sizes its backend's
    /// receive limit with this, so that every body the gateway accepts fits.
    public static func largestMessage(forBodyBytes bodyBytes: Int) -> Int {
        (bodyBytes / 2 + 1) * 11
    }
}
