import CMicroHTTPD
import Glibc
import POSIXSupport

/// A small HTTP/1.1 server for `GET /metrics` alone (`outliers backend --metrics-port`):
/// libmicrohttpd on its own thread, answering what `exposition` gives at each scrape.
/// Anything else is a 404 (another path) or a 405 (another method).
public final class MetricsEndpoint: Sendable {
    private let socket: ListeningSocket
    nonisolated(unsafe) private let daemon: OpaquePointer  // libmicrohttpd's calls on it are thread-safe; set once in init

    /// The bound address, `127.0.0.1:9090`.
    public var address: String { socket.address }
    public var port: Int { socket.port }

    public init(host: String, port: Int, exposition: @escaping @Sendable () -> [UInt8]) throws {
        socket = try ListeningSocket.bind(host: host, port: port)
        let flags = MHD_USE_INTERNAL_POLLING_THREAD.rawValue | MHD_USE_EPOLL.rawValue
        let options: [CVarArg] = [
            Int32(MHD_OPTION.LISTEN_SOCKET.rawValue), socket.fd,
            Int32(MHD_OPTION.CONNECTION_LIMIT.rawValue), UInt32(64),
            Int32(MHD_OPTION.CONNECTION_TIMEOUT.rawValue), UInt32(10),
            Int32(MHD_OPTION.END.rawValue),
        ]
        let handler: MHD_AccessHandlerCallback = metricsRequest
        // Unretained: self holds the box, and the daemon stops in deinit, before it goes.
        let box = Box(exposition)
        self.box = box
        let me = Unmanaged.passUnretained(box).toOpaque()
        guard let daemon = withVaList(options, { MHD_start_daemon_va(UInt32(flags), 0, nil, nil, handler, me, $0) }) else {
            close(socket.fd)
            throw GatewayError("libmicrohttpd could not serve /metrics on \(socket.address)")
        }
        self.daemon = daemon
    }

    /// What the access handler reaches through libmicrohttpd's user-data pointer.
    final class Box: Sendable {
        let exposition: @Sendable () -> [UInt8]
        init(_ exposition: @escaping @Sendable () -> [UInt8]) { self.exposition = exposition }
    }
    private let box: Box

    deinit {
        MHD_stop_daemon(daemon)
        close(socket.fd)
    }
}

private func metricsRequest(cls: UnsafeMutableRawPointer?, connection: OpaquePointer?, url: UnsafePointer<CChar>?,
                            method: UnsafePointer<CChar>?, version: UnsafePointer<CChar>?,
                            uploadData: UnsafePointer<CChar>?, uploadDataSize: UnsafeMutablePointer<Int>?,
                            requestContext: UnsafeMutablePointer<UnsafeMutableRawPointer?>?) -> MHD_Result {
    guard let cls, let connection, let requestContext, let uploadDataSize else { return MHD_Result.NO }
    // First call: headers only; a body (there should be none) is read and dropped.
    if requestContext.pointee == nil {
        requestContext.pointee = UnsafeMutableRawPointer(bitPattern: 1)
        return MHD_Result.YES
    }
    if uploadDataSize.pointee > 0 {
        uploadDataSize.pointee = 0
        return MHD_Result.YES
    }
    let path = url.map { String(cString: $0) } ?? "/"
    let verb = method.map { String(cString: $0) } ?? ""
    let status: UInt32
    let body: [UInt8]
    var contentType = "application/json"
    if path != "/metrics" {
        status = 404
        body = Array(#"{"code":5,"message":"no route for \#(verb) \#(path): this port serves GET /metrics only","details":[]}"#.utf8)
    } else if verb != "GET" && verb != "HEAD" {
        status = 405
        body = Array(#"{"code":12,"message":"method \#(verb) not allowed on /metrics; use GET or HEAD","details":[]}"#.utf8)
    } else {
        status = 200
        body = Unmanaged<MetricsEndpoint.Box>.fromOpaque(cls).takeUnretainedValue().exposition()
        contentType = "text/plain; version=0.0.4; charset=utf-8"
    }
    // libmicrohttpd leaves a HEAD answer's body out itself.
    guard let response = body.withUnsafeBytes({ raw in
        MHD_create_response_from_buffer(raw.count, UnsafeMutableRawPointer(mutating: raw.baseAddress),
                                        MHD_ResponseMemoryMode.RESPMEM_MUST_COPY)
    }) else { return MHD_Result.NO }
    defer { MHD_destroy_response(response) }
    _ = MHD_add_response_header(response, "Content-Type", contentType)
    if status == 405 { _ = MHD_add_response_header(response, "Allow", "GET, HEAD") }
    return MHD_queue_response(connection, status, response)
}
