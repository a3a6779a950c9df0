import Testing
@testable import H2GRPC

@Test func targetsParseWithAndWithoutTheDNSScheme() throws {
    let cases: [(String, String, String, Int, Bool)] = [
        ("127.0.0.1:9999", "127.0.0.1:9999", "127.0.0.1", 9999, false),
        ("[::1]:50051", "[::1]:50051", "::1", 50051, false),
        ("dns:///backends:9999", "backends:9999", "backends", 9999, true),
        ("dns:backends.default.svc:1", "backends.default.svc:1", "backends.default.svc", 1, true),
        ("dns:///[::1]:80", "[::1]:80", "::1", 80, true),
    ]
    for (text, authority, host, port, reResolves) in cases {
        let target = try ChannelTarget(parsing: text)
        #expect(target.authority == authority, "\(text)")
        #expect(target.host == host, "\(text)")
        #expect(target.port == port, "\(text)")
        #expect(target.reResolves == reResolves, "\(text)")
        #expect(target.description == text)
    }
}

@Test func badTargetsSayWhatIsWrong() {
    let cases: [(String, String)] = [
        ("dns://8.8.8.8/backends:9999", "a DNS server in the target is not supported"),
        ("dns:///backends", "expected host:port"),
        ("dns:///:9999", "expected host:port with a port"),
        ("unix:///tmp/socket:1", "the schemes are dns:///host:port"),
        ("http://backends:9999", "the schemes are dns:///host:port"),
        ("backends:0", "a port in 1...65535"),
    ]
    for (text, words) in cases {
        do {
            _ = try ChannelTarget(parsing: text)
            Issue.record("\(text) parsed")
        } catch {
            #expect(error.code == .invalidArgument, "\(text)")
            #expect(error.message.contains(words), "\(text): \(error.message)")
            #expect(error.message.contains("\"\(text)\""), "\(text): \(error.message)")
        }
    }
}

/// A dns:/// name that does not resolve yet is no error at start (a headless Service
/// without ready pods has no records): calls fail UNAVAILABLE naming the resolution.
@Test func anUnresolvableDNSTargetFailsCallsNotTheChannel() async throws {
    let channel = try GRPCChannel(targets: ["dns:///no-such-host.invalid:9999"])
    defer { channel.close() }
    do {
        _ = try await channel.unary(path: "/pb.Outliers/Detect", request: [], timeout: .seconds(5))
        Issue.record("a call succeeded")
    } catch {
        #expect(error.code == .unavailable)
        #expect(error.message.contains("cannot resolve no-such-host.invalid"), "\(error.message)")
    }
    #expect(throws: RPCError.self) { _ = try GRPCChannel(targets: ["no-such-host.invalid:9999"]) }
}

@Test func healthCheckResponsesAreRead() {
    #expect(HealthCheckAnswer.serving([0x08, 0x01]) == .serving)
    #expect(HealthCheckAnswer.serving([0x08, 0x02]) == .notServing("NOT_SERVING"))
    #expect(HealthCheckAnswer.serving([0x08, 0x03]) == .notServing("SERVICE_UNKNOWN"))
    // proto3: an absent status is 0, UNKNOWN.
    #expect(HealthCheckAnswer.serving([]) == .notServing("UNKNOWN"))
    // Unknown fields of every wire type are skipped, the last status wins.
    #expect(HealthCheckAnswer.serving([0x10, 0x05, 0x1A, 0x02, 0x41, 0x42, 0x25, 1, 2, 3, 4,
                                       0x29, 1, 2, 3, 4, 5, 6, 7, 8, 0x08, 0x02, 0x08, 0x01]) == .serving)
    for malformed: [UInt8] in [[0x08], [0x08, 0x80], [0x1A, 0x05, 0x01], [0x00, 0x01], [0x0B], [0x25, 1, 2]] {
        #expect(HealthCheckAnswer.serving(malformed) == .notServing("a malformed HealthCheckResponse"), "\(malformed)")
    }
}
