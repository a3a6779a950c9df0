import Dispatch
import POSIXSupport
import Synchronization
import ZlibCompression

/// A gRPC client over cleartext HTTP/2 (h2c, prior knowledge) or TLS to one or more
/// targets, each resolved to every address (`dns:///host:port` again and again, see
/// `ChannelTarget`). Calls are balanced
/// round-robin over healthy connections; one connection carries many calls as
/// multiplexed streams. A failed connection backs off (exponential, jittered) and
/// is tried again; a GOAWAY drains its connection and new calls go to a new one.
/// Calls may be made from any thread; the I/O runs on the channel's own event loop.
public final class GRPCChannel: Sendable {
    private let loop: EventLoop
    private let configuration: GRPCClientConfiguration
    private let core: LoopBound<ChannelCore>

    /// Resolves the targets now; throws for a malformed target, or a `host:port` one that
    /// does not resolve. A `dns:///host:port` target that does not resolve yet is tried
    /// again (every `minimumResolveSpacing` while calls find no address), as a Kubernetes
    /// headless Service without ready pods has no records.
    public init(targets texts: [String], configuration: GRPCClientConfiguration = GRPCClientConfiguration()) throws(RPCError) {
        guard !texts.isEmpty else { throw RPCError(code: .invalidArgument, message: "no target given") }
        var targets: [ChannelTarget] = []
        for text in texts where !targets.contains(where: { $0.description == text }) {
            targets.append(try ChannelTarget(parsing: text))
        }
        var initial: [Result<[SocketAddress], RPCError>] = []
        for target in targets {
            do {
                initial.append(.success(try target.resolve()))
            } catch where target.reResolves {
                initial.append(.failure(error))
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
        core = LoopBound(handingOver: ChannelCore(loop: loop, targets: targets, configuration: configuration), to: loop)
        loop.start()
        loop.execute { [core, initial] in core.value.started(resolved: initial) }
    }

    /// Checks the syntax of a target (`host:port`, `dns:///host:port`) without resolving it.
    public static func validate(target: String) throws(RPCError) {
        _ = try ChannelTarget(parsing: target)
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
