import Dispatch
import Logging
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A gRPC server over cleartext HTTP/2 with prior knowledge (h2c), on nghttp2.
/// Services register handlers by method path; the server knows nothing else of them.
///
///     let server = GRPCServer(configuration: config, handlers: ["/pb.Outliers/Detect": .unary(detect)])
///     try server.start()
///     …
///     server.shutdown()   // GOAWAY, calls in flight finish, then close
public final class GRPCServer: Sendable {
    private let core: ServerCore
    private let started = Mutex<Bool>(false)

    public init(configuration: GRPCServerConfiguration, handlers: [String: RPCHandler],
                logger: Logger = Logger(label: "outliers.grpc")) {
        core = ServerCore(configuration: configuration, handlers: handlers, logger: logger)
    }

    /// Binds every address of the host, starts the loops. Throws when nothing can be bound.
    public func start() throws {
        try started.withLock { started in
            precondition(!started, "GRPCServer.start called twice")
            try core.start()
            started = true
        }
    }

    /// The bound addresses as `host:port` (`[::1]:9999`), the port filled in when 0 was asked.
    public var boundAddresses: [String] { core.boundAddresses }

    /// The port actually bound.
    public var port: Int { core.boundPort }

    /// Stops accepting, sends GOAWAY, lets calls in flight finish (up to the drain
    /// timeout), then closes everything. Blocks until done. `beforeDrain` runs first,
    /// so services can end long-lived streams (health Watch).
    public func shutdown(beforeDrain: (() -> Void)? = nil) {
        guard started.withLock({ $0 }) else { return }
        core.shutdown(beforeDrain: beforeDrain)
    }
}

/// The state every connection of a server shares.
final class ServerCore: @unchecked Sendable {
    let configuration: GRPCServerConfiguration
    let handlers: [String: RPCHandler]
    let logger: Logger
    private var loops: [EventLoop] = []
    private var listeners: [Listener] = []
    /// Live connections per loop; touched only on that loop's thread.
    private var connections: [ObjectIdentifier: Set<ObjectIdentifier>] = [:]
    private var connectionObjects: [ObjectIdentifier: ServerConnection] = [:]
    private let connectionLock = Mutex<Void>(())
    private let liveConnections = Atomic<Int>(0)
    private(set) var boundAddresses: [String] = []
    private(set) var boundPort = 0
    private let nextLoop = Atomic<Int>(0)

    init(configuration: GRPCServerConfiguration, handlers: [String: RPCHandler], logger: Logger) {
        self.configuration = configuration
        self.handlers = handlers
        self.logger = logger
    }

    func start() throws {
        signal(SIGPIPE, SIG_IGN)
        listeners = try Listener.bind(host: configuration.host, port: configuration.port)
        boundAddresses = listeners.map(\.address)
        boundPort = listeners.first?.port ?? 0
        for index in 0..<max(1, configuration.threads) {
            let loop = try EventLoop(name: "grpc-loop-\(index)")
            loops.append(loop)
        }
        for loop in loops {
            loop.start()
            let box = UncheckedBox(self)
            loop.execute {
                for listener in box.value.listeners {
                    listener.watch(on: loop) { fd, peer in box.value.accepted(fd, peer: peer, on: loop) }
                }
            }
        }
    }

    private func accepted(_ fd: Int32, peer: String, on loop: EventLoop) {
        let connection = ServerConnection(fd: fd, peer: peer, loop: loop, core: self)
        connectionLock.withLock { _ in
            connectionObjects[ObjectIdentifier(connection)] = connection
        }
        liveConnections.add(1, ordering: .relaxed)
        do {
            try connection.start()
        } catch {
            logger.error("cannot start connection", metadata: ["peer": "\(peer)", "cause": "\(error)"])
            connection.close()
        }
    }

    func connectionClosed(_ connection: ServerConnection) {
        let removed = connectionLock.withLock { _ in
            connectionObjects.removeValue(forKey: ObjectIdentifier(connection)) != nil
        }
        if removed { liveConnections.subtract(1, ordering: .relaxed) }
    }

    func shutdown(beforeDrain: (() -> Void)?) {
        // 1. Stop accepting.
        let group = DispatchGroup()
        for loop in loops {
            group.enter()
            let box = UncheckedBox(self)
            loop.execute {
                for listener in box.value.listeners { listener.unwatch(on: loop) }
                group.leave()
            }
        }
        group.wait()
        for listener in listeners { listener.close() }
        beforeDrain?()
        // 2. GOAWAY on every connection; each closes when its last call ends.
        forEachConnection { $0.startDraining() }
        let deadline = MonotonicClock.now() + UInt64(configuration.drainTimeoutSeconds * 1e9)
        while liveConnections.load(ordering: .relaxed) > 0 && MonotonicClock.now() < deadline {
            usleep(10_000)
        }
        // 3. Whatever is left is closed.
        forEachConnection { $0.close() }
        for loop in loops { loop.stopAndWait() }
    }

    /// Runs `body` on each connection, on its own loop; waits for all.
    private func forEachConnection(_ body: @escaping (ServerConnection) -> Void) {
        let all = connectionLock.withLock { _ in Array(connectionObjects.values) }
        let group = DispatchGroup()
        for connection in all {
            group.enter()
            let box = UncheckedBox((connection, body))
            connection.loop.execute {
                box.value.1(box.value.0)
                group.leave()
            }
        }
        group.wait()
    }
}
