import Dispatch
import H2GRPC
import OutliersProto

/// One `/pb.Outliers/Detect` call, as the article's Go client makes it.
public enum DetectCall {
    /// Sends `request` (a serialized `OutliersRequest`) and waits for the indices.
    public static func run(_ channel: GRPCChannel, request: [UInt8], metadata: [(name: String, value: String)] = [],
                           timeoutNanoseconds: Int64) -> Result<[Int32], DetectCallError> {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        channel.unary(path: MethodPath.detect, request: request, metadata: metadata,
                      timeout: .nanoseconds(timeoutNanoseconds)) { result in
            outcome.result = result
            done.signal()
        }
        done.wait()
        switch outcome.result! {
        case .success(let response):
            do {
                return .success(try Pb_OutliersResponse(serializedBytes: response.message).indices)
            } catch {
                return .failure(.unreadableAnswer("the server's answer is not an OutliersResponse: \(error)"))
            }
        case .failure(let error):
            return .failure(.rpc(error))
        }
    }

    /// The article's Go client logs the slice with %v: `outliers at: [7 113 835]`.
    public static func articleText(_ indices: [Int32]) -> String {
        "outliers at: [\(indices.map(String.init).joined(separator: " "))]"
    }
}

/// Why a Detect call gave no indices.
public enum DetectCallError: Error, Sendable, CustomStringConvertible {
    /// The call failed with this status.
    case rpc(RPCError)
    /// The call succeeded, but its message is not an `OutliersResponse`.
    case unreadableAnswer(String)

    /// The line to print after "error: ".
    public var description: String {
        switch self {
        case .rpc(let error): "\(error.code): \(error.message)"
        case .unreadableAnswer(let text): text
        }
    }
}

/// Carries the call's result from the channel's loop to the waiting thread.
/// `@unchecked Sendable`: written once before the semaphore is signalled, read after
/// the wait, which orders the two.
private final class Outcome: @unchecked Sendable {
    var result: Result<GRPCResponse, RPCError>?
}
