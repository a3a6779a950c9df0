import H2GRPC
import OutliersJSON
import OutliersProto
import SwiftProtobuf

extension Gateway {
    func detect(_ state: RequestState, connection: OpaquePointer) {
        let request: [UInt8]
        switch state.format {
        case .json:
            let limit = configuration.maximumMessageBytes
            let overrides = state.optionOverrides
            let result = state.body.withUnsafeBytes { raw in
                Result { () throws(JSONCodecError) -> [UInt8] in
                    try JSONCodec.transcodeRequest(raw, maximumMessageBytes: limit, overrides: overrides)
                }
            }
            switch result {
            case .success(let bytes): request = bytes
            case .failure(let error) where error.isMessageTooLarge:
                state.response = messageTooLarge(bodyBytes: state.body.count)
                return
            case .failure(let error):
                // gzip's magic number: a compressed body sent without its Content-Encoding.
                let hint = state.body.starts(with: [0x1F, 0x8B]) && state.inflater == nil
                    ? " (the body looks gzip-compressed: send it with Content-Encoding: gzip)" : ""
                state.response = errorResponse(.invalidArgument, error.description + hint)
                return
            }
        case .protobuf:
            guard state.body.count <= configuration.maximumMessageBytes else {
                state.response = messageTooLarge(bodyBytes: state.body.count)
                return
            }
            // Passed through, but checked: a body that is not an OutliersRequest is the
            // client's mistake (400), not the backend's (500). Query options are laid
            // over the decoded message, which is serialized again.
            if !state.optionOverrides.isEmpty || OutliersRequestValues.decodeRequest(state.body) == nil {
                do {
                    var message = try Pb_OutliersRequest(serializedBytes: state.body)
                    if !state.optionOverrides.isEmpty {
                        message.options = state.optionOverrides.applied(to: message.options)
                        state.body = try message.serializedBytes()
                    }
                } catch {
                    state.response = errorResponse(.invalidArgument,
                        "body is not a valid protobuf pb.OutliersRequest: \(Self.describe(protobufError: error))")
                    return
                }
            }
            request = state.body
        }
        // The body is converted: what it held is given back before the call, not at
        // the request's completion (the request message lives on in the call).
        state.body = []
        release(state)
        let resume = suspend(state, connection)
        let call = state.call
        let wantsProtobuf = state.wantsProtobuf
        let handle = channel.unary(path: MethodPath.detect, request: request, metadata: state.metadata,
                                   timeout: .nanoseconds(state.timeoutNanoseconds)) { result in
            resume(self.detectResponse(result, wantsProtobuf: wantsProtobuf))
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
            let headers = MetadataMapping.responseHeaders(headers: response.headers, trailers: response.trailers)
            if wantsProtobuf {
                return HTTPResponse(status: 200, body: response.message, contentType: "application/x-protobuf", headers: headers,
                                    grpcCode: 0)
            }
            do {
                let answer = try Pb_OutliersResponse(serializedBytes: response.message)
                return HTTPResponse(status: 200, body: JSONCodec.encodeResponse(answer), headers: headers, grpcCode: 0)
            } catch {
                metrics.upstreamError(.internalError)
                return errorResponse(.internalError, "the backend's answer is not a pb.OutliersResponse: \(error)")
            }
        case .failure(let error):
            metrics.upstreamError(error.code)
            var response = errorResponse(error.code, error.message)
            response.headers = MetadataMapping.responseHeaders(headers: error.headers, trailers: error.metadata)
            return response
        }
    }

}
