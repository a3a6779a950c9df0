import CNGHTTP2
import POSIXSupport

/// One accepted HTTP/2 connection: the nghttp2 server session over its transport,
/// owned by one event loop. This class is the session adapter: it turns frames into
/// the events of its `ServerCallHandler` and the handler's answers into frames, and
/// keeps what belongs to the connection (GOAWAY, the client's stream ids).
final class ServerConnection: HTTP2Connection, ServerStreamSink {
    private let core: ServerCore
    private lazy var calls = ServerCallHandler(sink: self, handlers: core.handlers, configuration: core.configuration, loop: loop,
                                               peer: peer)
    /// Observers were told it opened (and so are told it closed).
    private var observedOpen = false
    private var isDraining = false
    /// The last stream id of our GOAWAY: nghttp2 ignores the client's streams above it.
    private var goawayLastStreamID: Int32 = .max
    private var clientStreamIDs = ClientStreamIDs()
    let peer: String
    // The keepalive policy (GRPCServerConfiguration.KeepalivePolicy).
    /// When the client's last PING came (monotonic ns; 0: none yet).
    private var lastPingAt: UInt64 = 0
    private var pingStrikes = 0
    /// DATA or HEADERS went out since the last PING: the next one is no strike.
    private var pingStrikesForgiven = false
    static let maximumPingStrikes = 2
    /// The connection-age timers (GRPCServerConfiguration.maximumConnectionAge).
    private var ageTimers: [TimerHandle] = []

    init(transport: any ByteTransport, peer: String, loop: EventLoop, core: ServerCore) {
        self.peer = peer
        self.core = core
        super.init(transport: transport, loop: loop)
    }

    /// Creates the session, sends our SETTINGS and starts watching the socket.
    func start() throws {
        let configuration = core.configuration
        try startSession(as: .server, settings: [
            (NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, configuration.maximumConcurrentStreams),
            (NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, UInt32(configuration.streamWindowSize)),
            (NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, UInt32(configuration.maximumHeaderListSize)),
        ], connectionWindow: configuration.connectionWindowSize, handshakeTimeout: configuration.tlsHandshakeTimeout)
        observedOpen = true
        for observer in configuration.callObservers { observer.connectionOpened(peer: peer) }
        if let age = configuration.maximumConnectionAge { scheduleAgeLimit(age, grace: configuration.maximumConnectionAgeGrace) }
    }

    // MARK: Connection age

    /// At `age` (jittered by ±10 %) a shutdown notice (GOAWAY with the largest stream id:
    /// "stop opening streams"), then after a second, time for streams already on their
    /// way, the real GOAWAY naming the last stream taken; its calls finish and the
    /// connection closes, or at `grace` after the notice it is closed with them.
    private func scheduleAgeLimit(_ age: Duration, grace: Duration?) {
        let jittered = age.secondsDouble * Double.random(in: 0.9...1.1)
        let noticeAt = MonotonicClock.now() &+ UInt64(jittered * 1e9)
        ageTimers.append(loop.schedule(at: noticeAt) { [weak self] in
            guard let self, !self.isClosed, !self.isDraining, let session = self.session else { return }
            self.core.logger.debug("connection reached its maximum age: GOAWAY", metadata: ["peer": "\(self.peer)"])
            // Fails only without memory: then the real GOAWAY below is the only one.
            _ = nghttp2_submit_shutdown_notice(session)
            self.flush()
            self.ageTimers.append(self.loop.schedule(at: MonotonicClock.now() &+ 1_000_000_000) { [weak self] in
                self?.startDraining()
            })
            if let grace {
                self.ageTimers.append(self.loop.schedule(at: grace.deadline(from: MonotonicClock.now())) { [weak self] in
                    guard let self, !self.isClosed else { return }
                    self.core.logger.debug("connection past its maximum age's grace: closed", metadata: ["peer": "\(self.peer)"])
                    self.close()
                })
            }
        })
    }

    // MARK: Pings

    /// A PING from the client (nghttp2 answers it): grpc-go's enforcement, see
    /// `GRPCServerConfiguration.KeepalivePolicy`.
    private func pingReceived() {
        let now = MonotonicClock.now()
        defer { lastPingAt = now }
        if pingStrikesForgiven {
            pingStrikesForgiven = false
            pingStrikes = 0
            return
        }
        let policy = core.configuration.keepalivePolicy
        let minimum: UInt64 = calls.isIdle && !policy.permitWithoutCalls
            ? 2 * 3600 * 1_000_000_000 : UInt64(max(0, policy.minimumInterval.saturatingNanoseconds))
        if lastPingAt != 0 && now &- lastPingAt < minimum { pingStrikes += 1 }
        guard pingStrikes > Self.maximumPingStrikes, let session else { return }
        core.logger.info("client pings too often: GOAWAY ENHANCE_YOUR_CALM", metadata: ["peer": "\(peer)"])
        let debug = Array("too_many_pings".utf8)
        let rv = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), nghttp2_session_get_last_proc_stream_id(session),
                                       NGHTTP2_ENHANCE_YOUR_CALM.rawValue, debug, debug.count)
        // The GOAWAY goes out if the socket takes it; the connection closes either way.
        if rv != 0 { core.logger.debug("GOAWAY not submitted", metadata: ["cause": "\(NGHTTP2Error(call: "nghttp2_submit_goaway", code: rv))"]) }
        closeAfterFlushing()
    }

    /// A client that cannot complete TLS (no h2, an untrusted certificate, cleartext on
    /// this port) is dropped; the server goes on serving.
    override func handshakeFailed(_ reason: String) {
        core.logger.info("TLS handshake failed", metadata: ["peer": "\(peer)", "cause": "\(reason)"])
        close()
    }

    override func protocolError(_ cause: String) {
        core.logger.debug("closing connection", metadata: ["peer": "\(peer)", "cause": "\(cause)"])
    }

    /// Ends every call on the closed socket: observers hear `cancelled`.
    override func didClose() {
        for timer in ageTimers { timer.cancel() }
        calls.connectionClosed()
        if observedOpen {
            for observer in core.configuration.callObservers { observer.connectionClosed(peer: peer) }
        }
        core.connectionClosed(self)
    }

    // MARK: Graceful shutdown

    /// GOAWAY with the last stream we took: calls in flight finish, new ones go elsewhere.
    func startDraining() {
        guard !isClosed, !isDraining, let session else { return }
        isDraining = true
        goawayLastStreamID = nghttp2_session_get_last_proc_stream_id(session)
        let rv = nghttp2_submit_goaway(session, UInt8(NGHTTP2_FLAG_NONE.rawValue),
                                       goawayLastStreamID, NGHTTP2_NO_ERROR.rawValue, nil, 0)
        // Fails only without memory: then the connection just closes when drained or at the timeout.
        assert(rv == 0, "nghttp2_submit_goaway: \(NGHTTP2Error(call: "nghttp2_submit_goaway", code: rv))")
        flush()
        closeIfDrained()
    }

    private func closeIfDrained() {
        guard isDraining, calls.isIdle, !isClosed else { return }
        flush()
        if !isClosed && !hasPendingOutput { close() }
    }

    // MARK: Frames in

    /// A HEADERS frame starts (before nghttp2 reads it): a lower stream id than one the
    /// client used is a connection error nghttp2 does not raise itself (see ClientStreamIDs).
    override func frameBegins(type: UInt8, streamID: Int32) {
        // Even ids are ours: nghttp2 refuses a client's HEADERS on them itself.
        guard type == UInt8(NGHTTP2_HEADERS.rawValue), streamID & 1 == 1, let session else { return }
        switch clientStreamIDs.headersFrame(on: streamID, isOpen: calls.hasStream(streamID)) {
        case .newStream, .openStream, .resetByServer:
            return
        case .closed where isDraining && streamID > goawayLastStreamID:
            return // a stream nghttp2 ignored after our GOAWAY
        case .lowerThanUsed:
            protocolError("HEADERS on stream \(streamID), below stream \(clientStreamIDs.highest) (RFC 9113 §5.1.1)")
            terminate(session, NGHTTP2_PROTOCOL_ERROR)
        case .closed:
            protocolError("HEADERS on closed stream \(streamID) (RFC 9113 §5.1)")
            terminate(session, NGHTTP2_STREAM_CLOSED)
        }
    }

    /// GOAWAY with `error`, then the connection closes once it is out.
    private func terminate(_ session: OpaquePointer, _ error: nghttp2_error_code) {
        // Fails only without memory for the frame: then close without it.
        if nghttp2_session_terminate_session(session, error.rawValue) != 0 { close() }
    }

    override func headersBegin(_ frame: UnsafePointer<nghttp2_frame>) {
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue),
              frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST else { return }
        calls.beginStream(frame.pointee.hd.stream_id)
    }

    override func header(_ frame: UnsafePointer<nghttp2_frame>, name: UnsafeBufferPointer<UInt8>, value: UnsafeBufferPointer<UInt8>) {
        guard frame.pointee.hd.type == UInt8(NGHTTP2_HEADERS.rawValue) else { return }
        calls.header(on: frame.pointee.hd.stream_id, name: name, value: value)
    }

    override func frameReceived(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        if header.type == UInt8(NGHTTP2_PING.rawValue) {
            if header.flags & UInt8(NGHTTP2_FLAG_ACK.rawValue) == 0 { pingReceived() }
            return
        }
        guard header.stream_id != 0, calls.hasStream(header.stream_id) else { return }
        let endStream = header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0
        if header.type == UInt8(NGHTTP2_HEADERS.rawValue) && frame.pointee.headers.cat == NGHTTP2_HCAT_REQUEST {
            calls.requestHeadersReceived(on: header.stream_id)
        }
        if endStream && (header.type == UInt8(NGHTTP2_DATA.rawValue) || header.type == UInt8(NGHTTP2_HEADERS.rawValue)) {
            calls.requestEnded(on: header.stream_id)
        }
    }

    override func dataReceived(streamID: Int32, _ bytes: UnsafeRawBufferPointer) {
        calls.dataReceived(on: streamID, bytes)
    }

    /// A frame went out: remember our resets; note an answer that left before the request ended.
    override func frameSent(_ frame: UnsafePointer<nghttp2_frame>) {
        let header = frame.pointee.hd
        if header.type == UInt8(NGHTTP2_DATA.rawValue) || header.type == UInt8(NGHTTP2_HEADERS.rawValue) {
            pingStrikesForgiven = true
        }
        if header.type == UInt8(NGHTTP2_RST_STREAM.rawValue) {
            clientStreamIDs.serverReset(header.stream_id)
            return
        }
        guard header.type == UInt8(NGHTTP2_HEADERS.rawValue), header.flags & UInt8(NGHTTP2_FLAG_END_STREAM.rawValue) != 0 else { return }
        calls.answerSent(on: header.stream_id)
    }

    override func streamClosed(_ streamID: Int32, errorCode: UInt32) {
        calls.streamClosed(streamID)
        if isDraining { closeIfDrained() }
    }

    override func readBody(streamID: Int32, into buffer: UnsafeMutableRawBufferPointer, flags: UnsafeMutablePointer<UInt32>) -> Int {
        switch calls.readBody(on: streamID, into: buffer) {
        case .bytes(let count):
            return count
        case .last(let count):
            // The trailers end the stream, not this DATA.
            flags.pointee |= NGHTTP2_DATA_FLAG_EOF.rawValue | NGHTTP2_DATA_FLAG_NO_END_STREAM.rawValue
            return count
        case .deferred:
            return Int(NGHTTP2_ERR_DEFERRED.rawValue)
        case .unknownStream:
            return Int(NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE.rawValue)
        }
    }

    // MARK: Frames out (ServerStreamSink)

    func submitResponse(on streamID: Int32, _ headers: HeaderBlock, hasBody: Bool) {
        var provider = HTTP2Connection.bodyProvider
        let rv = headers.withNameValues { nva, count in
            hasBody ? nghttp2_submit_response(session, streamID, nva, count, &provider)
                    : nghttp2_submit_response(session, streamID, nva, count, nil)
        }
        // Fails only for a stream nghttp2 has closed already (a reset crossed our answer).
        if rv != 0 { core.logger.trace("response not submitted", metadata: ["stream": "\(streamID)", "cause": "\(NGHTTP2Error(call: "nghttp2_submit_response", code: rv))"]) }
    }

    func resumeBody(on streamID: Int32) {
        // NGHTTP2_ERR_INVALID_ARGUMENT: the stream is gone or its body not deferred; nothing to resume.
        _ = nghttp2_session_resume_data(session, streamID)
    }

    func submitTrailers(on streamID: Int32, _ trailers: HeaderBlock) {
        let rv = trailers.withNameValues { nva, count in nghttp2_submit_trailer(session, streamID, nva, count) }
        if rv != 0 { core.logger.trace("trailers not submitted", metadata: ["stream": "\(streamID)", "cause": "\(NGHTTP2Error(call: "nghttp2_submit_trailer", code: rv))"]) }
    }

    func stopRequest(on streamID: Int32) {
        // Fails only for a stream already closed, which needs no stopping.
        _ = nghttp2_submit_rst_stream(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), streamID, NGHTTP2_NO_ERROR.rawValue)
    }

    func schedule(at deadline: UInt64, _ task: @escaping () -> Void) -> TimerHandle {
        loop.schedule(at: deadline, task)
    }
}
