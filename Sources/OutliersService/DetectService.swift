import Detection
import H2GRPC
import OutliersProto
import SwiftProtobuf

/// `/pb.Outliers/Detect`: the article's service, through `Detection`.
public struct DetectService: Sendable {
    public static let serviceName = "pb.Outliers"

    public let detector: OutlierDetector

    public init(detector: OutlierDetector = OutlierDetector()) {
        self.detector = detector
    }

    public var handlers: [String: RPCHandler] {
        let detector = self.detector
        return [MethodPath.detect: .unary { request, _ throws(RPCError) in
            try Self.detect(request, detector: detector)
        }]
    }

    /// Serialized `OutliersRequest` in, serialized `OutliersResponse` out.
    ///
    /// Without options, the article's rule with `detector`'s threshold, on values the
    /// fast wire reader gives (the path every article client takes, and the answer
    /// stays byte for byte what it was). With options, `answer(values:names:options:)`:
    /// from the fast reader's values when the options need no names, otherwise from
    /// the message swift-protobuf decodes.
    public static func detect(_ request: [UInt8], detector: OutlierDetector) throws(RPCError) -> [UInt8] {
        let response: Pb_OutliersResponse
        if let fast = OutliersRequestValues.decodeRequest(request) {
            if let options = fast.options {
                if options.groupByName || options.details {
                    let message = try Pb_OutliersRequest.decodedRequest(request)
                    response = try answer(values: message.metrics.map(\.value), names: message.metrics.map(\.name), options: options)
                } else {
                    response = try answer(values: fast.values, names: nil, options: options)
                }
            } else {
                response = try articleAnswer(fast.values, detector: detector)
            }
        } else {
            let message = try Pb_OutliersRequest.decodedRequest(request)
            if message.hasOptions {
                response = try answer(values: message.metrics.map(\.value), names: message.metrics.map(\.name),
                                      options: message.options)
            } else {
                response = try articleAnswer(message.metrics.map(\.value), detector: detector)
            }
        }
        return try response.serializedAnswer("response")
    }

    private static func articleAnswer(_ values: [Double], detector: OutlierDetector) throws(RPCError) -> Pb_OutliersResponse {
        var response = Pb_OutliersResponse()
        do {
            response.indices = try detector.outliers(in: values)
        } catch {
            throw RPCError(code: .invalidArgument, message: "metrics[\(error.index)].value: \(error.description)")
        }
        return response
    }
}
