import CMicroHTTPD
import H2GRPC
import OutliersJSON
import Synchronization
import ZlibCompression

/// A response ready to queue.
struct HTTPResponse: Sendable {
    var status: Int
    var body: [UInt8]
    var contentType = "application/json"
    var headers: [(String, String)] = []
    /// The gRPC status the answer carries (0 for a backend's answer, the error's code),
    /// for the access log; nil where no call or gRPC code is involved.
    var grpcCode: Int?
}

/// What the gateway knows of one request; lives from the first call of the access
/// handler to libmicrohttpd's completion notice. Touched by libmicrohttpd's thread of
/// the connection, and by the backend's completion only while the connection is
/// suspended (`UncheckedRequestState`).
final class RequestState {
    let method: String
    let path: String
    let started: UInt64
    var requestID = ""
    var route: Route?
    var routeLabel = "other"
    /// The tracker's id of the connection (libmicrohttpd's socket context).
    var connectionID: UInt64?
    /// The client's IP address, as the tracker admitted it.
    var clientAddress: String?
    /// The request headers that may become metadata (`MetadataMapping.isRelevant`).
    var metadataHeaders: [(name: String, value: String)] = []
    /// Access-Control-Allow-Origin for this request's Origin (nil: not a CORS request
    /// the gateway allows).
    var allowOrigin: String?
    /// What the backend call carries, once the route has mapped the headers.
    var metadata: [(name: String, value: String)] = []
    var body: [UInt8] = []
    /// Content-Length, when the client sent one.
    var expectedBodyBytes: Int?
    /// Body bytes seen, kept or discarded.
    var receivedBytes = 0
    /// Body bytes counted in the gateway's `bufferedBodyBytes`, given back at completion.
    var heldBytes = 0
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
    /// What the access log says of the answer: its gRPC code and the body bytes sent.
    var sentGRPCCode: Int?
    var sentBytes = 0
    var format = BodyFormat.json
    /// The body's Content-Encoding decoder, when it has one.
    var inflater: Inflater?
    /// Accept-Encoding takes gzip.
    var acceptsGzip = false
    var wantsProtobuf = false
    /// The options the query parameters give (DetectQuery).
    var optionOverrides = DetectOptionsOverrides()
    var timeoutNanoseconds: Int64 = 0

    init(method: String, path: String, started: UInt64) {
        self.method = method
        self.path = path
        self.started = started
    }
}

/// libmicrohttpd's connection, carried to the backend's completion to resume it: with
/// MHD_ALLOW_SUSPEND_RESUME, MHD_resume_connection may be called from any thread, and
/// the pointer is used for nothing else there.
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
    private struct State {
        var handle: CallHandle?
        var hungUp = false
        var finished = false
    }

    private let state = Mutex(State())

    /// The call was started. Its handle is kept only while the call runs: the handle
    /// holds the call, whose completion holds the request, which holds this.
    func started(_ handle: CallHandle) {
        let cancelNow = state.withLock { state -> Bool in
            guard !state.finished else { return false }
            state.handle = handle
            return state.hungUp
        }
        if cancelNow { handle.cancel() }
    }

    /// The call completed: nothing left to cancel.
    func finished() {
        state.withLock { state in
            state.finished = true
            state.handle = nil
        }
    }

    func clientHungUp() {
        let handle = state.withLock { state -> CallHandle? in
            state.hungUp = true
            return state.handle
        }
        handle?.cancel()
    }

    var clientWentAway: Bool { state.withLock { $0.hungUp } }

    var isFinished: Bool { state.withLock { $0.finished } }
}
