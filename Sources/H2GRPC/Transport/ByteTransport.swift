import Glibc
import POSIXSupport

/// The bytes below an HTTP/2 session: a non-blocking stream the event loop watches by
/// its descriptor: plain TCP (`TCPTransport`) or TLS (`TLSTransport`, which decrypts in
/// `read` and encrypts in `write` over the same descriptor, after its handshake).
protocol ByteTransport: AnyObject {
    /// What epoll watches.
    var fd: Int32 { get }
    /// Whether `handshake` must finish before the first read or write.
    var needsHandshake: Bool { get }
    /// One step of the handshake, when the socket is readable or writable.
    func handshake() -> HandshakeProgress
    /// Whether a read shorter than the buffer means the socket has nothing more now
    /// (true of a socket; not of TLS, which reads a record at a time).
    var shortReadDrainsSocket: Bool { get }
    /// Reads what is there into `buffer`: a count (0 at end of stream), or `.wouldBlock`.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> NonBlocking<Int>
    /// Writes what the socket takes of `bytes` now.
    func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> NonBlocking<Int>
    func close()
}

/// Where a transport's handshake stands.
enum HandshakeProgress: Equatable {
    case done
    case wantRead
    case wantWrite
    case failed(String)
}

/// A connected non-blocking TCP socket.
final class TCPTransport: ByteTransport {
    let fd: Int32
    var needsHandshake: Bool { false }
    var shortReadDrainsSocket: Bool { true }

    init(fd: Int32) { self.fd = fd }

    func handshake() -> HandshakeProgress { .done }

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
