import CNGHTTP2
import Dispatch
import Logging
import CEpoll
import Glibc
import POSIXSupport

/// One accepted HTTP/2 connection: an nghttp2 server session over a non-blocking
/// socket, owned by one event loop. nghttp2 parses and frames; this class moves
/// bytes between it and the socket and turns its callbacks into gRPC calls.
final class ServerConnection: HTTP2Socket {
    private let core: ServerCore
    private var streams: [Int32: ServerStream] = [:]
    private var isDraining = false
    /// The last stream id of our GOAWAY: nghttp2 ignores the client's streams above it.
    private var goawayLastStreamID: Int32 = .max
    private var clientStreamIDs = ClientStreamIDs()
    let peer: String

    /// After our answer, request bytes we read and drop before asking the client to stop
    /// (see `discard`): a short tail is still checked by nghttp2, a real body is stopped.
    static let discardLimit = 64 * 1024

    init(fd: Int32, peer: String, loop: EventLoop, core: ServerCore) {
        self.peer = peer
        self.core = core
        super.init(fd: fd, loop: loop)
    }

    /// Creates the session, sends our SETTINGS and starts watching the socket.
    func start() throws {
        var session: OpaquePointer?
        let rv = nghttp2_session_server_new2(&session, ServerConnection.callbacks,
                                             Unmanaged.passUnretained(self).toOpaque(), nil)
        guard rv == 0, let session else { throw NGHTTP2Error(call: "nghttp2_session_server_new2", code: rv) }
        let configuration = core.configuration
        try startSession(session, settings: [
            (NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, configuration.maximumConcurrentStreams),
            (NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, UInt32(configuration.streamWindowSize)),
            (NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, UInt32(configuration.maximumHeaderListSize)),
        ], connectionWindow: configuration.connectionWindowSize)
    }

    override func protocolError(_ cause: String) {
        core.logger.debug("closing connection", metadata: ["peer": "\(peer)", "cause": "\(cause)"])
    }

    /// Ends every call on the closed socket: observers hear `cancelled`.
    override func didClose() {
        let open = streams.values
        streams.removeAll()
        for stream in open { streamEnded(stream, cancelled: stream.phase != .done) }
        core.connectionClosed(self)
    }

    // MARK: Graceful shutdown

    /// GOAWAY with the last stream we took: calls in flight finish, new ones go elsewhere.
    func startDraining() {
        guard !isClosed, !isDraining, let session else { return }
        isDraining = true
        goawayLastStreamID = nghttp2_session_get_last_proc_stream_id(session)
        nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue),
                              goawayLastStreamID, NGHTTP2_NO_ERROR.rawValue, nil, 0)
        flush()
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard isDraining, streams.isEmpty, !isClosed else { return }
        flush()
        if !isClosed && !hasPendingOutput { close() }
    }

    // MARK: Requests

    fileprivate func beginStream(_ id: Int32) {
        let stream = ServerStream(id: id, maximumMessageLength: core.configuration.maximumReceiveMessageLength)
        streams[id] = stream
        nghttp2_session_set_stream_user_data(session, id, Unmanaged.passUnretained(stream).toOpaque())
    }

    fileprivate func stream(_ id: Int32) -> ServerStream? {
        guard let pointer = nghttp2_session_get_stream_user_data(session, id) else { return nil }
        return Unmanaged<ServerStream>.fromOpaque(pointer).takeUnretainedValue()
    }

    fileprivate func header(_ stream: ServerStream, name: UnsafePointer<UInt8>, nameLength: Int,
                            value: UnsafePointer<UInt8>, valueLength: Int) {
        if name.pointee == UInt8(ascii: ":") {
            if name.equals(":path", length: nameLength) {
                stream.path = value.string(length: valueLength)
            } else if name.equals(":method", length: nameLength) {
                stream.method = value.string(length: valueLength)
            }
            return
        }
        if name.equals("content-type", length: nameLength) {
            stream.contentType = value.string(length: valueLength)
        } else if name.equals("grpc-timeout", length: nameLength) {
            stream.timeoutHeader = value.string(length: valueLength)
        } else if name.equals("grpc-encoding", length: nameLength) {
            // Only matters once a message arrives compressed: the deframer's status then
            // tells an unsupported encoding (UNIMPLEMENTED) from none at all (INTERNAL).
            stream.messageEncoding = value.string(length: valueLength)
        } else if name.equals("te", length: nameLength) || name.equals("user-agent", length: nameLength)
                    || name.hasPrefix("grpc-", length: nameLength) {
            // Reserved for the protocol.
        } else if stream.metadata.count < 64 {
            stream.metadata.append((name.string(length: nameLength), value.string(length: valueLength)))
        }
    }

    /// The request headers are complete: route the call or refuse it at once.
    fileprivate func requestHeadersReceived(_ stream: ServerStream) {
        guard stream.method == "POST" else {
            respondImmediately(stream, httpStatus: 405,
                               status: GRPCStatus(.unimplemented, "method \(stream.method) not allowed; gRPC uses POST"))
            return
        }
        guard Self.isGRPCContentType(stream.contentType) else {
            // PROTOCOL-HTTP2.md: answer 415 so that a non-gRPC client sees what happened.
            let shown = stream.contentType.isEmpty ? "none" : "\"\(stream.contentType)\""
            respondImmediately(stream, httpStatus: 415,
                               status: GRPCStatus(.internalError, "invalid gRPC request content-type \(shown)"))
            return
        }
        guard let handler = core.handlers[stream.path] else {
            respondImmediately(stream, status: GRPCStatus(.unimplemented, "Method not found: \(stream.path)"))
            return
        }
        if let header = stream.timeoutHeader {
            guard let timeout = GRPCTimeout(header: header) else {
                respondImmediately(stream, status: GRPCStatus(.internalError, "malformed grpc-timeout \"\(header)\""))
                return
            }
            let deadline = MonotonicClock.now() &+ UInt64(timeout.nanoseconds)
            stream.deadline = deadline < UInt64(Int64.max) ? deadline : nil
            if let deadline = stream.deadline {
                stream.deadlineTimer = loop.schedule(at: deadline) { [weak self, weak stream] in
                    guard let self, let stream else { return }
                    self.deadlinePassed(stream)
                }
            }
        }
        stream.handler = handler
        if case .streaming(let makeObserver) = handler {
            let writer = ServerStreamWriter(loop: loop, connection: self, stream: stream)
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

    fileprivate func dataReceived(_ stream: ServerStream, _ bytes: UnsafeRawBufferPointer) {
        guard stream.phase == .receiving, stream.handler != nil else {
            discard(bytes.count, on: stream)
            return
        }
        do {
            try stream.deframer.append(bytes)
            while let message = try stream.deframer.next() {
                stream.messageCount += 1
                switch stream.handler {
                case .unary:
                    guard stream.messageCount == 1 else {
                        respondImmediately(stream, status: GRPCStatus(.internalError,
                            "grpc: more than one request message for a unary method"))
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
            respondImmediately(stream, status: error.status)
        }
    }

    /// END_STREAM from the client.
    fileprivate func requestEnded(_ stream: ServerStream) {
        stream.requestEnded = true
        guard stream.phase == .receiving, let handler = stream.handler else { return }
        if stream.deframer.pendingByteCount > 0 {
            respondImmediately(stream, status: GRPCStatus(.internalError,
                "grpc: request ended inside a message (\(stream.deframer.pendingByteCount) bytes of a partial message)"))
            return
        }
        switch handler {
        case .streaming:
            stream.observer?.inputEnded()
        case .unary(let call):
            guard let request = stream.requestMessage else {
                respondImmediately(stream, status: GRPCStatus(.internalError, "grpc: no request message for a unary method"))
                return
            }
            stream.requestMessage = nil
            stream.phase = .handling
            let context = context(for: stream)
            if request.count <= core.configuration.inlineHandlerLimit {
                completeUnary(stream, Self.run(call, request, context))
            } else {
                // Large requests are handled off the loop so its other calls keep moving.
                let pending = LoopBound((connection: self, stream: stream), loop: loop)
                DispatchQueue.global().async {
                    let result = Self.run(call, request, context)
                    pending.loop.execute {
                        let (connection, stream) = pending.value
                        connection.completeUnary(stream, result)
                        connection.flush()
                    }
                }
            }
        }
    }

    private static func run(_ call: @Sendable ([UInt8], ServerCallContext) throws(GRPCStatus) -> [UInt8],
                            _ request: [UInt8], _ context: ServerCallContext) -> Result<[UInt8], GRPCStatus> {
        do { return .success(try call(request, context)) } catch { return .failure(error) }
    }

    private func completeUnary(_ stream: ServerStream, _ result: Result<[UInt8], GRPCStatus>) {
        // The deadline may have answered already, or the client gone away.
        guard !stream.closed, stream.phase == .handling else { return }
        switch result {
        case .success(let response):
            if let deadline = stream.deadline, MonotonicClock.now() > deadline {
                finish(stream, with: GRPCStatus(.deadlineExceeded, "deadline exceeded"))
                return
            }
            send(response, on: stream)
            finish(stream, with: .ok)
        case .failure(let status):
            finish(stream, with: status)
        }
    }

    private func deadlinePassed(_ stream: ServerStream) {
        guard !stream.closed, stream.phase != .done else { return }
        stream.observer?.cancelled()
        stream.observer = nil
        // The status goes out as trailers; a request still arriving is then stopped by
        // RST_STREAM(NO_ERROR) after our END_STREAM (see discard). An RST_STREAM(CANCEL)
        // here could overtake the trailers and read as CANCELLED.
        finish(stream, with: GRPCStatus(.deadlineExceeded, "deadline exceeded"))
        flush()
    }

    // MARK: Responses

    /// An early error: Trailers-Only, before any message (or trailers if headers went).
    private func respondImmediately(_ stream: ServerStream, httpStatus: Int = 200, status: GRPCStatus) {
        stream.observer?.cancelled()
        stream.observer = nil
        stream.requestMessage = nil
        if stream.headersSent {
            finish(stream, with: status)
            return
        }
        stream.phase = .done
        stream.deadlineTimer?.cancel()
        var headers = HeaderBlock()
        headers.add(":status", String(httpStatus))
        headers.add("content-type", "application/grpc")
        // PROTOCOL-HTTP2.md: with UNIMPLEMENTED for a compressed message, the server names
        // the encodings it accepts; the same header as in any other response.
        headers.add("grpc-accept-encoding", "identity")
        headers.add("grpc-status", String(status.code.rawValue))
        if !status.message.isEmpty { headers.add("grpc-message", GRPCMessageEncoding.encode(status.message)) }
        headers.withNameValues { nva, count in
            _ = nghttp2_submit_response(session, stream.id, nva, count, nil)
        }
    }

    /// Queues one response message; the response headers go out with the first.
    func send(_ message: [UInt8], on stream: ServerStream) {
        guard !stream.closed, stream.phase != .done, stream.finalStatus == nil else { return }
        MessageFramer.appendFrame(message, to: &stream.outbound)
        startOrResumeBody(stream)
    }

    /// Decides the final status; trailers follow the queued messages.
    func finish(_ stream: ServerStream, with status: GRPCStatus) {
        guard !stream.closed, stream.phase != .done, stream.finalStatus == nil else { return }
        stream.deadlineTimer?.cancel()
        if !stream.headersSent {
            respondImmediately(stream, status: status)
            return
        }
        stream.finalStatus = status
        stream.phase = .finishing
        nghttp2_session_resume_data(session, stream.id)
    }

    private func startOrResumeBody(_ stream: ServerStream) {
        if stream.headersSent {
            nghttp2_session_resume_data(session, stream.id)
            return
        }
        stream.headersSent = true
        var headers = HeaderBlock()
        headers.add(":status", "200")
        headers.add("content-type", "application/grpc")
        headers.add("grpc-accept-encoding", "identity")
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil),
                                             read_callback: serverReadBody)
        headers.withNameValues { nva, count in
            _ = nghttp2_submit_response(session, stream.id, nva, count, &provider)
        }
    }

    /// nghttp2 asks for body bytes: queued messages, then trailers.
    fileprivate func readBody(_ stream: ServerStream, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
                              flags: UnsafeMutablePointer<UInt32>) -> Int {
        let available = stream.outbound.count - stream.outboundOffset
        let count = min(available, length)
        if count > 0 {
            stream.outbound.withUnsafeBytes { raw in
                UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + stream.outboundOffset, byteCount: count)
            }
            stream.outboundOffset += count
            if stream.outboundOffset == stream.outbound.count {
                stream.outbound.removeAll(keepingCapacity: stream.outbound.capacity <= 64 * 1024)
                stream.outboundOffset = 0
            }
        }
        if !stream.hasOutbound, let status = stream.finalStatus {
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            stream.phase = .done
            var trailers = HeaderBlock()
            trailers.add("grpc-status", String(status.code.rawValue))
            if !status.message.isEmpty { trailers.add("grpc-message", GRPCMessageEncoding.encode(status.message)) }
            trailers.withNameValues { nva, count in
                _ = nghttp2_submit_trailer(session, stream.id, nva, count)
            }
            return count
        }
        return count > 0 ? count : Int(NGHTTP2_ERR_DEFERRED.rawValue)
    }

    /// A frame went out: remember our resets; note an answer that left before the request ended.
    fileprivate func frameSent(type: UInt8, flags: UInt8, streamID: Int32) {
        if type == UInt8(NGHTTP2_RST_STREAM.rawValue) {
            clientStreamIDs.serverReset(streamID)
            return
        }
        guard type == UInt8(NGHTTP2_HEADERS.rawValue), flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0,
              let stream = streams[streamID], !stream.requestEnded, !stream.closed else { return }
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
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), stream.id, NGHTTP2_NO_ERROR.rawValue)
    }

    /// A HEADERS frame starts (before nghttp2 reads it): a lower stream id than one the
    /// client used is a connection error nghttp2 does not raise itself (see ClientStreamIDs).
    fileprivate func headersFrameBegins(streamID: Int32) {
        // Even ids are ours: nghttp2 refuses a client's HEADERS on them itself.
        guard streamID & 1 == 1, let session else { return }
        switch clientStreamIDs.headersFrame(on: streamID, isOpen: streams[streamID] != nil) {
        case .newStream, .openStream, .resetByServer:
            return
        case .closed where isDraining && streamID > goawayLastStreamID:
            return // a stream nghttp2 ignored after our GOAWAY
        case .lowerThanUsed:
            protocolError("HEADERS on stream \(streamID), below stream \(clientStreamIDs.highest) (RFC 9113 §5.1.1)")
            nghttp2_session_terminate_session(session, NGHTTP2_PROTOCOL_ERROR.rawValue)
        case .closed:
            protocolError("HEADERS on closed stream \(streamID) (RFC 9113 §5.1)")
            nghttp2_session_terminate_session(session, NGHTTP2_STREAM_CLOSED.rawValue)
        }
    }

    fileprivate func streamClosed(_ id: Int32) {
        guard let stream = streams.removeValue(forKey: id) else { return }
        streamEnded(stream, cancelled: stream.phase != .done)
        if isDraining { closeIfDrained() }
    }

    private func streamEnded(_ stream: ServerStream, cancelled: Bool) {
        stream.closed = true
        stream.deadlineTimer?.cancel()
        if cancelled { stream.observer?.cancelled() }
        stream.observer = nil
        stream.outbound = []
        stream.requestMessage = nil
    }

    // MARK: nghttp2 glue

    nonisolated(unsafe) private static let callbacks: OpaquePointer? = {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks) { _, header, userData in
            guard let header, header.pointee.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            ServerConnection.from(userData).headersFrameBegins(streamID: header.pointee.stream_id)
            return 0
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
                  frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return 0 }
            ServerConnection.from(userData).beginStream(frame.pointee.hd.stream_id)
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let name, let value,
                  frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            let connection = ServerConnection.from(userData)
            guard let stream = connection.stream(frame.pointee.hd.stream_id), stream.phase == .receiving else { return 0 }
            connection.header(stream, name: name, nameLength: nameLength, value: value, valueLength: valueLength)
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            let connection = ServerConnection.from(userData)
            let header = frame.pointee.hd
            guard header.stream_id != 0, let stream = connection.stream(header.stream_id) else { return 0 }
            let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            if header.type == UInt8(NGHTTP2_HEADERS.rawValue) && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
                connection.requestHeadersReceived(stream)
            }
            if endStream && (header.type == UInt8(NGHTTP2_DATA.rawValue) || header.type == UInt8(NGHTTP2_HEADERS.rawValue)) {
                connection.requestEnded(stream)
            }
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            let connection = ServerConnection.from(userData)
            guard let data, let stream = connection.stream(streamID) else { return 0 }
            connection.dataReceived(stream, UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            ServerConnection.from(userData).frameSent(type: frame.pointee.hd.type, flags: frame.pointee.hd.flags,
                                                      streamID: frame.pointee.hd.stream_id)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, _, userData in
            ServerConnection.from(userData).streamClosed(streamID)
            return 0
        }
        return callbacks
    }()

    fileprivate static func from(_ userData: UnsafeMutableRawPointer?) -> ServerConnection {
        Unmanaged<ServerConnection>.fromOpaque(userData!).takeUnretainedValue()
    }
}

/// The body read callback of every server response (nghttp2_data_source_read_callback).
private func serverReadBody(session: OpaquePointer?, streamID: Int32, buffer: UnsafeMutablePointer<UInt8>?, length: Int,
                            flags: UnsafeMutablePointer<UInt32>?, source: UnsafeMutablePointer<nghttp2_data_source>?,
                            userData: UnsafeMutableRawPointer?) -> Int {
    let connection = ServerConnection.from(userData)
    guard let buffer, let flags, let stream = connection.stream(streamID) else {
        return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    return connection.readBody(stream, into: buffer, length: length, flags: flags)
}
