import Prometheus

/// swift-prometheus' text exposition with a `# HELP` line before each family's
/// `# TYPE` (swift-metrics' factory gives swift-prometheus no help texts), and the
/// histogram buckets both halves use.
enum PrometheusText {
    static func exposition(of registry: PrometheusCollectorRegistry, help: [String: String]) -> [UInt8] {
        var buffer: [UInt8] = []
        registry.emit(into: &buffer)
        var output: [UInt8] = []
        output.reserveCapacity(buffer.count + 512)
        for line in buffer.split(separator: 0x0A, omittingEmptySubsequences: false) {
            if line.starts(with: "# TYPE ".utf8) {
                let name = String(decoding: line.dropFirst(7).prefix { $0 != 0x20 }, as: UTF8.self)
                output.append(contentsOf: "# HELP \(name) \(help[name] ?? name)\n".utf8)
            }
            output.append(contentsOf: line)
            output.append(0x0A)
        }
        if !output.isEmpty { output.removeLast() }  // the split's last piece had no line break after it
        return output
    }

    /// From 250 µs to 10 s: a call answered on the loop to one at the default deadline.
    static func factory(for registry: PrometheusCollectorRegistry) -> PrometheusMetricsFactory {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
            .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250),
            .milliseconds(500), .seconds(1), .seconds(2.5), .seconds(5), .seconds(10),
        ]
        return factory
    }
}
