/// One unary call from a `GRPCChannel`: its request, its response as it arrives.
/// Confined to the channel's event loop once started.
final class ClientCall {
    let path: String
    /// The request message, sent after `prefix` (its 5-byte length prefix): kept as the
    /// caller gave it rather than copied into one framed array, so the message is copied
    /// only into nghttp2's DATA frames.
    let requestMessage: [UInt8]
    let prefix: [UInt8]
    /// `requestMessage` is compressed, in the channel's `compression`.
    let compressed: Bool
    /// Bytes of the framed request (prefix, then message) in all.
    var bodyCount: Int { prefix.count + requestMessage.count }
    let metadata: [(name: String, value: String)]
    let deadline: UInt64?
    private let completion: @Sendable (Result<GRPCResponse, RPCError>) -> Void
    var attempts = 0
    /// How much of the framed request has gone to nghttp2.
    var bodyOffset = 0
    var completed = false
    var cancelRequested = false
    var timer: TimerHandle?
    weak var connection: ClientConnection?
    /// The one address this call must use (a health check of it), never retried elsewhere.
    var pinned: Endpoint?
    var streamID: Int32 = -1
    /// Whether any part of the request may have reached the server's handler.
    var sent = false

    // Response.
    var httpStatus: Int?
    var grpcStatus: Status.Code?
    var grpcStatusText: String?
    var grpcMessage: String?
    var headers: [(name: String, value: String)] = []
    var trailers: [(name: String, value: String)] = []
    var inTrailers = false
    var deframer: MessageDeframer
    var message: [UInt8]?
    var messageCount = 0
    var failure: RPCError?

    init(path: String, message: [UInt8], compressed: Bool = false, metadata: [(name: String, value: String)], deadline: UInt64?,
         maximumReceiveMessageLength: Int, completion: @escaping @Sendable (Result<GRPCResponse, RPCError>) -> Void) {
        self.path = path
        self.requestMessage = message
        self.compressed = compressed
        self.prefix = MessageFramer.prefix(length: message.count, compressed: compressed)
        self.metadata = metadata
        self.deadline = deadline
        self.completion = completion
        deframer = MessageDeframer(maximumMessageLength: maximumReceiveMessageLength)
    }

    /// Forgets a failed attempt's response so the call can be retried elsewhere.
    func resetForRetry() {
        attempts += 1
        bodyOffset = 0
        streamID = -1
        connection = nil
        sent = false
        httpStatus = nil
        grpcStatus = nil
        grpcStatusText = nil
        grpcMessage = nil
        headers = []
        trailers = []
        inTrailers = false
        deframer = MessageDeframer(maximumMessageLength: deframer.maximumMessageLength)
        message = nil
        messageCount = 0
        failure = nil
    }

    func complete(_ result: Result<GRPCResponse, RPCError>) {
        guard !completed else { return }
        completed = true
        timer?.cancel()
        timer = nil
        completion(result)
    }

    func fail(_ code: RPCError.Code, _ message: String) {
        complete(.failure(RPCError(code: code, message: message)))
    }

    /// The outcome once the stream has closed with `errorCode` (RST_STREAM or 0).
    func outcome(resetCode: UInt32) -> Result<GRPCResponse, RPCError> {
        if var failure {
            failure.metadata = trailers
            failure.headers = headers
            return .failure(failure)
        }
        if let grpcStatus {
            if let code = RPCError.Code(grpcStatus) {
                let text = grpcMessage.map { GRPCMessageEncoding.decode($0) } ?? ""
                return .failure(RPCError(code: code, message: text, metadata: trailers, headers: headers))
            }
            guard messageCount == 1, let message else {
                return .failure(RPCError(code: .internalError, message: messageCount == 0 ? "server sent OK without a response message" : "server sent \(messageCount) messages for a unary call"))
            }
            return .success(GRPCResponse(message: message, headers: headers, trailers: trailers))
        }
        if let grpcStatusText {
            return .failure(RPCError(code: .unknown, message: "invalid grpc-status \"\(grpcStatusText)\""))
        }
        if resetCode != 0 {
            return .failure(RPCError(code: StatusMapping.code(forRSTStreamError: resetCode),
                                     message: "stream reset by the server (HTTP/2 error code \(resetCode))"))
        }
        if let httpStatus, httpStatus != 200 {
            return .failure(RPCError(code: StatusMapping.code(forHTTPStatus: httpStatus),
                                     message: "HTTP status \(httpStatus) without grpc-status"))
        }
        return .failure(RPCError(code: .internalError, message: "stream ended without grpc-status"))
    }
}

extension ClientCall {
    /// Copies the framed request from `bodyOffset` on into `buffer` (an nghttp2 DATA
    /// frame's payload): the part of the prefix not yet sent, then the message.
    func copyBody(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        var copied = 0
        if bodyOffset < prefix.count {
            let count = min(buffer.count, prefix.count - bodyOffset)
            prefix.withUnsafeBytes { raw in
                buffer.baseAddress!.copyMemory(from: raw.baseAddress! + bodyOffset, byteCount: count)
            }
            copied = count
        }
        let messageOffset = bodyOffset + copied - prefix.count
        let count = min(buffer.count - copied, requestMessage.count - messageOffset)
        if count > 0 {
            requestMessage.withUnsafeBytes { raw in
                (buffer.baseAddress! + copied).copyMemory(from: raw.baseAddress! + messageOffset, byteCount: count)
            }
            copied += count
        }
        bodyOffset += copied
        assert(bodyOffset <= bodyCount, "ClientCall sent past the end of its request")
        return copied
    }
}
