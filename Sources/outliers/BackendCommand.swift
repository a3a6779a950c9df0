import ArgumentParser
import Foundation
import Glibc
import H2GRPC
import Logging
import RESTGateway
import OutliersService
import POSIXSupport

/// `outliers backend`: the gRPC Detect server alone.
struct BackendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backend",
        abstract: "Run the gRPC Detect server (pb.Outliers, grpc.health.v1, server reflection).",
        discussion: "Cleartext HTTP/2 with prior knowledge, as the article's client expects, or gRPC over TLS with --tls-cert and --tls-key (SIGHUP reloads them). SIGINT or SIGTERM drains the calls in flight and exits 0."
    )

    @Option(help: "Address or name to listen on; every address it resolves to is bound.")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free one).")
    var port = 9999

    @Option(help: "Event-loop threads (default: the cores this process may run on).")
    var threads = CoreCount.available

    @Option(help: "Largest request message accepted, in bytes; larger ones get RESOURCE_EXHAUSTED.")
    var maxMessageBytes = 4 * 1024 * 1024

    @Option(help: "Serve the backend's gRPC metrics (calls by method and code, latency, in flight, connections) as Prometheus text on GET /metrics at this port of --host; none unless given.")
    var metricsPort: Int?

    @OptionGroup(title: "Connections") var connections: ServerConnectionOptions
    @OptionGroup(title: "TLS") var tls: ServerTLSOptions
    @OptionGroup(title: "TLS") var handshake: TLSHandshakeOptions
    @OptionGroup var authToken: AuthTokenOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535, not \(port)") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be 1...1024, not \(threads)") }
        if let metricsPort, !(0...65535).contains(metricsPort) {
            throw ValidationError("--metrics-port must be 0...65535, not \(metricsPort)")
        }
        try validateMaxMessageBytes(maxMessageBytes)
    }

    func run() throws {
        // Before any server starts: a signal from then on is never lost.
        SignalWaiter.install()
        MallocTuning.forServers()
        let logger = logging.makeLogger("outliers.backend")
        raiseOpenFileLimit(logger: logger)
        let auth = try authToken.auth()
        let credentials = try loadServerCredentials(tls, logger: logger)
        let metrics = metricsPort.map { _ in BackendMetrics() }
        let backend = try startBackend(host: host, port: port, threads: threads, maxMessageBytes: maxMessageBytes,
                                       auth: auth, tls: credentials, handshakeTimeout: handshake.tlsHandshakeTimeout,
                                       connections: connections, observers: metrics.map { [$0] } ?? [], logger: logger)
        var endpoint: MetricsEndpoint?
        if let metrics, let metricsPort {
            do {
                endpoint = try MetricsEndpoint(host: host, port: metricsPort) { metrics.exposition() }
            } catch {
                logger.error("cannot serve the metrics", metadata: ["cause": "\(error)"])
                backend.shutdown()
                throw ExitCode.failure
            }
        }
        logger.info("outliers backend listening", metadata: [
            "addresses": "\(backend.server.boundAddresses.joined(separator: ", "))",
            "threads": "\(threads)", "max-message-bytes": "\(maxMessageBytes)",
            "auth": "\(auth == nil ? "none" : "bearer token")", "tls": "\(credentials == nil ? "off" : "on")",
            "metrics": "\(endpoint.map { "http://\($0.address)/metrics" } ?? "off")"])
        let signal = SignalWaiter.waitForTermination { reloadCertificates(credentials.map { [$0.reload] } ?? [], logger: logger) }
        logger.info("stopping: draining calls in flight", metadata: ["signal": "\(signal)"])
        backend.shutdown()
        withExtendedLifetime(endpoint) {}
        logger.info("outliers backend stopped")
    }
}

/// Starts the bundled backend, or logs why not and exits 1 (`backend` and `serve`).
func startBackend(host: String, port: Int, threads: Int, maxMessageBytes: Int, auth: BearerTokenAuth?,
                  tls: TLSServerCredentials?, handshakeTimeout: DurationArgument, connections: ServerConnectionOptions,
                  observers: [any ServerCallObserver] = [], logger: Logger) throws -> OutliersBackend {
    var configuration = GRPCServerConfiguration()
    connections.apply(to: &configuration)
    configuration.callObservers = observers
    configuration.tls = tls
    configuration.tlsHandshakeTimeout = .nanoseconds(handshakeTimeout.nanoseconds)
    configuration.host = host
    configuration.port = port
    configuration.threads = threads
    configuration.maximumReceiveMessageLength = maxMessageBytes
    do {
        let backend = try OutliersBackend(configuration: configuration, auth: auth, logger: logger)
        try backend.start()
        return backend
    } catch {
        logger.error("cannot start the backend", metadata: ["cause": "\(error)"])
        throw ExitCode.failure
    }
}

func validateMaxMessageBytes(_ value: Int) throws {
    guard (1...(1 << 30)).contains(value) else {
        throw ValidationError("--max-message-bytes must be 1...1073741824, not \(value)")
    }
}

/// Raises the soft limit on open files to the hard one (as Go's runtime does): a
/// server holding thousands of connections needs more than the usual 1024.
func raiseOpenFileLimit(logger: Logger) {
    var limit = rlimit()
    guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur < limit.rlim_max else { return }
    limit.rlim_cur = limit.rlim_max
    if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) != 0 {
        logger.warning("cannot raise the open-files limit", metadata: ["errno": "\(errno)"])
    }
}

/// The backend's TLS credentials, or logs why they cannot load and exits 1.
func loadServerCredentials(_ options: ServerTLSOptions, trustingOwnCertificate: Bool = false,
                           logger: Logger) throws -> TLSServerCredentials? {
    do {
        return try options.grpcCredentials(trustingOwnCertificate: trustingOwnCertificate)
    } catch {
        logger.error("cannot load the TLS certificate", metadata: ["cause": "\(error)"])
        throw ExitCode.failure
    }
}

/// The gateway's HTTPS credentials, or logs why they cannot load and exits 1.
func loadHTTPSCredentials(_ options: ServerTLSOptions, logger: Logger) throws -> HTTPSCredentials? {
    do {
        return try options.httpsCredentials()
    } catch {
        logger.error("cannot load the HTTPS certificate", metadata: ["cause": "\(error)"])
        throw ExitCode.failure
    }
}

/// SIGHUP: every reloader reads its certificate files again; one that fails keeps its
/// old certificate and says why.
func reloadCertificates(_ reloaders: [() throws -> Void], logger: Logger) {
    guard !reloaders.isEmpty else {
        logger.notice("SIGHUP: no TLS certificate to reload")
        return
    }
    for reload in reloaders {
        do {
            try reload()
            logger.notice("SIGHUP: TLS certificate reloaded; new connections use it")
        } catch {
            logger.error("SIGHUP: cannot reload the TLS certificate, keeping the old one", metadata: ["cause": "\(error)"])
        }
    }
}
