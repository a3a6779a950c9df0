import H2GRPC
import OutliersProto
import SwiftProtobuf

extension Gateway {
    /// Readiness: the backend's grpc.health.v1 Check for the whole server.
    func healthz(_ state: RequestState, connection: OpaquePointer) {
        if leaving.load(ordering: .acquiring) {
            state.response = HTTPResponse(status: 503, body: Array(#"{"status":"NOT_SERVING","note":"the gateway is shutting down"}"#.utf8))
            return
        }
        let resume = suspend(state, connection)
        let call = state.call
        let handle = channel.unary(path: MethodPath.healthCheck, request: [], metadata: [("x-request-id", state.requestID)],
                                   timeout: .nanoseconds(min(configuration.defaultTimeoutNanoseconds, 5_000_000_000))) { result in
            resume(self.healthResponse(result))
        }
        call?.started(handle)
    }

    private func healthResponse(_ result: Result<GRPCResponse, RPCError>) -> HTTPResponse {
        switch result {
        case .success(let response):
            let status = (try? Grpc_Health_V1_HealthCheckResponse(serializedBytes: response.message).status) ?? .unknown
            let name = Self.servingStatusName(status)
            return HTTPResponse(status: status == .serving ? 200 : 503, body: Array("{\"status\":\"\(name)\"}".utf8), grpcCode: 0)
        case .failure(let error) where error.code == .unimplemented:
            // A backend without grpc.health.v1 (the article's Python server, a plain
            // grpc-go server): it answered, so its connection is up, and that is all
            // there is to judge it by. Saying so keeps a readiness probe passing.
            return HTTPResponse(status: 200, body: Array(#"{"status":"SERVING","note":"the backend has no grpc.health.v1 service: judged by its connection"}"#.utf8),
                                grpcCode: error.code.rawValue)
        case .failure(let error):
            metrics.upstreamError(error.code)
            // Whatever went wrong, the gateway cannot serve: 503 for the readiness probe.
            var response = errorResponse(error.code, "backend health check failed: \(error.message)")
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
}
