import Detection
import Foundation

/// `outliers bench --detection`: how long each detection rule takes on N values, the
/// statistics alone (no codec, no transport), with a full sort of the same values
/// for scale: MAD and IQR find their medians and quartiles by selection, O(n).
public enum DetectionTiming {
    public struct Row: Sendable, Equatable {
        public let label: String
        public let values: Int
        public let timing: TimingSummary
        public let outliers: Int?
    }

    /// Every rule (at its default threshold) and the sort, on `DemoData.values(count:)`
    /// for each size: calibrated rounds as `outliers bench` times codecs.
    public static func run(sizes: [Int], configuration: BenchConfiguration,
                           progress: (String) -> Void = { _ in }) throws -> [Row] {
        var rows: [Row] = []
        for size in sizes {
            let values = DemoData.values(count: size)
            for method in DetectionMethod.allCases {
                progress("detection: \(label(method)) on \(grouped(size)) values")
                let detector = OutlierDetector(threshold: method.defaultThreshold)
                var found = 0
                let result = try Benchmark.measure({
                    found = try detector.analyze(values, method: method).outliers.count
                }, configuration: configuration, countAllocations: false, items: size, bytes: size * 8)
                rows.append(Row(label: label(method), values: size, timing: result.timing, outliers: found))
            }
            progress("detection: a full sort of \(grouped(size)) values")
            var sink = 0.0
            let sort = try Benchmark.measure({
                sink += values.sorted()[size / 2]
            }, configuration: configuration, countAllocations: false, items: size, bytes: size * 8)
            precondition(sink.isFinite)
            rows.append(Row(label: "full sort (for scale)", values: size, timing: sort.timing, outliers: nil))
        }
        return rows
    }

    static func label(_ method: DetectionMethod) -> String {
        switch method {
        case .zScore: "ZSCORE (mean, std)"
        case .medianAbsoluteDeviation: "MAD (two medians)"
        case .interquartileRange: "IQR (three order statistics)"
        }
    }

    /// A Markdown table: the rule, the values, the median and p10–p90 per run, ns per value.
    public static func markdown(_ rows: [Row], command: String) -> String {
        var lines = ["    \(command)", "",
                     "| rule | values | median ms | p10–p90 ms | ns per value | outliers |",
                     "|---|---:|---:|---:|---:|---:|"]
        for row in rows {
            let ms = { (nanoseconds: Double) in String(format: "%.3f", nanoseconds / 1e6) }
            lines.append("| \(row.label) | \(grouped(row.values)) | \(ms(row.timing.median)) | "
                         + "\(ms(row.timing.p10))–\(ms(row.timing.p90)) | "
                         + String(format: "%.1f", row.timing.median / Double(row.values))
                         + " | \(row.outliers.map(String.init) ?? "—") |")
        }
        return lines.joined(separator: "\n") + "\n"
    }
}
