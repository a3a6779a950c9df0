import ArgumentParser
import Glibc
import H2GRPC
import Logging
import POSIXSupport
import RESTGateway

/// Options the gateway shares between `gateway` and `serve`.
struct GatewayOptions: ParsableArguments {
    @Option(help: "Default deadline of a call without a Grpc-Timeout header, e.g. 10s.")
    var timeout = DurationArgument(argument: "10s")!

    @Option(help: "Largest request body, in bytes; larger ones get 413 before parsing.")
    var maxBodyBytes = 16 * 1024 * 1024

    @Option(help: "HTTP worker threads (default: the cores this process may run on).")
    var threads = CoreCount.available

    @Option(help: "Close connections idle for this many seconds.")
    var idleTimeout = 30

    @Option(help: "Deadline for a client to send its whole request head, from the connection's start, e.g. 10s.")
    var headerTimeout = DurationArgument(argument: "10s")!

    @Option(help: "Deadline for a client to send its whole request body, from the end of its head, e.g. 60s.")
    var bodyTimeout = DurationArgument(argument: "60s")!

    @Option(help: "Open connections at most; more get 503 at once.")
    var maxConnections = 4096

    @Option(help: "Open connections from one client address at most; more get 503 at once.")
    var maxConnectionsPerClient = 1024

    @Option(help: ArgumentHelp(
        "Browser origins allowed to call the gateway (CORS), comma-separated, e.g. https://app.example; * for any. Off by default.",
        valueName: "ORIGIN[,ORIGIN…]"))
    var corsOrigin: String?

    @Option(help: "Requests being served at most; past it a new request gets 503 with Retry-After at once (0: no cap but the connection limits).")
    var maxInFlight = 0

    @Option(help: "Request body bytes all requests in flight may hold together; a request past it gets 503 with Retry-After (0: no cap).")
    var maxBufferedBytes = 0

    @Option(help: "One log line per request (method, path, status, gRPC code, bytes, duration, request id, client): on or off.")
    var accessLog: Switch = .on

    @Option(help: "On SIGTERM, answer /healthz 503 at once and keep serving this long before draining, e.g. 5s, so that load balancers stop sending first (default: none).")
    var drainDelay: DurationArgument?

    @Option(help: "HTTP/2 keepalive to the backends: a connection with calls out that has heard nothing for this long sends a PING, and one not answered within --keepalive-timeout is dropped (its calls fail at once, new ones go elsewhere); off for none.")
    var keepalive: DurationOrOff = .duration(DurationArgument(argument: "30s")!)

    @Option(help: "How long a keepalive PING may go unanswered.")
    var keepaliveTimeout = DurationArgument(argument: "10s")!

    @Flag(name: .customLong("no-ui"), help: "Do not serve the web page at / (and its /ui/ files): 404 there.")
    var noUI = false

    var corsOrigins: [String]? {
        corsOrigin.map(CORSPolicy.origins(fromList:))
    }

    func validate() throws {
        guard (1...(1 << 30)).contains(maxBodyBytes) else { throw ValidationError("--max-body-bytes must be 1...1073741824") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be 1...1024, not \(threads)") }
        guard (1...86_400).contains(idleTimeout) else { throw ValidationError("--idle-timeout must be 1...86400 seconds") }
        guard (1...1_000_000).contains(maxConnections) else { throw ValidationError("--max-connections must be 1...1000000") }
        guard maxInFlight >= 0 else { throw ValidationError("--max-in-flight must be 0 (no cap) or more") }
        guard maxBufferedBytes >= 0 else { throw ValidationError("--max-buffered-bytes must be 0 (no cap) or more") }
        guard (1...maxConnections).contains(maxConnectionsPerClient) else {
            throw ValidationError("--max-connections-per-client must be 1...--max-connections (\(maxConnections))")
        }
        if let origins = corsOrigins {
            for origin in origins {
                if let problem = CORSPolicy.problem(with: origin) { throw ValidationError("--cors-origin: \(problem)") }
            }
            if origins.contains("*") && origins.count > 1 { throw ValidationError("--cors-origin: * stands alone") }
        }
    }

    func configuration(host: String, port: Int, backends: [String], maxMessageBytes: Int) -> GatewayConfiguration {
        var configuration = GatewayConfiguration()
        configuration.maximumMessageBytes = maxMessageBytes
        configuration.headerTimeoutSeconds = Double(headerTimeout.nanoseconds) / 1e9
        configuration.bodyTimeoutSeconds = Double(bodyTimeout.nanoseconds) / 1e9
        configuration.maximumConnections = maxConnections
        configuration.maximumConnectionsPerClient = maxConnectionsPerClient
        configuration.host = host
        configuration.port = port
        configuration.backends = backends
        configuration.threads = threads
        configuration.defaultTimeoutNanoseconds = timeout.nanoseconds
        configuration.maximumBodyBytes = maxBodyBytes
        configuration.idleTimeoutSeconds = idleTimeout
        configuration.cors = corsOrigins.map(CORSPolicy.init(origins:))
        configuration.servesWebPage = !noUI
        configuration.accessLog = accessLog == .on
        configuration.maximumRequestsInFlight = maxInFlight
        configuration.maximumBufferedBodyBytes = maxBufferedBytes
        configuration.client.keepaliveInterval = keepalive.duration.map { .nanoseconds($0.nanoseconds) }
        configuration.client.keepaliveTimeout = .nanoseconds(keepaliveTimeout.nanoseconds)
        return configuration
    }
}

/// `outliers gateway`: the REST front alone, before any server of the contract.
struct GatewayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gateway",
        abstract: "Run the JSON/REST gateway (POST /detect) in front of gRPC Detect backends.",
        discussion: "Any server of the pb.Outliers contract will do, the article's Python server included. SIGINT or SIGTERM finishes the requests in flight and exits 0."
    )

    @Option(help: "Address or name to listen on.")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free one).")
    var port = 8080

    @Option(help: "Backends, HOST:PORT[,HOST:PORT…]; a name resolving to many addresses counts as many. HOST:PORT is resolved once, at start; dns:///HOST:PORT again every --resolve-interval and after a connection fails (a Kubernetes headless Service).")
    var backend: String

    @Option(help: "How often a dns:/// backend is resolved again; addresses that appear join the round robin, those that go finish their calls in flight.")
    var resolveInterval = DurationArgument(argument: "30s")!

    @Option(help: "Ask each backend address grpc.health.v1's Check (on or off): one that answers anything but SERVING leaves the round robin until it answers SERVING; one without the health service (UNIMPLEMENTED) is judged by its connection.")
    var healthChecks = Switch.on

    @Option(help: "How often each backend address is asked, with --health-checks on.")
    var healthCheckInterval = DurationArgument(argument: "5s")!

    @Option(help: "Largest protobuf message sent to the backend (its receive limit), in bytes; a body that would make a larger one gets 413.")
    var maxMessageBytes = 4 * 1024 * 1024

    @Option(help: "Compress the messages sent to the backend (grpc-encoding): gzip, deflate or none; for a backend across a slow network.")
    var backendCompression = CompressionArgument.none

    @OptionGroup var gateway: GatewayOptions
    @OptionGroup(title: "HTTPS (the gateway's own TLS)") var tls: ServerTLSOptions
    @OptionGroup(title: "TLS to the backends") var backendTLS: BackendTLSOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535, not \(port)") }
        try validateMaxMessageBytes(maxMessageBytes)
        guard resolveInterval.nanoseconds >= 10_000_000 else { throw ValidationError("--resolve-interval must be 10ms or more, not \(resolveInterval)") }
        guard healthCheckInterval.nanoseconds >= 10_000_000 else { throw ValidationError("--health-check-interval must be 10ms or more, not \(healthCheckInterval)") }
        for target in backend.split(separator: ",", omittingEmptySubsequences: false) {
            do {
                try GRPCChannel.validate(target: String(target))
            } catch {
                throw ValidationError("--backend: \(error.message)")
            }
        }
    }

    func run() throws {
        // Before any server starts: a signal from then on is never lost.
        SignalWaiter.install()
        MallocTuning.forServers()
        let logger = logging.makeLogger("outliers.gateway")
        let backends = backend.split(separator: ",").map(String.init)
        let server: Gateway
        let backendCredentials: TLSClientCredentials?
        let https = try loadHTTPSCredentials(tls, logger: logger)
        do {
            raiseOpenFileLimit(logger: logger)
            var configuration = gateway.configuration(host: host, port: port, backends: backends, maxMessageBytes: maxMessageBytes)
            configuration.client.compression = backendCompression.coding
            configuration.client.resolveInterval = .nanoseconds(resolveInterval.nanoseconds)
            configuration.client.healthCheckInterval = healthChecks == .on ? .nanoseconds(healthCheckInterval.nanoseconds) : nil
            backendCredentials = try backendTLS.credentials()
            configuration.client.tls = backendCredentials
            configuration.tls = https
            server = try Gateway(configuration: configuration, logger: logger)
            try server.start()
        } catch {
            logger.error("cannot start the gateway", metadata: ["cause": "\(error)"])
            throw ExitCode.failure
        }
        logger.info("outliers gateway listening", metadata: [
            "address": "\(server.address)", "backends": "\(backends.joined(separator: ","))", "threads": "\(gateway.threads)"])
        let signal = SignalWaiter.waitForTermination {
            var reloaders: [() throws -> Void] = []
            if let backendCredentials { reloaders.append { try backendCredentials.reload() } }
            if let https { reloaders.append { try https.reload() } }
            reloadCertificates(reloaders, logger: logger)
        }
        drain(server, delay: gateway.drainDelay, signal: signal, logger: logger)
        logger.info("outliers gateway stopped")
    }
}

/// An on/off option (`--access-log off`).
enum Switch: String, ExpressibleByArgument, CaseIterable, Sendable {
    case on, off
}

/// SIGINT or SIGTERM: /healthz turns 503, the gateway keeps serving for `delay` (so
/// that load balancers notice), then stops accepting and finishes what is in flight.
func drain(_ server: Gateway, delay: DurationArgument?, signal: Int32, logger: Logger) {
    server.beginDrain()
    if let delay {
        logger.info("stopping: /healthz answers 503, serving on for the drain delay",
                    metadata: ["signal": "\(signal)", "delay": "\(delay)"])
        var pause = timespec(tv_sec: Int(delay.nanoseconds / 1_000_000_000), tv_nsec: Int(delay.nanoseconds % 1_000_000_000))
        var left = timespec()
        // A signal (another SIGTERM, say) cuts nanosleep short: sleep on for what is left.
        while nanosleep(&pause, &left) != 0 && errno == EINTR { pause = left }
    }
    logger.info("stopping: finishing requests in flight", metadata: ["signal": "\(signal)"])
    server.shutdown()
}
