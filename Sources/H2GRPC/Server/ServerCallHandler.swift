import Dispatch
import POSIXSupport
import ZlibCompression

/// The gRPC calls of one server connection, with no socket and no nghttp2 session:
/// request header checks, routing by path, deadlines, running the handlers, and the
/// response's messages and trailers. The session adapter (`ServerConnection`) feeds it
/// the request's events by stream id and carries its answers out through the sink.
/// Confined to the connection's event loop.
final class ServerCallHandler {
    /// Weak: a worker's unary call may come back after its connection has gone.
    private weak var sink: (any ServerStreamSink)?
    private let handlers: [String: RPCHandler]
    private let configuration: GRPCServerConfiguration
    /// The connection's loop: large unary requests are handled on a worker and come back here.
    let loop: EventLoop
    private var streams: [Int32: ServerStream] = [:]
    /// The client's address, for observers.
    private let peer: String

    /// After our answer, request bytes we read and drop before asking the client to stop
    /// (see `discard`): a short tail is still checked by nghttp2, a real body is stopped.
    static let discardLimit = 64 * 1024

    init(sink: any ServerStreamSink, handlers: [String: RPCHandler], configuration: GRPCServerConfiguration, loop: EventLoop,
         peer: String = "") {
        self.sink = sink
        self.peer = peer
        self.handlers = handlers
        self.configuration = configuration
        self.loop = loop
    }

    /// No call is open.
    var isIdle: Bool { streams.isEmpty }

    func hasStream(_ id: Int32) -> Bool { streams[id] != nil }

    // MARK: Requests

    func beginStream(_ id: Int32) {
        streams[id] = ServerStream(id: id, maximumMessageLength: configuration.maximumReceiveMessageLength)
    }

    /// One request header field; pseudo-headers are read, the rest kept as metadata.
    func header(on id: Int32, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        guard let stream = streams[id], stream.phase == .receiving,
              let namePointer = name.baseAddress, let valuePointer = value.baseAddress else { return }
        let nameLength = name.count, valueLength = value.count
        if namePointer.pointee == UInt8(ascii: ":") {
            if namePointer.equals(":path", length: nameLength) {
                stream.path = valuePointer.string(length: valueLength)
            } else if namePointer.equals(":method", length: nameLength) {
                stream.method = valuePointer.string(length: valueLength)
            }
            return
        }
        if namePointer.equals("content-type", length: nameLength) {
            stream.contentType = valuePointer.string(length: valueLength)
        } else if namePointer.equals("grpc-timeout", length: nameLength) {
            stream.timeoutHeader = valuePointer.string(length: valueLength)
        } else if namePointer.equals("grpc-encoding", length: nameLength) {
            // Only matters once a message arrives compressed: the deframer's status then
            // tells an unsupported encoding (UNIMPLEMENTED) from none at all (INTERNAL).
            stream.messageEncoding = valuePointer.string(length: valueLength)
        } else if namePointer.equals("grpc-accept-encoding", length: nameLength) {
            stream.acceptEncoding = valuePointer.string(length: valueLength)
        } else if namePointer.equals("te", length: nameLength) || namePointer.equals("user-agent", length: nameLength)
                    || namePointer.hasPrefix("grpc-", length: nameLength) {
            // Reserved for the protocol.
        } else if stream.metadata.count < 64 {
            stream.metadata.append((namePointer.string(length: nameLength), valuePointer.string(length: valueLength)))
        }
    }

    /// What every response advertises in grpc-accept-encoding (PROTOCOL-HTTP2.md), in
    /// grpcio's spelling.
    static let acceptedEncodings = "identity,deflate,gzip"

    /// The request headers are complete: route the call or refuse it at once.
    func requestHeadersReceived(on id: Int32) {
        guard let stream = streams[id] else { return }
        observeStart(stream)
        if let encoding = stream.messageEncoding, let coding = ZlibCoding(name: encoding),
           let accepted = stream.acceptEncoding,
           accepted.split(separator: ",").contains(where: { ZlibCoding(name: $0.trimmingCharacters(in: .whitespaces)) == coding }) {
            stream.responseCoding = coding
        }
        guard stream.method == "POST" else {
            respondImmediately(stream, httpStatus: 405,
                               status: Status(code: .unimplemented, message: "method \(stream.method) not allowed; gRPC uses POST"))
            return
        }
        guard Self.isGRPCContentType(stream.contentType) else {
            // PROTOCOL-HTTP2.md: answer 415 so that a non-gRPC client sees what happened.
            let shown = stream.contentType.isEmpty ? "none" : "\"\(stream.contentType)\""
            respondImmediately(stream, httpStatus: 415,
                               status: Status(code: .internalError, message: "invalid gRPC request content-type \(shown)"))
            return
        }
        guard let handler = handlers[stream.path] else {
            respondImmediately(stream, status: Status(code: .unimplemented, message: "Method not found: \(stream.path)"))
            return
        }
        if let header = stream.timeoutHeader {
            guard let timeout = GRPCTimeout(header: header) else {
                respondImmediately(stream, status: Status(code: .internalError, message: "malformed grpc-timeout \"\(header)\""))
                return
            }
            let deadline = MonotonicClock.now() &+ UInt64(timeout.nanoseconds)
            stream.deadline = deadline < UInt64(Int64.max) ? deadline : nil
            if let deadline = stream.deadline {
                stream.deadlineTimer = sink?.schedule(at: deadline) { [weak self, weak stream] in
                    guard let self, let stream else { return }
                    self.deadlinePassed(stream)
                }
            }
        }
        stream.handler = handler
        if case .streaming(let makeObserver) = handler {
            let writer = ServerStreamWriter(handler: self, stream: stream)
            stream.observer = makeObserver(context(for: stream), writer)
        }
    }

    static func isGRPCContentType(_ value: String) -> Bool {
        guard value.hasPrefix("application/grpc") else { return false }
        let rest = value.dropFirst("application/grpc".count)
        return rest.isEmpty || rest.first == "+" || rest.first == ";"
    }

    private func context(for stream: ServerStream) -> ServerCallContext {
        ServerCallContext(path: stream.path, metadata: stream.metadata, deadline: stream.deadline)
    }

    func dataReceived(on id: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard let stream = streams[id] else { return }
        guard stream.phase == .receiving, stream.handler != nil else {
            discard(bytes.count, on: stream)
            return
        }
        do {
            try stream.deframer.append(bytes)
            while let message = try stream.deframer.next() {
                stream.messageCount += 1
                stream.requestBytes += message.count
                switch stream.handler {
                case .unary:
                    guard stream.messageCount == 1 else {
                        respondImmediately(stream, status: Status(code: .internalError, message: "grpc: more than one request message for a unary method"))
                        return
                    }
                    stream.requestMessage = message
                case .streaming:
                    stream.observer?.received(message)
                    if stream.phase != .receiving { return }
                case nil:
                    return
                }
            }
        } catch {
            respondImmediately(stream, status: Status(error.rpcError))
        }
    }

    /// END_STREAM from the client.
    func requestEnded(on id: Int32) {
        guard let stream = streams[id] else { return }
        stream.requestEnded = true
        guard stream.phase == .receiving, let handler = stream.handler else { return }
        if stream.deframer.pendingByteCount > 0 {
            respondImmediately(stream, status: Status(code: .internalError, message: "grpc: request ended inside a message (\(stream.deframer.pendingByteCount) bytes of a partial message)"))
            return
        }
        switch handler {
        case .streaming:
            stream.observer?.inputEnded()
        case .unary(let call):
            guard let request = stream.requestMessage else {
                respondImmediately(stream, status: Status(code: .internalError, message: "grpc: no request message for a unary method"))
                return
            }
            stream.requestMessage = nil
            stream.phase = .handling
            let context = context(for: stream)
            if request.count <= configuration.inlineHandlerLimit {
                completeUnary(stream, Self.run(call, request, context))
            } else {
                // Large requests are handled off the loop so its other calls keep moving.
                let pending = LoopBound((handler: self, stream: stream), loop: loop)
                DispatchQueue.global().async {
                    let result = Self.run(call, request, context)
                    pending.loop.execute {
                        let (handler, stream) = pending.value
                        handler.completeUnary(stream, result)
                        handler.flush()
                    }
                }
            }
        }
    }

    private static func run(_ call: @Sendable ([UInt8], ServerCallContext) throws(RPCError) -> [UInt8],
                            _ request: [UInt8], _ context: ServerCallContext) -> Result<[UInt8], RPCError> {
        do { return .success(try call(request, context)) } catch { return .failure(error) }
    }

    private func completeUnary(_ stream: ServerStream, _ result: Result<[UInt8], RPCError>) {
        // The deadline may have answered already, or the client gone away.
        guard !stream.closed, stream.phase == .handling else { return }
        switch result {
        case .success(let response):
            if let deadline = stream.deadline, MonotonicClock.now() > deadline {
                finish(stream, with: Status(code: .deadlineExceeded, message: "deadline exceeded"))
                return
            }
            send(response, on: stream)
            finish(stream, with: .ok)
        case .failure(let error):
            finish(stream, with: Status(error))
        }
    }

    private func deadlinePassed(_ stream: ServerStream) {
        guard !stream.closed, stream.phase != .done else { return }
        stream.observer?.cancelled()
        stream.observer = nil
        // The status goes out as trailers; a request still arriving is then stopped by
        // RST_STREAM(NO_ERROR) after our END_STREAM (see discard). An RST_STREAM(CANCEL)
        // here could overtake the trailers and read as CANCELLED.
        finish(stream, with: Status(code: .deadlineExceeded, message: "deadline exceeded"))
        flush()
    }

    // MARK: Responses

    /// An early error: Trailers-Only, before any message (or trailers if headers went).
    private func respondImmediately(_ stream: ServerStream, httpStatus: Int = 200, status: Status) {
        stream.observer?.cancelled()
        stream.observer = nil
        stream.requestMessage = nil
        if stream.headersSent {
            finish(stream, with: status)
            return
        }
        stream.phase = .done
        stream.deadlineTimer?.cancel()
        observeEnd(stream, status)
        var headers = HeaderBlock()
        headers.add(":status", String(httpStatus))
        headers.add("content-type", "application/grpc")
        // PROTOCOL-HTTP2.md: with UNIMPLEMENTED for a compressed message, the server names
        // the encodings it accepts; the same header as in any other response.
        headers.add("grpc-accept-encoding", Self.acceptedEncodings)
        headers.addStatus(status)
        sink?.submitResponse(on: stream.id, headers, hasBody: false)
    }

    /// Queues one response message; the response headers go out with the first.
    func send(_ message: [UInt8], on stream: ServerStream) {
        guard !stream.closed, stream.phase != .done, stream.finalStatus == nil else { return }
        stream.responseBytes += message.count
        if let coding = stream.responseCoding {
            MessageFramer.appendFrame(Zlib.compress(message, as: coding), compressed: true, to: &stream.outbound)
        } else {
            MessageFramer.appendFrame(message, to: &stream.outbound)
        }
        startOrResumeBody(stream)
    }

    /// Decides the final status; trailers follow the queued messages.
    func finish(_ stream: ServerStream, with status: Status) {
        guard !stream.closed, stream.phase != .done, stream.finalStatus == nil else { return }
        stream.deadlineTimer?.cancel()
        if !stream.headersSent {
            respondImmediately(stream, status: status)
            return
        }
        stream.finalStatus = status
        stream.phase = .finishing
        sink?.resumeBody(on: stream.id)
    }

    func flush() {
        sink?.flush()
    }

    private func startOrResumeBody(_ stream: ServerStream) {
        if stream.headersSent {
            sink?.resumeBody(on: stream.id)
            return
        }
        stream.headersSent = true
        var headers = HeaderBlock()
        headers.add(":status", "200")
        headers.add("content-type", "application/grpc")
        if let coding = stream.responseCoding { headers.add("grpc-encoding", coding.rawValue) }
        headers.add("grpc-accept-encoding", Self.acceptedEncodings)
        sink?.submitResponse(on: stream.id, headers, hasBody: true)
    }

    /// What `readBody` gave.
    enum BodyChunk: Equatable {
        /// This many bytes; more to come.
        case bytes(Int)
        /// The last bytes (maybe none); the trailers are submitted.
        case last(Int)
        /// Nothing ready now: `resumeBody` follows when there is.
        case deferred
        /// No such stream.
        case unknownStream
    }

    /// The session asks for body bytes: queued messages, then trailers.
    func readBody(on id: Int32, into buffer: UnsafeMutableRawBufferPointer) -> BodyChunk {
        guard let stream = streams[id] else { return .unknownStream }
        let available = stream.outbound.count - stream.outboundOffset
        let count = min(available, buffer.count)
        if count > 0 {
            stream.outbound.withUnsafeBytes { raw in
                buffer.baseAddress!.copyMemory(from: raw.baseAddress! + stream.outboundOffset, byteCount: count)
            }
            stream.outboundOffset += count
            if stream.outboundOffset == stream.outbound.count {
                stream.outbound.removeAll(keepingCapacity: stream.outbound.capacity <= 64 * 1024)
                stream.outboundOffset = 0
            }
        }
        if !stream.hasOutbound, let status = stream.finalStatus {
            stream.phase = .done
            observeEnd(stream, status)
            var trailers = HeaderBlock()
            trailers.addStatus(status)
            sink?.submitTrailers(on: stream.id, trailers)
            return .last(count)
        }
        return count > 0 ? .bytes(count) : .deferred
    }

    /// Our END_STREAM went out: if the client is still sending, its bytes are dropped from now.
    func answerSent(on id: Int32) {
        guard let stream = streams[id], !stream.requestEnded, !stream.closed else { return }
        stream.answeredBeforeRequestEnded = true
        discard(0, on: stream)
    }

    /// The answer is decided and the client is still sending: its bytes are dropped.
    /// RFC 9113 §8.1 lets a server that has sent a complete response stop the request with
    /// RST_STREAM(NO_ERROR), as gRPC servers do. We do that once a real body keeps coming
    /// (more than `discardLimit` after the answer was decided), and only after our END_STREAM
    /// has gone out (the RST must not overtake the answer). Until then the stream stays
    /// half-closed (local) and nghttp2 goes on checking what arrives: a wrong content-length
    /// or trailers without END_STREAM are still a stream error PROTOCOL_ERROR (§8.1.1), the
    /// stream still counts toward SETTINGS_MAX_CONCURRENT_STREAMS (§5.1.2), and a client
    /// that ends its request closes the stream normally.
    private func discard(_ count: Int, on stream: ServerStream) {
        guard !stream.closed, !stream.requestEnded, !stream.stopRequested else { return }
        stream.discardedByteCount += count
        guard stream.answeredBeforeRequestEnded, stream.discardedByteCount > Self.discardLimit else { return }
        stream.stopRequested = true
        sink?.stopRequest(on: stream.id)
    }

    // MARK: Ends

    func streamClosed(_ id: Int32) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        streamEnded(stream, cancelled: stream.phase != .done)
    }

    /// The connection is gone: every open call ends, observers hear `cancelled`.
    func connectionClosed() {
        let open = streams.values
        streams.removeAll()
        for stream in open { streamEnded(stream, cancelled: stream.phase != .done) }
    }

    private func streamEnded(_ stream: ServerStream, cancelled: Bool) {
        if cancelled { observeEnd(stream, Status(code: .cancelled, message: "the client reset the stream or went away")) }
        stream.closed = true
        stream.deadlineTimer?.cancel()
        if cancelled { stream.observer?.cancelled() }
        stream.observer = nil
        stream.outbound = []
        stream.requestMessage = nil
    }

    // MARK: Observers

    /// Nothing at all without observers (no clock read, no lookup): `observeEnd` then
    /// sees `startedAt` 0 and does nothing either.
    private func observeStart(_ stream: ServerStream) {
        guard !configuration.callObservers.isEmpty else { return }
        stream.startedAt = MonotonicClock.now()
        stream.isRegistered = handlers[stream.path] != nil
        let start = ServerCallStart(path: stream.path, isRegistered: stream.isRegistered, peer: peer)
        for observer in configuration.callObservers { observer.callStarted(start) }
    }

    /// Once per call that `observeStart` saw: its status, or CANCELLED when it ended without one.
    private func observeEnd(_ stream: ServerStream, _ status: Status) {
        guard stream.startedAt != 0, !stream.endObserved else { return }
        stream.endObserved = true
        let end = ServerCallEnd(path: stream.path, isRegistered: stream.isRegistered, peer: peer, status: status,
                                nanoseconds: MonotonicClock.now() &- stream.startedAt,
                                requestBytes: stream.requestBytes, responseBytes: stream.responseBytes)
        for observer in configuration.callObservers { observer.callEnded(end) }
    }
}
