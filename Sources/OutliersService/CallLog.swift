import H2GRPC
import Logging

/// The backend's per-call log, at debug level: one line per call when it ends, with
/// its method, gRPC code, duration, peer and message sizes (and the status message of
/// a failed call). Added only when the logger logs debug, so that it costs nothing
/// otherwise.
struct CallLog: ServerCallObserver {
    let logger: Logger

    func callStarted(_ call: ServerCallStart) {}

    func callEnded(_ call: ServerCallEnd) {
        var metadata: Logger.Metadata = [
            "method": "\(call.path)",
            "grpc_code": "\(call.status.code)",
            "duration_ms": "\(Double(call.nanoseconds / 1000) / 1000)",
            "peer": "\(call.peer)",
            "request_bytes": "\(call.requestBytes)",
            "response_bytes": "\(call.responseBytes)",
        ]
        if call.status.code != .ok { metadata["grpc_message"] = "\(call.status.message)" }
        logger.debug("call", metadata: metadata)
    }
}
