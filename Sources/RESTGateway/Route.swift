import CMicroHTTPD
import H2GRPC
import ZlibCompression

/// The routes of DESIGN.md §2.
enum Route: String {
    case detect = "/detect"
    /// The gRPC method's own path over HTTP/1.1 with a JSON or protobuf body, as
    /// Envoy's gRPC-JSON transcoder maps it (auto_mapping); answers as /detect does.
    case grpcDetect = "/pb.Outliers/Detect"
    case healthz = "/healthz"
    case metrics = "/metrics"
    case openAPI = "/openapi.yaml"
    /// The web page (Gateway+WebPage.swift) and what it loads.
    case page = "/"
    case pageScript = "/ui/app.js"
    case pageStyle = "/ui/app.css"
    case pageIcon = "/ui/icon.svg"
    case pageDemo = "/ui/demo.json"
    case pageLimits = "/ui/limits.json"

    var allowedMethods: [String] {
        switch self {
        case .detect, .grpcDetect: return ["POST"]
        case .healthz, .metrics, .openAPI, .page, .pageScript, .pageStyle, .pageIcon, .pageDemo, .pageLimits:
            return ["GET", "HEAD"]
        }
    }

    /// A route of the web page, which `--no-ui` turns off.
    var isWebPage: Bool {
        switch self {
        case .page, .pageScript, .pageStyle, .pageIcon, .pageDemo, .pageLimits: return true
        case .detect, .grpcDetect, .healthz, .metrics, .openAPI: return false
        }
    }
}

/// How a /detect body is encoded.
enum BodyFormat {
    case json
    case protobuf
}

extension Gateway {
    /// Decides what a request is from its method, path and headers; early errors
    /// (404, 405, 413 from Content-Length, 415, a bad Grpc-Timeout) are set here.
    func route(_ state: RequestState, connection: OpaquePointer) {
        state.acceptsGzip = Self.acceptsGzip(header(connection, "Accept-Encoding"))
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
        guard let route = Route(rawValue: path), !route.isWebPage || configuration.servesWebPage else {
            state.response = errorResponse(.notFound, "no route for \(state.method) \(path)", httpStatus: 404)
            return
        }
        state.route = route
        state.routeLabel = route.rawValue
        if let cors = configuration.cors {
            state.allowOrigin = cors.allowOrigin(for: header(connection, "Origin"))
            if state.method == "OPTIONS", let method = header(connection, "Access-Control-Request-Method") {
                state.response = preflight(route: route, requestedMethod: method, allowOrigin: state.allowOrigin,
                                           requestedHeaders: header(connection, "Access-Control-Request-Headers"))
                return
            }
        }
        guard route.allowedMethods.contains(state.method) else {
            var response = errorResponse(.unimplemented, "method \(state.method) not allowed on \(path); use \(route.allowedMethods.joined(separator: " or "))",
                                         httpStatus: 405)
            response.headers.append(("Allow", route.allowedMethods.joined(separator: ", ")))
            state.response = response
            return
        }
        guard route == .detect || route == .grpcDetect else { return }
        switch Self.bodyFormat(contentType: header(connection, "Content-Type")) {
        case .some(let format): state.format = format
        case .none:
            let given = header(connection, "Content-Type") ?? ""
            state.response = errorResponse(.invalidArgument,
                "unsupported Content-Type \"\(given)\": send application/json or application/x-protobuf", httpStatus: 415)
            return
        }
        switch Self.requestCoding(contentEncoding: header(connection, "Content-Encoding")) {
        case .success(let coding):
            state.inflater = coding.map { Inflater($0, limit: configuration.maximumBodyBytes) }
        case .failure(let refusal):
            state.response = errorResponse(.invalidArgument, refusal.reason, httpStatus: 415)
            return
        }
        state.wantsProtobuf = Self.acceptsProtobuf(header(connection, "Accept"))
        switch DetectQuery.overrides(Self.queryParameters(connection)) {
        case .success(let overrides): state.optionOverrides = overrides
        case .failure(let refusal):
            state.response = errorResponse(.invalidArgument, refusal.message)
            return
        }
        switch MetadataMapping.requestMetadata(state.metadataHeaders, clientAddress: state.clientAddress) {
        case .success(let metadata): state.metadata = [("x-request-id", state.requestID)] + metadata
        case .failure(let refusal):
            state.response = errorResponse(.invalidArgument, refusal.message)
            return
        }
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

    /// A browser's CORS preflight (OPTIONS with Access-Control-Request-Method): 204
    /// with what the route allows, or 403 when the origin is not allowed (no CORS
    /// headers: the browser then refuses the request).
    func preflight(route: Route, requestedMethod: String, allowOrigin: String?, requestedHeaders: String?) -> HTTPResponse {
        guard let allowOrigin else {
            return errorResponse(.permissionDenied, "origin not allowed by --cors-origin", httpStatus: 403)
        }
        var headers = [
            ("Access-Control-Allow-Origin", allowOrigin),
            ("Access-Control-Allow-Methods", route.allowedMethods.joined(separator: ", ")),
            ("Access-Control-Max-Age", String(CORSPolicy.maxAgeSeconds)),
        ]
        let allowed = CORSPolicy.allowedHeaders(requested: requestedHeaders)
        if !allowed.isEmpty { headers.append(("Access-Control-Allow-Headers", allowed.joined(separator: ", "))) }
        if allowOrigin != "*" { headers.append(("Vary", "Origin")) }
        return HTTPResponse(status: 204, body: [], contentType: "", headers: headers)
    }

    /// The body is in: answer at once or call the backend.
    func dispatch(_ state: RequestState, connection: OpaquePointer) {
        switch state.route {
        case .detect?, .grpcDetect?: detect(state, connection: connection)
        case .healthz?: healthz(state, connection: connection)
        case .metrics?:
            var body = metrics.exposition()
            if let more = configuration.additionalMetrics?(), !more.isEmpty {
                body.append(0x0A)
                body += more
            }
            state.response = HTTPResponse(status: 200, body: body,
                                          contentType: "text/plain; version=0.0.4; charset=utf-8")
        case .openAPI?:
            state.response = HTTPResponse(status: 200, body: Array(OpenAPISpec.yaml.utf8), contentType: "application/yaml")
        case .page?, .pageScript?, .pageStyle?, .pageIcon?, .pageDemo?, .pageLimits?:
            state.response = webPageResponse(state.route!)
        case nil:
            state.response = errorResponse(.notFound, "no route for \(state.path)", httpStatus: 404)
        }
    }
}
