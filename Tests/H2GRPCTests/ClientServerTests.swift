import Foundation
import POSIXSupport
import Synchronization
import Testing
@testable import H2GRPC

/// Our client against our server, in one process. The interop tests check each
/// half against Python's grpcio; these check the pieces the protocol leaves to us.
private func makeServer(port: Int = 0, handlers extra: [String: RPCHandler] = [:],
                        configure: (inout GRPCServerConfiguration) -> Void = { _ in }) throws -> GRPCServer {
    var configuration = GRPCServerConfiguration()
    configuration.port = port
    configuration.threads = 2
    configuration.drainTimeout = .seconds(5)
    configure(&configuration)
    var handlers: [String: RPCHandler] = [
        "/test.Echo/Echo": .unary { request, _ in request },
        "/test.Echo/Sleep": .unary { request, _ in
            usleep(useconds_t(request.first ?? 0) * 10_000)
            return request
        },
        "/test.Echo/Fail": .unary { _, context throws(RPCError) in
            throw RPCError(code: .failedPrecondition, message: "no: \(context.metadataValue("x-why") ?? "-") 100% ✓")
        },
    ]
    handlers.merge(extra) { $1 }
    let server = GRPCServer(configuration: configuration, handlers: handlers)
    try server.start()
    return server
}

/// A blocking call through the callback API. The tests block on semaphores rather
/// than awaiting: Swift Testing runs on the cooperative pool (two threads here), and
/// a server shutdown that blocks it while awaited calls need it would deadlock.
private func call(_ client: GRPCChannel, _ path: String, _ request: [UInt8], metadata: [(name: String, value: String)] = [],
                  timeout: Duration? = nil) -> Result<[UInt8], RPCError> {
    let result = Mutex<Result<[UInt8], RPCError>?>(nil)
    let done = DispatchSemaphore(value: 0)
    client.unary(path: path, request: request, metadata: metadata, timeout: timeout) { outcome in
        result.withLock { $0 = outcome.map(\.message) }
        done.signal()
    }
    guard done.wait(timeout: .now() + 30) == .success else { return .failure(RPCError(code: .unknown, message: "test: no answer in 30 s")) }
    return result.withLock { $0! }
}

private func channel(_ server: GRPCServer, configure: (inout GRPCClientConfiguration) -> Void = { _ in }) throws -> GRPCChannel {
    var configuration = GRPCClientConfiguration()
    configure(&configuration)
    return try GRPCChannel(targets: ["127.0.0.1:\(server.port)"], configuration: configuration)
}

@Suite(.serialized) struct ClientServerTests {

@Test func echoRoundTripsSmallAndLargeMessages() throws {
    let server = try makeServer()
    defer { server.shutdown() }
    let client = try channel(server)
    defer { client.close() }
    for size in [0, 1, 16_383, 16_384, 100_000, 1 << 20, 2 << 20, 3 << 20, 4 * 1024 * 1024] {
        let message = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        let result = call(client, "/test.Echo/Echo", message)
        #expect((try? result.get()) == message, "size \(size): \(result.map(\.count))")
    }
}

@Test func statusMessageAndMetadataCrossTheWire() throws {
    let server = try makeServer()
    defer { server.shutdown() }
    let client = try channel(server)
    defer { client.close() }
    #expect(throws: RPCError.self) { try call(client, "/test.Echo/Fail", [], metadata: [("x-why", "because")]).get() }
    if case .failure(let error) = call(client, "/test.Echo/Fail", [], metadata: [("x-why", "because")]) {
        #expect(error.code == .failedPrecondition)
        #expect(error.message == "no: because 100% ✓")
    } else {
        Issue.record("expected FAILED_PRECONDITION")
    }
    if case .failure(let error) = call(client, "/test.Echo/Missing", []) {
        #expect(error.code == .unimplemented)
        #expect(error.message.contains("/test.Echo/Missing"))
    } else {
        Issue.record("expected UNIMPLEMENTED")
    }
}

@Test func asyncAPIAnswers() async throws {
    // The only awaiting test: it blocks no thread until the servers are stopped,
    // which happens off the cooperative pool.
    let server = try makeServer()
    let client = try channel(server)
    let response = try await client.unary(path: "/test.Echo/Echo", request: [4, 2])
    #expect(response.message == [4, 2])
    do {
        _ = try await client.unary(path: "/test.Echo/Missing", request: [])
        Issue.record("expected UNIMPLEMENTED")
    } catch {
        #expect(error.code == .unimplemented)
    }
    await offload {
        client.close()
        server.shutdown()
    }
}

@Test func wildcardIPv6ListenerServesIPv4AndIPv6Clients() throws {
    let server = try makeServer { $0.host = "::" }
    defer { server.shutdown() }
    #expect(server.boundAddresses == ["[::]:\(server.port)"])
    for target in ["127.0.0.1:\(server.port)", "[::1]:\(server.port)"] {
        let client = try GRPCChannel(targets: [target])
        defer { client.close() }
        #expect(try call(client, "/test.Echo/Echo", [6]).get() == [6], "\(target)")
    }
}

@Test func oversizedRequestIsResourceExhausted() throws {
    let server = try makeServer { $0.maximumReceiveMessageLength = 1000 }
    defer { server.shutdown() }
    let client = try channel(server)
    defer { client.close() }
    if case .failure(let error) = call(client, "/test.Echo/Echo", Array(repeating: 1, count: 1001)) {
        #expect(error.code == .resourceExhausted)
        #expect(error.message.contains("1001 vs. 1000"))
    } else {
        Issue.record("expected RESOURCE_EXHAUSTED")
    }
    // The connection still serves.
    #expect(try call(client, "/test.Echo/Echo", [1, 2]).get() == [1, 2])
}

@Test func deadlineShorterThanTheHandlerIsDeadlineExceeded() throws {
    let server = try makeServer { $0.inlineHandlerLimit = 0 }
    defer { server.shutdown() }
    let client = try channel(server)
    defer { client.close() }
    let started = MonotonicClock.now()
    if case .failure(let error) = call(client, "/test.Echo/Sleep", [50], timeout: .milliseconds(100)) {
        #expect(error.code == .deadlineExceeded)
    } else {
        Issue.record("expected DEADLINE_EXCEEDED")
    }
    let elapsed = Double(MonotonicClock.now() - started) / 1e9
    #expect(elapsed < 0.45, "took \(elapsed)s for a 100 ms deadline")
    // A generous deadline lets the same call succeed.
    #expect(try call(client, "/test.Echo/Sleep", [1], timeout: .seconds(5)).get() == [1])
}

@Test func cancellationEndsTheCallAsCancelled() throws {
    let server = try makeServer { $0.inlineHandlerLimit = 0 }
    defer { server.shutdown() }
    let client = try channel(server)
    defer { client.close() }
    let outcome = Mutex<RPCError?>(nil)
    let finished = DispatchSemaphore(value: 0)
    let handle = client.unary(path: "/test.Echo/Sleep", request: [100]) { result in
        if case .failure(let error) = result { outcome.withLock { $0 = error } }
        finished.signal()
    }
    usleep(50_000)
    handle.cancel()
    #expect(finished.wait(timeout: .now() + 2) == .success)
    #expect(outcome.withLock { $0?.code } == .cancelled)
    #expect(try call(client, "/test.Echo/Echo", [3]).get() == [3])
}

@Test func manyConcurrentCallsOnOneConnection() throws {
    let server = try makeServer()
    defer { server.shutdown() }
    let client = try channel(server)
    defer { client.close() }
    let correct = Atomic<Int>(0)
    let group = DispatchGroup()
    for i in 0..<500 {
        group.enter()
        let message = Array("call \(i)".utf8)
        client.unary(path: "/test.Echo/Echo", request: message) { result in
            if (try? result.get().message) == message { correct.add(1, ordering: .relaxed) }
            group.leave()
        }
    }
    #expect(group.wait(timeout: .now() + 30) == .success)
    #expect(correct.load(ordering: .relaxed) == 500)
}

@Test func serverDownIsUnavailableQuicklyThenReconnects() throws {
    // Find a free port, then leave it closed.
    let probe = try makeServer()
    let port = probe.port
    probe.shutdown()
    let client = try GRPCChannel(targets: ["127.0.0.1:\(port)"])
    defer { client.close() }
    let started = MonotonicClock.now()
    if case .failure(let error) = call(client, "/test.Echo/Echo", [1]) {
        #expect(error.code == .unavailable)
        #expect(error.message.contains("refused"), "\(error)")
    } else {
        Issue.record("expected UNAVAILABLE")
    }
    #expect(Double(MonotonicClock.now() - started) / 1e9 < 1)
    let server = try makeServer(port: port)
    defer { server.shutdown() }
    var answer: [UInt8]?
    for _ in 0..<100 where answer == nil {
        answer = try? call(client, "/test.Echo/Echo", [7]).get()
        if answer == nil { usleep(50_000) }
    }
    #expect(answer == [7])
}

@Test func twoBackendsOneStoppedCallsKeepSucceeding() throws {
    let first = try makeServer()
    let second = try makeServer()
    defer { second.shutdown() }
    let client = try GRPCChannel(targets: ["127.0.0.1:\(first.port)", "127.0.0.1:\(second.port)"])
    defer { client.close() }
    for _ in 0..<10 { #expect(try call(client, "/test.Echo/Echo", [1]).get() == [1]) }
    first.shutdown()
    for i in 0..<50 {
        let result = call(client, "/test.Echo/Echo", [UInt8(i)])
        #expect((try? result.get()) == [UInt8(i)], "call \(i) after the first backend stopped: \(result)")
    }
}

@Test func shutdownLetsCallsInFlightFinishAndNewCallsReconnect() throws {
    let server = try makeServer { $0.inlineHandlerLimit = 0 }
    let port = server.port
    let client = try channel(server)
    defer { client.close() }
    #expect(try call(client, "/test.Echo/Echo", [1]).get() == [1])
    let inFlight = Mutex<Result<GRPCResponse, RPCError>?>(nil)
    let finished = DispatchSemaphore(value: 0)
    client.unary(path: "/test.Echo/Sleep", request: [30]) { result in
        inFlight.withLock { $0 = result }
        finished.signal()
    }
    usleep(100_000)
    let stopper = Thread { server.shutdown() }
    stopper.start()
    // The call in flight (300 ms) finishes despite the GOAWAY.
    #expect(finished.wait(timeout: .now() + 10) == .success)
    #expect((try? inFlight.withLock { $0 }?.get().message) == [30])
    while !stopper.isFinished { usleep(10_000) }
    let replacement = try makeServer(port: port)
    defer { replacement.shutdown() }
    var answer: [UInt8]?
    for _ in 0..<100 where answer == nil {
        answer = try? call(client, "/test.Echo/Echo", [9]).get()
        if answer == nil { usleep(50_000) }
    }
    #expect(answer == [9])
}


/// Other suites (and other test modules) open descriptors at the same time, so the
/// leak test counts only descriptors opened while its own server and channel were up
/// that are still open, the same file, once both are stopped.
@Test func stoppedServersAndChannelsGiveBackTheirDescriptors() throws {
    /// Each open descriptor with what it refers to (`5 -> socket:[1234]`), so that a
    /// number reused for another file does not count as the same descriptor.
    func openDescriptors() throws -> Set<String> {
        let directory = "/proc/self/fd"
        return Set(try FileManager.default.contentsOfDirectory(atPath: directory).compactMap { fd in
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "\(directory)/\(fd)")).map { "\(fd) -> \($0)" }
        })
    }
    // Warm up whatever Foundation opens once.
    do {
        let server = try makeServer()
        let client = try GRPCChannel(targets: ["127.0.0.1:\(server.port)"])
        _ = call(client, "/test.Echo/Echo", [1])
        client.close()
        server.shutdown()
    }
    var leaked: Set<String> = []
    for _ in 0..<20 {
        let before = try openDescriptors()
        let server = try makeServer()
        let client = try GRPCChannel(targets: ["127.0.0.1:\(server.port)"])
        #expect(try call(client, "/test.Echo/Echo", [1]).get() == [1])
        let during = try openDescriptors()
        client.close()
        server.shutdown()
        leaked.formUnion(during.subtracting(before).intersection(try openDescriptors()))
    }
    // Each server has 2 loops (epoll + eventfd each) and a listener, each channel a loop:
    // 20 rounds that leaked would leave over 100 descriptors behind.
    #expect(leaked.count < 40, "still open after 20 servers and channels: \(leaked.sorted())")
}

}

/// Runs blocking work on a thread of its own and awaits it.
private func offload(_ work: @escaping @Sendable () -> Void) async {
    await withCheckedContinuation { continuation in
        Thread {
            work()
            continuation.resume()
        }.start()
    }
}

@Test func badTargetsAreRejected() {
    for target in ["nohost", "host:", ":80", "host:99999", "[::1]80", "host:port"] {
        #expect(throws: RPCError.self, "\(target)") { _ = try GRPCChannel(targets: [target]) }
    }
}

@Test func backoffGrowsAndIsCapped() {
    let backoff = GRPCClientConfiguration.Backoff()
    func seconds(_ failures: Int, _ random: Double) -> Double { backoff.delay(afterFailures: failures, random: random).secondsDouble }
    #expect(backoff.delay(afterFailures: 1, random: 0) == .milliseconds(100))
    #expect(abs(seconds(2, 0) - 0.16) < 1e-9)
    #expect(backoff.delay(afterFailures: 50, random: 0) == .milliseconds(500))
    #expect(abs(seconds(50, 1) - 0.6) < 1e-9)
    #expect(abs(seconds(1, -1) - 0.08) < 1e-9)
}
