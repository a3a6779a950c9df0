import Testing
@_spi(Fuzzing) @testable import H2GRPC

/// The call handler without a socket or an nghttp2 session: what it submits for
/// each request, recorded by a sink.
private final class RecordingSink: ServerStreamSink {
    struct Response {
        var headers: [(name: String, value: String)]
        var hasBody: Bool
    }

    var responses: [Int32: Response] = [:]
    var trailers: [Int32: [(name: String, value: String)]] = [:]
    var resumed: [Int32] = []
    var stopped: [Int32] = []
    private var timers = TimerHeap()

    func submitResponse(on streamID: Int32, _ headers: HeaderBlock, hasBody: Bool) {
        #expect(responses[streamID] == nil, "a second response on stream \(streamID)")
        responses[streamID] = Response(headers: headers.fields, hasBody: hasBody)
    }

    func resumeBody(on streamID: Int32) { resumed.append(streamID) }

    func submitTrailers(on streamID: Int32, _ trailers: HeaderBlock) { self.trailers[streamID] = trailers.fields }

    func stopRequest(on streamID: Int32) { stopped.append(streamID) }

    func flush() {}

    func schedule(at deadline: UInt64, _ task: @escaping () -> Void) -> TimerHandle {
        timers.insert(deadline: deadline, task: task)
    }

    /// Runs every timer due by `now`, as the loop would.
    func runTimers(now: UInt64) { for task in timers.takeExpired(now: now) { task() } }
}

private struct Harness {
    let sink = RecordingSink()
    let loop: EventLoop
    let handler: ServerCallHandler

    init(observers: [any ServerCallObserver] = []) throws {
        loop = try EventLoop(name: "test")  // never started: these calls run inline
        var configuration = GRPCServerConfiguration()
        configuration.callObservers = observers
        handler = ServerCallHandler(sink: sink, handlers: ["/test.Echo/Echo": .unary { request, _ in request }],
                                    configuration: configuration, loop: loop, peer: "192.0.2.1:5000")
    }

    /// A request's HEADERS frame on `stream`, complete.
    func headers(_ fields: [(String, String)], on stream: Int32 = 1) {
        handler.beginStream(stream)
        for (name, value) in fields {
            Array(name.utf8).withUnsafeBufferPointer { name in
                Array(value.utf8).withUnsafeBufferPointer { value in
                    handler.header(on: stream, name: name, value: value)
                }
            }
        }
        handler.requestHeadersReceived(on: stream)
    }

    func response(on stream: Int32 = 1) -> [String: String] {
        Dictionary(sink.responses[stream]?.headers ?? [], uniquingKeysWith: { first, _ in first })
    }
}

private let grpcRequest = [(":method", "POST"), (":scheme", "http"), (":path", "/test.Echo/Echo"),
                           ("content-type", "application/grpc"), ("te", "trailers")]

private func replacing(_ name: String, with value: String?) -> [(String, String)] {
    var fields = grpcRequest.filter { $0.0 != name }
    if let value { fields.append((name, value)) }
    return fields
}

@Test func nonPostMethodIs405Unimplemented() throws {
    let harness = try Harness()
    harness.headers(replacing(":method", with: "GET"))
    #expect(harness.sink.responses[1]?.hasBody == false)
    #expect(harness.response() == [":status": "405", "content-type": "application/grpc", "grpc-accept-encoding": "identity,deflate,gzip",
                                   "grpc-status": "12", "grpc-message": "method GET not allowed; gRPC uses POST"])
}

@Test(arguments: [("text/plain", "invalid gRPC request content-type \"text/plain\""),
                  ("application/grpcx", "invalid gRPC request content-type \"application/grpcx\""),
                  (nil, "invalid gRPC request content-type none")] as [(String?, String)])
func nonGRPCContentTypeIs415Internal(contentType: String?, message: String) throws {
    let harness = try Harness()
    harness.headers(replacing("content-type", with: contentType))
    #expect(harness.sink.responses[1]?.hasBody == false)
    let response = harness.response()
    #expect(response[":status"] == "415")
    #expect(response["grpc-status"] == "13")
    #expect(response["grpc-message"].map { GRPCMessageEncoding.decode($0) } == message)
}

@Test func unknownPathIsUnimplementedTrailersOnly() throws {
    let harness = try Harness()
    harness.headers(replacing(":path", with: "/test.Echo/Missing"))
    #expect(harness.sink.responses[1]?.hasBody == false)
    let response = harness.response()
    #expect(response[":status"] == "200")
    #expect(response["grpc-status"] == "12")
    #expect(response["grpc-message"] == "Method not found: /test.Echo/Missing")
}

@Test(arguments: ["1x", "S", "123456789S", "-1S", "1.5S"])
func malformedGRPCTimeoutIsInternal(timeout: String) throws {
    let harness = try Harness()
    harness.headers(replacing("grpc-timeout", with: timeout))
    #expect(harness.sink.responses[1]?.hasBody == false)
    let response = harness.response()
    #expect(response[":status"] == "200")
    #expect(response["grpc-status"] == "13")
    #expect(response["grpc-message"].map { GRPCMessageEncoding.decode($0) } == "malformed grpc-timeout \"\(timeout)\"")
}

@Test func routedUnaryCallAnswersMessageThenOKTrailers() throws {
    let harness = try Harness()
    harness.headers(replacing("grpc-timeout", with: "10S"))
    #expect(harness.sink.responses.isEmpty, "answered before the request arrived")
    let framed = MessageFramer.frame([1, 2, 3])
    framed.withUnsafeBytes { harness.handler.dataReceived(on: 1, $0) }
    harness.handler.requestEnded(on: 1)
    #expect(harness.sink.responses[1]?.hasBody == true)
    #expect(harness.response() == [":status": "200", "content-type": "application/grpc", "grpc-accept-encoding": "identity,deflate,gzip"])
    var body = [UInt8](repeating: 0, count: 64)
    let chunk = body.withUnsafeMutableBytes { harness.handler.readBody(on: 1, into: $0) }
    #expect(chunk == .last(framed.count))
    #expect(Array(body.prefix(framed.count)) == framed)
    #expect(harness.sink.trailers[1].map { Dictionary($0, uniquingKeysWith: { first, _ in first }) } == ["grpc-status": "0"])
}

@Test func secondMessageOfAUnaryCallIsInternal() throws {
    let harness = try Harness()
    harness.headers(grpcRequest)
    let twice = MessageFramer.frame([1]) + MessageFramer.frame([2])
    twice.withUnsafeBytes { harness.handler.dataReceived(on: 1, $0) }
    #expect(harness.sink.responses[1]?.hasBody == false)
    #expect(harness.response()["grpc-status"] == "13")
    #expect(harness.response()["grpc-message"] == "grpc: more than one request message for a unary method")
}

@Test func deadlinePassingBeforeTheRequestEndsIsDeadlineExceeded() throws {
    let harness = try Harness()
    harness.headers(replacing("grpc-timeout", with: "1m"))
    #expect(harness.sink.responses.isEmpty)
    harness.sink.runTimers(now: .max)
    #expect(harness.sink.responses[1]?.hasBody == false)
    #expect(harness.response()["grpc-status"] == "4")
    #expect(harness.response()["grpc-message"] == "deadline exceeded")
    // The request's end after the answer changes nothing.
    MessageFramer.frame([1]).withUnsafeBytes { harness.handler.dataReceived(on: 1, $0) }
    harness.handler.requestEnded(on: 1)
    #expect(harness.sink.responses.count == 1)
}

/// What metrics and the call log hear: each call's start, then its end once, with the
/// status it got (CANCELLED when it ended without one) and its message sizes.
@Test func observersHearEveryCallStartAndEndOnce() throws {
    final class Recorder: ServerCallObserver, @unchecked Sendable {  // the harness runs on one thread
        var starts: [ServerCallStart] = []
        var ends: [ServerCallEnd] = []
        func callStarted(_ call: ServerCallStart) { starts.append(call) }
        func callEnded(_ call: ServerCallEnd) { ends.append(call) }
    }
    let recorder = Recorder()
    let harness = try Harness(observers: [recorder])
    // 1: answered OK.
    harness.headers(grpcRequest, on: 1)
    MessageFramer.frame([1, 2, 3]).withUnsafeBytes { harness.handler.dataReceived(on: 1, $0) }
    harness.handler.requestEnded(on: 1)
    var body = [UInt8](repeating: 0, count: 64)
    _ = body.withUnsafeMutableBytes { harness.handler.readBody(on: 1, into: $0) }
    // 3: no such method; 5: the client resets it before it is answered.
    harness.headers(replacing(":path", with: "/test.Echo/Missing"), on: 3)
    harness.headers(grpcRequest, on: 5)
    harness.handler.streamClosed(5)
    // Stream 1 closing after its trailers is no second end.
    harness.handler.streamClosed(1)
    #expect(recorder.starts.map(\.path) == ["/test.Echo/Echo", "/test.Echo/Missing", "/test.Echo/Echo"])
    #expect(recorder.starts.map(\.isRegistered) == [true, false, true])
    #expect(recorder.ends.map(\.status.code) == [.ok, .unimplemented, .cancelled])
    #expect(recorder.ends.map(\.path) == ["/test.Echo/Echo", "/test.Echo/Missing", "/test.Echo/Echo"])
    #expect(recorder.ends[0].requestBytes == 3 && recorder.ends[0].responseBytes == 3)
    #expect(recorder.ends.allSatisfy { $0.peer == "192.0.2.1:5000" })
}
