import CMicroHTTPD
import Foundation
import H2GRPC
import Logging
import POSIXSupport

/// The life of one request in libmicrohttpd's callbacks: head, body, answer (at once
/// or after the backend, the connection suspended meanwhile), completion.
extension Gateway {
    fileprivate func begin(_ connection: OpaquePointer, url: String, method: String) -> RequestState {
        let serving = inFlight.increment()
        metrics.inFlight.increment()
        let state = RequestState(method: method, path: url, started: MonotonicClock.now())
        if let context = outliers_mhd_socket_context(connection) {
            let id = UInt64(UInt(bitPattern: context))
            state.connectionID = id
            state.clientAddress = connections.headReceived(id: id)
        }
        state.requestID = header(connection, "X-Request-Id").flatMap(Self.validRequestID) ?? Self.makeRequestID()
        let head = Self.inspectHead(connection)
        state.metadataHeaders = head.metadataHeaders
        if let framingError = Self.framingError(head) {
            // RFC 9112 §6.3: the body's length is in doubt, so the connection cannot be
            // read on (request smuggling); answer and close.
            state.response = errorResponse(.invalidArgument, framingError)
            state.answerBeforeBody = true
            state.closeAfterResponse = true
            return state
        }
        let cap = configuration.maximumRequestsInFlight
        if cap > 0 && serving > cap {
            state.response = overloaded("requests in flight", "more than --max-in-flight \(cap) requests are being served")
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
        // As received: a compressed body counts its wire bytes.
        guard hold(chunk.count, for: state) else { return }
        if let inflater = state.inflater {
            receiveCompressed(state, chunk, inflater)
            return
        }
        if state.body.isEmpty, let expected = state.expectedBodyBytes {
            state.body.reserveCapacity(min(expected, configuration.maximumBodyBytes))
        }
        state.body.append(contentsOf: chunk)
    }

    /// Counts `bytes` more of `state`'s body against `--max-buffered-bytes`; past the
    /// cap the request is answered 503 (the rest of its body read and dropped, the
    /// connection closed after) and what it held is given back.
    func hold(_ bytes: Int, for state: RequestState) -> Bool {
        let cap = configuration.maximumBufferedBodyBytes
        guard cap > 0 else { return true }
        let total = bufferedBodyBytes.add(bytes, ordering: .relaxed).newValue
        state.heldBytes += bytes
        guard total > cap else { return true }
        release(state)
        state.body = []
        state.response = overloaded("buffered body bytes", "the requests in flight hold more than --max-buffered-bytes \(cap) bytes of body")
        state.closeAfterResponse = true
        return false
    }

    /// Gives back the body bytes `state` held.
    func release(_ state: RequestState) {
        guard state.heldBytes > 0 else { return }
        bufferedBodyBytes.subtract(state.heldBytes, ordering: .relaxed)
        state.heldBytes = 0
    }

    /// 503 with Retry-After, at once: the gateway is past one of its overload caps.
    func overloaded(_ reason: String, _ message: String) -> HTTPResponse {
        metrics.overloaded(reason: reason)
        var response = errorResponse(.unavailable, "overloaded: \(message); retry later")
        response.headers.append(("Retry-After", "1"))
        return response
    }

    /// The body is complete: answer now, or suspend and answer from the backend's completion.
    fileprivate func finishUpload(_ state: RequestState, connection: OpaquePointer) {
        if let id = state.connectionID { connections.bodyReceived(id: id) }
        if state.response == nil, let inflater = state.inflater { finishCompressed(state, inflater) }
        guard state.response == nil else { return }
        dispatch(state, connection: connection)
    }

    fileprivate func completed(_ state: RequestState, termination: MHD_RequestTerminationCode) {
        release(state)
        inFlight.decrement()
        metrics.inFlight.decrement()
        var status = state.sentStatus ?? 0
        if state.call?.clientWentAway == true {
            status = 499  // nginx's "client closed request", as grpc-gateway counts CANCELLED
        } else if termination != MHD_RequestTerminationCode.REQUEST_TERMINATED_COMPLETED_OK && state.sentStatus == nil {
            let cutOff = state.connectionID.flatMap { connections.cutoff(id: $0) } != nil
            status = cutOff || termination == MHD_RequestTerminationCode.REQUEST_TERMINATED_TIMEOUT_REACHED ? 408 : 499
        }
        if let id = state.connectionID { connections.requestCompleted(id: id) }
        let nanoseconds = MonotonicClock.now() - state.started
        metrics.record(route: state.routeLabel, status: status, nanoseconds: nanoseconds)
        if configuration.accessLog { logAccess(state, status: status, nanoseconds: nanoseconds) }
    }

    /// One line per request (`--access-log`, on by default): what was asked, how it was
    /// answered, how long it took, and by whom, as fields a log collector can read
    /// (`--log-format json` writes them as JSON keys).
    func logAccess(_ state: RequestState, status: Int, nanoseconds: UInt64) {
        var metadata: Logger.Metadata = [
            "method": "\(state.method)",
            "path": "\(state.path)",
            "status": .stringConvertible(status),
            "bytes_in": .stringConvertible(state.receivedBytes),
            "bytes_out": .stringConvertible(state.sentBytes),
            "duration_ms": .stringConvertible(Double(nanoseconds / 1000) / 1000),
            "request_id": "\(state.requestID)",
        ]
        if let code = state.sentGRPCCode { metadata["grpc_code"] = .stringConvertible(code) }
        if let client = state.clientAddress { metadata["client"] = "\(client)" }
        accessLogger.info("access", metadata: metadata)
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
        if let id { tracker.watchHangup(id: id) { call.clientHungUp() } }
        let unchecked = UncheckedRequestState(state)
        return { response in
            call.finished()
            if let id { tracker.unwatchHangup(id: id) }
            unchecked.value.response = response
            MHD_resume_connection(box.pointer)
        }
    }

    func header(_ connection: OpaquePointer, _ name: String) -> String? {
        MHD_lookup_connection_value(connection, MHD_ValueKind.HEADER_KIND, name).map { String(cString: $0) }
    }

    /// 32 hex digits of one 16-byte draw from the kernel's generator. By hand: Foundation's
    /// `String(format:)` and two draws cost two percent of a request in the profile.
    static func makeRequestID() -> String {
        var random: (UInt64, UInt64) = (0, 0)
        if !withUnsafeMutableBytes(of: &random, KernelRandom.fill) {
            var generator = SystemRandomNumberGenerator()
            random = (generator.next(), generator.next())
        }
        return hexID(random.0, random.1)
    }

    static func hexID(_ high: UInt64, _ low: UInt64) -> String {
        String(unsafeUninitializedCapacity: 32) { buffer in
            let digits: StaticString = "0123456789abcdef"
            for index in 0..<16 {
                buffer[index] = digits.utf8Start[Int(high >> UInt64(60 - 4 * index) & 0xF)]
                buffer[16 + index] = digits.utf8Start[Int(low >> UInt64(60 - 4 * index) & 0xF)]
            }
            return 32
        }
    }

    fileprivate func queue(_ response: HTTPResponse, for state: RequestState, on connection: OpaquePointer) -> MHD_Result {
        let response = compressedIfAccepted(response, for: state)
        let reply = response.body.withUnsafeBytes { raw in
            MHD_create_response_from_buffer(raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress),
                                            MHD_ResponseMemoryMode.RESPMEM_MUST_COPY)
        }
        guard let reply else { return MHD_Result.NO }
        if !response.contentType.isEmpty { MHD_add_response_header(reply, "Content-Type", response.contentType) }
        MHD_add_response_header(reply, "X-Request-Id", state.requestID)
        for (name, value) in response.headers { MHD_add_response_header(reply, name, value) }
        // Answers may be gzipped, so they differ by Accept-Encoding (and by Origin once
        // CORS is on, whether this one allowed it or not).
        var vary = "Accept-Encoding"
        if configuration.cors != nil, response.status != 204 || state.method != "OPTIONS" {
            if let allowOrigin = state.allowOrigin {
                MHD_add_response_header(reply, "Access-Control-Allow-Origin", allowOrigin)
                MHD_add_response_header(reply, "Access-Control-Expose-Headers", CORSPolicy.exposedHeaders(response.headers))
            }
            if state.allowOrigin != "*" { vary = "Origin, Accept-Encoding" }
        }
        if !response.headers.contains(where: { $0.0 == "Vary" }) { MHD_add_response_header(reply, "Vary", vary) }
        if state.closeAfterResponse || draining.load(ordering: .relaxed) {
            MHD_add_response_header(reply, "Connection", "close")
        }
        state.sentStatus = response.status
        state.sentGRPCCode = response.grpcCode
        state.sentBytes = state.method == "HEAD" ? 0 : response.body.count
        let result = MHD_queue_response(connection, UInt32(response.status), reply)
        MHD_destroy_response(reply)
        return result
    }
}

// MARK: libmicrohttpd callbacks (no captures: the gateway travels in `cls`)

func accessHandler(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, url: UnsafePointer<CChar>?,
                           method: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?,
                           uploadData: UnsafePointer<CChar>?, uploadDataSize: UnsafeMutablePointer<Int>?,
                           requestContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> MHD_Result {
    guard let cls, let connection, let requestContext, let uploadDataSize else { return MHD_Result.NO }
    let gateway = Unmanaged<Gateway>.fromOpaque(cls).takeUnretainedValue()
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
        // Resumed: the backend's completion has set the response, and touches the
        // state no more.
        assert(state.call?.isFinished ?? true, "a suspended request ran again before its call finished")
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

func requestCompleted(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?,
                              requestContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                              termination: MHD_RequestTerminationCode) {
    guard let cls, let context = requestContext?.pointee else { return }
    let gateway = Unmanaged<Gateway>.fromOpaque(cls).takeUnretainedValue()
    let state = Unmanaged<RequestState>.fromOpaque(context).takeRetainedValue()
    requestContext?.pointee = nil
    gateway.completed(state, termination: termination)
}

/// libmicrohttpd took a connection from the acceptor, or is about to close one: the
/// tracker's id rides in the socket context.
func connectionChanged(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?,
                               socketContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                               notice: MHD_ConnectionNotificationCode) {
    guard let cls, let connection, let socketContext else { return }
    let gateway = Unmanaged<Gateway>.fromOpaque(cls).takeUnretainedValue()
    let tracker = gateway.connections
    switch notice {
    case .CONNECTION_NOTIFY_STARTED:
        if let tls = gateway.configuration.tls, !tls.prepare(connection) {
            gateway.logger.error("cannot put the current TLS credentials on a connection: it keeps the startup ones")
        }
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
func libmicrohttpdMessage(cls: UnsafeMutableRawPointer?, format: UnsafePointer<CChar>?, arguments: CVaListPointer?) {
    guard let cls, let format, let arguments else { return }
    let gateway = Unmanaged<Gateway>.fromOpaque(cls).takeUnretainedValue()
    guard gateway.logger.logLevel <= .debug, let suppressed = gateway.libraryMessages.admit() else { return }
    var buffer = [CChar](repeating: 0, count: 512)
    _ = vsnprintf(&buffer, buffer.count, format, arguments)
    let text = String(cString: buffer).trimmingCharacters(in: .whitespacesAndNewlines)
    var metadata: Logger.Metadata = [:]
    if suppressed > 0 { metadata["suppressed-before"] = "\(suppressed)" }
    gateway.logger.debug("libmicrohttpd: \(text)", metadata: metadata)
}
