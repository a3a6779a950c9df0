import H2GRPC
import SwiftProtobuf

/// How every service here turns bytes into its request and its answer into bytes,
/// written once so that Detect, Health and Reflection fail the same way: INTERNAL,
/// naming what failed. An unparsable request is the transport's failure (grpc-go says
/// the same words), not a bad value from the caller; an answer that cannot be
/// serialized is ours.
extension SwiftProtobuf.Message {
    /// `bytes` decoded as this message, or INTERNAL.
    static func decodedRequest(_ bytes: [UInt8]) throws(RPCError) -> Self {
        do {
            return try Self(serializedBytes: bytes)
        } catch {
            throw RPCError(code: .internalError, message: "grpc: failed to unmarshal the request: \(error)")
        }
    }

    /// This message's bytes, or INTERNAL naming `what` could not be serialized.
    func serializedAnswer(_ what: String) throws(RPCError) -> [UInt8] {
        do {
            return try serializedBytes()
        } catch {
            throw RPCError(code: .internalError, message: "cannot serialize the \(what): \(error)")
        }
    }
}

extension ServerStreamWriter {
    /// Sends the answer `make` produces, or ends the call with the status it throws
    /// (a stream's answer that cannot be made fails the call, as a unary one does).
    func send(_ make: () throws(RPCError) -> [UInt8]) {
        do {
            send(try make())
        } catch {
            fail(error)
        }
    }
}
