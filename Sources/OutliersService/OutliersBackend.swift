import Detection
import H2GRPC
import Logging

/// The bundled backend: Detect, health and reflection on one `GRPCServer`.
public final class OutliersBackend: Sendable {
    public let server: GRPCServer
    public let health: HealthService

    public static let serviceNames = [
        DetectService.serviceName, HealthService.serviceName,
        ReflectionService.v1ServiceName, ReflectionService.v1alphaServiceName,
    ]

    /// With `auth`, every pb.Outliers call needs its bearer token; health and
    /// reflection stay open. With `logger` at debug level, every call is logged as it ends.
    public init(configuration: GRPCServerConfiguration, detector: OutlierDetector = OutlierDetector(),
                auth: BearerTokenAuth? = nil, logger: Logger = Logger(label: "outliers.backend")) throws {
        health = HealthService(services: Self.serviceNames)
        let reflection = try ReflectionService(services: Self.serviceNames)
        var handlers = DetectService(detector: detector).handlers
        if let auth { handlers = auth.guarding(handlers, services: [DetectService.serviceName]) }
        handlers.merge(health.handlers) { first, _ in first }
        handlers.merge(reflection.handlers) { first, _ in first }
        var configuration = configuration
        if logger.logLevel <= .debug { configuration.callObservers.append(CallLog(logger: logger)) }
        server = GRPCServer(configuration: configuration, handlers: handlers, logger: logger)
    }

    public func start() throws { try server.start() }

    /// Health goes NOT_SERVING (watchers hear it), Watch streams end, calls in flight finish.
    public func shutdown() {
        server.shutdown { [health] in
            health.setAll(serving: false)
            health.finishWatchers()
        }
    }
}
