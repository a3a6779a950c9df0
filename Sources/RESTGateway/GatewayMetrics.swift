import CoreMetrics
import H2GRPC
import Prometheus

/// The gateway's metrics, through swift-metrics with swift-prometheus behind it:
/// requests by route and status code, latency by route, requests in flight,
/// upstream errors by gRPC code. Metric objects are made once per label set.
final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    let inFlight: Meter
    private let requests = LabeledMetrics<String, CoreMetrics.Counter>()
    private let durations = LabeledMetrics<String, CoreMetrics.Timer>()
    private let upstream = LabeledMetrics<Int, CoreMetrics.Counter>()
    private let overload = LabeledMetrics<String, CoreMetrics.Counter>()

    init() {
        let factory = PrometheusText.factory(for: registry)
        self.factory = factory
        inFlight = Meter(label: "outliers_gateway_requests_in_flight", dimensions: [], factory: factory)
    }

    func record(route: String, status: Int, nanoseconds: UInt64) {
        requests.metric(for: "\(route) \(status)") {
            CoreMetrics.Counter(label: "outliers_gateway_requests_total",
                                dimensions: [("route", route), ("code", String(status))], factory: factory)
        }.increment()
        durations.metric(for: route) {
            CoreMetrics.Timer(label: "outliers_gateway_request_duration_seconds", dimensions: [("route", route)],
                              factory: factory)
        }.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    func upstreamError(_ code: RPCError.Code) {
        upstream.metric(for: code.rawValue) {
            CoreMetrics.Counter(label: "outliers_gateway_upstream_errors_total",
                                dimensions: [("grpc_code", code.description)], factory: factory)
        }.increment()
    }

    /// A request refused at an overload cap (`--max-in-flight`, `--max-buffered-bytes`).
    func overloaded(reason: String) {
        overload.metric(for: reason) {
            CoreMetrics.Counter(label: "outliers_gateway_overload_rejections_total",
                                dimensions: [("reason", reason)], factory: factory)
        }.increment()
    }

    /// What each family measures, as its `# HELP` line says.
    static let help: [String: String] = [
        "outliers_gateway_overload_rejections_total": "Requests answered 503 at once at an overload cap, by cap.",
        "outliers_gateway_requests_total": "Requests answered, by route and HTTP status code.",
        "outliers_gateway_request_duration_seconds": "Time from a request's start to its answer, by route.",
        "outliers_gateway_requests_in_flight": "Requests being served now.",
        "outliers_gateway_upstream_errors_total": "Backend calls that failed, by gRPC status code.",
    ]

    /// The Prometheus text exposition, with a `# HELP` line before each family.
    func exposition() -> [UInt8] { PrometheusText.exposition(of: registry, help: Self.help) }
}
