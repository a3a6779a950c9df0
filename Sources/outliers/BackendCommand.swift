import ArgumentParser
import Foundation
import Glibc
import H2GRPC
import Logging
import OutliersService
import POSIXSupport

/// `outliers backend`: the gRPC Detect server alone.
struct BackendCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backend",
        abstract: "Run the gRPC Detect server (pb.Outliers, grpc.health.v1, server reflection).",
        discussion: "Cleartext HTTP/2 with prior knowledge, as the article's client expects. SIGINT or SIGTERM drains the calls in flight and exits 0."
    )

    @Option(help: "Address or name to listen on; every address it resolves to is bound.")
    var host = "127.0.0.1"

    @Option(help: "TCP port (0 picks a free one).")
    var port = 9999

    @Option(help: "Event-loop threads (default: the cores this process may run on).")
    var threads = CoreCount.available

    @Option(help: "Largest request message accepted, in bytes; larger ones get RESOURCE_EXHAUSTED.")
    var maxMessageBytes = 4 * 1024 * 1024

    @OptionGroup var authToken: AuthTokenOptions
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be 0...65535, not \(port)") }
        guard (1...1024).contains(threads) else { throw ValidationError("--threads must be 1...1024, not \(threads)") }
        try validateMaxMessageBytes(maxMessageBytes)
    }

    func run() throws {
        // Before any server starts: a signal from then on is never lost.
        SignalWaiter.install()
        MallocTuning.forServers()
        let logger = logging.makeLogger("outliers.backend")
        raiseOpenFileLimit(logger: logger)
        let auth = try authToken.auth()
        let backend = try startBackend(host: host, port: port, threads: threads, maxMessageBytes: maxMessageBytes,
                                       auth: auth, logger: logger)
        logger.info("outliers backend listening", metadata: [
            "addresses": "\(backend.server.boundAddresses.joined(separator: ", "))",
            "threads": "\(threads)", "max-message-bytes": "\(maxMessageBytes)",
            "auth": "\(auth == nil ? "none" : "bearer token")"])
        let signal = SignalWaiter.waitForTermination()
        logger.info("stopping: draining calls in flight", metadata: ["signal": "\(signal)"])
        backend.shutdown()
        logger.info("outliers backend stopped")
    }
}

/// Starts the bundled backend, or logs why not and exits 1 (`backend` and `serve`).
func startBackend(host: String, port: Int, threads: Int, maxMessageBytes: Int, auth: BearerTokenAuth?,
                  logger: Logger) throws -> OutliersBackend {
    var configuration = GRPCServerConfiguration()
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
