import CMicroHTTPD
import Foundation
import H2GRPC
import Logging
import Synchronization

/// The REST front: libmicrohttpd takes HTTP/1.1 requests, OutliersJSON turns a
/// JSON body into a protobuf `OutliersRequest`, the H2GRPC client calls the
/// backend, and the answer goes back as JSON (or protobuf, when asked).
///
/// A request waiting for its backend does not hold a thread: its connection is
/// suspended (MHD_suspend_connection) and resumed by the gRPC completion, so a
/// slow backend costs connections, not threads.
public final class RESTGateway: @unchecked Sendable {
    public let configuration: GatewayConfiguration
    let channel: GRPCChannel
    let logger: Logger
    let metrics: GatewayMetrics
    private var daemon: OpaquePointer?
    private var listeningSocket: ListeningSocket?
    private var acceptor: ConnectionAcceptor?
    /// Set in `start`, before any callback can run; read by every callback.
    private(set) var connections: ConnectionTracker?
    /// libmicrohttpd's own messages (one per aborted connection, say) are debug-level
    /// noise under attack: at most a few a second reach the log.
    let libraryMessages = RateLimiter(perSecond: 5)
    let inFlight = Atomic<Int>(0)
    let draining = Atomic<Bool>(false)

    public init(configuration: GatewayConfiguration, logger: Logger = Logger(label: "outliers.gateway")) throws {
        self.configuration = configuration
        self.logger = logger
        do {
            channel = try GRPCChannel(targets: configuration.backends, configuration: configuration.client)
        } catch {
            throw GatewayError("bad --backend: \(error.status.message)")
        }
        metrics = GatewayMetrics()
    }

    /// The bound address, `127.0.0.1:8080`.
    public var address: String { listeningSocket?.address ?? "" }
    public var port: Int { listeningSocket?.port ?? 0 }
    /// The Prometheus registry behind /metrics.
    public var metricsText: String { String(decoding: metrics.exposition(), as: UTF8.self) }

    public func start() throws {
        let socket = try ListeningSocket.bind(host: configuration.host, port: configuration.port)
        listeningSocket = socket
        let tracker: ConnectionTracker
        do {
            tracker = try ConnectionTracker(limits: .init(
                connections: configuration.maximumConnections,
                connectionsPerClient: configuration.maximumConnectionsPerClient,
                headerNanoseconds: UInt64(configuration.headerTimeoutSeconds * 1e9),
                bodyNanoseconds: UInt64(configuration.bodyTimeoutSeconds * 1e9),
                idleNanoseconds: UInt64(configuration.idleTimeoutSeconds) * 1_000_000_000), logger: logger)
        } catch {
            close(socket.fd)
            throw error
        }
        connections = tracker
        // The gateway accepts connections itself (ConnectionAcceptor) and hands them over,
        // so that a full gateway refuses at once instead of leaving clients in the backlog.
        let flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue
            | MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_ERROR_LOG.rawValue | MHD_USE_NO_LISTEN_SOCKET.rawValue
        let me = Unmanaged.passUnretained(self).toOpaque()
        let completed: MHD_RequestCompletedCallback = requestCompleted
        let connectionNotice: MHD_NotifyConnectionCallback = connectionChanged
        let libraryLog: MHD_LogCallback = libmicrohttpdMessage
        var options: [CVarArg] = [
            Int32(MHD_OPTION.CONNECTION_MEMORY_LIMIT.rawValue), Int(configuration.connectionMemoryLimit),
            // The tracker enforces the real limits; libmicrohttpd's only has to stay out of the way.
            Int32(MHD_OPTION.CONNECTION_LIMIT.rawValue), UInt32(configuration.maximumConnections + 64),
            Int32(MHD_OPTION.CONNECTION_TIMEOUT.rawValue), UInt32(configuration.idleTimeoutSeconds),
            Int32(MHD_OPTION.NOTIFY_COMPLETED.rawValue), unsafeBitCast(completed, to: OpaquePointer.self), OpaquePointer(me),
            Int32(MHD_OPTION.NOTIFY_CONNECTION.rawValue), unsafeBitCast(connectionNotice, to: OpaquePointer.self), OpaquePointer(me),
            Int32(MHD_OPTION.EXTERNAL_LOGGER.rawValue), unsafeBitCast(libraryLog, to: OpaquePointer.self), OpaquePointer(me),
        ]
        if configuration.threads > 1 {
            options += [Int32(MHD_OPTION.THREAD_POOL_SIZE.rawValue), UInt32(configuration.threads)]
        }
        options.append(Int32(MHD_OPTION.END.rawValue))
        let handler: MHD_AccessHandlerCallback = accessHandler
        daemon = withVaList(options) { arguments in
            MHD_start_daemon_va(UInt32(flags), 0, nil, nil, handler, me, arguments)
        }
        guard let daemon else {
            close(socket.fd)
            tracker.startWatchdog()
            tracker.stop()
            throw GatewayError("libmicrohttpd could not start on \(socket.address)")
        }
        let acceptor: ConnectionAcceptor
        do {
            acceptor = try ConnectionAcceptor(listenFD: socket.fd, daemon: daemon, tracker: tracker, logger: logger)
        } catch {
            MHD_stop_daemon(daemon)
            self.daemon = nil
            close(socket.fd)
            tracker.startWatchdog()
            tracker.stop()
            throw error
        }
        self.acceptor = acceptor
        tracker.startWatchdog()
        acceptor.start()
    }

    /// Stops accepting (new clients are refused), lets requests in flight finish (up to
    /// the drain timeout), then stops the daemon and closes the backend connections.
    public func shutdown() {
        guard let daemon else { return }
        draining.store(true, ordering: .releasing)
        acceptor?.stop()
        let deadline = MonotonicClock.now() + UInt64(configuration.drainTimeoutSeconds * 1e9)
        while inFlight.load(ordering: .acquiring) > 0 && MonotonicClock.now() < deadline {
            usleep(10_000)
        }
        MHD_stop_daemon(daemon)
        self.daemon = nil
        connections?.stop()
        channel.close()
    }

    /// Connections open now (accepted and not yet closed).
    public var openConnections: Int { connections?.openConnections ?? 0 }

    // MARK: Requests

    fileprivate func begin(_ connection: OpaquePointer, url: String, method: String) -> RequestState {
        inFlight.add(1, ordering: .relaxed)
        metrics.inFlight.increment()
        let state = RequestState(method: method, path: url, started: MonotonicClock.now())
        if let context = outliers_mhd_socket_context(connection) {
            state.connectionID = UInt64(UInt(bitPattern: context))
            connections?.headReceived(id: state.connectionID!)
        }
        state.requestID = header(connection, "X-Request-Id").flatMap(Self.validRequestID) ?? Self.makeRequestID()
        if let framingError = Self.framingError(connection) {
            // RFC 9112 §6.3: the body's length is in doubt, so the connection cannot be
            // read on (request smuggling); answer and close.
            state.response = errorResponse(.invalidArgument, framingError)
            state.answerBeforeBody = true
            state.closeAfterResponse = true
            return state
        }
        route(state, connection: connection)
        if state.response != nil, header(connection, "Expect")?.lowercased() == "100-continue" {
            // The client waits for a go-ahead before sending its body: answer instead.
            state.answerBeforeBody = true
        }
        return state
    }

    /// An `X-Request-Id` the gateway forwards: 1 to 200 characters of printable ASCII,
    /// what gRPC metadata may carry (a control byte would make the backend reset the
    /// stream). Anything else is replaced by a generated id, never forwarded or echoed.
    static func validRequestID(_ value: String) -> String? {
        let bytes = value.utf8
        guard (1...200).contains(bytes.count), bytes.allSatisfy({ (0x20...0x7E).contains($0) }) else { return nil }
        return value
    }

    /// One body chunk; the limit is enforced while streaming, before parsing. A body
    /// that is only read to be discarded (after an early error) counts against it too.
    fileprivate func receive(_ state: RequestState, _ chunk: UnsafeRawBufferPointer) {
        state.receivedBytes += chunk.count
        if state.receivedBytes > configuration.maximumBodyBytes {
            if !state.bodyTooLarge {
                state.bodyTooLarge = true
                state.response = bodyTooLarge()
                // The rest of the body is read and dropped; the connection is not reused.
                state.closeAfterResponse = true
                state.body = []
            }
            return
        }
        guard state.response == nil else { return }
        if state.body.isEmpty, let expected = state.expectedBodyBytes {
            state.body.reserveCapacity(min(expected, configuration.maximumBodyBytes))
        }
        state.body.append(contentsOf: chunk)
    }

    /// The body is complete: answer now, or suspend and answer from the backend's completion.
    fileprivate func finishUpload(_ state: RequestState, connection: OpaquePointer) {
        if let id = state.connectionID { connections?.bodyReceived(id: id) }
        guard state.response == nil else { return }
        dispatch(state, connection: connection)
    }

    fileprivate func completed(_ state: RequestState, termination: MHD_RequestTerminationCode) {
        inFlight.subtract(1, ordering: .relaxed)
        metrics.inFlight.decrement()
        var status = state.sentStatus ?? 0
        if state.call?.clientWentAway == true {
            status = 499  // nginx's "client closed request", as grpc-gateway counts CANCELLED
        } else if termination != MHD_RequestTerminationCode.REQUEST_TERMINATED_COMPLETED_OK && state.sentStatus == nil {
            let cutOff = state.connectionID.flatMap { connections?.cutoff(id: $0) } != nil
            status = cutOff || termination == MHD_RequestTerminationCode.REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499
        }
        if let id = state.connectionID { connections?.requestCompleted(id: id) }
        metrics.record(route: state.routeLabel, status: status, nanoseconds: MonotonicClock.now() - state.started)
    }

    /// Suspends the connection while a backend call runs. The returned function hands
    /// back the response from any thread; until then a client hang-up cancels the call.
    func suspend(_ state: RequestState, _ connection: OpaquePointer) -> @Sendable (HTTPResponse) -> Void {
        let call = PendingCall()
        state.call = call
        state.waitingForBackend = true
        MHD_suspend_connection(connection)
        let box = UncheckedConnection(connection)
        let tracker = connections
        let id = state.connectionID
        if let tracker, let id {
            tracker.watchHangup(id: id) { call.clientHungUp() }
        }
        let unchecked = UncheckedRequestState(state)
        return { response in
            if let tracker, let id { tracker.unwatchHangup(id: id) }
            unchecked.value.response = response
            MHD_resume_connection(box.pointer)
        }
    }

    func header(_ connection: OpaquePointer, _ name: String) -> String? {
        MHD_lookup_connection_value(connection, MHD_ValueKind.HEADER_KIND, name).map { String(cString: $0) }
    }

    private static func makeRequestID() -> String {
        var generator = SystemRandomNumberGenerator()
        let high = generator.next() as UInt64, low = generator.next() as UInt64
        return String(format: "%016llx%016llx", high, low)
    }

    fileprivate func queue(_ response: HTTPResponse, for state: RequestState, on connection: OpaquePointer) -> MHD_Result {
        let reply = response.body.withUnsafeBytes { raw in
            MHD_create_response_from_buffer(raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress),
                                            MHD_ResponseMemoryMode.RESPMEM_MUST_COPY)
        }
        guard let reply else { return MHD_Result.NO }
        MHD_add_response_header(reply, "Content-Type", response.contentType)
        MHD_add_response_header(reply, "X-Request-Id", state.requestID)
        for (name, value) in response.headers { MHD_add_response_header(reply, name, value) }
        if state.closeAfterResponse || draining.load(ordering: .relaxed) {
            MHD_add_response_header(reply, "Connection", "close")
        }
        state.sentStatus = response.status
        let result = MHD_queue_response(connection, UInt32(response.status), reply)
        MHD_destroy_response(reply)
        return result
    }
}

/// A response ready to queue.
struct HTTPResponse: Sendable {
    var status: Int
    var body: [UInt8]
    var contentType = "application/json"
    var headers: [(String, String)] = []
}

/// What the gateway knows of one request; lives from the first call of the access
/// handler to libmicrohttpd's completion notice.
final class RequestState: @unchecked Sendable {
    let method: String
    let path: String
    let started: UInt64
    var requestID = ""
    var route: Route?
    var routeLabel = "other"
    /// The tracker's id of the connection (libmicrohttpd's socket context).
    var connectionID: UInt64?
    var body: [UInt8] = []
    /// Content-Length, when the client sent one.
    var expectedBodyBytes: Int?
    /// Body bytes seen, kept or discarded.
    var receivedBytes = 0
    var bodyTooLarge = false
    /// Set before the body is read (an early error) or when the answer is ready. An
    /// early error waits for the body to be read (and dropped), so that a kept-alive
    /// connection stays usable, unless `answerBeforeBody`.
    var response: HTTPResponse?
    var answerBeforeBody = false
    var closeAfterResponse = false
    var waitingForBackend = false
    /// The backend call in flight, while the connection is suspended.
    var call: PendingCall?
    var sentStatus: Int?
    var format = BodyFormat.json
    var wantsProtobuf = false
    var timeoutNanoseconds: Int64 = 0

    init(method: String, path: String, started: UInt64) {
        self.method = method
        self.path = path
        self.started = started
    }
}

public struct GatewayError: Error, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

struct UncheckedConnection: @unchecked Sendable {
    let pointer: OpaquePointer
    init(_ pointer: OpaquePointer) { self.pointer = pointer }
}

/// The request state travels to the backend's completion, which sets `response` while
/// the connection is suspended (nothing else touches it then); resuming hands it back.
struct UncheckedRequestState: @unchecked Sendable {
    let value: RequestState
    init(_ value: RequestState) { self.value = value }
}

/// A backend call of a suspended request, and whether its client hung up meanwhile.
/// The hang-up comes from the tracker's watchdog thread, the handle from the thread
/// that started the call: either may come first.
final class PendingCall: Sendable {
    private let state = Mutex<(handle: CallHandle?, hungUp: Bool)>((nil, false))

    func started(_ handle: CallHandle) {
        let cancelNow = state.withLock { state -> Bool in
            state.handle = handle
            return state.hungUp
        }
        if cancelNow { handle.cancel() }
    }

    func clientHungUp() {
        let handle = state.withLock { state -> CallHandle? in
            state.hungUp = true
            return state.handle
        }
        handle?.cancel()
    }

    var clientWentAway: Bool { state.withLock { $0.hungUp } }
}

/// At most `perSecond` events a second pass; the rest are counted.
final class RateLimiter: Sendable {
    private let perSecond: Int
    private let window = Mutex<(start: UInt64, passed: Int, suppressed: Int)>((0, 0, 0))

    init(perSecond: Int) { self.perSecond = perSecond }

    /// nil when the event is suppressed; else how many were suppressed before it.
    func admit() -> Int? {
        let now = MonotonicClock.now()
        return window.withLock { window -> Int? in
            if now - window.start >= 1_000_000_000 {
                window.start = now
                window.passed = 0
            }
            guard window.passed < perSecond else {
                window.suppressed += 1
                return nil
            }
            window.passed += 1
            defer { window.suppressed = 0 }
            return window.suppressed
        }
    }
}

// MARK: libmicrohttpd callbacks (no captures: the gateway travels in `cls`)

private func accessHandler(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, url: UnsafePointer<CChar>?,
                           method: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?,
                           uploadData: UnsafePointer<CChar>?, uploadDataSize: UnsafeMutablePointer<Int>?,
                           requestContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> MHD_Result {
    guard let cls, let connection, let requestContext, let uploadDataSize else { return MHD_Result.NO }
    let gateway = Unmanaged<RESTGateway>.fromOpaque(cls).takeUnretainedValue()
    guard let context = requestContext.pointee else {
        // First call: headers only. Route now; an early error (404, 405, 415, a bad
        // header) is answered once the body has been read and dropped, so that the
        // connection stays usable; a body too large to read, or a framing error, at once.
        let state = gateway.begin(connection, url: url.map { String(cString: $0) } ?? "/",
                                  method: method.map { String(cString: $0) } ?? "")
        requestContext.pointee = Unmanaged.passRetained(state).toOpaque()
        if state.answerBeforeBody, let early = state.response {
            return gateway.queue(early, for: state, on: connection)
        }
        return MHD_Result.YES
    }
    let state = Unmanaged<RequestState>.fromOpaque(context).takeUnretainedValue()
    if uploadDataSize.pointee > 0 {
        if let uploadData {
            gateway.receive(state, UnsafeRawBufferPointer(start: uploadData, count: uploadDataSize.pointee))
        }
        uploadDataSize.pointee = 0
        return MHD_Result.YES
    }
    guard !state.waitingForBackend else {
        // Resumed: the backend's completion has set the response.
        guard let response = state.response else { return MHD_Result.YES }
        return gateway.queue(response, for: state, on: connection)
    }
    gateway.finishUpload(state, connection: connection)
    // While the backend works, its completion owns `state.response` until it resumes us.
    if !state.waitingForBackend, let response = state.response {
        return gateway.queue(response, for: state, on: connection)
    }
    return MHD_Result.YES
}

private func requestCompleted(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?,
                              requestContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                              termination: MHD_RequestTerminationCode) {
    guard let cls, let context = requestContext?.pointee else { return }
    let gateway = Unmanaged<RESTGateway>.fromOpaque(cls).takeUnretainedValue()
    let state = Unmanaged<RequestState>.fromOpaque(context).takeRetainedValue()
    requestContext?.pointee = nil
    gateway.completed(state, termination: termination)
}

/// libmicrohttpd took a connection from the acceptor, or is about to close one: the
/// tracker's id rides in the socket context.
private func connectionChanged(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?,
                               socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                               notice: MHD_ConnectionNotificationCode) {
    guard let cls, let connection, let socketContext else { return }
    let gateway = Unmanaged<RESTGateway>.fromOpaque(cls).takeUnretainedValue()
    guard let tracker = gateway.connections else { return }
    switch notice {
    case .CONNECTION_NOTIFY_STARTED:
        let fd = outliers_mhd_connection_fd(connection)
        if let id = tracker.started(fd: fd) { socketContext.pointee = UnsafeMutableRawPointer(bitPattern: UInt(id)) }
    case .CONNECTION_NOTIFY_CLOSED:
        if let context = socketContext.pointee { tracker.closed(id: UInt64(UInt(bitPattern: context))) }
        socketContext.pointee = nil
    default:
        break
    }
}

/// libmicrohttpd's own messages, to swift-log at debug level, a few a second at most.
private func libmicrohttpdMessage(cls: UnsafeMutableRawPointer?, format: UnsafePointer<CChar>?, arguments: CVaListPointer?) {
    guard let cls, let format, let arguments else { return }
    let gateway = Unmanaged<RESTGateway>.fromOpaque(cls).takeUnretainedValue()
    guard gateway.logger.logLevel <= .debug, let suppressed = gateway.libraryMessages.admit() else { return }
    var buffer = [CChar](repeating: 0, count: 512)
    _ = vsnprintf(&buffer, buffer.count, format, arguments)
    let text = String(cString: buffer).trimmingCharacters(in: .whitespacesAndNewlines)
    var metadata: Logger.Metadata = [:]
    if suppressed > 0 { metadata["suppressed-before"] = "\(suppressed)" }
    gateway.logger.debug("libmicrohttpd: \(text)", metadata: metadata)
}
