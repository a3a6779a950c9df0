import CEpoll
import CNGHTTP2
import Glibc
import POSIXSupport

/// One HTTP/2 connection from a channel to one address: connects without
/// blocking, then multiplexes calls as streams of an nghttp2 client session
/// (nghttp2 holds back streams beyond the server's MAX_CONCURRENT_STREAMS).
final class ClientConnection: HTTP2Socket {
    enum State { case connecting, ready, draining, closed }

    private(set) var state = State.connecting
    private let endpoint: Endpoint
    private let configuration: GRPCClientConfiguration
    private var pending: [ClientCall] = []
    private var calls: [Int32: ClientCall] = [:]
    private var connectTimer: TimerHandle?
    private weak var channel: ChannelCore?

    init(fd: Int32, endpoint: Endpoint, loop: EventLoop, channel: ChannelCore, configuration: GRPCClientConfiguration) {
        self.endpoint = endpoint
        self.channel = channel
        self.configuration = configuration
        super.init(fd: fd, loop: loop)
    }

    /// Opens a non-blocking socket to `endpoint` and starts connecting.
    static func connect(to endpoint: Endpoint, loop: EventLoop, channel: ChannelCore,
                        configuration: GRPCClientConfiguration) -> Result<ClientConnection, RPCError> {
        let address = endpoint.address
        let fd: Int32
        do {
            fd = try Syscall.run("socket") {
                socket(address.family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            }
        } catch {
            return .failure(RPCError(.unavailable, error.description))
        }
        do {
            try Syscall.disableNagle(fd)
            try address.withSockaddr { pointer, length throws(SystemError) in
                do throws(SystemError) {
                    try Syscall.run("connect to \(endpoint.description)") { Glibc.connect(fd, pointer, length) }
                } catch where error.code == EINPROGRESS {
                    // The usual answer of a non-blocking connect: EPOLLOUT tells how it went.
                }
            }
        } catch {
            Glibc.close(fd)
            return .failure(RPCError(.unavailable, error.description))
        }
        let connection = ClientConnection(fd: fd, endpoint: endpoint, loop: loop, channel: channel, configuration: configuration)
        do {
            try loop.register(fd, events: EPOLLOUT.rawValue, handler: connection)
        } catch {
            Glibc.close(fd)
            return .failure(RPCError(.unavailable, "\(error)"))
        }
        connection.connectTimer = loop.schedule(at: MonotonicClock.now() + UInt64(configuration.connectTimeoutSeconds * 1e9)) {
            [weak connection] in
            guard let connection, connection.state == .connecting else { return }
            connection.connectFailed("connect to \(endpoint.description): timed out after \(configuration.connectTimeoutSeconds)s")
        }
        return .success(connection)
    }

    var isUsable: Bool { state == .connecting || state == .ready }

    // MARK: Connecting

    override func handleEvents(_ events: UInt32) {
        guard state == .connecting else {
            super.handleEvents(events)
            return
        }
        var error: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) != 0 { error = errno }
        if error != 0 || events & (EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 {
            connectFailed("connect to \(endpoint.description): \(String(cString: strerror(error != 0 ? error : ECONNREFUSED)))")
            return
        }
        connected()
    }

    private func connected() {
        connectTimer?.cancel()
        loop.unregister(fd)
        var session: OpaquePointer?
        guard nghttp2_session_client_new(&session, ClientConnection.callbacks, Unmanaged.passUnretained(self).toOpaque()) == 0,
              let session else {
            connectFailed("nghttp2_session_client_new failed")
            return
        }
        state = .ready
        do {
            // Prior knowledge: nghttp2 sends the client preface with this first SETTINGS.
            try startSession(session, settings: [
                (NGHTTP2_SETTINGS_ENABLE_PUSH, 0),
                (NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, UInt32(configuration.streamWindowSize)),
            ], connectionWindow: configuration.connectionWindowSize)
        } catch {
            connectFailed("\(error)")
            return
        }
        endpoint.connectionSucceeded()
        let waiting = pending
        pending = []
        for call in waiting { submit(call) }
        flush()
    }

    private func connectFailed(_ message: String) {
        guard state == .connecting else { return }
        connectTimer?.cancel()
        state = .closed
        loop.unregister(fd)
        Glibc.close(fd)
        endpoint.connectionFailed(self, message: message)
        // Nothing was sent: these calls may go elsewhere.
        let waiting = pending
        pending = []
        for call in waiting { channel?.retryOrFail(call, RPCError(.unavailable, message)) }
    }

    // MARK: Calls

    /// Starts `call` now, or once the connection is up.
    func start(_ call: ClientCall) {
        call.connection = self
        if state == .connecting {
            pending.append(call)
        } else {
            submit(call)
            flush()
        }
    }

    private func submit(_ call: ClientCall) {
        guard let session, state == .ready else {
            channel?.retryOrFail(call, RPCError(.unavailable, "connection to \(endpoint.description) is closing"))
            return
        }
        var headers = HeaderBlock()
        headers.add(":method", "POST")
        headers.add(":scheme", "http")
        headers.add(":path", call.path)
        headers.add(":authority", endpoint.authority)
        headers.add("te", "trailers")
        if let deadline = call.deadline {
            let now = MonotonicClock.now()
            guard deadline > now else {
                call.fail(.deadlineExceeded, "deadline exceeded before the call was sent")
                return
            }
            headers.add("grpc-timeout", GRPCTimeout(nanoseconds: Int64(min(deadline - now, UInt64(Int64.max)))).headerValue)
        }
        headers.add("content-type", "application/grpc")
        headers.add("user-agent", configuration.userAgent)
        for (name, value) in call.metadata { headers.add(name, value) }
        var provider = nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: clientReadBody)
        let streamID = headers.withNameValues { nva, count in
            nghttp2_submit_request(session, nil, nva, count, &provider, Unmanaged.passUnretained(call).toOpaque())
        }
        guard streamID > 0 else {
            // Out of stream ids, or the session is going away: a fresh connection takes it.
            state = .draining
            endpoint.connectionDraining(self)
            channel?.retryOrFail(call, RPCError(.unavailable, String(cString: nghttp2_strerror(streamID))))
            return
        }
        call.streamID = streamID
        calls[streamID] = call
    }

    /// Cancels a call on this connection: RST_STREAM(CANCEL).
    func reset(_ call: ClientCall) {
        if let index = pending.firstIndex(where: { $0 === call }) {
            pending.remove(at: index)
            return
        }
        guard let session, call.streamID > 0, calls[call.streamID] != nil else { return }
        nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), call.streamID, NGHTTP2_CANCEL.rawValue)
        flush()
    }

    fileprivate func call(_ streamID: Int32) -> ClientCall? {
        guard let pointer = nghttp2_session_get_stream_user_data(session, streamID) else { return nil }
        return Unmanaged<ClientCall>.fromOpaque(pointer).takeUnretainedValue()
    }

    fileprivate func readBody(_ call: ClientCall, into buffer: UnsafeMutablePointer<UInt8>, length: Int,
                              flags: UnsafeMutablePointer<UInt32>) -> Int {
        call.sent = true
        let count = min(length, call.body.count - call.bodyOffset)
        call.body.withUnsafeBytes { raw in
            UnsafeMutableRawPointer(buffer).copyMemory(from: raw.baseAddress! + call.bodyOffset, byteCount: count)
        }
        call.bodyOffset += count
        if call.bodyOffset == call.body.count { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        return count
    }

    fileprivate func header(_ call: ClientCall, category: nghttp2_headers_category, name: UnsafePointer<UInt8>, nameLength: Int,
                            value: UnsafePointer<UInt8>, valueLength: Int) {
        if name.equals(":status", length: nameLength) {
            call.httpStatus = Int(value.string(length: valueLength))
        } else if name.equals("grpc-status", length: nameLength) {
            let text = value.string(length: valueLength)
            if let code = GRPCStatus.parseCode(text) { call.grpcStatus = code } else { call.grpcStatusText = text }
        } else if name.equals("grpc-message", length: nameLength) {
            call.grpcMessage = value.string(length: valueLength)
        } else if name.equals("content-type", length: nameLength) {
            call.contentType = value.string(length: valueLength)
        } else if name.equals("grpc-encoding", length: nameLength) {
            call.deframer.messageEncoding = value.string(length: valueLength)
        } else if name.pointee != UInt8(ascii: ":") && !name.hasPrefix("grpc-", length: nameLength) {
            let field = (name: name.string(length: nameLength), value: value.string(length: valueLength))
            if category == NGHTTP2_HCAT_HEADERS { call.trailers.append(field) } else { call.headers.append(field) }
        }
    }

    fileprivate func data(_ call: ClientCall, _ bytes: UnsafeRawBufferPointer) {
        guard call.failure == nil else { return }
        do {
            try call.deframer.append(bytes)
            while let message = try call.deframer.next() {
                call.messageCount += 1
                if call.messageCount == 1 { call.message = message }
            }
        } catch {
            // grpc-go's client answers RESOURCE_EXHAUSTED for an oversized response too.
            call.failure = error.status
            reset(call)
        }
    }

    fileprivate func streamClosed(_ streamID: Int32, errorCode: UInt32) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        call.connection = nil
        if call.completed { return }
        // Refused before processing: safe to send again elsewhere.
        if errorCode == NGHTTP2_REFUSED_STREAM.rawValue && call.grpcStatus == nil && call.httpStatus == nil {
            channel?.retryOrFail(call, RPCError(.unavailable, "stream refused by \(endpoint.description)"))
            return
        }
        if call.cancelRequested {
            call.fail(.cancelled, "call cancelled")
            return
        }
        call.complete(call.outcome(resetCode: errorCode))
    }

    fileprivate func goAwayReceived(lastStreamID: Int32, errorCode: UInt32) {
        guard state == .ready else { return }
        state = .draining
        endpoint.connectionDraining(self)
    }

    override func didClose() {
        let wasConnecting = state == .connecting
        state = .closed
        connectTimer?.cancel()
        endpoint.connectionClosed(self)
        let inFlight = calls.values
        calls.removeAll()
        let waiting = pending
        pending = []
        for call in waiting { channel?.retryOrFail(call, RPCError(.unavailable, "connection to \(endpoint.description) closed")) }
        for call in inFlight where !call.completed {
            call.connection = nil
            if !call.sent || wasConnecting {
                channel?.retryOrFail(call, RPCError(.unavailable, "connection to \(endpoint.description) closed"))
            } else if call.cancelRequested {
                call.fail(.cancelled, "call cancelled")
            } else {
                call.fail(.unavailable, "connection to \(endpoint.description) closed during the call")
            }
        }
    }

    // MARK: nghttp2 glue

    nonisolated(unsafe) private static let callbacks: OpaquePointer? = {
        var callbacks: OpaquePointer?
        nghttp2_session_callbacks_new(&callbacks)
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let name, let value, frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return 0 }
            let connection = ClientConnection.from(userData)
            guard let call = connection.call(frame.pointee.hd.stream_id) else { return 0 }
            connection.header(call, category: frame.pointee.headers.cat, name: name, nameLength: nameLength,
                              value: value, valueLength: valueLength)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            let connection = ClientConnection.from(userData)
            guard let data, let call = connection.call(streamID) else { return 0 }
            connection.data(call, UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame, frame.pointee.hd.type == UInt8(NGHTTP2_GOAWAY.rawValue) else { return 0 }
            ClientConnection.from(userData).goAwayReceived(lastStreamID: frame.pointee.goaway.last_stream_id,
                                                          errorCode: frame.pointee.goaway.error_code)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            ClientConnection.from(userData).streamClosed(streamID, errorCode: errorCode)
            return 0
        }
        return callbacks
    }()

    fileprivate static func from(_ userData: UnsafeMutableRawPointer?) -> ClientConnection {
        Unmanaged<ClientConnection>.fromOpaque(userData!).takeUnretainedValue()
    }
}

private func clientReadBody(session: OpaquePointer?, streamID: Int32, buffer: UnsafeMutablePointer<UInt8>?, length: Int,
                            flags: UnsafeMutablePointer<UInt32>?, source: UnsafeMutablePointer<nghttp2_data_source>?,
                            userData: UnsafeMutableRawPointer?) -> Int {
    let connection = ClientConnection.from(userData)
    guard let buffer, let flags, let call = connection.call(streamID) else {
        return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }
    return connection.readBody(call, into: buffer, length: length, flags: flags)
}
