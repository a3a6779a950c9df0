import CGnuTLS
import Foundation
import Synchronization

/// The gateway's HTTPS certificate (and, for mutual TLS, the CA its clients'
/// certificates must chain to), reloadable: `reload()` reads the files again and new
/// connections use them, while open ones keep the generation they started with.
///
/// libmicrohttpd runs GnuTLS; each connection is switched to `current` before its
/// handshake. GnuTLS keeps a pointer to a generation for the life of each session it
/// serves, so every generation stays allocated until this object goes (after the
/// daemon stopped: the gateway holds it through its configuration). A rotation costs a
/// few kilobytes that are kept.
public final class HTTPSCredentials: Sendable {
    public let certificateChainFile: String
    public let privateKeyFile: String
    public let clientCAFile: String?
    private let generations: Mutex<[Generation]>

    private struct Generation: @unchecked Sendable {  // GnuTLS credentials are read-only once loaded, shareable
        let pointer: OpaquePointer
    }

    /// Whether this libmicrohttpd was built with TLS (Debian's is, with GnuTLS).
    public static var isSupported: Bool { outliers_https_supported() != 0 }

    public init(certificateChainFile: String, privateKeyFile: String, clientCAFile: String? = nil) throws(GatewayError) {
        guard Self.isSupported else {
            throw GatewayError("this libmicrohttpd was built without TLS (MHD_FEATURE_TLS): HTTPS is not available")
        }
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.clientCAFile = clientCAFile
        generations = Mutex([try Self.load(certificateChainFile, privateKeyFile, clientCAFile)])
    }

    deinit {
        generations.withLock { for generation in $0 { outliers_https_credentials_free(generation.pointer) } }
    }

    /// Reads the files again; on failure the current certificate stays in use.
    public func reload() throws(GatewayError) {
        let generation = try Self.load(certificateChainFile, privateKeyFile, clientCAFile)
        generations.withLock { $0.append(generation) }
    }

    /// Generations loaded so far (1 + successful reloads).
    public var generationCount: Int { generations.withLock { $0.count } }

    /// Puts the current generation on a connection libmicrohttpd has just started.
    func prepare(_ connection: OpaquePointer) -> Bool {
        let current = generations.withLock { $0[$0.count - 1].pointer }
        return outliers_https_prepare_connection(connection, current) == 0
    }

    private static func load(_ chain: String, _ key: String, _ clientCA: String?) throws(GatewayError) -> Generation {
        var error = [CChar](repeating: 0, count: 512)
        let pointer = error.withUnsafeMutableBufferPointer { buffer in
            outliers_https_credentials_new(chain, key, clientCA, buffer.baseAddress, buffer.count)
        }
        guard let pointer else { throw GatewayError(String(decoding: error.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)) }
        return Generation(pointer: pointer)
    }
}
