import Glibc
import POSIXSupport

/// The bytes below an HTTP/2 session: a non-blocking stream the event loop watches by
/// its descriptor. Plain TCP today (`TCPTransport`); TLS would decrypt in `read` and
/// encrypt in `write` over the same descriptor.
protocol ByteTransport {
    /// What epoll watches.
    var fd: Int32 { get }
    /// Reads what is there into `buffer`: a count (0 at end of stream), or `.wouldBlock`.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> NonBlocking<Int>
    /// Writes what the socket takes of `bytes` now.
    func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> NonBlocking<Int>
    func close()
}

/// A connected non-blocking TCP socket.
struct TCPTransport: ByteTransport {
    let fd: Int32

    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> NonBlocking<Int> {
        try Syscall.nonBlocking("read") { Glibc.read(fd, buffer.baseAddress, buffer.count) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> NonBlocking<Int> {
        try Syscall.nonBlocking("write") { Glibc.write(fd, bytes.baseAddress, bytes.count) }
    }

    func close() {
        Syscall.close(fd)
    }
}
