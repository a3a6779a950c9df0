import CoreMetrics
import H2GRPC
import Prometheus

/// The backend's gRPC metrics, told by its server (a `ServerCallObserver`): calls by
/// method and code, their latency, calls in flight, connections. Served on the
/// gateway's /metrics in `serve` (`GatewayConfiguration.additionalMetrics`) and by a
/// `MetricsEndpoint` for `backend --metrics-port`. A path the server has no handler
/// for counts as method "unknown", so that clients cannot grow the label set.
public final class BackendMetrics: ServerCallObserver {
    private let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let inFlight: Meter
    private let connectionsOpen: Meter
    private let connectionsAccepted: CoreMetrics.Counter
    private let calls = LabeledMetrics<CallKey, CoreMetrics.Counter>()
    private let durations = LabeledMetrics<String, CoreMetrics.Timer>()

    public init() {
        factory = PrometheusText.factory(for: registry)
        inFlight = Meter(label: "outliers_backend_calls_in_flight", dimensions: [], factory: factory)
        connectionsOpen = Meter(label: "outliers_backend_connections_open", dimensions: [], factory: factory)
        connectionsAccepted = CoreMetrics.Counter(label: "outliers_backend_connections_total", dimensions: [], factory: factory)
    }

    public func callStarted(_ call: ServerCallStart) {
        inFlight.increment()
    }

    public func callEnded(_ call: ServerCallEnd) {
        inFlight.decrement()
        let method = call.isRegistered ? call.path : "unknown"
        calls.metric(for: CallKey(method: method, code: call.status.code.rawValue)) {
            CoreMetrics.Counter(label: "outliers_backend_calls_total",
                                dimensions: [("method", method), ("grpc_code", call.status.code.description)], factory: factory)
        }.increment()
        durations.metric(for: method) {
            CoreMetrics.Timer(label: "outliers_backend_call_duration_seconds", dimensions: [("method", method)], factory: factory)
        }.recordNanoseconds(Int64(clamping: call.nanoseconds))
    }

    public func connectionOpened(peer: String) {
        connectionsAccepted.increment()
        connectionsOpen.increment()
    }

    public func connectionClosed(peer: String) {
        connectionsOpen.decrement()
    }

    /// A label set of `outliers_backend_calls_total`, hashed without building a string.
    private struct CallKey: Hashable, Sendable {
        let method: String
        let code: Int
    }

    static let help: [String: String] = [
        "outliers_backend_calls_total": "gRPC calls answered by the backend, by method and gRPC status code (CANCELLED: the client went away).",
        "outliers_backend_call_duration_seconds": "Time from a call's request headers to its status, by method.",
        "outliers_backend_calls_in_flight": "gRPC calls being served now.",
        "outliers_backend_connections_total": "HTTP/2 connections the backend accepted.",
        "outliers_backend_connections_open": "HTTP/2 connections open now.",
    ]

    /// The Prometheus text exposition, with a `# HELP` line before each family.
    public func exposition() -> [UInt8] { PrometheusText.exposition(of: registry, help: Self.help) }
}
