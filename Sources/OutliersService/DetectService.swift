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
    public static func detect(_ request: [UInt8], detector: OutlierDetector) throws(RPCError) -> [UInt8] {
        let values: [Double]
        if let fast = OutliersRequestValues.decode(request) {
            values = fast
        } else {
            values = try Pb_OutliersRequest.decodedRequest(request).metrics.map(\.value)
        }
        let indices: [Int32]
        do {
            indices = try detector.outliers(in: values)
        } catch {
            throw RPCError(code: .invalidArgument, message: "metrics[\(error.index)].value: \(error.description)")
        }
        var response = Pb_OutliersResponse()
        response.indices = indices
        return try response.serializedAnswer("response")
    }
}
