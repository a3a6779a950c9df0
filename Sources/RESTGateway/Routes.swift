import CMicroHTTPD
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
        if let length = header(connection, "Content-Length"), let bytes = Int(length), bytes > configuration.maximumBodyBytes {
            state.response = bodyTooLarge()
            return
        }
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
            guard let timeout = GRPCTimeout(header: value) else {
                state.response = errorResponse(.invalidArgument, "invalid grpc-timeout: \(value)")
                return
            }
            state.timeoutNanoseconds = timeout.nanoseconds
        }
    }

    static func bodyFormat(contentType: String?) -> BodyFormat? {
        guard let contentType else { return .json }
        let mediaType = contentType.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() } ?? ""
        switch mediaType {
        // curl -d sends application/x-www-form-urlencoded; the body is JSON all the same.
        case "", "application/json", "application/x-www-form-urlencoded", "text/json": return .json
        case "application/x-protobuf", "application/protobuf", "application/vnd.google.protobuf": return .protobuf
        default: return nil
        }
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
            let result = state.body.withUnsafeBytes { raw in
                Result { () throws(JSONCodecError) -> [UInt8] in try OutliersJSON.transcodeRequest(raw) }
            }
            switch result {
            case .success(let bytes): request = bytes
            case .failure(let error):
                state.response = errorResponse(.invalidArgument, error.description)
                return
            }
        case .protobuf:
            // Passed through, but checked: a body that is not an OutliersRequest is the
            // client's mistake (400), not the backend's (500).
            if OutliersRequestValues.decode(state.body) == nil {
                do {
                    _ = try Pb_OutliersRequest(serializedBytes: state.body)
                } catch {
                    state.response = errorResponse(.invalidArgument, "body is not a valid protobuf pb.OutliersRequest: \(error)")
                    return
                }
            }
            request = state.body
        }
        state.body = []
        state.waitingForBackend = true
        let resume = suspend(connection)
        let wantsProtobuf = state.wantsProtobuf
        let gateway = UncheckedGateway(self)
        channel.unary(path: Self.detectPath, request: request, metadata: [("x-request-id", state.requestID)],
                      timeoutNanoseconds: state.timeoutNanoseconds) { result in
            resume(state, gateway.value.detectResponse(result, wantsProtobuf: wantsProtobuf))
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
        state.waitingForBackend = true
        let resume = suspend(connection)
        let gateway = UncheckedGateway(self)
        channel.unary(path: Self.healthCheckPath, request: [], metadata: [("x-request-id", state.requestID)],
                      timeoutNanoseconds: min(configuration.defaultTimeoutNanoseconds, 5_000_000_000)) { result in
            resume(state, gateway.value.healthResponse(result))
        }
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

struct UncheckedGateway: @unchecked Sendable {
    let value: RESTGateway
    init(_ value: RESTGateway) { self.value = value }
}
