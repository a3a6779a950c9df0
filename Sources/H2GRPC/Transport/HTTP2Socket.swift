import CEpoll
import CNGHTTP2
import Glibc
import POSIXSupport

/// A non-blocking socket driven by an nghttp2 session on one event loop, for both
/// ends of a connection: nghttp2 parses and frames; this class moves the bytes
/// between it and the socket. Subclasses turn the session's callbacks into calls.
class HTTP2Socket: EventHandler {
    let fd: Int32
    let loop: EventLoop
    private(set) var session: OpaquePointer?
    private var output: [UInt8] = []
    private var outputOffset = 0
    private var watchingWritable = false
    private var inFlush = false
    private(set) var isClosed = false

    /// Stop pulling frames from nghttp2 while this much is waiting for the socket.
    private static let outputHighWater = 1 << 20

    init(fd: Int32, loop: EventLoop) {
        self.fd = fd
        self.loop = loop
    }

    deinit {
        if let session { nghttp2_session_del(session) }
    }

    /// Adopts `session`, queues our SETTINGS and a connection window beyond
    /// nghttp2's 65,535 default, and starts watching the socket.
    func startSession(_ session: OpaquePointer, settings: [(nghttp2_settings_id, UInt32)], connectionWindow: Int,
                      events: UInt32 = EPOLLIN.rawValue | EPOLLRDHUP.rawValue) throws {
        self.session = session
        var entries = settings.map { nghttp2_settings_entry(settings_id: Int32($0.0.rawValue), value: $0.1) }
        nghttp2_submit_settings(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), &entries, entries.count)
        // The connection window is not a setting: it grows with a WINDOW_UPDATE.
        nghttp2_session_set_local_window_size(session, UInt8(NGHTTP2_FLAG_NONE.rawValue), 0, Int32(connectionWindow))
        try loop.register(fd, events: events, handler: self)
        flush()
    }

    /// A protocol error closed the session (garbage, a bad preface, a violation).
    func protocolError(_ cause: String) {}

    /// The socket is closed; end whatever was in flight on it.
    func didClose() {}

    func handleEvents(_ events: UInt32) {
        if events & (EPOLLIN.rawValue | EPOLLHUP.rawValue | EPOLLERR.rawValue | EPOLLRDHUP.rawValue) != 0 {
            readAvailable()
        }
        if !isClosed && events & EPOLLOUT.rawValue != 0 {
            writeOutput()
        }
        if !isClosed { flush() }
    }

    private func readAvailable() {
        guard let session else { return }
        let buffer = loop.readBuffer
        // A bounded number of reads per wake-up, so one busy peer cannot starve the loop.
        for _ in 0..<16 {
            let count: Int
            do throws(SystemError) {
                let result = try Syscall.nonBlocking("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
                guard case .done(let read) = result else { return }
                count = read
            } catch {
                close()
                return
            }
            if count == 0 {
                close()
                return
            }
            let consumed = nghttp2_session_mem_recv(session, buffer.baseAddress!.assumingMemoryBound(to: UInt8.self), count)
            if consumed < 0 {
                // nghttp2 has queued a GOAWAY where one makes sense; send it and
                // close this connection only.
                protocolError(String(cString: nghttp2_strerror(Int32(consumed))))
                flushThenClose()
                return
            }
            if isClosed || count < buffer.count { return }
        }
    }

    /// Moves frames from nghttp2 to the socket; closes when neither side wants more.
    func flush() {
        guard !isClosed, !inFlush, let session else { return }
        inFlush = true
        defer { inFlush = false }
        // Pull frames up to the high-water mark, write them, and go again until
        // nghttp2 has nothing more or the socket is full (EPOLLOUT resumes then).
        var sessionHasMore = true
        while sessionHasMore && !isClosed && !watchingWritable {
            sessionHasMore = false
            while output.count - outputOffset < HTTP2Socket.outputHighWater {
                var data: UnsafePointer<UInt8>?
                let count = nghttp2_session_mem_send(session, &data)
                if count < 0 {
                    close()
                    return
                }
                guard count > 0, let data else { break }
                output.append(contentsOf: UnsafeBufferPointer(start: data, count: count))
                sessionHasMore = output.count - outputOffset >= HTTP2Socket.outputHighWater
            }
            writeOutput()
        }
        if !isClosed && output.isEmpty && nghttp2_session_want_read(session) == 0
            && nghttp2_session_want_write(session) == 0 {
            close()
        }
    }

    var hasPendingOutput: Bool { outputOffset < output.count }

    private func writeOutput() {
        while outputOffset < output.count {
            let written: NonBlocking<Int>
            do {
                written = try output.withUnsafeBytes { raw throws(SystemError) in
                    try Syscall.nonBlocking("write") { Glibc.write(fd, raw.baseAddress! + outputOffset, raw.count - outputOffset) }
                }
            } catch {
                close()
                return
            }
            guard case .done(let count) = written else {
                if !watchingWritable {
                    watchingWritable = true
                    watch(EPOLLIN.rawValue | EPOLLOUT.rawValue | EPOLLRDHUP.rawValue)
                }
                return
            }
            guard count > 0 else {
                // write(2) takes at least a byte of a non-empty buffer, or fails.
                close()
                return
            }
            outputOffset += count
        }
        output.removeAll(keepingCapacity: output.capacity <= 256 * 1024)
        outputOffset = 0
        if watchingWritable {
            watchingWritable = false
            watch(EPOLLIN.rawValue | EPOLLRDHUP.rawValue)
            // More frames may have been held back by the high-water mark.
            flush()
        }
    }

    private func watch(_ events: UInt32) {
        do {
            try loop.modify(fd, events: events)
        } catch {
            close()
        }
    }

    private func flushThenClose() {
        if let session {
            while true {
                var data: UnsafePointer<UInt8>?
                let count = nghttp2_session_mem_send(session, &data)
                guard count > 0, let data else { break }
                output.append(contentsOf: UnsafeBufferPointer(start: data, count: count))
            }
        }
        // Best effort: the peer gets the GOAWAY if the socket takes it now; the
        // connection closes whatever the write gives.
        output.withUnsafeBytes { raw in
            guard raw.count > outputOffset else { return }
            do {
                _ = try Syscall.nonBlocking("write") { Glibc.write(fd, raw.baseAddress! + outputOffset, raw.count - outputOffset) }
            } catch {}
        }
        close()
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        loop.unregister(fd)
        Glibc.close(fd)
        didClose()
    }
}
