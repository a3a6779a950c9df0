import CEpoll
import CNGHTTP2
import Glibc
import POSIXSupport

/// One HTTP/2 connection from a channel to one address: connects without
/// blocking, then multiplexes calls as streams of an nghttp2 client session
/// (nghttp2 holds back streams beyond the server's MAX_CONCURRENT_STREAMS).
final class ClientConnection: HTTP2Connection {
    enum State { case connecting, ready, draining, closed }

    private(set) var state = State.connecting
    private let endpoint: Endpoint
    private let configuration: GRPCClientConfiguration
    private var pending: [ClientCall] = []
    private var calls: [Int32: ClientCall] = [:]
    private var connectTimer: TimerHandle?
    /// The socket connected; the TLS handshake may still run (state stays `.connecting`).
    private var isTCPConnected = false
    /// Whether any HTTP/2 frame came from the server: a connection that closes before the
    /// first one most likely reached something that is not an h2c gRPC server (a TLS port).
    private var heardFromServer = false
    private weak var channel: ChannelCore?
    /// Its address left the target's resolution: it closes once its calls are done.
    private var isRetired = false
    // Keepalive (GRPCClientConfiguration.keepaliveInterval).
    /// Frames heard from the server, and how many had been at the last keepalive check:
    /// a counter, not a clock read per frame.
    private var framesReceived: UInt64 = 0
    private var framesAtLastCheck: UInt64 = 0
    private var keepaliveTimer: TimerHandle?
    private var pingTimeoutTimer: TimerHandle?
    /// Why the connection was given up (the keepalive), for the calls it fails.
    private var abandonedBecause: String?

    init(transport: any ByteTransport, endpoint: Endpoint, loop: EventLoop, channel: ChannelCore,
         configuration: GRPCClientConfiguration) {
        self.endpoint = endpoint
        self.channel = channel
        self.configuration = configuration
        super.init(transport: transport, loop: loop)
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
            return .failure(RPCError(code: .unavailable, message: error.description))
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
            Syscall.close(fd)
            return .failure(RPCError(code: .unavailable, message: error.description))
        }
        let transport: any ByteTransport
        if let tls = configuration.tls {
            do {
                transport = try tls.session(fd: fd, host: endpoint.host)
            } catch {
                Syscall.close(fd)
                return .failure(RPCError(code: .unavailable, message: "TLS to \(endpoint.authority): \(error)"))
            }
        } else {
            transport = TCPTransport(fd: fd)
        }
        let connection = ClientConnection(transport: transport, endpoint: endpoint, loop: loop, channel: channel,
                                          configuration: configuration)
        do {
            try loop.register(fd, events: EPOLLOUT.rawValue, handler: connection)
        } catch {
            Syscall.close(fd)
            return .failure(RPCError(code: .unavailable, message: "\(error)"))
        }
        connection.connectTimer = loop.schedule(at: configuration.connectTimeout.deadline(from: MonotonicClock.now())) {
            [weak connection] in
            guard let connection, connection.state == .connecting else { return }
            let seconds = configuration.connectTimeout.secondsDouble
            connection.connectFailed(connection.isTCPConnected
                ? "connect to \(endpoint.description): no HTTP/2 SETTINGS from the server within \(seconds)s (TLS handshake included)"
                : "connect to \(endpoint.description): timed out after \(seconds)s")
        }
        return .success(connection)
    }

    var isUsable: Bool { state == .connecting || state == .ready }

    // MARK: Connecting

    override func handleEvents(_ events: UInt32) {
        guard state == .connecting && !isTCPConnected else {
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

    /// TCP is up: the session starts, over TLS after its handshake (which the connect
    /// timer still bounds: the connection is not ready before).
    private func connected() {
        isTCPConnected = true
        loop.unregister(fd)
        do {
            // Prior knowledge (or ALPN h2): nghttp2 sends the client preface with this first SETTINGS.
            try startSession(as: .client, settings: [
                (NGHTTP2_SETTINGS_ENABLE_PUSH, 0),
                (NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, UInt32(configuration.streamWindowSize)),
            ], connectionWindow: configuration.connectionWindowSize)
        } catch {
            connectFailed("\(error)")
        }
    }

    override func handshakeFailed(_ reason: String) {
        connectFailed("TLS handshake with \(endpoint.authority) (\(endpoint.description)) failed: \(reason)")
    }

    /// The transport is up and our preface is on its way; ready only once the server's
    /// SETTINGS arrive (as grpc-go waits for them), so that a listener whose process is
    /// frozen (the kernel accepts for it) gets no calls that would then hang.
    override func transportReady() {}

    private func settingsReceived() {
        guard state == .connecting else { return }
        connectTimer?.cancel()
        state = .ready
        endpoint.connectionSucceeded()
        let waiting = pending
        pending = []
        // Submitted from inside the receive that brought the SETTINGS; its caller
        // flushes them once it returns.
        for call in waiting { submit(call) }
        scheduleKeepalive()
    }

    // MARK: Keepalive

    private func scheduleKeepalive() {
        guard let interval = configuration.keepaliveInterval, !isClosed else { return }
        keepaliveTimer = loop.schedule(at: interval.deadline(from: MonotonicClock.now())) { [weak self] in
            self?.keepaliveCheck()
        }
    }

    /// Every interval: a connection that heard something, or has no call to worry about,
    /// waits another interval; one that heard nothing with calls open asks with a PING.
    private func keepaliveCheck() {
        guard !isClosed, state == .ready || state == .draining, let session else { return }
        let heard = framesReceived != framesAtLastCheck
        framesAtLastCheck = framesReceived
        if heard || (calls.isEmpty && pending.isEmpty && !configuration.keepaliveWithoutCalls) {
            scheduleKeepalive()
            return
        }
        guard nghttp2_submit_ping(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nil) == 0 else {
            scheduleKeepalive()  // only without memory; try again later
            return
        }
        flush()
        let timeout = configuration.keepaliveTimeout
        pingTimeoutTimer = loop.schedule(at: timeout.deadline(from: MonotonicClock.now())) { [weak self] in
            guard let self, !self.isClosed else { return }
            let reason = "no answer to a keepalive PING within \(timeout.secondsDouble)s"
            self.abandonedBecause = reason
            // Dead, not merely closed: the address backs off, and it is logged as unreachable.
            self.endpoint.connectionFailed(self, message: "connection to \(self.endpoint.description): \(reason)")
            self.close()
        }
    }

    private func pingAcknowledged() {
        guard let timer = pingTimeoutTimer else { return }
        timer.cancel()
        pingTimeoutTimer = nil
        framesAtLastCheck = framesReceived
        scheduleKeepalive()
    }

    private func connectFailed(_ message: String) {
        guard state == .connecting else { return }
        connectTimer?.cancel()
        state = .closed
        loop.unregister(fd)
        transport.close()
        endpoint.connectionFailed(self, message: message)
        channel?.addressFailed(endpoint)
        // Nothing was sent: these calls may go elsewhere.
        let waiting = pending
        pending = []
        for call in waiting { channel?.retryOrFail(call, RPCError(code: .unavailable, message: message)) }
    }

    /// The address is no longer the target's: no new calls; those in flight finish, then
    /// the connection closes. One still connecting closes at once (its waiting calls, never
    /// sent, go to other addresses).
    func retire() {
        isRetired = true
        switch state {
        case .connecting:
            close()
        case .ready, .draining:
            state = .draining
            closeIfRetiredAndIdle()
        case .closed:
            break
        }
    }

    private func closeIfRetiredAndIdle() {
        guard isRetired, calls.isEmpty, pending.isEmpty, !isClosed else { return }
        closeAfterFlushing()
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
            channel?.retryOrFail(call, RPCError(code: .unavailable, message: "connection to \(endpoint.description) is closing"))
            return
        }
        var headers = HeaderBlock()
        headers.add(":method", "POST")
        headers.add(":scheme", configuration.tls == nil ? "http" : "https")
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
        if call.compressed, let coding = configuration.compression { headers.add("grpc-encoding", coding.rawValue) }
        headers.add("grpc-accept-encoding", ServerCallHandler.acceptedEncodings)
        for (name, value) in call.metadata { headers.add(name, value) }
        var provider = HTTP2Connection.bodyProvider
        let streamID = headers.withNameValues { nva, count in
            nghttp2_submit_request(session, nil, nva, count, &provider, Unmanaged.passUnretained(call).toOpaque())
        }
        guard streamID > 0 else {
            // Out of stream ids, or the session is going away: a fresh connection takes it.
            state = .draining
            endpoint.connectionDraining(self)
            channel?.retryOrFail(call, RPCError(code: .unavailable, message: String(cString: nghttp2_strerror(streamID))))
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
        // Fails only for a stream nghttp2 has closed already: then the call is ending anyway.
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), call.streamID, NGHTTP2_CANCEL.rawValue)
        flush()
    }

    /// The call of a stream: its user data, set by `nghttp2_submit_request`.
    private func call(_ streamID: Int32) -> ClientCall? {
        guard let pointer = nghttp2_session_get_stream_user_data(session, streamID) else { return nil }
        return Unmanaged<ClientCall>.fromOpaque(pointer).takeUnretainedValue()
    }

    override func readBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>) -> Int {
        guard let call = call(streamID) else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
        call.sent = true
        let count = call.copyBody(into: buffer)
        if call.bodyOffset == call.bodyCount { flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue }
        return count
    }

    override func header(_ frame: UnsafePointer<nghttp2_frame>, name nameBuffer: UnsafeBufferPointer<UInt8>,
                         value valueBuffer: UnsafeBufferPointer<UInt8>) {
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue), let call = call(frame.pointee.hd.stream_id),
              let name = nameBuffer.baseAddress, let value = valueBuffer.baseAddress else { return }
        let category = frame.pointee.headers.cat
        let nameLength = nameBuffer.count, valueLength = valueBuffer.count
        if name.equals(":status", length: nameLength) {
            call.httpStatus = Int(value.string(length: valueLength))
        } else if name.equals("grpc-status", length: nameLength) {
            let text = value.string(length: valueLength)
            if let code = Status.parseCode(text) { call.grpcStatus = code } else { call.grpcStatusText = text }
        } else if name.equals("grpc-message", length: nameLength) {
            call.grpcMessage = value.string(length: valueLength)
        } else if name.equals("content-type", length: nameLength) {
            // The protocol's, not metadata.
        } else if name.equals("grpc-encoding", length: nameLength) {
            call.deframer.messageEncoding = value.string(length: valueLength)
        } else if name.pointee != UInt8(ascii: ":") && !name.hasPrefix("grpc-", length: nameLength) {
            let field = (name: name.string(length: nameLength), value: value.string(length: valueLength))
            // A Trailers-Only response (one HEADERS frame that ends the stream) is all trailers.
            let endsStream = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
            if category == NGHTTP2_HCAT_HEADERS || endsStream { call.trailers.append(field) } else { call.headers.append(field) }
        }
    }

    override func dataReceived(streamID: Int32, _ bytes: UnsafeRawBufferPointer) {
        guard let call = call(streamID), call.failure == nil else { return }
        do {
            try call.deframer.append(bytes)
            while let message = try call.deframer.next() {
                call.messageCount += 1
                if call.messageCount == 1 { call.message = message }
            }
        } catch {
            // grpc-go's client answers RESOURCE_EXHAUSTED for an oversized response too.
            call.failure = error.rpcError
            reset(call)
        }
    }

    override func streamClosed(_ streamID: Int32, errorCode: UInt32) {
        guard let call = calls.removeValue(forKey: streamID) else { return }
        defer { closeIfRetiredAndIdle() }
        call.connection = nil
        if call.completed { return }
        // Refused before processing: safe to send again elsewhere.
        if errorCode == NGHTTP2_REFUSED_STREAM.rawValue && call.grpcStatus == nil && call.httpStatus == nil {
            channel?.retryOrFail(call, RPCError(code: .unavailable, message: "stream refused by \(endpoint.description)"))
            return
        }
        if call.cancelRequested {
            call.fail(.cancelled, "call cancelled")
            return
        }
        call.complete(call.outcome(resetCode: errorCode))
    }

    /// GOAWAY: the calls in flight finish (or fail and are retried); new calls go elsewhere.
    override func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        heardFromServer = true
        framesReceived &+= 1
        let type = frame.pointee.hd.type, isAck = frame.pointee.hd.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) != 0
        if type == UInt8(NGHTTP2_SETTINGS.rawValue) && !isAck { settingsReceived() }
        if type == UInt8(NGHTTP2_PING.rawValue) && isAck { pingAcknowledged() }
        guard type == UInt8(NGHTTP2_GOAWAY.rawValue), state == .ready else { return }
        state = .draining
        endpoint.connectionDraining(self)
    }

    override func didClose() {
        let wasConnecting = state == .connecting
        let cause = (abandonedBecause ?? transportFailure).map { " (\($0))" } ?? ""
        let closed = heardFromServer || transport.needsHandshake
            ? "connection to \(endpoint.description) closed\(cause)"
            : "connection to \(endpoint.description) closed before the server's first HTTP/2 frame"
                + " (is it a TLS port? then use --tls, or --backend-tls in the gateway)"
        state = .closed
        connectTimer?.cancel()
        keepaliveTimer?.cancel()
        pingTimeoutTimer?.cancel()
        endpoint.connectionClosed(self)
        // Lost, not retired (nor closed with the channel, which ignores this): the target
        // may have moved.
        if !isRetired { channel?.addressFailed(endpoint) }
        let inFlight = calls.values
        calls.removeAll()
        let waiting = pending
        pending = []
        for call in waiting { channel?.retryOrFail(call, RPCError(code: .unavailable, message: closed)) }
        for call in inFlight where !call.completed {
            call.connection = nil
            if !call.sent || wasConnecting {
                channel?.retryOrFail(call, RPCError(code: .unavailable, message: closed))
            } else if call.cancelRequested {
                call.fail(.cancelled, "call cancelled")
            } else {
                call.fail(.unavailable, heardFromServer
                    ? "connection to \(endpoint.description) closed during the call\(cause)" : closed)
            }
        }
    }
}
