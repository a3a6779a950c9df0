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
        let flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue
            | MHD_ALLOW_SUSPEND_RESUME.rawValue | MHD_USE_ERROR_LOG.rawValue
        let me = Unmanaged.passUnretained(self).toOpaque()
        let completed: MHD_RequestCompletedCallback = requestCompleted
        var options: [CVarArg] = [
            Int32(MHD_OPTION.LISTEN_SOCKET.rawValue), socket.fd,
            Int32(MHD_OPTION.CONNECTION_MEMORY_LIMIT.rawValue), Int(configuration.connectionMemoryLimit),
            Int32(MHD_OPTION.CONNECTION_LIMIT.rawValue), UInt32(configuration.maximumConnections),
            Int32(MHD_OPTION.CONNECTION_TIMEOUT.rawValue), UInt32(configuration.idleTimeoutSeconds),
            Int32(MHD_OPTION.NOTIFY_COMPLETED.rawValue), unsafeBitCast(completed, to: OpaquePointer.self), OpaquePointer(me),
        ]
        if configuration.threads > 1 {
            options += [Int32(MHD_OPTION.THREAD_POOL_SIZE.rawValue), UInt32(configuration.threads)]
        }
        options.append(Int32(MHD_OPTION.END.rawValue))
        let handler: MHD_AccessHandlerCallback = accessHandler
        daemon = withVaList(options) { arguments in
            MHD_start_daemon_va(UInt32(flags), 0, nil, nil, handler, me, arguments)
        }
        guard daemon != nil else {
            close(socket.fd)
            throw GatewayError("libmicrohttpd could not start on \(socket.address)")
        }
    }

    /// Stops accepting, lets requests in flight finish (up to the drain timeout),
    /// then stops the daemon and closes the backend connections.
    public func shutdown() {
        guard let daemon else { return }
        draining.store(true, ordering: .releasing)
        let listenFD = MHD_quiesce_daemon(daemon)
        let deadline = MonotonicClock.now() + UInt64(configuration.drainTimeoutSeconds * 1e9)
        while inFlight.load(ordering: .acquiring) > 0 && MonotonicClock.now() < deadline {
            usleep(10_000)
        }
        MHD_stop_daemon(daemon)
        if listenFD >= 0 { close(listenFD) }
        self.daemon = nil
        channel.close()
    }

    // MARK: Requests

    fileprivate func begin(_ connection: OpaquePointer, url: String, method: String) -> RequestState {
        inFlight.add(1, ordering: .relaxed)
        metrics.inFlight.increment()
        let state = RequestState(method: method, path: url, started: MonotonicClock.now())
        state.requestID = header(connection, "X-Request-Id").flatMap { $0.isEmpty || $0.count > 200 ? nil : $0 }
            ?? Self.makeRequestID()
        route(state, connection: connection)
        return state
    }

    /// One body chunk; the limit is enforced while streaming, before parsing.
    fileprivate func receive(_ state: RequestState, _ chunk: UnsafeRawBufferPointer) {
        guard state.response == nil, !state.bodyTooLarge else { return }
        if state.body.count + chunk.count > configuration.maximumBodyBytes {
            state.bodyTooLarge = true
            state.body = []
            return
        }
        state.body.append(contentsOf: chunk)
    }

    /// The body is complete: answer now, or suspend and answer from the backend's completion.
    fileprivate func finishUpload(_ state: RequestState, connection: OpaquePointer) {
        if state.bodyTooLarge {
            state.response = bodyTooLarge()
            return
        }
        dispatch(state, connection: connection)
    }

    fileprivate func completed(_ state: RequestState) {
        inFlight.subtract(1, ordering: .relaxed)
        metrics.inFlight.decrement()
        let status = state.sentStatus ?? 0
        metrics.record(route: state.routeLabel, status: status, nanoseconds: MonotonicClock.now() - state.started)
    }

    /// Suspends the connection; `resume` hands back the response from any thread.
    func suspend(_ connection: OpaquePointer) -> @Sendable (RequestState, HTTPResponse) -> Void {
        MHD_suspend_connection(connection)
        let box = UncheckedConnection(connection)
        return { state, response in
            state.response = response
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
        if draining.load(ordering: .relaxed) { MHD_add_response_header(reply, "Connection", "close") }
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
    var body: [UInt8] = []
    var bodyTooLarge = false
    /// Set before the body is read (an early error) or when the answer is ready.
    var response: HTTPResponse?
    var waitingForBackend = false
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

// MARK: libmicrohttpd callbacks (no captures: the gateway travels in `cls`)

private func accessHandler(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, url: UnsafePointer<CChar>?,
                           method: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?,
                           uploadData: UnsafePointer<CChar>?, uploadDataSize: UnsafeMutablePointer<Int>?,
                           requestContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> MHD_Result {
    guard let cls, let connection, let requestContext, let uploadDataSize else { return MHD_Result.NO }
    let gateway = Unmanaged<RESTGateway>.fromOpaque(cls).takeUnretainedValue()
    guard let context = requestContext.pointee else {
        // First call: headers only. Route now, so that 404/405/413/415 go out before the body.
        let state = gateway.begin(connection, url: url.map { String(cString: $0) } ?? "/",
                                  method: method.map { String(cString: $0) } ?? "")
        requestContext.pointee = Unmanaged.passRetained(state).toOpaque()
        if let early = state.response {
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
    if let response = state.response {
        return gateway.queue(response, for: state, on: connection)
    }
    guard !state.waitingForBackend else { return MHD_Result.YES }
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
    gateway.completed(state)
}
