import ZlibCompression

/// One gRPC call on a server connection: the request as it arrives, the response
/// as it leaves. Confined to the connection's event loop.
final class ServerStream {
    enum Phase {
        /// Reading request headers and messages.
        case receiving
        /// A unary handler is running (inline or on a worker).
        case handling
        /// The final status is decided; trailers go out once the queued messages have.
        case finishing
        /// Trailers (or Trailers-Only) submitted.
        case done
    }

    let id: Int32
    var phase = Phase.receiving
    // Request headers.
    var method = ""
    var path = ""
    var contentType = ""
    var timeoutHeader: String?
    /// grpc-encoding: how the client's messages with the compressed flag are compressed.
    var messageEncoding: String? {
        get { deframer.messageEncoding }
        set { deframer.messageEncoding = newValue }
    }
    /// grpc-accept-encoding: the encodings the client reads.
    var acceptEncoding: String?
    /// How this call's response messages are compressed: the request's encoding, when
    /// it is one we write and the client says it reads it (grpc-go answers in the
    /// request's encoding too); nil: not at all.
    var responseCoding: ZlibCoding?
    var metadata: [(name: String, value: String)] = []
    // Request body.
    var deframer: MessageDeframer
    var requestMessage: [UInt8]?
    var messageCount = 0
    var requestEnded = false
    var handler: RPCHandler?
    var observer: (any ServerStreamObserver)?
    var deadline: UInt64?
    var deadlineTimer: TimerHandle?
    // Response.
    var headersSent = false
    var outbound: [UInt8] = []
    var outboundOffset = 0
    var finalStatus: Status?
    /// Our END_STREAM went out while the client was still sending.
    var answeredBeforeRequestEnded = false
    /// Request bytes dropped since the answer was decided (the client still sending).
    var discardedByteCount = 0
    /// We asked the client to stop sending: RST_STREAM(NO_ERROR).
    var stopRequested = false
    var closed = false
    // What `ServerCallObserver`s were told.
    /// When the request headers arrived (monotonic ns); 0 until they did, and always
    /// without observers.
    var startedAt: UInt64 = 0
    var isRegistered = false
    var endObserved = false
    var requestBytes = 0
    var responseBytes = 0

    init(id: Int32, maximumMessageLength: Int) {
        self.id = id
        deframer = MessageDeframer(maximumMessageLength: maximumMessageLength)
    }

    var hasOutbound: Bool { outboundOffset < outbound.count }
}
