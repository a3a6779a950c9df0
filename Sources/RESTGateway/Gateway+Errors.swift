import H2GRPC
import OutliersJSON

extension Gateway {

    func bodyTooLarge() -> HTTPResponse {
        errorResponse(.resourceExhausted, "request body larger than \(configuration.maximumBodyBytes) bytes", httpStatus: 413)
    }

    /// The grpc-gateway v2 error body with the status of the one table (or a
    /// routing status where the HTTP layer decides: 404, 405, 413, 415).
    func errorResponse(_ code: RPCError.Code, _ message: String, httpStatus: Int? = nil) -> HTTPResponse {
        HTTPResponse(status: httpStatus ?? Status.Code(code).httpStatus,
                     body: JSONCodec.encodeError(code: code.rawValue, message: message), grpcCode: code.rawValue)
    }
}
