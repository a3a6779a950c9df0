import Foundation
import Synchronization
import Testing
@testable import H2GRPC

/// gRPC over TLS, our client against our server in one process: verification, pinning,
/// client certificates, reloads and the errors in words. Tests/interop/test_tls.py checks
/// each half against grpcio, grpcurl and curl.
///
/// The certificates are made by the `openssl` command in a temporary directory.
private final class TestPKI: Sendable {
    let directory: String

    init() throws {
        directory = NSTemporaryDirectory() + "outliers-tls-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for ca in ["ca", "ca2"] {
            try run("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(ca).key",
                    "-out", "\(ca).pem", "-days", "30", "-subj", "/CN=\(ca)")
        }
        let local = "subjectAltName=DNS:localhost,IP:127.0.0.1\n"
        try issue("server", by: "ca", extensions: local)
        try issue("server2", by: "ca2", extensions: local)
        try issue("client", by: "ca", extensions: "extendedKeyUsage=clientAuth\n")
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func path(_ name: String) -> String { "\(directory)/\(name)" }

    private func issue(_ name: String, by ca: String, extensions: String) throws {
        try run("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "\(name).key",
                "-out", "\(name).csr", "-subj", "/CN=\(name)")
        try extensions.write(toFile: path("\(name).ext"), atomically: true, encoding: .utf8)
        try run("x509", "-req", "-in", "\(name).csr", "-CA", "\(ca).pem", "-CAkey", "\(ca).key", "-CAcreateserial",
                "-out", "\(name).pem", "-days", "30", "-extfile", "\(name).ext")
    }

    private func run(_ arguments: String...) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()  // no openssl: this throws, and the test fails saying so
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw TLSError("openssl \(arguments.joined(separator: " ")) exited with \(process.terminationStatus)")
        }
    }
}

private func tlsServer(_ credentials: TLSServerCredentials?) throws -> GRPCServer {
    var configuration = GRPCServerConfiguration()
    configuration.port = 0
    configuration.threads = 1
    configuration.drainTimeout = .seconds(5)
    configuration.tls = credentials
    let server = GRPCServer(configuration: configuration, handlers: ["/test.Echo/Echo": .unary { request, _ in request }])
    try server.start()
    return server
}

private func echo(_ server: GRPCServer, host: String = "127.0.0.1", _ credentials: TLSClientCredentials,
                  _ message: [UInt8] = [1, 2, 3]) throws -> Result<[UInt8], RPCError> {
    var configuration = GRPCClientConfiguration()
    configuration.tls = credentials
    let client = try GRPCChannel(targets: ["\(host):\(server.port)"], configuration: configuration)
    defer { client.close() }
    let result = Mutex<Result<[UInt8], RPCError>?>(nil)
    let done = DispatchSemaphore(value: 0)
    client.unary(path: "/test.Echo/Echo", request: message, metadata: [], timeout: .seconds(10)) { outcome in
        result.withLock { $0 = outcome.map(\.message) }
        done.signal()
    }
    guard done.wait(timeout: .now() + 30) == .success else { return .failure(RPCError(code: .unknown, message: "no answer in 30 s")) }
    return result.withLock { $0! }
}

private func failure(_ result: Result<[UInt8], RPCError>) -> RPCError? {
    if case .failure(let error) = result { return error }
    return nil
}

@Suite(.serialized) struct TLSTests {

@Test func verifiedEchoOfSmallAndLargeMessages() throws {
    let pki = try TestPKI()
    let server = try tlsServer(try TLSServerCredentials(certificateChainFile: pki.path("server.pem"),
                                                        privateKeyFile: pki.path("server.key")))
    defer { server.shutdown() }
    let client = try TLSClientCredentials(caFile: pki.path("ca.pem"))
    // Larger than a TLS record (16 KiB) and than a write the socket takes at once.
    for size in [0, 1, 16_384, 100_000, 1 << 20] {
        let message = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 13) }
        for host in ["127.0.0.1", "localhost"] {
            let result = try echo(server, host: host, client, message)
            #expect((try? result.get()) == message, "\(host), size \(size): \(result.map(\.count))")
        }
    }
}

@Test func pinnedChainTrustsExactlyThatCertificate() throws {
    let pki = try TestPKI()
    let server = try tlsServer(try TLSServerCredentials(certificateChainFile: pki.path("server.pem"),
                                                        privateKeyFile: pki.path("server.key")))
    defer { server.shutdown() }
    #expect((try? echo(server, try TLSClientCredentials(pinnedChainFile: pki.path("server.pem"))).get()) == [1, 2, 3])
    let other = try echo(server, try TLSClientCredentials(pinnedChainFile: pki.path("server2.pem")))
    #expect(failure(other)?.code == .unavailable)
    #expect(failure(other)?.message.contains("certificate verify failed") == true, "\(other)")
}

@Test func verificationFailuresAreUnavailableInWords() throws {
    let pki = try TestPKI()
    let server = try tlsServer(try TLSServerCredentials(certificateChainFile: pki.path("server.pem"),
                                                        privateKeyFile: pki.path("server.key")))
    defer { server.shutdown() }
    let unknownCA = try echo(server, try TLSClientCredentials(caFile: pki.path("ca2.pem")))
    #expect(failure(unknownCA)?.code == .unavailable)
    #expect(failure(unknownCA)?.message.contains("unable to get local issuer certificate") == true, "\(unknownCA)")
    let mismatch = try echo(server, try TLSClientCredentials(caFile: pki.path("ca.pem"), serverName: "example.com"))
    #expect(failure(mismatch)?.message.contains("hostname mismatch") == true, "\(mismatch)")
    // The server still serves.
    #expect((try? echo(server, try TLSClientCredentials(caFile: pki.path("ca.pem"))).get()) == [1, 2, 3])

    let cleartext = try tlsServer(nil)
    defer { cleartext.shutdown() }
    let notTLS = try echo(cleartext, try TLSClientCredentials(caFile: pki.path("ca.pem")))
    #expect(failure(notTLS)?.message.contains("does not speak TLS") == true, "\(notTLS)")
}

@Test func clientCertificatesAreRequiredWithAClientCA() throws {
    let pki = try TestPKI()
    let server = try tlsServer(try TLSServerCredentials(certificateChainFile: pki.path("server.pem"),
                                                        privateKeyFile: pki.path("server.key"),
                                                        clientCAFile: pki.path("ca.pem")))
    defer { server.shutdown() }
    let without = try echo(server, try TLSClientCredentials(caFile: pki.path("ca.pem")))
    #expect(failure(without)?.code == .unavailable)
    #expect(failure(without)?.message.contains("asked for a client certificate") == true, "\(without)")
    let with = try TLSClientCredentials(caFile: pki.path("ca.pem"), certificateChainFile: pki.path("client.pem"),
                                        privateKeyFile: pki.path("client.key"))
    #expect((try? echo(server, with).get()) == [1, 2, 3])
}

@Test func serversOwnCertificateIsAcceptedWhenTrusted() throws {
    // `outliers serve` with a client CA: its gateway presents the server's own certificate.
    let pki = try TestPKI()
    let credentials = try TLSServerCredentials(certificateChainFile: pki.path("server.pem"), privateKeyFile: pki.path("server.key"),
                                               clientCAFile: pki.path("ca2.pem"), trustingOwnCertificate: true)
    let server = try tlsServer(credentials)
    defer { server.shutdown() }
    let own = try TLSClientCredentials(pinnedChainFile: pki.path("server.pem"), presentingKey: pki.path("server.key"))
    #expect((try? echo(server, own).get()) == [1, 2, 3])
    let stranger = try TLSClientCredentials(caFile: pki.path("ca.pem"), certificateChainFile: pki.path("client.pem"),
                                            privateKeyFile: pki.path("client.key"))
    #expect(failure(try echo(server, stranger))?.code == .unavailable)
}

@Test func reloadServesTheNewCertificateToNewConnections() throws {
    let pki = try TestPKI()
    let chain = pki.path("live.pem"), key = pki.path("live.key")
    try FileManager.default.copyItem(atPath: pki.path("server.pem"), toPath: chain)
    try FileManager.default.copyItem(atPath: pki.path("server.key"), toPath: key)
    let credentials = try TLSServerCredentials(certificateChainFile: chain, privateKeyFile: key)
    let server = try tlsServer(credentials)
    defer { server.shutdown() }
    let trustsFirst = try TLSClientCredentials(caFile: pki.path("ca.pem"))
    let trustsSecond = try TLSClientCredentials(caFile: pki.path("ca2.pem"))
    #expect((try? echo(server, trustsFirst).get()) == [1, 2, 3])

    // A broken file: the reload fails, naming it, and the old certificate stays.
    try "garbage\n".write(toFile: chain, atomically: true, encoding: .utf8)
    #expect(throws: TLSError.self) { try credentials.reload() }
    #expect((try? echo(server, trustsFirst).get()) == [1, 2, 3])

    try FileManager.default.removeItem(atPath: chain)
    try FileManager.default.removeItem(atPath: key)
    try FileManager.default.copyItem(atPath: pki.path("server2.pem"), toPath: chain)
    try FileManager.default.copyItem(atPath: pki.path("server2.key"), toPath: key)
    try credentials.reload()
    #expect((try? echo(server, trustsSecond).get()) == [1, 2, 3])
    #expect(failure(try echo(server, trustsFirst))?.code == .unavailable)
}

@Test func badFilesAreNamed() throws {
    let pki = try TestPKI()
    do {
        _ = try TLSServerCredentials(certificateChainFile: pki.path("missing.pem"), privateKeyFile: pki.path("server.key"))
        Issue.record("a missing certificate file loaded")
    } catch {
        #expect(error.description.contains("missing.pem"), "\(error)")
    }
    do {
        _ = try TLSServerCredentials(certificateChainFile: pki.path("server.pem"), privateKeyFile: pki.path("client.key"))
        Issue.record("a key of another certificate loaded")
    } catch {
        #expect(error.description.contains("client.key") || error.description.contains("match"), "\(error)")
    }
    do {
        _ = try TLSClientCredentials(caFile: pki.path("missing-ca.pem"))
        Issue.record("a missing CA file loaded")
    } catch {
        #expect(error.description.contains("missing-ca.pem"), "\(error)")
    }
}

}
