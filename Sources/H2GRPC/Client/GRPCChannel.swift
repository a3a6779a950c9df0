import Dispatch
import POSIXSupport
import Synchronization
import ZlibCompression

/// A gRPC client over cleartext HTTP/2 (h2c, prior knowledge) to one or more
/// `host:port` targets, each resolved to every address. Calls are balanced
/// round-robin over healthy connections; one connection carries many calls as
/// multiplexed streams. A failed connection backs off (exponential, jittered) and
/// is tried again; a GOAWAY drains its connection and new calls go to a new one.
/// Calls may be made from any thread; the I/O runs on the channel's own event loop.
public final class GRPCChannel: Sendable {
    private let loop: EventLoop
    private let configuration: GRPCClientConfiguration
    private let core: LoopBound<ChannelCore>

    /// Resolves the targets now; throws for a malformed or unresolvable target.
    public init(targets: [String], configuration: GRPCClientConfiguration = GRPCClientConfiguration()) throws(RPCError) {
        guard !targets.isEmpty else { throw RPCError(code: .invalidArgument, message: "no target given") }
        var endpoints: [Endpoint] = []
        for target in targets {
            for address in try TargetResolver.resolve(target) {
                endpoints.append(Endpoint(address: address, authority: target, backoff: configuration.backoff,
                                          reachabilityChanged: configuration.reachabilityChanged))
            }
        }
        let loop: EventLoop
        do {
            loop = try EventLoop(name: "grpc-client")
        } catch {
            throw RPCError(code: .internalError, message: "cannot start the client event loop: \(error)")
        }
        self.loop = loop
        self.configuration = configuration
        core = LoopBound(handingOver: ChannelCore(loop: loop, endpoints: endpoints, configuration: configuration), to: loop)
        loop.start()
    }

    /// Checks the `host:port` syntax of a target without resolving it.
    public static func validate(target: String) throws(RPCError) {
        _ = try TargetResolver.split(target)
    }

    /// Starts a unary call; `completion` runs once, on the channel's event loop.
    /// `timeout` is sent as `grpc-timeout` and enforced here too.
    @discardableResult
    public func unary(path: String, request: [UInt8], metadata: [(name: String, value: String)] = [],
                      timeout: Duration? = nil,
                      completion: @escaping @Sendable (Result<GRPCResponse, RPCError>) -> Void) -> CallHandle {
        let deadline = timeout.map { $0.deadline(from: MonotonicClock.now()) }
        // Compressed here, on the caller's thread, not on the channel's loop.
        let message = configuration.compression.map { Zlib.compress(request, as: $0) } ?? request
        let call = LoopBound(handingOver: ClientCall(path: path, message: message, compressed: configuration.compression != nil,
                                                     metadata: metadata, deadline: deadline,
                                                     maximumReceiveMessageLength: configuration.maximumReceiveMessageLength,
                                                     completion: completion),
                             to: loop)
        loop.execute { [core] in core.value.start(call.value) }
        return CallHandle(call: call, core: core)
    }

    /// The same call, awaited. Task cancellation cancels the call (CANCELLED).
    public func unary(path: String, request: [UInt8], metadata: [(name: String, value: String)] = [],
                      timeout: Duration? = nil) async throws(RPCError) -> GRPCResponse {
        let handle = Mutex<CallHandle?>(nil)
        let cancelled = Atomic<Bool>(false)
        let result: Result<GRPCResponse, RPCError> = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let started = unary(path: path, request: request, metadata: metadata,
                                    timeout: timeout) { continuation.resume(returning: $0) }
                handle.withLock { $0 = started }
                if cancelled.load(ordering: .acquiring) { started.cancel() }
            }
        } onCancel: {
            cancelled.store(true, ordering: .releasing)
            handle.withLock { $0 }?.cancel()
        }
        return try result.get()
    }

    /// Closes every connection; calls in flight end UNAVAILABLE. Blocks until done, so
    /// never on the channel's own loop (from a completion).
    public func close() {
        precondition(!loop.inEventLoop, "GRPCChannel.close called on the channel's own loop")
        let closed = DispatchSemaphore(value: 0)
        loop.execute { [core] in
            core.value.closeAll()
            closed.signal()
        }
        closed.wait()
        loop.stopAndWait()
    }
}

/// Cancels a call started with `GRPCChannel.unary(…, completion:)`.
public struct CallHandle: Sendable {
    private let call: LoopBound<ClientCall>
    private let core: LoopBound<ChannelCore>

    init(call: LoopBound<ClientCall>, core: LoopBound<ChannelCore>) {
        self.call = call
        self.core = core
    }

    /// RST_STREAM(CANCEL) to the server; the completion gets CANCELLED.
    public func cancel() {
        call.loop.execute { [call, core] in core.value.cancel(call.value) }
    }
}

/// The channel's state, confined to its event loop.
final class ChannelCore {
    let loop: EventLoop
    let configuration: GRPCClientConfiguration
    private let endpoints: [Endpoint]
    private var nextIndex = 0
    private var closed = false

    init(loop: EventLoop, endpoints: [Endpoint], configuration: GRPCClientConfiguration) {
        self.loop = loop
        self.endpoints = endpoints
        self.configuration = configuration
    }

    func start(_ call: ClientCall) {
        guard !call.completed else { return }
        if closed {
            call.fail(.unavailable, "channel closed")
            return
        }
        if call.timer == nil, let deadline = call.deadline {
            call.timer = loop.schedule(at: deadline) { [weak self, weak call] in
                guard self != nil, let call, !call.completed else { return }
                // Completed first: the RST_STREAM below closes the stream, and its
                // CANCEL must not become the call's status.
                let connection = call.connection
                call.fail(.deadlineExceeded, "deadline exceeded")
                connection?.reset(call)
            }
        }
        guard let endpoint = pick() else {
            let reasons = Set(endpoints.compactMap(\.lastError)).sorted().joined(separator: "; ")
            call.fail(.unavailable, reasons.isEmpty ? "no backend available" : reasons)
            return
        }
        if let connection = endpoint.connection, connection.isUsable {
            connection.start(call)
            return
        }
        switch ClientConnection.connect(to: endpoint, loop: loop, channel: self, configuration: configuration) {
        case .success(let connection):
            endpoint.adopt(connection)
            connection.start(call)
        case .failure(let error):
            retryOrFail(call, error)
        }
    }

    /// Round robin: a ready connection first, then one being made, then an address
    /// whose backoff has passed (a new connection). nil when every address is backing off.
    private func pick() -> Endpoint? {
        let count = endpoints.count
        for wanted in 0..<3 {
            for offset in 0..<count {
                let endpoint = endpoints[(nextIndex + offset) % count]
                let matches: Bool
                switch (wanted, endpoint.health) {
                case (0, .ready), (1, .connecting), (2, .idle): matches = true
                default: matches = false
                }
                if matches {
                    nextIndex = (nextIndex + offset + 1) % count
                    return endpoint
                }
            }
        }
        return nil
    }

    /// A call that never reached a handler goes to another connection, while
    /// retries and the deadline allow.
    func retryOrFail(_ call: ClientCall, _ error: RPCError) {
        guard !call.completed else { return }
        if call.cancelRequested {
            call.fail(.cancelled, "call cancelled")
            return
        }
        guard call.attempts < configuration.transparentRetries else {
            call.complete(.failure(error))
            return
        }
        call.resetForRetry()
        // Only retry when some address can take it now; otherwise fail fast.
        if endpoints.contains(where: { if case .backingOff = $0.health { return false } else { return true } }) {
            start(call)
        } else {
            call.complete(.failure(error))
        }
    }

    func cancel(_ call: ClientCall) {
        guard !call.completed else { return }
        call.cancelRequested = true
        if let connection = call.connection {
            connection.reset(call)
        }
        call.fail(.cancelled, "call cancelled")
    }

    func closeAll() {
        closed = true
        for endpoint in endpoints { endpoint.connection?.close() }
    }
}
