import H2GRPC
import Logging

/// What happens to the backends' addresses, logged once per change (never per request):
/// the channel tells, on its own loop.
extension Gateway {
    static func log(_ event: ChannelEvent, to logger: Logger) {
        switch event {
        case .unreachable(let address, let cause):
            logger.warning("backend unreachable", metadata: ["backend": "\(address)", "cause": "\(cause)"])
        case .reachable(let address):
            logger.notice("backend reachable again", metadata: ["backend": "\(address)"])
        case .added(let address, let target):
            logger.notice("backend address added", metadata: ["backend": "\(address)", "target": "\(target)"])
        case .removed(let address, let target):
            logger.notice("backend address removed: its calls in flight finish", metadata: ["backend": "\(address)", "target": "\(target)"])
        case .resolutionFailed(let target, let cause):
            logger.warning("cannot resolve the backend target: its last addresses stay in use", metadata: ["target": "\(target)", "cause": "\(cause)"])
        case .notServing(let address, let status):
            logger.warning("backend out of rotation: its health check says it is not serving", metadata: ["backend": "\(address)", "status": "\(status)"])
        case .serving(let address):
            logger.notice("backend back in rotation: its health check says SERVING", metadata: ["backend": "\(address)"])
        }
    }
}
