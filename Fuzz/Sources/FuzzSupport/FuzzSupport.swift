import Glibc

/// Stops the run with everything needed to understand a finding. libFuzzer saves
/// the input as crash-… on any abort, so this is how a target reports a bug.
public func fuzzFailure(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    fatalError("FUZZ FINDING: \(message)", file: file, line: line)
}

/// Bytes as `"ab\x00c"`, short enough for a failure message.
public func shown(_ bytes: some Collection<UInt8>, limit: Int = 512) -> String {
    var text = "\""
    for byte in bytes.prefix(limit) {
        switch byte {
        case 0x20..<0x7F where byte != 0x22 && byte != 0x5C: text.unicodeScalars.append(Unicode.Scalar(byte))
        default:
            let hex = Array("0123456789abcdef")
            text += "\\x\(hex[Int(byte >> 4)])\(hex[Int(byte & 0xF)])"
        }
    }
    text += bytes.count > limit ? "\"… (\(bytes.count) bytes)" : "\""
    return text
}

/// Open descriptors of this process, counted in /proc/self/fd (the directory's own
/// descriptor excluded).
public func openDescriptorCount() -> Int {
    guard let directory = opendir("/proc/self/fd") else { fuzzFailure("cannot open /proc/self/fd: errno \(errno)") }
    defer { closedir(directory) }
    var count = 0
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        if name != "." && name != ".." { count += 1 }
    }
    return count - 1
}

/// What each open descriptor is (`3 -> socket:[1234]`), for a leak report.
public func openDescriptors() -> String {
    guard let directory = opendir("/proc/self/fd") else { return "?" }
    defer { closedir(directory) }
    var entries: [String] = []
    var target = [CChar](repeating: 0, count: 256)
    while let entry = readdir(directory) {
        let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        guard name != "." && name != ".." else { continue }
        let length = readlink("/proc/self/fd/" + name, &target, target.count - 1)
        let what = length > 0 ? String(decoding: target[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
        entries.append("\(name) -> \(what)")
    }
    return entries.joined(separator: ", ")
}

/// Checks, every `interval` inputs, that the process holds no more descriptors than
/// at the first check (plus `slack`). Servers close their side of a connection on
/// their own thread, and an HTTP/1.1 server may hold an idle one until its idle
/// timeout, so a surplus is waited out for `settleSeconds` before it counts as a
/// leak.
public struct DescriptorLeakCheck: Sendable {
    private var baseline: Int?
    private var inputs = 0
    private let interval: Int
    private let slack: Int
    private let settleSeconds: Int

    public init(interval: Int = 200, slack: Int = 4, settleSeconds: Int = 2) {
        self.interval = interval
        self.slack = slack
        self.settleSeconds = settleSeconds
    }

    public mutating func afterInput() {
        inputs += 1
        guard inputs % interval == 0 else { return }
        guard let baseline else {
            baseline = openDescriptorCount()
            return
        }
        var count = openDescriptorCount()
        var waited = 0
        while count > baseline + slack && waited < settleSeconds * 100 {
            usleep(10_000)
            waited += 1
            count = openDescriptorCount()
        }
        if count > baseline + slack {
            fuzzFailure("descriptor leak: \(count) open after \(inputs) inputs and \(settleSeconds) s of waiting, \(baseline) after the first \(interval): \(openDescriptors())")
        }
    }
}

/// What came back on one loopback connection.
public struct Exchange {
    /// Every byte the server sent before it closed or the deadline passed.
    public var received: [UInt8] = []
    /// The server closed (EOF or reset) before the deadline.
    public var closedByServer = false
}

/// A blocking TCP connection to 127.0.0.1:`port`: writes `bytes` (all of them, or
/// until the server stops reading), half-closes when `halfClose`, then reads until
/// the server closes or `timeoutMilliseconds` pass, or, with `quietMilliseconds`,
/// until the server has said something and then nothing for that long (a server
/// that keeps the connection alive for the next request). The descriptor is always
/// closed.
public func exchange(port: Int, _ bytes: UnsafeRawBufferPointer, halfClose: Bool = true,
                     timeoutMilliseconds: Int = 2000, quietMilliseconds: Int? = nil) -> Exchange {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    guard fd >= 0 else { fuzzFailure("socket: errno \(errno)") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    address.sin_addr.s_addr = UInt32(0x7F00_0001).bigEndian
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    if connected != 0 {
        // libFuzzer's timeout watchdog (SIGALRM, each second) can interrupt connect;
        // the connection goes on in the background: wait for it, then ask how it went.
        guard errno == EINTR else { fuzzFailure("connect to 127.0.0.1:\(port): errno \(errno) (is the server still up?)") }
        var writable = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        while poll(&writable, 1, 5000) < 0 && errno == EINTR {}
        var failure: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &length)
        guard writable.revents & Int16(POLLOUT) != 0, failure == 0 else {
            fuzzFailure("connect to 127.0.0.1:\(port) after EINTR: error \(failure) (is the server still up?)")
        }
    }
    var one: Int32 = 1
    setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))

    var result = Exchange()
    let deadline = monotonicMilliseconds() + timeoutMilliseconds
    var offset = 0
    var buffer = [UInt8](repeating: 0, count: 65536)
    if bytes.isEmpty && halfClose { shutdown(fd, Int32(SHUT_WR)) }
    // Write and read together: a server that answers before it has read everything
    // must not deadlock against our writes.
    while true {
        let now = monotonicMilliseconds()
        guard now < deadline else { return result }
        let writing = offset < bytes.count
        var wait = deadline - now
        if let quietMilliseconds, !result.received.isEmpty, !writing { wait = min(wait, quietMilliseconds) }
        var poller = pollfd(fd: fd, events: Int16(POLLIN) | (writing ? Int16(POLLOUT) : 0), revents: 0)
        let ready = poll(&poller, 1, Int32(wait))
        if ready < 0 && errno == EINTR { continue }
        guard ready > 0 else { return result }
        if poller.revents & Int16(POLLIN | POLLHUP | POLLERR) != 0 {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
            if count > 0 {
                result.received.append(contentsOf: buffer[0..<count])
            } else if count == 0 || (errno != EINTR && errno != EAGAIN) {
                result.closedByServer = true
                return result
            }
        }
        if writing && poller.revents & Int16(POLLOUT) != 0 {
            let count = send(fd, bytes.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL) | Int32(MSG_DONTWAIT))
            if count > 0 {
                offset += count
            } else if errno != EINTR && errno != EAGAIN {
                offset = bytes.count  // the server closed its reading side; read what it said
            }
            if offset == bytes.count && halfClose { shutdown(fd, Int32(SHUT_WR)) }
        }
    }
}

public func monotonicMilliseconds() -> Int {
    var now = timespec()
    clock_gettime(CLOCK_MONOTONIC, &now)
    return now.tv_sec * 1000 + now.tv_nsec / 1_000_000
}
