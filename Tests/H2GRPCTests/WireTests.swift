import Dispatch
import POSIXSupport
import Synchronization
import Testing
import ZlibCompression
@_spi(Fuzzing) @testable import H2GRPC

// MARK: Message framing

/// Frames `messages`, then feeds the bytes to a deframer in chunks cut at `cuts`.
private func deframe(_ messages: [[UInt8]], cuts: [Int], limit: Int = 1 << 20) throws -> [[UInt8]] {
    var wire: [UInt8] = []
    for message in messages { MessageFramer.appendFrame(message, to: &wire) }
    var deframer = MessageDeframer(maximumMessageLength: limit)
    var received: [[UInt8]] = []
    var start = 0
    for cut in (cuts.filter { $0 > 0 && $0 < wire.count }.sorted() + [wire.count]) where cut > start {
        try deframer.append(Array(wire[start..<cut]))
        while let message = try deframer.next() { received.append(message) }
        start = cut
    }
    #expect(deframer.pendingByteCount == 0)
    return received
}

@Test func framingPrefixIsFlagAndBigEndianLength() {
    let framed = MessageFramer.frame(Array(repeating: 7, count: 0x010203))
    #expect(Array(framed.prefix(5)) == [0, 0x00, 0x01, 0x02, 0x03])
    #expect(framed.count == 5 + 0x010203)
    #expect(MessageFramer.frame([]) == [0, 0, 0, 0, 0])
}

@Test func deframingSurvivesEverySplitOfSmallMessages() throws {
    let messages: [[UInt8]] = [[1, 2, 3], [], [9], Array(0..<200).map { UInt8($0) }]
    let total = messages.reduce(0) { $0 + 5 + $1.count }
    // Every single cut point, and every pair of cut points in the first 40 bytes.
    for cut in 0...total {
        #expect(try deframe(messages, cuts: [cut]) == messages, "cut at \(cut)")
    }
    for a in 0..<40 { for b in a..<40 {
        #expect(try deframe(messages, cuts: [a, b]) == messages)
    } }
    // One byte at a time.
    #expect(try deframe(messages, cuts: Array(0...total)) == messages)
}

@Test func deframingRandomSplitsOfLargeMessages() throws {
    var generator = SystemRandomNumberGenerator()
    let messages = (0..<5).map { n in (0..<(n * 70_001)).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ n) } }
    let total = messages.reduce(0) { $0 + 5 + $1.count }
    for _ in 0..<20 {
        let cuts = (0..<Int.random(in: 1...50, using: &generator)).map { _ in Int.random(in: 0...total, using: &generator) }
        #expect(try deframe(messages, cuts: cuts) == messages)
    }
}

@Test func deframerRefusesOversizedMessageFromItsPrefix() {
    var deframer = MessageDeframer(maximumMessageLength: 100)
    // Only the prefix has arrived: 101 bytes announced.
    #expect(throws: MessageDeframer.Failure.tooLarge(length: 101, limit: 100)) {
        try deframer.append([0, 0, 0, 0, 101])
    }
    var exact = MessageDeframer(maximumMessageLength: 100)
    #expect(throws: Never.self) { try exact.append(MessageFramer.frame(Array(repeating: 1, count: 100))) }
    #expect(MessageDeframer.Failure.tooLarge(length: 5_242_880, limit: 4_194_304).rpcError.code == .resourceExhausted)
}

@Test func deframerRefusesUnknownCompressionAndBadFlags() {
    var compressed = MessageDeframer(maximumMessageLength: 100)
    #expect(throws: MessageDeframer.Failure.compressed(encoding: nil)) { try compressed.append([1, 0, 0, 0, 1, 42]) }
    var snappy = MessageDeframer(maximumMessageLength: 100)
    snappy.messageEncoding = "snappy"
    #expect(throws: MessageDeframer.Failure.compressed(encoding: "snappy")) { try snappy.append([1, 0, 0, 0, 1, 42]) }
    var gzip = MessageDeframer(maximumMessageLength: 100)
    gzip.messageEncoding = "gzip"
    #expect(throws: MessageDeframer.Failure.undecompressable(encoding: "gzip", reason: "ends before its gzip stream does")) {
        try gzip.append([1, 0, 0, 0, 1, 42])
    }
    var bad = MessageDeframer(maximumMessageLength: 100)
    #expect(throws: MessageDeframer.Failure.badFlag(2)) { try bad.append([2, 0, 0, 0, 0]) }
}

/// gzip and deflate messages are decompressed, split anywhere, and the limit holds for
/// the decompressed size too.
@Test(arguments: ["gzip", "deflate", "GZIP"])
func deframerDecompresses(_ encoding: String) throws {
    let message = Array((0..<300).map { UInt8($0 % 7) })
    let coding = try #require(ZlibCoding(name: encoding))
    let framed = MessageFramer.prefix(length: Zlib.compress(message, as: coding).count, compressed: true)
        + Zlib.compress(message, as: coding) + MessageFramer.frame([9])
    for split in [1, 3, 5, 6, framed.count - 1] {
        var deframer = MessageDeframer(maximumMessageLength: 300)
        deframer.messageEncoding = encoding
        try deframer.append(Array(framed[..<split]))
        try deframer.append(Array(framed[split...]))
        #expect(try deframer.next() == message)
        #expect(try deframer.next() == [9])
    }
    var small = MessageDeframer(maximumMessageLength: 299)
    small.messageEncoding = encoding
    #expect(throws: MessageDeframer.Failure.tooLargeAfterDecompression(limit: 299)) { try small.append(framed) }
    #expect(MessageDeframer.Failure.tooLargeAfterDecompression(limit: 299).rpcError.code == .resourceExhausted)
    #expect(MessageDeframer.Failure.undecompressable(encoding: "gzip", reason: "x").rpcError.code == .internalError)
}

/// grpc-go's statuses: a compressed flag without an encoding is the sender's error
/// (INTERNAL); with an encoding we do not have, UNIMPLEMENTED naming it.
@Test(arguments: [
    (nil, RPCError.Code.internalError, "grpc: compressed flag set with identity or empty encoding"),
    ("", .internalError, "grpc: compressed flag set with identity or empty encoding"),
    ("identity", .internalError, "grpc: compressed flag set with identity or empty encoding"),
    ("snappy", .unimplemented, "grpc: Decompressor is not installed for grpc-encoding \"snappy\""),
    ("br", .unimplemented, "grpc: Decompressor is not installed for grpc-encoding \"br\""),
] as [(String?, RPCError.Code, String)])
func compressedMessageStatus(encoding: String?, code: RPCError.Code, message: String) {
    let status = MessageDeframer.Failure.compressed(encoding: encoding).rpcError
    #expect(status.code == code)
    #expect(status.message == message)
    var bad = MessageDeframer(maximumMessageLength: 100)
    #expect(throws: MessageDeframer.Failure.badFlag(2)) { try bad.append([2, 0, 0, 0, 0]) }
}

// MARK: grpc-timeout

@Test(arguments: [
    ("1H", 3_600_000_000_000), ("2M", 120_000_000_000), ("3S", 3_000_000_000),
    ("100m", 100_000_000), ("250u", 250_000), ("7n", 7), ("0S", 0),
    ("99999999n", 99_999_999), ("99999999S", 99_999_999_000_000_000),
    ("00000001m", 1_000_000),
] as [(String, Int64)])
func timeoutParsesEveryUnit(header: String, nanoseconds: Int64) {
    #expect(GRPCTimeout(header: header)?.nanoseconds == nanoseconds)
}

@Test(arguments: ["", "S", "1", "123456789S", "1s", "1h", "-1S", "+1S", "1.5S", " 1S", "1S ", "1 S", "１S", "1SS"])
func timeoutRejectsMalformed(header: String) {
    #expect(GRPCTimeout(header: header) == nil)
}

@Test func timeoutSaturatesInsteadOfOverflowing() {
    // 99,999,999 hours is more nanoseconds than Int64 holds.
    #expect(GRPCTimeout(header: "99999999H")?.nanoseconds == Int64.max)
}

@Test func timeoutEncodesWithAtMostEightDigitsNeverShorter() {
    for nanoseconds: Int64 in [0, 1, 999, 99_999_999, 100_000_000, 123_456_789_012, 10_000_000_000_000_000, .max] {
        let header = GRPCTimeout(nanoseconds: nanoseconds).headerValue
        #expect(header.count <= 9, "\(header)")
        let parsed = GRPCTimeout(header: header)
        #expect(parsed != nil, "\(header)")
        #expect(parsed!.nanoseconds >= nanoseconds, "\(header) shortens \(nanoseconds)")
    }
    #expect(GRPCTimeout(nanoseconds: 100_000_000).headerValue == "100000u")
    #expect(GRPCTimeout(nanoseconds: 1_000_000_000_000).headerValue == "1000000m")
}

// MARK: grpc-message percent-encoding

@Test func percentEncodingKeepsPrintableASCIIExceptPercent() {
    let printable = String(decoding: (0x20...0x7E).filter { $0 != 0x25 }.map { UInt8($0) }, as: UTF8.self)
    #expect(GRPCMessageEncoding.encode(printable) == printable)
    #expect(GRPCMessageEncoding.encode("100%") == "100%25")
    #expect(GRPCMessageEncoding.encode("a\nb\tc") == "a%0Ab%09c")
    #expect(GRPCMessageEncoding.encode("é") == "%C3%A9")
    #expect(GRPCMessageEncoding.encode("值 🙂") == "%E5%80%BC %F0%9F%99%82")
}

@Test func percentDecodingRoundTripsAndNeverFails() {
    for text in ["", "plain", "100%", "line\nbreak", "é值🙂", "%%%", "\u{0}\u{7F}"] {
        #expect(GRPCMessageEncoding.decode(GRPCMessageEncoding.encode(text)) == text)
    }
    // Invalid escapes are kept as they are; invalid UTF-8 becomes U+FFFD.
    #expect(GRPCMessageEncoding.decode("%") == "%")
    #expect(GRPCMessageEncoding.decode("%4") == "%4")
    #expect(GRPCMessageEncoding.decode("%zz%41") == "%zzA")
    #expect(GRPCMessageEncoding.decode("%FF") == "\u{FFFD}")
    #expect(GRPCMessageEncoding.decode("%c3%a9") == "é")
}

// MARK: Status codes

@Test func statusCodesHaveTheirNumbersAndNames() {
    let expected: [(Status.Code, Int, String)] = [
        (.ok, 0, "OK"), (.cancelled, 1, "CANCELLED"), (.unknown, 2, "UNKNOWN"),
        (.invalidArgument, 3, "INVALID_ARGUMENT"), (.deadlineExceeded, 4, "DEADLINE_EXCEEDED"),
        (.notFound, 5, "NOT_FOUND"), (.alreadyExists, 6, "ALREADY_EXISTS"),
        (.permissionDenied, 7, "PERMISSION_DENIED"), (.resourceExhausted, 8, "RESOURCE_EXHAUSTED"),
        (.failedPrecondition, 9, "FAILED_PRECONDITION"), (.aborted, 10, "ABORTED"),
        (.outOfRange, 11, "OUT_OF_RANGE"), (.unimplemented, 12, "UNIMPLEMENTED"),
        (.internalError, 13, "INTERNAL"), (.unavailable, 14, "UNAVAILABLE"),
        (.dataLoss, 15, "DATA_LOSS"), (.unauthenticated, 16, "UNAUTHENTICATED"),
    ]
    #expect(Status.Code.allKnown.count == 17)
    for (code, number, name) in expected {
        #expect(code.rawValue == number)
        #expect(code.description == name)
        #expect(Status.Code(rawValue: number) == code)
    }
    #expect(Status.Code(rawValue: 42).description == "CODE_42")
}

@Test func statusTrailerParsing() {
    #expect(Status.parseCode("0") == .ok)
    #expect(Status.parseCode("14") == .unavailable)
    #expect(Status.parseCode("99") == Status.Code(rawValue: 99))
    for bad in ["", "-1", "01", "1a", " 1", "99999999999"] { #expect(Status.parseCode(bad) == nil, "\(bad)") }
}

@Test func httpAndResetFallbackTables() {
    #expect(StatusMapping.code(forHTTPStatus: 400) == .internalError)
    #expect(StatusMapping.code(forHTTPStatus: 401) == .unauthenticated)
    #expect(StatusMapping.code(forHTTPStatus: 403) == .permissionDenied)
    #expect(StatusMapping.code(forHTTPStatus: 404) == .unimplemented)
    for status in [429, 502, 503, 504] { #expect(StatusMapping.code(forHTTPStatus: status) == .unavailable) }
    #expect(StatusMapping.code(forHTTPStatus: 431) == .internalError)
    #expect(StatusMapping.code(forHTTPStatus: 500) == .unknown)
    #expect(StatusMapping.code(forRSTStreamError: 0x7) == .unavailable)
    #expect(StatusMapping.code(forRSTStreamError: 0x8) == .cancelled)
    #expect(StatusMapping.code(forRSTStreamError: 0xB) == .resourceExhausted)
    #expect(StatusMapping.code(forRSTStreamError: 0xC) == .permissionDenied)
    #expect(StatusMapping.code(forRSTStreamError: 0x1) == .internalError)
}

@Test func grpcContentTypes() {
    for good in ["application/grpc", "application/grpc+proto", "application/grpc;charset=utf-8"] {
        #expect(ServerCallHandler.isGRPCContentType(good))
    }
    for bad in ["", "application/json", "application/grpcx", "text/plain", "application/grpc-web"] {
        #expect(!ServerCallHandler.isGRPCContentType(bad), "\(bad)")
    }
}

@Test func timerHeapRunsInDeadlineOrderAndSkipsCancelled() {
    var heap = TimerHeap()
    // Closures capture a box so the heap can run them.
    final class Log { var values: [Int] = [] }
    let log = Log()
    for deadline in [50, 10, 40, 30, 20] as [UInt64] {
        heap.insert(deadline: deadline) { log.values.append(Int(deadline)) }
    }
    let cancelled = heap.insert(deadline: 25) { log.values.append(25) }
    cancelled.cancel()
    #expect(heap.millisecondsUntilNext(now: 0) == 1)
    for task in heap.takeExpired(now: 35) { task() }
    #expect(log.values == [10, 20, 30])
    for task in heap.takeExpired(now: 100) { task() }
    #expect(log.values == [10, 20, 30, 40, 50])
    #expect(heap.millisecondsUntilNext(now: 100) == -1)
}

/// A timer's task that schedules the next one (the channel's periodic re-resolution and
/// health checks do): it once trapped, the heap being mutated while it ran.
@Test func aTimerTaskMaySchedule() throws {
    let loop = try EventLoop(name: "timer-test")
    loop.start()
    defer { loop.stopAndWait() }
    let done = DispatchSemaphore(value: 0)
    let fired = Mutex(0)
    loop.execute {
        func tick() {
            let count = fired.withLock { $0 += 1; return $0 }
            if count < 3 { loop.schedule(at: MonotonicClock.now() + 1_000_000) { tick() } } else { done.signal() }
        }
        loop.schedule(at: MonotonicClock.now()) { tick() }
    }
    #expect(done.wait(timeout: .now() + 5) == .success)
    #expect(fired.withLock { $0 } == 3)
}

/// The client sends the prefix and the message from two arrays: read into DATA frames
/// of any size, they make exactly the framed message.
@Test func clientCallBodyReadsAsTheFramedMessageInAnyChunkSize() {
    for messageLength in [0, 1, 4, 5, 6, 1000] {
        let message = (0..<messageLength).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        for chunk in [1, 2, 3, 4, 5, 6, 7, 64, 16384] {
            let call = ClientCall(path: "/p.S/M", message: message, metadata: [], deadline: nil,
                                  maximumReceiveMessageLength: 100) { _ in }
            var sent: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: chunk)
            while call.bodyOffset < call.bodyCount {
                let count = buffer.withUnsafeMutableBytes { call.copyBody(into: $0) }
                #expect(count > 0 && count <= chunk)
                sent += buffer[0..<count]
            }
            #expect(sent == MessageFramer.frame(message), "message of \(messageLength) bytes in chunks of \(chunk)")
        }
    }
}

/// Messages come out of the deframer as they went in, whatever the pieces, and a bad
/// prefix after complete messages is thrown only once those have been taken.
@Test func deframerHandsOutEachMessageAndThenTheFailureBehindIt() throws {
    var deframer = MessageDeframer(maximumMessageLength: 10)
    let stream = MessageFramer.frame([1, 2, 3]) + MessageFramer.frame([]) + [2, 0, 0, 0, 0]
    try deframer.append(stream)
    #expect(try deframer.next() == [1, 2, 3])
    #expect(try deframer.next() == [])
    #expect(throws: MessageDeframer.Failure.badFlag(2)) { _ = try deframer.next() }
    var split = MessageDeframer(maximumMessageLength: 10)
    for byte in MessageFramer.frame([9, 8, 7, 6]) {
        #expect(try split.next() == nil)
        try split.append([byte])
    }
    #expect(split.pendingByteCount == 9)
    #expect(try split.next() == [9, 8, 7, 6])
    #expect(split.pendingByteCount == 0)
}
