import CMicroHTTPD
import Foundation
import H2GRPC
import Logging
import POSIXSupport
import Synchronization

/// The REST front: libmicrohttpd takes HTTP/1.1 requests, OutliersJSON turns a JSON
/// body into a protobuf `OutliersRequest`, the H2GRPC client calls the backend, and
/// the answer goes back as JSON (or protobuf, when asked).
///
/// A request waiting for its backend does not hold a thread: its connection is
/// suspended (MHD_suspend_connection) and resumed by the gRPC completion, so a slow
/// backend costs connections, not threads.
///
/// Sendable: what the callbacks use is immutable or synchronized itself (the tracker,
/// the channel, the metrics, atomics); the daemon lives in `lifecycle`, under its lock.
public final class Gateway: Sendable {
    public let configuration: GatewayConfiguration
    let channel: GRPCChannel
    let logger: Logger
    /// The access log's own logger, at info whatever `--log-level` says: its lines
    /// are the record of requests, on unless `--access-log off`.
    let accessLogger: Logger
    let metrics: GatewayMetrics
    /// Every connection, its limits and deadlines; its watchdog runs while serving.
    let connections: ConnectionTracker
    /// libmicrohttpd's own messages (one per aborted connection, say) are debug-level
    /// noise under attack: at most a few a second reach the log.
    let libraryMessages = RateLimiter(perSecond: 5)
    let inFlight = InFlightCount()
    /// Body bytes held by the requests in flight (`maximumBufferedBodyBytes`).
    let bufferedBodyBytes = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)
    /// Set by `beginDrain`: /healthz answers 503 from then on, so that load balancers
    /// stop sending here while the listener still serves (`--drain-delay`).
    let leaving = Atomic<Bool>(false)
    private let lifecycle = Mutex<Lifecycle>(.idle)

    private enum Lifecycle {
        case idle
        case serving(Serving)
        case stopped
    }

    /// What `start` made and `shutdown` takes apart.
    private struct Serving: @unchecked Sendable {  // the daemon pointer: libmicrohttpd's calls on it are thread-safe
        let daemon: OpaquePointer
        let socket: ListeningSocket
        let acceptor: ConnectionAcceptor
    }

    public init(configuration: GatewayConfiguration, logger: Logger = Logger(label: "outliers.gateway")) throws {
        self.configuration = configuration
        self.logger = logger
        var accessLogger = Logger(label: "outliers.access")
        accessLogger.logLevel = .info
        self.accessLogger = accessLogger
        var client = configuration.client
        client.events = { [logger] event in Self.log(event, to: logger) }
        do {
            channel = try GRPCChannel(targets: configuration.backends, configuration: client)
        } catch {
            throw GatewayError("bad --backend: \(error.message)")
        }
        connections = try ConnectionTracker(limits: .init(
            connections: configuration.maximumConnections,
            connectionsPerClient: configuration.maximumConnectionsPerClient,
            headerNanoseconds: UInt64(configuration.headerTimeoutSeconds * 1e9),
            bodyNanoseconds: UInt64(configuration.bodyTimeoutSeconds * 1e9),
            idleNanoseconds: UInt64(configuration.idleTimeoutSeconds) * 1_000_000_000), logger: logger)
        metrics = GatewayMetrics()
    }

    /// The bound address, `127.0.0.1:8080` (empty before `start`).
    public var address: String {
        lifecycle.withLock { if case .serving(let serving) = $0 { serving.socket.address } else { "" } }
    }

    public var port: Int {
        lifecycle.withLock { if case .serving(let serving) = $0 { serving.socket.port } else { 0 } }
    }

    /// Connections open now (accepted and not yet closed).
    public var openConnections: Int { connections.openConnections }

    public func start() throws {
        try lifecycle.withLock { lifecycle in
            guard case .idle = lifecycle else { throw GatewayError("the gateway was started already") }
            let socket = try ListeningSocket.bind(host: configuration.host, port: configuration.port)
            let daemon: OpaquePointer
            let acceptor: ConnectionAcceptor
            do {
                daemon = try startDaemon()
                do {
                    acceptor = try ConnectionAcceptor(listener: socket, daemon: daemon, tracker: connections,
                                                      isTLS: configuration.tls != nil, logger: logger)
                } catch {
                    MHD_stop_daemon(daemon)
                    throw error
                }
            } catch {
                close(socket.fd)
                throw error
            }
            lifecycle = .serving(Serving(daemon: daemon, socket: socket, acceptor: acceptor))
            connections.startWatchdog()
            acceptor.start()
        }
    }

    private func startDaemon() throws -> OpaquePointer {
        // The gateway accepts connections itself (ConnectionAcceptor) and hands them over,
        // so that a full gateway refuses at once instead of leaving clients in the backlog.
        var flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue
            | MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_ERROR_LOG.rawValue | MHD_USE_NO_LISTEN_SOCKET.rawValue
        let me = Unmanaged.passUnretained(self).toOpaque()
        let completed: MHD_RequestCompletedCallback = requestCompleted
        let connectionNotice: MHD_NotifyConnectionCallback = connectionChanged
        let libraryLog: MHD_LogCallback = libmicrohttpdMessage
        var options: [CVarArg] = [
            Int32(MHD_OPTION.CONNECTION_MEMORY_LIMIT.rawValue), Int(configuration.connectionMemoryLimit),
            // The tracker enforces the real limits; libmicrohttpd's only has to stay out of the way.
            Int32(MHD_OPTION.CONNECTION_LIMIT.rawValue), UInt32(configuration.maximumConnections + 64),
            Int32(MHD_OPTION.CONNECTION_TIMEOUT.rawValue), UInt32(configuration.idleTimeoutSeconds),
            Int32(MHD_OPTION.NOTIFY_COMPLETED.rawValue), unsafeBitCast(completed, to: OpaquePointer.self), OpaquePointer(me),
            Int32(MHD_OPTION.NOTIFY_CONNECTION.rawValue), unsafeBitCast(connectionNotice, to: OpaquePointer.self), OpaquePointer(me),
            Int32(MHD_OPTION.EXTERNAL_LOGGER.rawValue), unsafeBitCast(libraryLog, to: OpaquePointer.self), OpaquePointer(me),
        ]
        if configuration.threads > 1 {
            options += [Int32(MHD_OPTION.THREAD_POOL_SIZE.rawValue), UInt32(configuration.threads)]
        }
        // HTTPS: libmicrohttpd wants a certificate and key in memory to start its TLS (read
        // only while starting); each connection then gets the credentials' current
        // generation (connectionChanged), which is what a SIGHUP replaces.
        var startupStrings: [UnsafeMutablePointer<CChar>] = []
        defer { startupStrings.forEach { free($0) } }
        if let tls = configuration.tls {
            flags |= MHD_USE_TLS.rawValue
            let key = try Self.readPEM(tls.privateKeyFile), certificate = try Self.readPEM(tls.certificateChainFile)
            // TLS 1.2 and 1.3 only, GnuTLS's default ciphers within them.
            startupStrings = [strdup(key), strdup(certificate), strdup("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")]
            options += [Int32(MHD_OPTION.HTTPS_MEM_KEY.rawValue), OpaquePointer(startupStrings[0]),
                        Int32(MHD_OPTION.HTTPS_MEM_CERT.rawValue), OpaquePointer(startupStrings[1]),
                        Int32(MHD_OPTION.HTTPS_PRIORITIES.rawValue), OpaquePointer(startupStrings[2])]
        }
        options.append(Int32(MHD_OPTION.END.rawValue))
        let handler: MHD_AccessHandlerCallback = accessHandler
        let daemon = withVaList(options) { arguments in
            MHD_start_daemon_va(UInt32(flags), 0, nil, nil, handler, me, arguments)
        }
        guard let daemon else {
            throw GatewayError("libmicrohttpd could not start on \(configuration.host):\(configuration.port)"
                + (configuration.tls != nil ? " with TLS (are the certificate and key PEM files?)" : ""))
        }
        return daemon
    }

    private static func readPEM(_ path: String) throws(GatewayError) -> String {
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw GatewayError("cannot read \(path)")
        }
        return text
    }

    /// The first step of a graceful stop: /healthz turns 503 at once; everything
    /// else is served as before until `shutdown`.
    public func beginDrain() {
        leaving.store(true, ordering: .releasing)
    }

    /// Stops accepting (new clients are refused), lets requests in flight finish (up to
    /// the drain timeout), then stops the daemon and closes the backend connections.
    /// Blocks: not for a libmicrohttpd callback or the channel's completions.
    public func shutdown() {
        let serving = lifecycle.withLock { lifecycle -> Serving? in
            defer { lifecycle = .stopped }
            if case .serving(let serving) = lifecycle { return serving }
            return nil
        }
        guard let serving else {
            connections.stop()
            channel.close()
            return
        }
        draining.store(true, ordering: .releasing)
        serving.acceptor.stop()
        inFlight.waitUntilZero(timeoutSeconds: configuration.drainTimeoutSeconds)
        MHD_stop_daemon(serving.daemon)
        connections.stop()
        channel.close()
    }
}

/// Requests between libmicrohttpd's first call and its completion notice; a graceful
/// shutdown waits on it reaching zero.
final class InFlightCount: Sendable {
    private let count = Atomic<Int>(0)
    private let zero = NSConditionBox()

    /// The count after this request joined.
    @discardableResult
    func increment() -> Int { count.add(1, ordering: .relaxed).newValue }

    func decrement() {
        if count.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { zero.broadcast() }
    }

    /// Returns when no request is in flight, or after `timeoutSeconds`.
    func waitUntilZero(timeoutSeconds: Double) {
        let deadline = Date(timeIntervalSinceNow: timeoutSeconds)
        zero.wait(until: deadline) { count.load(ordering: .acquiring) == 0 }
    }
}

/// NSCondition is thread-safe but not marked Sendable in corelibs-foundation.
final class NSConditionBox: @unchecked Sendable {
    private let condition = NSCondition()

    func broadcast() {
        condition.lock()
        condition.broadcast()
        condition.unlock()
    }

    /// Waits until `done()` holds (checked under the lock) or `deadline` passes.
    func wait(until deadline: Date, _ done: () -> Bool) {
        condition.lock()
        defer { condition.unlock() }
        while !done() {
            guard condition.wait(until: deadline) else { return }
        }
    }
}

public struct GatewayError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}
