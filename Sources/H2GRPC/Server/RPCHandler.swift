/// What a service registers for a method path such as `/package.Service/Method`.
/// H2GRPC knows nothing of the messages: handlers take and give serialized bytes.
public enum RPCHandler: Sendable {
    /// One request message in, one response message out. Runs on the connection's
    /// event loop when the request is small, on a worker thread when it is large,
    /// so a long call never stalls the other connections of its loop.
    case unary(@Sendable (_ request: [UInt8], _ context: ServerCallContext) throws(RPCError) -> [UInt8])

    /// Server-streaming and bidirectional calls: the handler returns an observer
    /// that is told of each request message (on the event loop), and answers through
    /// the writer, from any thread, at any time.
    case streaming(@Sendable (_ context: ServerCallContext, _ writer: ServerStreamWriter) -> any ServerStreamObserver)
}

/// What a handler knows of its call.
public struct ServerCallContext: Sendable {
    /// `/package.Service/Method`.
    public let path: String
    /// Custom metadata from the request headers (reserved and pseudo headers left out).
    public let metadata: [(name: String, value: String)]
    /// Monotonic nanoseconds (`MonotonicClock.now()`) after which the call has failed.
    public let deadline: UInt64?

    public init(path: String, metadata: [(name: String, value: String)] = [], deadline: UInt64? = nil) {
        self.path = path
        self.metadata = metadata
        self.deadline = deadline
    }

    public func metadataValue(_ name: String) -> String? {
        metadata.first { $0.name == name }?.value
    }
}

/// Told about a streaming call's input, on the call's event loop.
public protocol ServerStreamObserver: AnyObject {
    func received(_ message: [UInt8])
    /// The client half-closed: no more messages.
    func inputEnded()
    /// The client went away or the deadline passed; the writer no longer sends.
    func cancelled()
}

/// The sending half of a streaming call. Safe from any thread: a call from
/// elsewhere hops to the call's event loop.
public final class ServerStreamWriter: Sendable {
    /// The call's handler and stream, reached only on their loop.
    private struct Target {
        weak var handler: ServerCallHandler?
        let stream: ServerStream
    }

    private let target: LoopBound<Target>

    init(handler: ServerCallHandler, stream: ServerStream) {
        target = LoopBound(Target(handler: handler, stream: stream), loop: handler.loop)
    }

    public func send(_ message: [UInt8]) {
        onLoop { handler, stream in handler.send(message, on: stream) }
    }

    /// Ends the call with `status` after the messages already sent.
    public func finish(_ status: Status = .ok) {
        onLoop { handler, stream in handler.finish(stream, with: status) }
    }

    /// Ends the call with the error's status after the messages already sent.
    public func fail(_ error: RPCError) {
        finish(Status(error))
    }

    private func onLoop(_ body: @escaping @Sendable (ServerCallHandler, ServerStream) -> Void) {
        if target.loop.inEventLoop {
            run(body)
        } else {
            target.loop.execute { [self] in run(body) }
        }
    }

    private func run(_ body: (ServerCallHandler, ServerStream) -> Void) {
        let target = target.value
        guard let handler = target.handler else { return }
        body(handler, target.stream)
        handler.flush()
    }
}
