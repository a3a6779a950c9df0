import Testing
@testable import H2GRPC

// RFC 9113 §5.1.1: how the server judges a HEADERS frame on a client stream id.

@Test func higherIDsAreNewStreams() {
    var ids = ClientStreamIDs()
    #expect(ids.headersFrame(on: 1, isOpen: false) == .newStream)
    #expect(ids.headersFrame(on: 3, isOpen: false) == .newStream)
    #expect(ids.headersFrame(on: 9, isOpen: false) == .newStream)
    #expect(ids.highest == 9)
}

@Test func trailersOnAnOpenStreamAreNghttp2s() {
    var ids = ClientStreamIDs()
    _ = ids.headersFrame(on: 1, isOpen: false)
    _ = ids.headersFrame(on: 3, isOpen: false)
    #expect(ids.headersFrame(on: 1, isOpen: true) == .openStream)
}

@Test func aSkippedIDIsALowerNewStream() {
    // The h2spec case: stream 5 first, then 3 (never used).
    var ids = ClientStreamIDs()
    #expect(ids.headersFrame(on: 5, isOpen: false) == .newStream)
    #expect(ids.headersFrame(on: 3, isOpen: false) == .lowerThanUsed)
    #expect(ids.headersFrame(on: 1, isOpen: false) == .lowerThanUsed)
    // Later jumps too: 7 used, 9 to 13 skipped.
    _ = ids.headersFrame(on: 7, isOpen: false)
    _ = ids.headersFrame(on: 15, isOpen: false)
    #expect(ids.headersFrame(on: 11, isOpen: false) == .lowerThanUsed)
    #expect(ids.headersFrame(on: 7, isOpen: false) == .closed)
}

@Test func aUsedClosedIDIsClosedUnlessWeResetIt() {
    var ids = ClientStreamIDs()
    for id in stride(from: Int32(1), through: 7, by: 2) { _ = ids.headersFrame(on: id, isOpen: false) }
    ids.serverReset(3)
    #expect(ids.headersFrame(on: 3, isOpen: false) == .resetByServer)
    #expect(ids.headersFrame(on: 5, isOpen: false) == .closed)
}

@Test func theResetMemoryKeepsTheNewest() {
    var ids = ClientStreamIDs()
    let count = Int32(ClientStreamIDs.resetLimit + 10)
    for i in 0..<count {
        _ = ids.headersFrame(on: 2 * i + 1, isOpen: false)
        ids.serverReset(2 * i + 1)
    }
    #expect(ids.headersFrame(on: 2 * (count - 1) + 1, isOpen: false) == .resetByServer)
    #expect(ids.headersFrame(on: 2 * (count - Int32(ClientStreamIDs.resetLimit)) + 1, isOpen: false) == .resetByServer)
    // The oldest are forgotten: a closed stream, still a connection error.
    #expect(ids.headersFrame(on: 1, isOpen: false) == .closed)
}
