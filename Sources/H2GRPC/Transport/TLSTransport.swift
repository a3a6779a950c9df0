import COpenSSL
import Glibc
import POSIXSupport
import Synchronization

/// A TLS failure in words: a certificate that cannot be loaded, an unknown CA, an expired
/// certificate, a name mismatch, a peer without h2 or without TLS.
public struct TLSError: Error, Sendable, CustomStringConvertible {
    public let description: String

    init(_ description: String) { self.description = description }

    /// Runs `body` with a buffer for the C shim's message and throws that message when
    /// `body` says it failed.
    static func capturing<T>(_ body: (UnsafeMutablePointer<CChar>, Int) -> T?) throws(TLSError) -> T {
        var message = [CChar](repeating: 0, count: 512)
        let result = message.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        guard let result else { throw TLSError(nulTerminated(message)) }
        return result
    }
}

/// An OpenSSL context (SSL_CTX), freed with its last session: each session holds a
/// reference of its own, so a reload can drop this box while connections still use it.
final class TLSContextBox: @unchecked Sendable {  // safe: SSL_CTX is thread-safe for SSL_new once configured; never changed after init
    let context: OpaquePointer

    init(_ context: OpaquePointer) { self.context = context }
    deinit { outliers_tls_context_free(context) }
}

/// The server side of gRPC over TLS: a certificate chain and key, and optionally a CA
/// whose client certificates are required (mutual TLS). TLS 1.2 and 1.3, ALPN h2.
/// `reload()` reads the files again for new connections (certificate rotation);
/// connections already up keep theirs.
public final class TLSServerCredentials: Sendable {
    public let certificateChainFile: String
    public let privateKeyFile: String
    public let clientCAFile: String?
    /// With a client CA: whether a client presenting this server's own certificate is
    /// accepted too (`outliers serve`, whose gateway calls its backend with it).
    public let trustsOwnCertificate: Bool
    private let current: Mutex<TLSContextBox>

    public init(certificateChainFile: String, privateKeyFile: String, clientCAFile: String? = nil,
                trustingOwnCertificate: Bool = false) throws(TLSError) {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.clientCAFile = clientCAFile
        trustsOwnCertificate = trustingOwnCertificate
        current = Mutex(try Self.load(certificateChainFile, privateKeyFile, clientCAFile, trustingOwnCertificate))
    }

    /// Loads the files again; on failure the old certificate stays in use.
    public func reload() throws(TLSError) {
        let box = try Self.load(certificateChainFile, privateKeyFile, clientCAFile, trustsOwnCertificate)
        current.withLock { $0 = box }
    }

    private static func load(_ chain: String, _ key: String, _ clientCA: String?, _ trustOwn: Bool) throws(TLSError) -> TLSContextBox {
        try TLSError.capturing { error, length in
            outliers_tls_server_context(chain, key, clientCA, trustOwn ? 1 : 0, error, length).map(TLSContextBox.init)
        }
    }

    func session(fd: Int32) throws(TLSError) -> TLSTransport {
        let box = current.withLock { $0 }
        let session = try TLSError.capturing { error, length in
            outliers_tls_session_new(box.context, fd, 1, nil, error, length)
        }
        return TLSTransport(fd: fd, session: session)
    }
}

/// The client side: the CA that signs servers' certificates (nil: the system's roots),
/// optionally a client certificate, and the name the server's certificate must carry
/// (nil: the host of each target). `reload()` reads the files again for new connections.
public final class TLSClientCredentials: Sendable {
    public let caFile: String?
    public let certificateChainFile: String?
    public let privateKeyFile: String?
    public let serverName: String?
    /// Whether `caFile` pins certificates (each one a trust anchor, no name checked).
    public let isPinned: Bool
    private let current: Mutex<TLSContextBox>

    public init(caFile: String? = nil, certificateChainFile: String? = nil, privateKeyFile: String? = nil,
                serverName: String? = nil) throws(TLSError) {
        guard (certificateChainFile == nil) == (privateKeyFile == nil) else {
            throw TLSError("a client certificate needs both its chain and its private key")
        }
        self.caFile = caFile
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.serverName = serverName
        isPinned = false
        current = Mutex(try Self.load(caFile, certificateChainFile, privateKeyFile, pin: false))
    }

    /// Trusts exactly the certificates of `pinnedChainFile` (a server's own chain, as
    /// `outliers serve` calls its own backend), whatever name they carry; with
    /// `presentingKey`, presents that chain as the client certificate too.
    public init(pinnedChainFile: String, presentingKey: String? = nil) throws(TLSError) {
        caFile = pinnedChainFile
        certificateChainFile = presentingKey == nil ? nil : pinnedChainFile
        privateKeyFile = presentingKey
        serverName = ""
        isPinned = true
        current = Mutex(try Self.load(pinnedChainFile, certificateChainFile, privateKeyFile, pin: true))
    }

    public func reload() throws(TLSError) {
        let box = try Self.load(caFile, certificateChainFile, privateKeyFile, pin: isPinned)
        current.withLock { $0 = box }
    }

    private static func load(_ ca: String?, _ chain: String?, _ key: String?, pin: Bool) throws(TLSError) -> TLSContextBox {
        try TLSError.capturing { error, length in
            outliers_tls_client_context(ca, chain, key, pin ? 1 : 0, error, length).map(TLSContextBox.init)
        }
    }

    func session(fd: Int32, host: String) throws(TLSError) -> TLSTransport {
        let name = serverName ?? host
        let box = current.withLock { $0 }
        let session = try TLSError.capturing { error, length in
            outliers_tls_session_new(box.context, fd, 0, name, error, length)
        }
        return TLSTransport(fd: fd, session: session)
    }
}

/// A TLS session over a non-blocking socket: reads decrypt, writes encrypt, and the
/// handshake runs first in steps the event loop drives. Owned by one connection on one
/// loop, like the socket under it.
final class TLSTransport: ByteTransport {
    let fd: Int32
    private let session: OpaquePointer
    private var message = [CChar](repeating: 0, count: 256)
    private(set) var isClosed = false

    init(fd: Int32, session: OpaquePointer) {
        self.fd = fd
        self.session = session
    }

    deinit {
        if !isClosed { close() }
    }

    var needsHandshake: Bool { true }
    /// A read returns one record at most, so a short read does not mean the socket is empty.
    var shortReadDrainsSocket: Bool { false }

    func handshake() -> HandshakeProgress {
        guard !isClosed else { return .failed("the TLS session is closed") }
        let result = message.withUnsafeMutableBufferPointer { outliers_tls_handshake(session, $0.baseAddress, $0.count) }
        switch result {
        case Int32(OUTLIERS_TLS_DONE): return .done
        case Int32(OUTLIERS_TLS_WANT_READ): return .wantRead
        case Int32(OUTLIERS_TLS_WANT_WRITE): return .wantWrite
        default: return .failed(nulTerminated(message))
        }
    }

    /// "TLSv1.3 TLS_AES_256_GCM_SHA384", for logs.
    var negotiated: String {
        "\(String(cString: outliers_tls_version(session))) \(String(cString: outliers_tls_cipher(session)))"
    }

    // A closed session is freed: every call after close fails instead of touching it.
    func read(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> NonBlocking<Int> {
        guard !isClosed else { throw SystemError(call: "TLS read (the session is closed)", code: EBADF) }
        let count = message.withUnsafeMutableBufferPointer {
            outliers_tls_read(session, buffer.baseAddress, buffer.count, $0.baseAddress, $0.count)
        }
        return try outcome(count, "TLS read")
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) -> NonBlocking<Int> {
        guard !isClosed else { throw SystemError(call: "TLS write (the session is closed)", code: EBADF) }
        guard !bytes.isEmpty else { return .done(0) }
        let count = message.withUnsafeMutableBufferPointer {
            outliers_tls_write(session, bytes.baseAddress, bytes.count, $0.baseAddress, $0.count)
        }
        return try outcome(count, "TLS write")
    }

    private func outcome(_ count: Int, _ call: String) throws(SystemError) -> NonBlocking<Int> {
        if count >= 0 { return .done(count) }
        if count == Int(OUTLIERS_TLS_WANT_READ) || count == Int(OUTLIERS_TLS_WANT_WRITE) { return .wouldBlock }
        throw SystemError(call: "\(call) (\(nulTerminated(message)))", code: EPROTO)
    }

    func close() {
        guard !isClosed else { return }
        isClosed = true
        outliers_tls_session_free(session)
        Syscall.close(fd)
    }
}

/// The text of a NUL-terminated C buffer the shim filled.
private func nulTerminated(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
