import ArgumentParser
import Foundation
import H2GRPC
import RESTGateway

/// `--tls-cert`, `--tls-key`, `--tls-client-ca`: a server's own TLS (the backend's gRPC
/// over TLS, the gateway's HTTPS; `serve` uses them for both).
struct ServerTLSOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Serve TLS with this PEM certificate chain (TLS 1.2 and 1.3; reloaded on SIGHUP).",
                               valueName: "FILE"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("The PEM private key of --tls-cert.", valueName: "FILE"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("Require client certificates signed by this PEM CA (mutual TLS).", valueName: "FILE"))
    var tlsClientCa: String?

    var isEnabled: Bool { tlsCert != nil }

    func validate() throws {
        switch (tlsCert, tlsKey) {
        case (nil, nil):
            if tlsClientCa != nil { throw ValidationError("--tls-client-ca needs --tls-cert and --tls-key") }
        case (.some, nil): throw ValidationError("--tls-cert needs --tls-key")
        case (nil, .some): throw ValidationError("--tls-key needs --tls-cert")
        case (.some(let cert), .some(let key)):
            try requireReadable(cert, flag: "--tls-cert")
            try requireReadable(key, flag: "--tls-key")
            if let tlsClientCa { try requireReadable(tlsClientCa, flag: "--tls-client-ca") }
        }
    }

    /// The backend's credentials, nil without --tls-cert.
    func grpcCredentials(trustingOwnCertificate: Bool = false) throws(TLSError) -> TLSServerCredentials? {
        guard let tlsCert, let tlsKey else { return nil }
        return try TLSServerCredentials(certificateChainFile: tlsCert, privateKeyFile: tlsKey, clientCAFile: tlsClientCa,
                                        trustingOwnCertificate: trustingOwnCertificate)
    }

    /// The gateway's HTTPS credentials, nil without --tls-cert.
    func httpsCredentials() throws(GatewayError) -> HTTPSCredentials? {
        guard let tlsCert, let tlsKey else { return nil }
        return try HTTPSCredentials(certificateChainFile: tlsCert, privateKeyFile: tlsKey, clientCAFile: tlsClientCa)
    }
}

/// `--tls-handshake-timeout`: the gRPC server's bound on a TLS handshake (backend and
/// serve; the gateway's HTTPS handshakes count against its --header-timeout).
struct TLSHandshakeOptions: ParsableArguments {
    @Option(help: ArgumentHelp("With --tls-cert: a gRPC client that has not finished its TLS handshake by then is disconnected.",
                               valueName: "DURATION"))
    var tlsHandshakeTimeout = DurationArgument(argument: "10s")!
}

/// `--backend-tls` and its files: how the gateway reaches its backends over TLS.
struct BackendTLSOptions: ParsableArguments {
    @Flag(help: "Call the backends over TLS (ALPN h2), verifying their certificates.")
    var backendTls = false

    @Option(help: ArgumentHelp("PEM CA the backends' certificates must chain to (default: the system's roots).",
                               valueName: "FILE"))
    var backendCa: String?

    @Option(help: "The name the backends' certificates must carry (default: each --backend host).")
    var backendServerName: String?

    @Option(help: ArgumentHelp("Present this PEM client certificate chain to the backends (mutual TLS).", valueName: "FILE"))
    var backendCert: String?

    @Option(help: ArgumentHelp("The PEM private key of --backend-cert.", valueName: "FILE"))
    var backendKey: String?

    func validate() throws {
        if !backendTls {
            for (flag, value) in [("--backend-ca", backendCa), ("--backend-server-name", backendServerName),
                                  ("--backend-cert", backendCert), ("--backend-key", backendKey)] where value != nil {
                throw ValidationError("\(flag) needs --backend-tls")
            }
        }
        try validateClientCertificate(cert: backendCert, key: backendKey, certFlag: "--backend-cert", keyFlag: "--backend-key")
        if let backendCa { try requireReadable(backendCa, flag: "--backend-ca") }
        if let backendServerName, backendServerName.isEmpty { throw ValidationError("--backend-server-name must not be empty") }
    }

    func credentials() throws(TLSError) -> TLSClientCredentials? {
        guard backendTls else { return nil }
        return try TLSClientCredentials(caFile: backendCa, certificateChainFile: backendCert, privateKeyFile: backendKey,
                                        serverName: backendServerName)
    }
}

/// `outliers detect --tls`: the client's TLS.
struct ClientTLSOptions: ParsableArguments {
    @Flag(help: "Call the server over TLS (ALPN h2), verifying its certificate.")
    var tls = false

    @Option(help: ArgumentHelp("PEM CA the server's certificate must chain to (default: the system's roots).",
                               valueName: "FILE"))
    var ca: String?

    @Option(help: "The name the server's certificate must carry (default: the --server host).")
    var serverName: String?

    @Option(help: ArgumentHelp("Present this PEM client certificate chain (mutual TLS).", valueName: "FILE"))
    var cert: String?

    @Option(help: ArgumentHelp("The PEM private key of --cert.", valueName: "FILE"))
    var key: String?

    func validate() throws {
        if !tls {
            for (flag, value) in [("--ca", ca), ("--server-name", serverName), ("--cert", cert), ("--key", key)] where value != nil {
                throw ValidationError("\(flag) needs --tls")
            }
        }
        try validateClientCertificate(cert: cert, key: key, certFlag: "--cert", keyFlag: "--key")
        if let ca { try requireReadable(ca, flag: "--ca") }
    }

    func credentials() throws(TLSError) -> TLSClientCredentials? {
        guard tls else { return nil }
        return try TLSClientCredentials(caFile: ca, certificateChainFile: cert, privateKeyFile: key, serverName: serverName)
    }
}

private func validateClientCertificate(cert: String?, key: String?, certFlag: String, keyFlag: String) throws {
    switch (cert, key) {
    case (.some, nil): throw ValidationError("\(certFlag) needs \(keyFlag)")
    case (nil, .some): throw ValidationError("\(keyFlag) needs \(certFlag)")
    case (.some(let cert), .some(let key)):
        try requireReadable(cert, flag: certFlag)
        try requireReadable(key, flag: keyFlag)
    case (nil, nil): break
    }
}

private func requireReadable(_ path: String, flag: String) throws {
    guard FileManager.default.isReadableFile(atPath: path) else {
        throw ValidationError("\(flag): cannot read \(path)")
    }
}
