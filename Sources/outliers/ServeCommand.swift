import ArgumentParser
import H2GRPC
import Logging
import OutliersService
import POSIXSupport
import RESTGateway

/// `outliers serve`: the embedded default — backend and gateway in one process,
/// the gateway reaching the backend over real gRPC on the loopback.
struct ServeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the gRPC backend and the REST gateway together.",
        discussion: "curl -s localhost:8080/detect -d @examples/metrics.json answers {\"indices\":[7,113,835]}. SIGINT or SIGTERM drains both and exits 0."
    )

    @Option(help: "Address or name both servers listen on.")
    var host = "127.0.0.1"

    @Option(help: "The REST gateway's port.")
    var httpPort = 8080

    @Option(help: "The gRPC backend's port.")
    var grpcPort = 9999

    @Option(help: "Largest gRPC request message, in bytes (default: the largest message a body of --max-body-bytes can make, so that every body the gateway accepts fits).")
    var maxMessageBytes: Int?

    /// The backend's receive limit, which the gateway checks while converting too.
    var messageLimit: Int {
        maxMessageBytes ?? min(1 << 30, GatewayConfiguration.largestMessage(forBodyBytes: gateway.maxBodyBytes))
    }

    @OptionGroup var gateway: GatewayOptions
    @OptionGroup(title: "The backend's connections") var connections: ServerConnectionOptions
    @OptionGroup(title: "TLS (both hops: HTTPS on the gateway, gRPC over TLS to the backend)") var tls: ServerTLSOptions
    @OptionGroup(title: "TLS (both hops: HTTPS on the gateway, gRPC over TLS to the backend)") var handshake: TLSHandshakeOptions
    @OptionGroup(title: "Authentication (the backend requires the token; the gateway forwards clients' Authorization)")
    var authToken: AuthTokenOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (0...65535).contains(httpPort) else { throw ValidationError("--http-port must be 0...65535, not \(httpPort)") }
        guard (0...65535).contains(grpcPort) else { throw ValidationError("--grpc-port must be 0...65535, not \(grpcPort)") }
        if let maxMessageBytes { try validateMaxMessageBytes(maxMessageBytes) }
    }

    func run() throws {
        // Before any server starts: a signal from then on is never lost.
        SignalWaiter.install()
        MallocTuning.forServers()
        let logger = logging.makeLogger("outliers")
        raiseOpenFileLimit(logger: logger)
        // With a client CA, the backend also accepts its own certificate, which the
        // gateway's hop presents.
        let credentials = try loadServerCredentials(tls, trustingOwnCertificate: true, logger: logger)
        let https = try loadHTTPSCredentials(tls, logger: logger)
        // The backend's gRPC metrics join the gateway's on /metrics.
        let backendMetrics = BackendMetrics()
        let backend = try startBackend(host: host, port: grpcPort, threads: gateway.threads,
                                       maxMessageBytes: messageLimit, auth: try authToken.auth(), tls: credentials,
                                       handshakeTimeout: handshake.tlsHandshakeTimeout, connections: connections,
                                       observers: [backendMetrics],
                                       logger: logger)
        // The gateway's hop trusts exactly the backend's own certificate (and presents it
        // when the backend requires client certificates).
        let pinned: TLSClientCredentials?
        do {
            pinned = try tls.tlsCert.map {
                try TLSClientCredentials(pinnedChainFile: $0, presentingKey: tls.tlsClientCa == nil ? nil : tls.tlsKey)
            }
        } catch {
            logger.error("cannot load the TLS certificate", metadata: ["cause": "\(error)"])
            backend.shutdown()
            throw ExitCode.failure
        }
        let server: Gateway
        // The gateway calls the backend on the port actually bound (0 picks one).
        let target = host.contains(":") ? "[\(host)]:\(backend.server.port)" : "\(host):\(backend.server.port)"
        do {
            var configuration = gateway.configuration(host: host, port: httpPort, backends: [target],
                                                      maxMessageBytes: messageLimit)
            // Messages up to the backend's limit must fit through the gateway too.
            configuration.client.maximumReceiveMessageLength = max(configuration.client.maximumReceiveMessageLength, messageLimit)
            configuration.client.tls = pinned
            configuration.tls = https
            configuration.additionalMetrics = { backendMetrics.exposition() }
            server = try Gateway(configuration: configuration, logger: logger)
            try server.start()
        } catch {
            logger.error("cannot start the gateway", metadata: ["cause": "\(error)"])
            backend.shutdown()
            throw ExitCode.failure
        }
        logger.info("outliers serving", metadata: [
            "http": "\(server.address)", "grpc": "\(backend.server.boundAddresses.joined(separator: ", "))",
            "threads": "\(gateway.threads)"])
        var reloaders: [() throws -> Void] = []
        if let credentials, let pinned, let https {
            reloaders = [{ try credentials.reload() }, { try pinned.reload() }, { try https.reload() }]
        }
        let signal = SignalWaiter.waitForTermination { reloadCertificates(reloaders, logger: logger) }
        drain(server, delay: gateway.drainDelay, signal: signal, logger: logger)
        backend.shutdown()
        logger.info("outliers stopped")
    }
}
