/// What a `ServerCallHandler` needs of the HTTP/2 session below it: frames out on a
/// stream, and the timers of the loop it runs on. `ServerConnection` is one; the unit
/// tests use one with no socket.
protocol ServerStreamSink: AnyObject {
    /// Response headers. With `hasBody`, DATA follows: the handler's `readBody` gives the
    /// messages, then trailers. Without, this HEADERS frame ends the stream (Trailers-Only).
    func submitResponse(on streamID: Int32, _ headers: HeaderBlock, hasBody: Bool)
    /// More of the body is ready (after `readBody` said `.deferred`).
    func resumeBody(on streamID: Int32)
    /// The trailers, after the last DATA.
    func submitTrailers(on streamID: Int32, _ trailers: HeaderBlock)
    /// RST_STREAM(NO_ERROR): the answer is out and the client need send no more (RFC 9113 §8.1).
    func stopRequest(on streamID: Int32)
    /// Sends what has been submitted.
    func flush()
    func schedule(at deadline: UInt64, _ task: @escaping () -> Void) -> TimerHandle
}
