import CMicroHTTPD
import Foundation
import H2GRPC
import OutliersJSON
import OutliersProto
import SwiftProtobuf

/// The routes of DESIGN.md §2.
enum Route: String {
    case detect = "/detect"
    case healthz = "/healthz"
    case metrics = "/metrics"
    case openAPI = "/openapi.yaml"

    var allowedMethods: [String] {
        switch self {
        case .detect: return ["POST"]
        case .healthz, .metrics, .openAPI: return ["GET", "HEAD"]
        }
    }
}

/// How a /detect body is encoded.
enum BodyFormat {
    case json
    case protobuf
}

extension RESTGateway {
    static let detectPath = "/pb.Outliers/Detect"
    static let healthCheckPath = "/grpc.health.v1.Health/Check"

    /// Decides what a request is from its method, path and headers; early errors
    /// (404, 405, 413 from Content-Length, 415, a bad Grpc-Timeout) are set here.
    func route(_ state: RequestState, connection: OpaquePointer) {
        // The query string plays no part in routing.
        let path = state.path.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init) ?? ""
        if let length = header(connection, "Content-Length"), let bytes = Int(length) {
            state.expectedBodyBytes = bytes
            if bytes > configuration.maximumBodyBytes {
                // Too large to read and drop: answered at once, and the connection closed.
                state.response = bodyTooLarge()
                state.answerBeforeBody = true
                state.closeAfterResponse = true
                return
            }
        }
        guard let route = Route(rawValue: path) else {
            state.response = errorResponse(.notFound, "no route for \(state.method) \(path)", httpStatus: 404)
            return
        }
        state.route = route
        state.routeLabel = route.rawValue
        guard route.allowedMethods.contains(state.method) else {
            var response = errorResponse(.unimplemented, "method \(state.method) not allowed on \(path); use \(route.allowedMethods.joined(separator: " or "))",
                                         httpStatus: 405)
            response.headers.append(("Allow", route.allowedMethods.joined(separator: ", ")))
            state.response = response
            return
        }
        guard route == .detect else { return }
        switch Self.bodyFormat(contentType: header(connection, "Content-Type")) {
        case .some(let format): state.format = format
        case .none:
            let given = header(connection, "Content-Type") ?? ""
            state.response = errorResponse(.invalidArgument,
                "unsupported Content-Type \"\(given)\": send application/json or application/x-protobuf", httpStatus: 415)
            return
        }
        state.wantsProtobuf = Self.acceptsProtobuf(header(connection, "Accept"))
        state.timeoutNanoseconds = configuration.defaultTimeoutNanoseconds
        if let value = header(connection, "Grpc-Timeout") {
            // A zero deadline has passed before the call starts: refused like a malformed one.
            guard let timeout = GRPCTimeout(header: value), timeout.nanoseconds > 0 else {
                state.response = errorResponse(.invalidArgument, "invalid grpc-timeout: \(value)")
                return
            }
            state.timeoutNanoseconds = timeout.nanoseconds
        }
    }

    /// How a body of `contentType` is read: absent is JSON; present but without a
    /// media type (empty, `;;;`) names nothing the gateway reads.
    static func bodyFormat(contentType: String?) -> BodyFormat? {
        guard let contentType else { return .json }
        let mediaType = contentType.split(separator: ";", omittingEmptySubsequences: false).first
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch mediaType {
        // curl -d sends application/x-www-form-urlencoded; the body is JSON all the same.
        case "application/json", "application/x-www-form-urlencoded", "text/json": return .json
        case "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf": return .protobuf
        default: return nil
        }
    }

    /// A request head whose body length is ambiguous (RFC 9112 §6.3, §6.1, §5.1): different
    /// Content-Length values, Content-Length with Transfer-Encoding, a Transfer-Encoding
    /// that does not end in chunked, or whitespace
    /// between a field name and its colon (libmicrohttpd keeps `Content-Length ` as a
    /// name of its own, and the body would be read as the next request).
    static func framingError(_ connection: OpaquePointer) -> String? {
        var inspection = HeaderInspection()
        withUnsafeMutablePointer(to: &inspection) { pointer in
            _ = MHD_get_connection_values(connection, MHD_ValueKind.HEADER_KIND, inspectHeader, pointer)
        }
        if let name = inspection.nameWithWhitespace {
            return "header field name \"\(name)\" has whitespace before its colon"
        }
        if Set(inspection.contentLengths).count > 1 {
            return "conflicting Content-Length headers: \(inspection.contentLengths.joined(separator: ", "))"
        }
        if !inspection.contentLengths.isEmpty && !inspection.transferEncodings.isEmpty {
            return "both Content-Length and Transfer-Encoding are given"
        }
        // §6.1: a body whose last coding is not chunked has no length the server can find.
        let codings = inspection.transferEncodings.joined(separator: ",").split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        if let last = codings.last, last != "chunked" {
            return "Transfer-Encoding \"\(inspection.transferEncodings.joined(separator: ", "))\" does not end in chunked"
        }
        return nil
    }

    static func acceptsProtobuf(_ accept: String?) -> Bool {
        guard let accept else { return false }
        return accept.split(separator: ",").contains { part in
            let mediaType = part.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
            return mediaType == "application/x-protobuf" || mediaType == "application/protobuf"
        }
    }

    /// The body is in: answer at once or call the backend.
    func dispatch(_ state: RequestState, connection: OpaquePointer) {
        switch state.route {
        case .detect?: detect(state, connection: connection)
        case .healthz?: healthz(state, connection: connection)
        case .metrics?:
            state.response = HTTPResponse(status: 200, body: metrics.exposition(),
                                          contentType: "text/plain; version=0.0.4; charset=utf-8")
        case .openAPI?:
            state.response = HTTPResponse(status: 200, body: Array(OpenAPISpec.yaml.utf8), contentType: "application/yaml")
        case nil:
            state.response = errorResponse(.notFound, "no route for \(state.path)", httpStatus: 404)
        }
    }

    private func detect(_ state: RequestState, connection: OpaquePointer) {
        let request: [UInt8]
        switch state.format {
        case .json:
            let limit = configuration.maximumMessageBytes
            let result = state.body.withUnsafeBytes { raw in
                Result { () throws(JSONCodecError) -> [UInt8] in
                    try OutliersJSON.transcodeRequest(raw, maximumMessageBytes: limit)
                }
            }
            switch result {
            case .success(let bytes): request = bytes
            case .failure(let error) where error.isMessageTooLarge:
                state.response = messageTooLarge(bodyBytes: state.body.count)
                return
            case .failure(let error):
                state.response = errorResponse(.invalidArgument, error.description)
                return
            }
        case .protobuf:
            guard state.body.count <= configuration.maximumMessageBytes else {
                state.response = messageTooLarge(bodyBytes: state.body.count)
                return
            }
            // Passed through, but checked: a body that is not an OutliersRequest is the
            // client's mistake (400), not the backend's (500).
            if OutliersRequestValues.decode(state.body) == nil {
                do {
                    _ = try Pb_OutliersRequest(serializedBytes: state.body)
                } catch {
                    state.response = errorResponse(.invalidArgument,
                        "body is not a valid protobuf pb.OutliersRequest: \(Self.describe(protobufError: error))")
                    return
                }
            }
            request = state.body
        }
        state.body = []
        let resume = suspend(state, connection)
        let call = state.call
        let wantsProtobuf = state.wantsProtobuf
        let gateway = UncheckedGateway(self)
        let handle = channel.unary(path: Self.detectPath, request: request, metadata: [("x-request-id", state.requestID)],
                                   timeoutNanoseconds: state.timeoutNanoseconds) { result in
            resume(gateway.value.detectResponse(result, wantsProtobuf: wantsProtobuf))
        }
        call?.started(handle)
    }

    /// 413 for a body whose protobuf message would pass the backend's receive limit:
    /// unlike the backend's RESOURCE_EXHAUSTED (429), it says a retry cannot help.
    func messageTooLarge(bodyBytes: Int) -> HTTPResponse {
        errorResponse(.resourceExhausted,
            "request body of \(bodyBytes) bytes makes a protobuf message larger than the backend's limit of \(configuration.maximumMessageBytes) bytes",
            httpStatus: 413)
    }

    /// swift-protobuf's decoding errors in words (their Swift names say little to a user).
    static func describe(protobufError error: Error) -> String {
        switch error as? BinaryDecodingError {
        case .truncated?: return "the message ends in the middle of a field"
        case .trailingGarbage?: return "bytes follow the end of the message"
        case .malformedProtobuf?: return "the bytes are not a protobuf message"
        case .invalidUTF8?: return "a string field is not valid UTF-8"
        case .missingRequiredFields?: return "required fields are missing"
        case .messageDepthLimit?: return "messages are nested too deeply"
        case .internalExtensionError?: return "an extension could not be decoded"
        default: return "it could not be decoded"
        }
    }

    private func detectResponse(_ result: Result<GRPCResponse, RPCError>, wantsProtobuf: Bool) -> HTTPResponse {
        switch result {
        case .success(let response):
            if wantsProtobuf {
                return HTTPResponse(status: 200, body: response.message, contentType: "application/x-protobuf")
            }
            do {
                let answer = try Pb_OutliersResponse(serializedBytes: response.message)
                return HTTPResponse(status: 200, body: OutliersJSON.encodeResponse(answer))
            } catch {
                metrics.upstreamError(.internalError)
                return errorResponse(.internalError, "the backend's answer is not a pb.OutliersResponse: \(error)")
            }
        case .failure(let error):
            metrics.upstreamError(error.code)
            return errorResponse(error.code, error.status.message)
        }
    }

    /// Readiness: the backend's grpc.health.v1 Check for the whole server.
    private func healthz(_ state: RequestState, connection: OpaquePointer) {
        let resume = suspend(state, connection)
        let call = state.call
        let gateway = UncheckedGateway(self)
        let handle = channel.unary(path: Self.healthCheckPath, request: [], metadata: [("x-request-id", state.requestID)],
                                   timeoutNanoseconds: min(configuration.defaultTimeoutNanoseconds, 5_000_000_000)) { result in
            resume(gateway.value.healthResponse(result))
        }
        call?.started(handle)
    }

    private func healthResponse(_ result: Result<GRPCResponse, RPCError>) -> HTTPResponse {
        switch result {
        case .success(let response):
            let status = (try? Grpc_Health_V1_HealthCheckResponse(serializedBytes: response.message).status) ?? .unknown
            let name = Self.servingStatusName(status)
            return HTTPResponse(status: status == .serving ? 200 : 503, body: Array("{\"status\":\"\(name)\"}".utf8))
        case .failure(let error):
            metrics.upstreamError(error.code)
            // Whatever went wrong, the gateway cannot serve: 503 for the readiness probe.
            var response = errorResponse(error.code, "backend health check failed: \(error.status.message)")
            response.status = 503
            return response
        }
    }

    static func servingStatusName(_ status: Grpc_Health_V1_HealthCheckResponse.ServingStatus) -> String {
        switch status {
        case .serving: return "SERVING"
        case .notServing: return "NOT_SERVING"
        case .serviceUnknown: return "SERVICE_UNKNOWN"
        default: return "UNKNOWN"
        }
    }

    func bodyTooLarge() -> HTTPResponse {
        errorResponse(.resourceExhausted, "request body larger than \(configuration.maximumBodyBytes) bytes", httpStatus: 413)
    }

    /// The grpc-gateway v2 error body with the status of the one table (or a
    /// routing status where the HTTP layer decides: 404, 405, 413, 415).
    func errorResponse(_ code: GRPCStatus.Code, _ message: String, httpStatus: Int? = nil) -> HTTPResponse {
        HTTPResponse(status: httpStatus ?? HTTPStatusTable.httpStatus(for: code),
                     body: OutliersJSON.encodeError(code: code.rawValue, message: message))
    }
}

/// What `framingError` gathers from the request head.
struct HeaderInspection {
    var contentLengths: [String] = []
    var transferEncodings: [String] = []
    var nameWithWhitespace: String?
}

private func inspectHeader(cls: UnsafeMutableRawPointer?, kind: MHD_ValueKind, key: UnsafePointer<CChar>?,
                           value: UnsafePointer<CChar>?) -> MHD_Result {
    guard let cls, let key else { return MHD_Result.YES }
    let inspection = cls.assumingMemoryBound(to: HeaderInspection.self)
    if strcasecmp(key, "Content-Length") == 0 {
        inspection.pointee.contentLengths.append(value.map { String(cString: $0) } ?? "")
    } else if strcasecmp(key, "Transfer-Encoding") == 0 {
        inspection.pointee.transferEncodings.append(value.map { String(cString: $0) } ?? "")
    } else if strchr(key, 0x20) != nil || strchr(key, 0x09) != nil {
        inspection.pointee.nameWithWhitespace = String(cString: key)
    }
    return MHD_Result.YES
}

struct UncheckedGateway: @unchecked Sendable {
    let value: RESTGateway
    init(_ value: RESTGateway) { self.value = value }
}
