import CEpoll
import CNGHTTP2
import Glibc
import POSIXSupport

/// A byte transport driven by an nghttp2 session on one event loop, for both ends of
/// a connection: nghttp2 parses and frames; this class moves the bytes between it and
/// the transport, and hands the session's callbacks to the subclass (`ServerConnection`,
/// `ClientConnection`) as the overridable methods below. The callback table and the
/// user-data bridge to `self` are here, once for both.
class HTTP2Connection: EventHandler {
    let transport: any ByteTransport
    let loop: EventLoop
    private(set) var session: OpaquePointer?
    private var output: [UInt8] = []
    private var outputOffset = 0
    private var watchingWritable = false
    private var inFlush = false
    /// Inside nghttp2_session_mem_recv, whose callbacks must not call mem_send (nghttp2's
    /// programmer's guide, "Remarks"): `flush` waits until it returns, and
    /// `closeAfterFlushing` until then too.
    private var inReceive = false
    private var closeAfterReceive = false
    private(set) var isClosed = false
    /// Until the transport's handshake is done, no frame moves.
    private(set) var isHandshaking = false
    private var handshakeTimer: TimerHandle?

    /// Stop pulling frames from nghttp2 while this much is waiting for the socket.
    private static let outputHighWater = 1 << 20

    var fd: Int32 { transport.fd }

    init(transport: any ByteTransport, loop: EventLoop) {
        self.transport = transport
        self.loop = loop
    }

    deinit {
        if let session { nghttp2_session_del(session) }
    }

    enum Role { case server, client }

    /// Creates the session, queues our SETTINGS and a connection window beyond
    /// nghttp2's 65,535 default, and starts watching the transport.
    /// With a transport that needs a handshake, `handshakeTimeout` bounds it (nil: the
    /// caller's own timer does).
    func startSession(as role: Role, settings: [(nghttp2_settings_id, UInt32)], connectionWindow: Int,
                      handshakeTimeout: Duration? = nil) throws {
        var session: OpaquePointer?
        // Unretained: the session lives inside `self` (deleted in deinit), never longer.
        let userData = Unmanaged.passUnretained(self).toOpaque()
        let rv = switch role {
        case .server: nghttp2_session_server_new(&session, Self.callbacks, userData)
        case .client: nghttp2_session_client_new(&session, Self.callbacks, userData)
        }
        guard rv == 0, let session else { throw NGHTTP2Error(call: "nghttp2_session_new", code: rv) }
        self.session = session
        var entries = settings.map { nghttp2_settings_entry(settings_id: Int32($0.0.rawValue), value: $0.1) }
        let submitted = nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        guard submitted == 0 else { throw NGHTTP2Error(call: "nghttp2_submit_settings", code: submitted) }
        // The connection window is not a setting: it grows with a WINDOW_UPDATE.
        let windowed = nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0,
                                                             Int32(connectionWindow))
        guard windowed == 0 else { throw NGHTTP2Error(call: "nghttp2_session_set_local_window_size", code: windowed) }
        try loop.register(fd, events: EPOLLIN.rawValue | EPOLLRDHUP.rawValue, handler: self)
        guard transport.needsHandshake else {
            transportReady()
            flush()
            return
        }
        // TLS first: our SETTINGS wait in the session until the handshake is done.
        isHandshaking = true
        if let handshakeTimeout {
            handshakeTimer = loop.schedule(at: handshakeTimeout.deadline(from: MonotonicClock.now())) { [weak self] in
                guard let self, self.isHandshaking, !self.isClosed else { return }
                self.isHandshaking = false
                self.handshakeFailed("TLS handshake timed out after \(handshakeTimeout.secondsDouble)s")
            }
        }
        advanceHandshake()
    }

    /// The transport's handshake, one step per readiness event; the session starts
    /// moving frames once it is done.
    private func advanceHandshake() {
        assert(loop.inEventLoop, "a handshake steps on its connection's loop")
        switch transport.handshake() {
        case .done:
            isHandshaking = false
            handshakeTimer?.cancel()
            handshakeTimer = nil
            watch(EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
            transportReady()
            // transportReady's first writes can fail and close the connection.
            guard !isClosed else { return }
            // The peer's first frames may have come with its last handshake flight and
            // sit decrypted in the session, which epoll cannot see.
            readAvailable()
            if !isClosed { flush() }
        case .wantRead:
            watch(EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
        case .wantWrite:
            watch(EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue)
        case .failed(let reason):
            isHandshaking = false
            handshakeTimer?.cancel()
            handshakeTimer = nil
            handshakeFailed(reason)
        }
    }

    // MARK: Session events, for the subclasses (nghttp2's callbacks, on the loop)

    /// A frame's header arrived, before its payload (on_begin_frame).
    func frameBegins(type: UInt8, streamID: Int32) {}
    /// A HEADERS frame starts (on_begin_headers).
    func headersBegin(_ frame: UnsafePointer<nghttp2_frame>) {}
    /// One header field of a HEADERS frame (on_header).
    func header(_ frame: UnsafePointer<nghttp2_frame>, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {}
    /// A whole frame arrived (on_frame_recv).
    func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {}
    /// Payload of a DATA frame (on_data_chunk_recv).
    func dataReceived(streamID: Int32, _ bytes: UnsafeRawBufferPointer) {}
    /// A frame went out (on_frame_send).
    func frameSent(_ frame: UnsafePointer<nghttp2_frame>) {}
    /// A stream closed, with RST_STREAM's error code or 0 (on_stream_close).
    func streamClosed(_ streamID: Int32, errorCode: UInt32) {}
    /// Body bytes for a stream submitted with `bodyProvider` (its read callback): the count
    /// copied, or NGHTTP2_ERR_DEFERRED; end flags go in `flags`.
    func readBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>) -> Int {
        Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
    }

    /// The data provider of every request and response body: it reads through `readBody`.
    static var bodyProvider: nghttp2_data_provider {
        nghttp2_data_provider(source: nghttp2_data_source(ptr: nil), read_callback: readBodyCallback)
    }

    /// A protocol error closed the session (garbage, a bad preface, a violation).
    func protocolError(_ cause: String) {}

    /// The socket is closed; end whatever was in flight on it.
    func didClose() {}

    /// The transport can carry frames (TCP at once, TLS after its handshake).
    func transportReady() {}

    /// The handshake failed or timed out; by default the connection closes.
    func handshakeFailed(_ reason: String) {
        close()
    }

    func handleEvents(_ events: UInt32) {
        if isHandshaking {
            advanceHandshake()
            return
        }
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue) != 0 {
            readAvailable()
        }
        if !isClosed && events & EPOLLOUT.rawValue != 0 {
            writeOutput()
        }
        if !isClosed { flush() }
    }

    private func readAvailable() {
        guard !isClosed, let session else { return }
        let buffer = loop.readBuffer
        // A bounded number of reads per wake-up, so one busy peer cannot starve the loop.
        for _ in 0..<16 {
            let count: Int
            do throws(SystemError) {
                let result = try transport.read(into: buffer)
                guard case .done(let read) = result else { return }
                count = read
            } catch {
                noteTransportFailure(error)
                close()
                return
            }
            if count == 0 {
                close()
                return
            }
            inReceive = true
            let consumed = nghttp2_session_mem_recv(session, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count)
            inReceive = false
            if closeAfterReceive {
                flushThenClose()
                return
            }
            if consumed < 0 {
                // nghttp2 has queued a GOAWAY where one makes sense; send it and
                // close this connection only.
                protocolError(String(cString: nghttp2_strerror(Int32(consumed))))
                flushThenClose()
                return
            }
            if isClosed || (count < buffer.count && transport.shortReadDrainsSocket) { return }
        }
    }

    /// Moves frames from nghttp2 to the socket; closes when neither side wants more.
    func flush() {
        // During a receive, the caller (handleEvents, advanceHandshake) flushes after it.
        guard !isClosed, !inFlush, !inReceive, !isHandshaking, let session else { return }
        inFlush = true
        defer { inFlush = false }
        // Pull frames up to the high-water mark, write them, and go again until
        // nghttp2 has nothing more or the socket is full (EPOLLOUT resumes then).
        var sessionHasMore = true
        while sessionHasMore && !isClosed && !watchingWritable {
            sessionHasMore = false
            while output.count - outputOffset < HTTP2Connection.outputHighWater {
                var data: UnsafePointer<UInt8>?
                let count = nghttp2_session_mem_send(session, &data)
                if count < 0 {
                    close()
                    return
                }
                guard count > 0, let data else { break }
                output.append(contentsOf: UnsafeBufferPointer(start: data, count: count))
                sessionHasMore = output.count - outputOffset >= HTTP2Connection.outputHighWater
            }
            writeOutput()
        }
        if !isClosed && output.isEmpty && nghttp2_session_want_read(session) == 0
            && nghttp2_session_want_write(session) == 0 {
            close()
        }
    }

    var hasPendingOutput: Bool { outputOffset < output.count }

    private func writeOutput() {
        while outputOffset < output.count {
            let written: NonBlocking<Int>
            do {
                written = try output.withUnsafeBytes { raw throws(SystemError) in
                    try transport.write(UnsafeRawBufferPointer(rebasing: raw[outputOffset...]))
                }
            } catch {
                if let error = error as? SystemError { noteTransportFailure(error) }
                close()
                return
            }
            guard case .done(let count) = written else {
                if !watchingWritable {
                    watchingWritable = true
                    watch(EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue)
                }
                return
            }
            guard count > 0 else {
                // write(2) takes at least a byte of a non-empty buffer, or fails.
                close()
                return
            }
            outputOffset += count
        }
        output.removeAll(keepingCapacity: output.capacity <= 256 * 1024)
        outputOffset = 0
        if watchingWritable {
            watchingWritable = false
            watch(EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
            // More frames may have been held back by the high-water mark.
            flush()
        }
    }

    private func watch(_ events: UInt32) {
        do {
            try loop.modify(fd, events: events)
        } catch {
            close()
        }
    }

    /// Sends what nghttp2 has queued (a GOAWAY) as far as the socket takes it now, then
    /// closes; from a session callback, once the receive it is part of returns.
    func closeAfterFlushing() {
        if inReceive {
            closeAfterReceive = true
        } else {
            flushThenClose()
        }
    }

    private func flushThenClose() {
        if let session {
            while true {
                var data: UnsafePointer<UInt8>?
                let count = nghttp2_session_mem_send(session, &data)
                guard count > 0, let data else { break }
                output.append(contentsOf: UnsafeBufferPointer(start: data, count: count))
            }
        }
        // Best effort: the peer gets the GOAWAY if the socket takes it now; the
        // connection closes whatever the write gives.
        output.withUnsafeBytes { raw in
            guard raw.count > outputOffset else { return }
            do {
                _ = try transport.write(UnsafeRawBufferPointer(rebasing: raw[outputOffset...]))
            } catch {}
        }
        close()
    }

    /// Why the transport failed, in words, when a read or write did ("TLS read (tlsv13
    /// alert certificate required)", "read: Connection reset by peer"); nil otherwise.
    private(set) var transportFailure: String?

    private func noteTransportFailure(_ error: SystemError) {
        guard transportFailure == nil else { return }
        // A TLS failure's words are in the call; EPROTO's own adds nothing.
        transportFailure = error.code == EPROTO ? error.call : error.description
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        handshakeTimer?.cancel()
        loop.unregister(fd)
        transport.close()
        didClose()
    }

    // MARK: nghttp2 glue

    /// The callbacks of every session, server and client; created once, never freed.
    nonisolated(unsafe) private static let callbacks: OpaquePointer? = {  // immutable after creation, read by nghttp2 only
        var callbacks: OpaquePointer?
        guard nghttp2_session_callbacks_new(&callbacks) == 0 else { fatalError("nghttp2_session_callbacks_new: out of memory") }
        nghttp2_session_callbacks_set_on_begin_frame_callback(callbacks) { _, header, userData in
            guard let header else { return 0 }
            HTTP2Connection.from(userData).frameBegins(type: header.pointee.type, streamID: header.pointee.stream_id)
            return 0
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            HTTP2Connection.from(userData).headersBegin(frame)
            return 0
        }
        nghttp2_session_callbacks_set_on_header_callback(callbacks) { _, frame, name, nameLength, value, valueLength, _, userData in
            guard let frame, let name, let value else { return 0 }
            HTTP2Connection.from(userData).header(frame, name: UnsafeBufferPointer(start: name, count: nameLength),
                                              value: UnsafeBufferPointer(start: value, count: valueLength))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            HTTP2Connection.from(userData).frameReceived(frame)
            return 0
        }
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks) { _, _, streamID, data, length, userData in
            guard let data else { return 0 }
            HTTP2Connection.from(userData).dataReceived(streamID: streamID, UnsafeRawBufferPointer(start: data, count: length))
            return 0
        }
        nghttp2_session_callbacks_set_on_frame_send_callback(callbacks) { _, frame, userData in
            guard let frame else { return 0 }
            HTTP2Connection.from(userData).frameSent(frame)
            return 0
        }
        nghttp2_session_callbacks_set_on_stream_close_callback(callbacks) { _, streamID, errorCode, userData in
            HTTP2Connection.from(userData).streamClosed(streamID, errorCode: errorCode)
            return 0
        }
        return callbacks
    }()

    /// The socket behind a session's user data (set in `startSession`).
    fileprivate static func from(_ userData: UnsafeMutableRawPointer?) -> HTTP2Connection {
        Unmanaged<HTTP2Connection>.fromOpaque(userData!).takeUnretainedValue()
    }
}

/// The read callback of `HTTP2Connection.bodyProvider` (nghttp2_data_source_read_callback).
private func readBodyCallback(session: OpaquePointer?, streamID: Int32, buffer: UnsafeMutablePointer<UInt8>?, length: Int,
                              flags: UnsafeMutablePointer<UInt32>?, source: UnsafeMutablePointer<nghttp2_data_source>?,
                              userData: UnsafeMutableRawPointer?) -> Int {
    guard let buffer, let flags else { return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue) }
    return HTTP2Connection.from(userData).readBody(streamID: streamID, into: UnsafeMutableRawBufferPointer(start: buffer, count: length),
                                               flags: flags)
}
