import CoreMetrics
import H2GRPC
import Prometheus
import Synchronization

/// The gateway's metrics, through swift-metrics with swift-prometheus behind it:
/// requests by route and status code, latency by route, requests in flight,
/// upstream errors by gRPC code. Metric objects are made once per label set.
final class GatewayMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    let inFlight: Meter
    private let counters = Mutex<[String: CoreMetrics.Counter]>([:])
    private let timers = Mutex<[String: CoreMetrics.Timer]>([:])
    private let upstream = Mutex<[Int: CoreMetrics.Counter]>([:])
    private let overload = Mutex<[String: CoreMetrics.Counter]>([:])

    init() {
        let factory = PrometheusText.factory(for: registry)
        self.factory = factory
        inFlight = Meter(label: "outliers_gateway_requests_in_flight", dimensions: [], factory: factory)
    }

    func record(route: String, status: Int, nanoseconds: UInt64) {
        let key = "\(route) \(status)"
        let counter = counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = CoreMetrics.Counter(label: "outliers_gateway_requests_total",
                                  dimensions: [("route", route), ("code", String(status))], factory: factory)
            counters[key] = counter
            return counter
        }
        counter.increment()
        let timer = timers.withLock { timers in
            if let timer = timers[route] { return timer }
            let timer = CoreMetrics.Timer(label: "outliers_gateway_request_duration_seconds", dimensions: [("route", route)],
                              factory: factory)
            timers[route] = timer
            return timer
        }
        timer.recordNanoseconds(Int64(clamping: nanoseconds))
    }

    func upstreamError(_ code: RPCError.Code) {
        let counter = upstream.withLock { upstream in
            if let counter = upstream[code.rawValue] { return counter }
            let counter = CoreMetrics.Counter(label: "outliers_gateway_upstream_errors_total",
                                  dimensions: [("grpc_code", code.description)], factory: factory)
            upstream[code.rawValue] = counter
            return counter
        }
        counter.increment()
    }

    /// A request refused at an overload cap (`--max-in-flight`, `--max-buffered-bytes`).
    func overloaded(reason: String) {
        let counter = overload.withLock { overload in
            if let counter = overload[reason] { return counter }
            let counter = CoreMetrics.Counter(label: "outliers_gateway_overload_rejections_total",
                                              dimensions: [("reason", reason)], factory: factory)
            overload[reason] = counter
            return counter
        }
        counter.increment()
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
