import Dispatch
import Glibc
import Logging
import POSIXSupport
import Synchronization

/// A gRPC server over HTTP/2 on nghttp2: cleartext with prior knowledge (h2c), or TLS
/// with ALPN h2 when the configuration has credentials.
/// Services register handlers by method path; the server knows nothing else of them.
///
///     let server = GRPCServer(configuration: config, handlers: ["/package.Service/Method": .unary(method)])
///     try server.start()
///     …
///     server.shutdown()   // GOAWAY, calls in flight finish, then close
public final class GRPCServer: Sendable {
    private let configuration: GRPCServerConfiguration
    private let handlers: [String: RPCHandler]
    private let logger: Logger
    /// nil until `start` has bound and started everything.
    private let core = Mutex<ServerCore?>(nil)

    public init(configuration: GRPCServerConfiguration, handlers: [String: RPCHandler],
                logger: Logger = Logger(label: "h2grpc.server")) {
        self.configuration = configuration
        self.handlers = handlers
        self.logger = logger
    }

    /// Binds every address of the host, starts the loops. Throws when nothing can be bound.
    public func start() throws {
        try core.withLock { core in
            precondition(core == nil, "GRPCServer.start called twice")
            let started = try ServerCore(configuration: configuration, handlers: handlers, logger: logger)
            try started.start()
            core = started
        }
    }

    /// The bound addresses as `host:port` (`[::1]:9999`), the port filled in when 0 was asked.
    public var boundAddresses: [String] { core.withLock { $0?.boundAddresses ?? [] } }

    /// The port actually bound.
    public var port: Int { core.withLock { $0?.boundPort ?? 0 } }

    /// Stops accepting, sends GOAWAY, lets calls in flight finish (up to the drain
    /// timeout), then closes everything. Blocks until done, so never on one of the
    /// server's own loops (from a handler or a completion there). `beforeDrain` runs
    /// first, so services can end long-lived streams (health Watch).
    public func shutdown(beforeDrain: (() -> Void)? = nil) {
        guard let core = core.withLock({ $0 }) else { return }
        core.shutdown(beforeDrain: beforeDrain)
    }
}

/// The state every connection of a server shares. Its loops, listeners and addresses
/// are fixed at creation; the live connections are behind a mutex.
final class ServerCore: Sendable {
    let configuration: GRPCServerConfiguration
    let handlers: [String: RPCHandler]
    let logger: Logger
    private let loops: [EventLoop]
    private let listeners: [Listener]
    let boundAddresses: [String]
    let boundPort: Int
    /// Each connection stays on the loop that accepted it; shutdown reaches it there.
    private let connections = Mutex<[ObjectIdentifier: LoopBound<ServerConnection>]>([:])
    /// Set by shutdown once no new connection can come.
    private let draining = Atomic<Bool>(false)
    /// Signalled, while draining, when the last connection closes; shutdown re-checks
    /// `connections` after each wake-up.
    private let lastConnectionClosed = DispatchSemaphore(value: 0)

    init(configuration: GRPCServerConfiguration, handlers: [String: RPCHandler], logger: Logger) throws {
        self.configuration = configuration
        self.handlers = handlers
        self.logger = logger
        // A peer gone mid-write must be EPIPE, not the end of the process.
        var ignore = sigaction()
        ignore.__sigaction_handler.sa_handler = SIG_IGN
        try Syscall.run("sigaction SIGPIPE") { sigaction(SIGPIPE, &ignore, nil) }
        listeners = try Listener.bind(host: configuration.host, port: configuration.port)
        boundAddresses = listeners.map(\.address)
        boundPort = listeners.first?.port ?? 0
        do {
            loops = try (0..<max(1, configuration.threads)).map { try EventLoop(name: "grpc-loop-\($0)") }
        } catch {
            for listener in listeners { listener.close() }
            throw error
        }
    }

    /// Starts the loops and has each watch every listener; throws (everything stopped
    /// again) when a loop cannot.
    func start() throws(SystemError) {
        let failure = Mutex<SystemError?>(nil)
        let group = DispatchGroup()
        for loop in loops {
            loop.start()
            group.enter()
            loop.execute { [self] in
                defer { group.leave() }
                for listener in listeners {
                    do throws(SystemError) {
                        try listener.watch(on: loop) { fd, peer in self.accepted(fd, peer: peer, on: loop) }
                    } catch {
                        failure.withLock { $0 = $0 ?? error }
                    }
                }
            }
        }
        group.wait()
        if let error = failure.withLock({ $0 }) {
            stopAccepting()
            for loop in loops { loop.stopAndWait() }
            throw error
        }
    }

    private func accepted(_ fd: Int32, peer: String, on loop: EventLoop) {
        let transport: any ByteTransport
        if let tls = configuration.tls {
            do {
                transport = try tls.session(fd: fd)
            } catch {
                logger.error("cannot start TLS", metadata: ["peer": "\(peer)", "cause": "\(error)"])
                Syscall.close(fd)
                return
            }
        } else {
            transport = TCPTransport(fd: fd)
        }
        let connection = ServerConnection(transport: transport, peer: peer, loop: loop, core: self)
        let bound = LoopBound(connection, loop: loop)
        connections.withLock { $0[ObjectIdentifier(connection)] = bound }
        do {
            try connection.start()
        } catch {
            logger.error("cannot start connection", metadata: ["peer": "\(peer)", "cause": "\(error)"])
            connection.close()
        }
    }

    func connectionClosed(_ connection: ServerConnection) {
        let noneLeft = connections.withLock { connections in
            connections.removeValue(forKey: ObjectIdentifier(connection)) != nil && connections.isEmpty
        }
        if noneLeft && draining.load(ordering: .acquiring) { lastConnectionClosed.signal() }
    }

    func shutdown(beforeDrain: (() -> Void)?) {
        precondition(!loops.contains { $0.inEventLoop }, "GRPCServer.shutdown called on one of its own loops")
        stopAccepting()
        draining.store(true, ordering: .releasing)
        beforeDrain?()
        // GOAWAY on every connection; each closes when its last call ends.
        forEachConnection { $0.startDraining() }
        let deadline = DispatchTime.now() + .nanoseconds(Int(configuration.drainTimeout.saturatingNanoseconds))
        while !connections.withLock({ $0.isEmpty }) {
            if lastConnectionClosed.wait(timeout: deadline) == .timedOut { break }
        }
        // Whatever is left is closed.
        forEachConnection { $0.close() }
        for loop in loops { loop.stopAndWait() }
    }

    /// Every loop stops watching the listeners, then they are closed.
    private func stopAccepting() {
        let group = DispatchGroup()
        for loop in loops {
            group.enter()
            loop.execute { [self] in
                for listener in listeners { listener.unwatch(on: loop) }
                group.leave()
            }
        }
        group.wait()
        for listener in listeners { listener.close() }
    }

    /// Runs `body` on each connection, on its own loop; waits for all.
    private func forEachConnection(_ body: @escaping @Sendable (ServerConnection) -> Void) {
        let all = connections.withLock { Array($0.values) }
        let group = DispatchGroup()
        for connection in all {
            group.enter()
            connection.loop.execute {
                body(connection.value)
                group.leave()
            }
        }
        group.wait()
    }
}
