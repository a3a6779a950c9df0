import Foundation

/// `--chart FILE.svg`: a standalone SVG bar chart of the request rows (responses
/// are a few indices and all alike): encoded size (raw and gzip), encode time and
/// decode time per message, grouped by request size, one colour per codec, log
/// scales, p10–p90 whiskers. Each bar carries a `<title>` with its figure.
public enum Chart {
    static let width = 980.0
    static let panelHeight = 230.0
    static let left = 92.0
    static let right = 24.0
    static let palette: [String: String] = [
        "protobuf": "#1f77b4", "json-outliers": "#ff7f0e", "json-swift-protobuf": "#2ca02c",
        "json-foundation": "#d62728", "gateway": "#9467bd",
    ]
    static let fallbackColours = ["#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]

    struct Bar {
        var codec: String
        var value: Double
        var low: Double?
        var high: Double?
        var faded: Bool
        var tooltip: String
    }

    struct Panel {
        var title: String
        var axis: String
        var unit: (Double) -> String
        var groups: [(label: String, bars: [Bar])]
    }

    public static func svg(_ report: BenchReport) -> String {
        let rows = report.results.filter { $0.message == .request && $0.skipped == nil }
        var sizes: [Int] = []
        for row in rows where !sizes.contains(row.metrics) { sizes.append(row.metrics) }
        var codecs: [(id: String, title: String)] = []
        for row in rows where !codecs.contains(where: { $0.id == row.codec }) { codecs.append((row.codec, row.title)) }
        func colour(_ codec: String) -> String {
            palette[codec] ?? fallbackColours[(codecs.firstIndex { $0.id == codec } ?? 0) % fallbackColours.count]
        }

        func sizeBars(_ metrics: Int) -> [Bar] {
            rows.filter { $0.metrics == metrics && $0.role == .codec }.flatMap { row -> [Bar] in
                guard let bytes = row.bytes, let gzip = row.gzipBytes else { return [] }
                return [Bar(codec: row.codec, value: Double(bytes), faded: false,
                            tooltip: "\(row.title), \(grouped(metrics)) metrics: \(grouped(bytes)) bytes"),
                        Bar(codec: row.codec, value: Double(gzip), faded: true,
                            tooltip: "\(row.title), \(grouped(metrics)) metrics: \(grouped(gzip)) bytes gzipped")]
            }
        }
        func timeBars(_ metrics: Int, _ operation: BenchOperation) -> [Bar] {
            rows.filter { $0.metrics == metrics }.compactMap { row in
                guard let figures = row.operation(operation) else { return nil }
                return Bar(codec: row.codec, value: figures.timing.median, low: figures.timing.p10, high: figures.timing.p90,
                           faded: false,
                           tooltip: "\(row.title), \(grouped(metrics)) metrics, \(operation): \(Number.timing(figures.timing)), p10–p90")
            }
        }
        let labels = sizes.map { "\(grouped($0)) metrics" }
        let panels = [
            Panel(title: "Encoded size per message (solid: raw, faded: gzip level 6)", axis: "bytes (log scale)",
                  unit: byteLabel, groups: sizes.indices.map { (labels[$0], sizeBars(sizes[$0])) }),
            Panel(title: "Encode time per message (median, whiskers p10–p90)", axis: "time (log scale)",
                  unit: timeLabel, groups: sizes.indices.map { (labels[$0], timeBars(sizes[$0], .encode)) }),
            Panel(title: "Decode time per message (median, whiskers p10–p90; gateway: JSON body → protobuf bytes)",
                  axis: "time (log scale)", unit: timeLabel,
                  groups: sizes.indices.map { (labels[$0], timeBars(sizes[$0], .decode)) }),
        ]

        let legendRows = Int((Double(codecs.count) / 3).rounded(.up))
        let top = 78.0 + Double(legendRows) * 20
        let panelGap = 64.0
        let height = top + Double(panels.count) * (panelHeight + panelGap) - 12
        var svg = """
            <?xml version="1.0" encoding="UTF-8"?>
            <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" \
            viewBox="0 0 \(Int(width)) \(Int(height))" font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">
            <title>outliers bench: JSON against protobuf, request messages</title>
            <rect x="0" y="0" width="\(Int(width))" height="\(Int(height))" fill="#ffffff"/>

            """
        svg += text(x: left, y: 26, "outliers bench: JSON against protobuf, request messages", size: 17, weight: "bold")
        let dataLine = report.data.file.map { "input \($0)" }
            ?? "article demo data, \(report.data.timestamps == .distinct ? "distinct timestamps" : "one repeated timestamp")"
        svg += text(x: left, y: 46, "\(dataLine) · \(report.build) build · \(report.machine.cores) cores, \(report.machine.cpuModel)",
                    size: 12, fill: "#444444")
        // Legend.
        for (index, codec) in codecs.enumerated() {
            let x = left + Double(index % 3) * 290
            let y = 62 + Double(index / 3) * 20
            svg += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"12\" height=\"12\" fill=\"\(colour(codec.id))\"/>\n"
            svg += text(x: x + 18, y: y + 10.5, codec.title, size: 12)
        }
        for (number, panel) in panels.enumerated() {
            svg += render(panel, top: top + Double(number) * (panelHeight + panelGap), colour: colour)
        }
        svg += "</svg>\n"
        return svg
    }

    private static func render(_ panel: Panel, top: Double, colour: (String) -> String) -> String {
        let plotTop = top + 24
        let plotHeight = panelHeight - 24
        let bottom = plotTop + plotHeight
        let plotWidth = width - left - right
        var svg = "<g>\n" + text(x: left, y: top + 12, panel.title, size: 13, weight: "bold")
        let values = panel.groups.flatMap { $0.bars.flatMap { [$0.value, $0.low ?? $0.value, $0.high ?? $0.value] } }.filter { $0 > 0 }
        guard let minimum = values.min(), let maximum = values.max() else {
            return svg + text(x: left + plotWidth / 2, y: top + panelHeight / 2, "no data", size: 12, anchor: "middle") + "</g>\n"
        }
        let lowDecade = floor(log10(minimum))
        var highDecade = ceil(log10(maximum))
        if highDecade <= lowDecade { highDecade = lowDecade + 1 }
        func y(_ value: Double) -> Double {
            let fraction = (log10(max(value, pow(10, lowDecade))) - lowDecade) / (highDecade - lowDecade)
            return bottom - fraction * plotHeight
        }
        // Axes and decade grid lines.
        for decade in Int(lowDecade)...Int(highDecade) {
            let value = pow(10, Double(decade))
            let position = y(value)
            svg += "<line x1=\"\(f(left))\" y1=\"\(f(position))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(position))\" "
                + "stroke=\"#dddddd\" stroke-width=\"1\"/>\n"
            svg += text(x: left - 6, y: position + 4, panel.unit(value), size: 11, anchor: "end", fill: "#333333")
        }
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(plotTop))\" x2=\"\(f(left))\" y2=\"\(f(bottom))\" stroke=\"#333333\"/>\n"
        svg += "<line x1=\"\(f(left))\" y1=\"\(f(bottom))\" x2=\"\(f(left + plotWidth))\" y2=\"\(f(bottom))\" stroke=\"#333333\"/>\n"
        let axisX = left - 62
        let axisY = plotTop + plotHeight / 2
        svg += "<text x=\"\(f(axisX))\" y=\"\(f(axisY))\" font-size=\"12\" text-anchor=\"middle\" fill=\"#333333\" "
            + "transform=\"rotate(-90 \(f(axisX)) \(f(axisY)))\">\(escape(panel.axis))</text>\n"
        svg += text(x: left + plotWidth / 2, y: bottom + 36, "request size", size: 12, anchor: "middle", fill: "#333333")

        // Bars, grouped by request size.
        let groupWidth = plotWidth / Double(max(panel.groups.count, 1))
        for (number, group) in panel.groups.enumerated() {
            let groupLeft = left + Double(number) * groupWidth
            svg += text(x: groupLeft + groupWidth / 2, y: bottom + 18, group.label, size: 12, anchor: "middle")
            let slots = max(group.bars.count, 1)
            let barWidth = min(28, (groupWidth - 24) / Double(slots))
            var x = groupLeft + (groupWidth - barWidth * Double(slots)) / 2
            for bar in group.bars {
                let barTop = y(bar.value)
                svg += "<rect class=\"bar\" x=\"\(f(x + 1))\" y=\"\(f(barTop))\" width=\"\(f(barWidth - 2))\" "
                    + "height=\"\(f(max(bottom - barTop, 0.5)))\" fill=\"\(colour(bar.codec))\""
                    + (bar.faded ? " fill-opacity=\"0.4\"" : "") + "><title>\(escape(bar.tooltip))</title></rect>\n"
                if let low = bar.low, let high = bar.high, high > low {
                    let centre = x + barWidth / 2
                    svg += "<path d=\"M\(f(centre)) \(f(y(low)))V\(f(y(high)))M\(f(centre - 3)) \(f(y(low)))h6"
                        + "M\(f(centre - 3)) \(f(y(high)))h6\" stroke=\"#222222\" stroke-width=\"1\" fill=\"none\"/>\n"
                }
                x += barWidth
            }
        }
        return svg + "</g>\n"
    }

    static func byteLabel(_ value: Double) -> String {
        switch value {
        case 1e9...: return "\(Int(value / 1e9)) GB"
        case 1e6...: return "\(Int(value / 1e6)) MB"
        case 1e3...: return "\(Int(value / 1e3)) kB"
        default: return "\(Int(value)) B"
        }
    }

    /// Nanoseconds → "10 ns", "1 µs", "100 ms", "1 s".
    static func timeLabel(_ nanoseconds: Double) -> String {
        switch nanoseconds {
        case 1e9...: return "\(Int((nanoseconds / 1e9).rounded())) s"
        case 1e6...: return "\(Int((nanoseconds / 1e6).rounded())) ms"
        case 1e3...: return "\(Int((nanoseconds / 1e3).rounded())) µs"
        case 1...: return "\(Int(nanoseconds.rounded())) ns"
        default: return String(format: "%g ns", nanoseconds)
        }
    }

    private static func text(x: Double, y: Double, _ content: String, size: Int, anchor: String = "start",
                             weight: String = "normal", fill: String = "#111111") -> String {
        "<text x=\"\(f(x))\" y=\"\(f(y))\" font-size=\"\(size)\" text-anchor=\"\(anchor)\" font-weight=\"\(weight)\" "
            + "fill=\"\(fill)\">\(escape(content))</text>\n"
    }

    private static func f(_ value: Double) -> String { String(format: "%.1f", value) }

    static func escape(_ text: String) -> String {
        var output = ""
        for character in text {
            switch character {
            case "&": output += "&amp;"
            case "<": output += "&lt;"
            case ">": output += "&gt;"
            case "\"": output += "&quot;"
            default: output.append(character)
            }
        }
        return output
    }
}
