import Glibc
import Testing
@testable import POSIXSupport

@Test func resolvedAddressesDescribeThemselvesWithTheirPort() throws {
    let v4 = try SocketAddress.resolve(host: "127.0.0.1", port: 8080)
    #expect(v4.map(\.description) == ["127.0.0.1:8080"])
    #expect(v4[0].ipAddress == "127.0.0.1")
    #expect(v4[0].family == AF_INET)
    let v6 = try SocketAddress.resolve(host: "::1", port: 8080)
    #expect(v6.map(\.description) == ["[::1]:8080"])
    var changed = v6[0]
    changed.port = 9
    #expect(changed.description == "[::1]:9")
    #expect(changed.length == socklen_t(MemoryLayout<sockaddr_in6>.size))
}

@Test func unresolvableHostIsAResolutionError() {
    #expect(throws: ResolutionError.self) { try SocketAddress.resolve(host: "no such host.invalid", port: 1) }
}

@Test func listeningSocketPrefersIPv4AndAcceptsWithoutBlocking() throws {
    let socket = try ListeningSocket.bind(host: "localhost", port: 0)
    defer { socket.close() }
    #expect(socket.address == "127.0.0.1:\(socket.port)")
    #expect(socket.port > 0)
    let accepted = try socket.accept()
    guard case .wouldBlock = accepted else {
        Issue.record("accept without a client gave \(accepted), not wouldBlock")
        return
    }
}

@Test func syscallTurnsErrnoIntoSystemError() throws {
    #expect(throws: SystemError(call: "close", code: EBADF)) { try Syscall.run("close") { close(-1) } }
    var fds: [Int32] = [0, 0]
    try Syscall.run("socketpair") { socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds) }
    defer { close(fds[0]); close(fds[1]) }
    var byte: UInt8 = 0
    #expect(try Syscall.nonBlocking("read") { read(fds[0], &byte, 1) } == .wouldBlock)
}

/// The kernel's own account of this process's allowed processors, /proc/self/status's
/// Cpus_allowed_list ("0-1", "0,2-3"), counted independently of sched_getaffinity.
private func cpusAllowedByProc() throws -> Int {
    let status = String(cString: try #require(readFile("/proc/self/status")))
    let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Cpus_allowed_list:") })
    return try line.dropFirst("Cpus_allowed_list:".count).split(separator: ",").reduce(0) { count, range in
        let bounds = range.split(separator: "-").map { Int($0.trimmingPrefix(while: \.isWhitespace)) }
        let low = try #require(bounds.first ?? nil), high = try #require(bounds.last ?? nil)
        return count + high - low + 1
    }
}

private func readFile(_ path: String) -> [CChar]? {
    guard let file = fopen(path, "r") else { return nil }
    defer { fclose(file) }
    var bytes: [CChar] = []
    var buffer = [CChar](repeating: 0, count: 4096)
    while true {
        let count = fread(&buffer, 1, buffer.count, file)
        if count == 0 { break }
        bytes += buffer[0..<count]
    }
    return bytes + [0]
}

@Test func coreCountIsTheAffinityMaskNotTheProcessorsOnline() throws {
    #expect(CoreCount.available == (try cpusAllowedByProc()))
    #expect(CoreCount.available <= CoreCount.online)
}

/// The address and thread sanitizers' allocators stand in for glibc's (`swift test
/// --sanitize=address|thread`): mallopt and glibc's chunk layout do not apply there.
private let glibcMallocIsInUse = ["__asan_init", "__tsan_init"].allSatisfy { (symbol: String) in
    dlsym(UnsafeMutableRawPointer(bitPattern: 0), symbol) == nil
}

@Test(.enabled(if: glibcMallocIsInUse, "a sanitizer's allocator replaces glibc's malloc, which mallopt tunes"))
func glibcTakesTheServersMallocThresholds() {
    #expect(MallocTuning.forServers())
    // glibc marks a block mapped on its own with bit 1 (IS_MMAPPED) of the size word
    // just before it: 1 MiB comes from the heap now, and a block past the threshold is
    // still mapped. (Per block, so tests running meanwhile cannot disturb it, as they
    // would mallinfo2's counts.) That block is larger than all the arenas hold, free
    // or not: a free block of 8 MiB left in an arena by another test (their freed
    // neighbours coalesce) would serve an 8 MiB request without a mapping, whatever
    // the threshold, and did once in a full run.
    func isMapped(_ block: UnsafeMutableRawPointer) -> Bool {
        (block - MemoryLayout<Int>.size).load(as: UInt.self) & 2 != 0
    }
    let heap = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
    let arenas = MallocTuning.arenaBytes
    let mapped = UnsafeMutableRawPointer.allocate(byteCount: max(8 << 20, arenas + (64 << 20)), alignment: 16)
    #expect(!isMapped(heap))
    #expect(isMapped(mapped))
    mapped.deallocate()
    heap.deallocate()
}
