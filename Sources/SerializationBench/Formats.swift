import Foundation

/// The report's output formats.
public enum ReportFormat: String, Sendable, CaseIterable {
    /// Two tables that fit 120 columns: sizes, then one row per codec and operation.
    case table
    /// Every figure of a codec on one line (about 190 columns), with the method text.
    case wide
    case json, csv, markdown

    /// `verbose` adds the method text to the table (the wide table always has it).
    public func render(_ report: BenchReport, verbose: Bool = false) -> String {
        switch self {
        case .table: return CompactTableFormat.render(report, verbose: verbose)
        case .wide: return TableFormat.render(report)
        case .json: return JSONFormat.render(report)
        case .csv: return CSVFormat.render(report)
        case .markdown: return MarkdownFormat.render(report)
        }
    }
}

// MARK: - Number formatting

enum Number {
    /// Three significant digits, grouped thousands above 1000: 0.123, 1.23, 12.3, 123, 1,234.
    static func significant(_ value: Double) -> String {
        guard value.isFinite else { return "—" }
        let magnitude = abs(value)
        if magnitude >= 1000 { return grouped(Int(value.rounded())) }
        if magnitude >= 100 { return String(format: "%.0f", value) }
        if magnitude >= 10 { return String(format: "%.1f", value) }
        if magnitude >= 1 { return String(format: "%.2f", value) }
        return String(format: "%.3f", value)
    }

    /// The unit that shows `nanoseconds` with 1 to 3 digits before the point.
    static func unit(for nanoseconds: Double) -> (scale: Double, name: String) {
        switch abs(nanoseconds) {
        case 1e9...: return (1e9, "s")
        case 1e6...: return (1e6, "ms")
        case 1e3...: return (1e3, "µs")
        default: return (1, "ns")
        }
    }

    /// "12.3 µs (12.1–12.9)": the median, then p10–p90 in the median's unit.
    static func timing(_ timing: TimingSummary) -> String {
        let unit = unit(for: timing.median)
        return "\(significant(timing.median / unit.scale)) \(unit.name) "
            + "(\(significant(timing.p10 / unit.scale))–\(significant(timing.p90 / unit.scale)))"
    }

    static func ratio(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "—" }
        if value >= 100 { return String(format: "%.0f×", value) }
        if value >= 10 { return String(format: "%.1f×", value) }
        return String(format: "%.2f×", value)
    }

    static func allocations(_ value: Double?) -> String {
        guard let value else { return "n/a" }
        if value == value.rounded() { return grouped(Int(value)) }
        return value >= 100 ? grouped(Int(value.rounded())) : String(format: "%.1f", value)
    }

    static func bytes(_ value: Int?) -> String { value.map(grouped) ?? "—" }
}

/// The cells of one result row, shared by the table and Markdown formats.
enum Cells {
    static let headers = ["codec", "bytes", "gzip", "size ×pb",
                          "time (p10–p90)", "ns/item", "MB/s", "allocs", "×pb",
                          "time (p10–p90)", "ns/item", "MB/s", "allocs", "×pb"]
    /// Columns 4…8 are the encode group, 9…13 the decode group.
    static let groups = [(label: "encode, per message", columns: 4...8), (label: "decode, per message", columns: 9...13)]

    static func row(_ result: CaseResult) -> [String] {
        var cells = [result.title, Number.bytes(result.bytes), Number.bytes(result.gzipBytes), Number.ratio(result.sizeRatio)]
        for operation in BenchOperation.allCases {
            if let figures = result.operation(operation) {
                cells += [Number.timing(figures.timing),
                          figures.nanosecondsPerItem.map(Number.significant) ?? "—",
                          Number.significant(figures.megabytesPerSecond),
                          Number.allocations(figures.allocations),
                          Number.ratio(figures.ratioToProtobuf)]
            } else {
                cells += Array(repeating: "—", count: 5)
            }
        }
        return cells
    }

    static func blockTitle(_ message: MessageKind, metrics: Int, items: Int) -> String {
        switch message {
        case .request: return "request, \(grouped(metrics)) metrics"
        case .response: return "response to \(grouped(metrics)) metrics (\(items) \(items == 1 ? "index" : "indices"))"
        }
    }

    /// Rows grouped by message and size, in run order.
    static func blocks(_ results: [CaseResult]) -> [(title: String, rows: [CaseResult])] {
        var blocks: [(title: String, rows: [CaseResult])] = []
        for result in results {
            let title = blockTitle(result.message, metrics: result.metrics, items: result.items)
            if blocks.last?.title == title {
                blocks[blocks.count - 1].rows.append(result)
            } else {
                blocks.append((title, [result]))
            }
        }
        return blocks
    }

    static func preamble(_ report: BenchReport) -> [(String, String)] {
        var lines: [(String, String)] = []
        if let command = report.command { lines.append(("command", command)) }
        lines.append(("machine", report.machine.summary))
        lines.append(("build", "\(report.build) (Swift \(report.swift))\(report.method.quick ? ", --quick (timings not meaningful)" : "")"))
        lines.append(("method", report.method.description))
        lines.append(("allocations", report.method.allocations))
        lines.append(("data", report.data.description))
        lines.append(("columns", "bytes and gzip (zlib level 6) of the encoded message; ns/item per metric (requests) or index (responses); ×pb = over protobuf binary, same message and size"))
        return lines
    }
}

// MARK: - Table

enum TableFormat {
    static func render(_ report: BenchReport) -> String {
        var output = "outliers bench: JSON against protobuf, size and speed\n"
        let preamble = Cells.preamble(report)
        let labelWidth = preamble.map(\.0.count).max() ?? 0
        for (label, text) in preamble {
            output += (label + ":").padding(toLength: labelWidth + 2, withPad: " ", startingAt: 0) + text + "\n"
        }
        output += "\n"

        let blocks = Cells.blocks(report.results)
        let rows = blocks.flatMap { $0.rows.map(Cells.row) }
        var widths = Cells.headers.map(\.count)
        for row in rows { for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) } }
        // Widen a group's last column if its label is longer than the group.
        let separator = "  "
        for group in Cells.groups {
            let span = group.columns.map { widths[$0] }.reduce(0, +) + separator.count * (group.columns.count - 1)
            if group.label.count + 4 > span { widths[group.columns.upperBound] += group.label.count + 4 - span }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[0], withPad: " ", startingAt: 0) : pad(cell, widths[column])
            }.joined(separator: separator).trimmingTrailingSpaces()
        }
        // Group labels over their columns: ── encode, per message ──
        var groupLine = String(repeating: " ", count: widths[0..<Cells.groups[0].columns.lowerBound].reduce(0, +)
                                + separator.count * Cells.groups[0].columns.lowerBound)
        for (number, group) in Cells.groups.enumerated() {
            let span = group.columns.map { widths[$0] }.reduce(0, +) + separator.count * (group.columns.count - 1)
            let label = " \(group.label) "
            let left = (span - label.count) / 2
            groupLine += String(repeating: "─", count: left) + label + String(repeating: "─", count: span - left - label.count)
            if number < Cells.groups.count - 1 { groupLine += separator }
        }
        output += groupLine + "\n" + line(Cells.headers) + "\n"
        var index = 0
        for block in blocks {
            output += "· \(block.title)\n"
            for _ in block.rows {
                output += line(rows[index]) + "\n"
                index += 1
            }
        }
        let notes = report.notes
        if !notes.isEmpty {
            output += "\nnotes:\n" + notes.map { "- \($0)\n" }.joined()
        }
        output += "\n" + (report.summary.map { "summary: \($0.line)" }
            ?? "summary: n/a (no request timed with both protobuf binary and a JSON codec)") + "\n"
        return output
    }

    private static func pad(_ text: String, _ width: Int) -> String {
        String(repeating: " ", count: max(0, width - text.count)) + text
    }
}

extension String {
    func trimmingTrailingSpaces() -> String {
        var copy = self
        while copy.last == " " { copy.removeLast() }
        return copy
    }
}

// MARK: - Compact table

/// The default table: at most `width` columns, so it reads in a terminal and pastes
/// into an issue. Sizes per codec and message first, then one row per codec and
/// operation; the preamble and notes wrapped to the width, the method text only
/// when asked for.
enum CompactTableFormat {
    static let width = 120

    static func render(_ report: BenchReport, verbose: Bool) -> String {
        var output = "outliers bench: JSON against protobuf, size and speed\n"
        var preamble = Cells.preamble(report)
        if !verbose {
            let methodLabels: Set = ["method", "allocations", "columns"]
            preamble.removeAll { methodLabels.contains($0.0) }
        }
        let labelWidth = (preamble.map(\.0.count).max() ?? 0) + 2
        for (label, text) in preamble {
            output += wrap(text, firstPrefix: (label + ":").padding(toLength: labelWidth, withPad: " ", startingAt: 0),
                           prefix: String(repeating: " ", count: labelWidth))
        }
        if !verbose { output += "(--verbose: how it is measured; --format wide: every figure of a codec on one line)\n" }

        let blocks = Cells.blocks(report.results)
        output += "\nsize of the encoded message (gzip: zlib level 6; ×pb: over protobuf binary, same message)\n"
        var sizeRows: [[String]?] = []
        for block in blocks {
            sizeRows.append(nil)
            for result in block.rows where result.role == .codec {
                sizeRows.append([result.title, Number.bytes(result.bytes), Number.bytes(result.gzipBytes),
                                 Number.ratio(result.sizeRatio)])
            }
        }
        output += table(headers: ["codec", "bytes", "gzip", "×pb"], leftColumns: 1, rows: sizeRows,
                        titles: blocks.map(\.title))

        output += "\ntime per message: median of the rounds (p10–p90); ns/item per metric or index; ×pb: over protobuf binary\n"
        var timeRows: [[String]?] = []
        for block in blocks {
            timeRows.append(nil)
            for result in block.rows {
                for operation in BenchOperation.allCases {
                    guard let figures = result.operation(operation) else { continue }
                    timeRows.append([result.title, operation.rawValue, Number.timing(figures.timing),
                                     figures.nanosecondsPerItem.map(Number.significant) ?? "—",
                                     Number.significant(figures.megabytesPerSecond),
                                     Number.allocations(figures.allocations), Number.ratio(figures.ratioToProtobuf)])
                }
            }
        }
        output += table(headers: ["codec", "op", "time (p10–p90)", "ns/item", "MB/s", "allocs", "×pb"], leftColumns: 2,
                        rows: timeRows, titles: blocks.map(\.title))

        let notes = report.notes
        if !notes.isEmpty {
            output += "\nnotes:\n" + notes.map { wrap($0, firstPrefix: "- ", prefix: "  ") }.joined()
        }
        output += "\n" + wrap(report.summary.map { $0.line }
            ?? "n/a (no request timed with both protobuf binary and a JSON codec)", firstPrefix: "summary: ", prefix: "  ")
        return output
    }

    /// Aligned columns; a nil row starts the next block, under its title.
    private static func table(headers: [String], leftColumns: Int, rows: [[String]?], titles: [String]) -> String {
        var widths = headers.map(\.count)
        for case let row? in rows { for (column, cell) in row.enumerated() { widths[column] = max(widths[column], cell.count) } }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { column, cell in
                let padding = String(repeating: " ", count: max(0, widths[column] - cell.count))
                return column < leftColumns ? cell + padding : padding + cell
            }.joined(separator: "  ").trimmingTrailingSpaces() + "\n"
        }
        var output = line(headers)
        var titleIndex = 0
        for row in rows {
            if let row {
                output += line(row)
            } else {
                output += "· \(titles[titleIndex])\n"
                titleIndex += 1
            }
        }
        return output
    }

    /// `text` in lines of at most `width` columns, broken at spaces (a word longer than a
    /// line stays whole), the first line after `firstPrefix`, the others after `prefix`.
    static func wrap(_ text: String, firstPrefix: String, prefix: String) -> String {
        var output = ""
        var line = firstPrefix
        var lineHasWord = false
        for word in text.split(separator: " ", omittingEmptySubsequences: false) {
            if lineHasWord && line.count + 1 + word.count > width {
                output += line + "\n"
                line = prefix
                lineHasWord = false
            }
            line += (lineHasWord ? " " : "") + word
            lineHasWord = true
        }
        return output + line + "\n"
    }
}

// MARK: - Markdown

enum MarkdownFormat {
    static func render(_ report: BenchReport) -> String {
        var output = ""
        for (label, text) in Cells.preamble(report) {
            output += "- **\(label)**: \(escape(text))\n"
        }
        var headers = Cells.headers
        for group in Cells.groups {
            let prefix = group.label.hasPrefix("encode") ? "encode" : "decode"
            for column in group.columns { headers[column] = "\(prefix) \(headers[column])" }
        }
        for block in Cells.blocks(report.results) {
            output += "\n**\(block.title)**\n\n"
            output += "| " + headers.joined(separator: " | ") + " |\n"
            output += "|" + headers.indices.map { $0 == 0 ? ":---" : "---:" }.joined(separator: "|") + "|\n"
            for row in block.rows {
                output += "| " + Cells.row(row).map(escape).joined(separator: " | ") + " |\n"
            }
        }
        let notes = report.notes
        if !notes.isEmpty {
            output += "\nNotes:\n\n" + notes.map { "- \(escape($0))\n" }.joined()
        }
        if let summary = report.summary {
            output += "\n**Summary:** \(escape(summary.line))\n"
        }
        return output
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "|", with: "\\|")
    }
}

// MARK: - CSV

/// One header line, then one line per codec and message (RFC 4180 quoting).
/// Empty cells: not measured. Times in nanoseconds.
enum CSVFormat {
    static let operationColumns = ["median_ns", "p10_ns", "p90_ns", "ns_per_item", "mb_per_s", "allocations",
                                   "ratio_to_protobuf", "iterations_per_round", "rounds"]
    static var header: [String] {
        ["message", "metrics", "items", "codec", "title", "kind", "bytes", "gzip_bytes", "size_ratio", "gzip_ratio"]
            + BenchOperation.allCases.flatMap { operation in operationColumns.map { "\(operation.rawValue)_\($0)" } }
            + ["skipped"]
    }

    static func render(_ report: BenchReport) -> String {
        var lines = [header.map(quote).joined(separator: ",")]
        for result in report.results {
            var cells = [result.message.rawValue, "\(result.metrics)", "\(result.items)", result.codec, result.title,
                         result.role.rawValue, result.bytes.map(String.init) ?? "", result.gzipBytes.map(String.init) ?? "",
                         number(result.sizeRatio), number(result.gzipRatio)]
            for operation in BenchOperation.allCases {
                if let figures = result.operation(operation) {
                    cells += [number(figures.timing.median), number(figures.timing.p10), number(figures.timing.p90),
                              number(figures.nanosecondsPerItem), number(figures.megabytesPerSecond),
                              number(figures.allocations), number(figures.ratioToProtobuf),
                              "\(figures.iterationsPerRound)", "\(figures.timing.samples.count)"]
                } else {
                    cells += Array(repeating: "", count: operationColumns.count)
                }
            }
            cells.append(result.skipped ?? "")
            lines.append(cells.map(quote).joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    static func number(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "" }
        return value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(format: "%.6g", value)
    }

    static func quote(_ cell: String) -> String {
        guard cell.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) else { return cell }
        return "\"" + cell.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }
}

// MARK: - JSON

/// `--format json`: one object, schema "outliers-bench/1" (documented in
/// docs/BENCHMARKS.md). Keys are sorted; absent figures are null, never omitted.
enum JSONFormat {
    static let schema = "outliers-bench/1"

    static func render(_ report: BenchReport) -> String {
        let object = document(report)
        guard let data = try? JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys]) else {
            return "{}\n"
        }
        return String(decoding: data, as: UTF8.self) + "\n"
    }

    static func document(_ report: BenchReport) -> [String: Any] {
        let formatter = ISO8601DateFormatter()
        let machine: [String: Any] = [
            "cores": report.machine.cores,
            "cpu": report.machine.cpuModel,
            "memory_bytes": nullable(report.machine.memoryBytes),
            "os": report.machine.operatingSystem,
            "kernel": report.machine.kernel,
            "load_average": report.machine.loadAverage,
        ]
        let method: [String: Any] = [
            "min_round_seconds": report.method.minimumRoundSeconds,
            "rounds": report.method.rounds,
            "quick": report.method.quick,
            "statistic": "median, p10 and p90 of per-message nanoseconds over the rounds",
            "warmup": "one call, the calibration runs, and one discarded round",
            "allocations": report.method.allocations,
            "allocations_counted": report.method.allocationsCounted,
        ]
        let data: [String: Any] = [
            "source": report.data.source,
            "file": nullable(report.data.file),
            "timestamps": nullable(report.data.timestamps?.rawValue),
            "seed": nullable(report.data.seed.map { Int($0) }),
            "sizes": report.data.sizes,
        ]
        let results: [[String: Any]] = report.results.map { result in
            [
                "message": result.message.rawValue,
                "metrics": result.metrics,
                "items": result.items,
                "codec": result.codec,
                "title": result.title,
                "kind": result.role.rawValue,
                "bytes": nullable(result.bytes),
                "gzip_bytes": nullable(result.gzipBytes),
                "size_ratio": nullable(result.sizeRatio),
                "gzip_ratio": nullable(result.gzipRatio),
                "encode": operation(result.encode),
                "decode": operation(result.decode),
                "notes": result.notes,
                "skipped": nullable(result.skipped),
            ]
        }
        var summary: Any = NSNull()
        if let line = report.summary {
            summary = [
                "against": line.against,
                "title": line.againstTitle,
                "metrics": line.metrics,
                "encode_speedup": line.encodeSpeedup,
                "decode_speedup": line.decodeSpeedup,
                "size_ratio": line.sizeRatio,
                "gzip_size_ratio": nullable(line.gzipSizeRatio),
                "article": ["speedup": BenchSummary.articleSpeedup, "size_ratio": BenchSummary.articleSizeRatio],
                "line": line.line,
            ] as [String: Any]
        }
        return [
            "schema": schema,
            "started": formatter.string(from: report.started),
            "command": nullable(report.command),
            "build": ["mode": report.build, "swift": report.swift],
            "machine": machine,
            "method": method,
            "data": data,
            "results": results,
            "notes": report.notes,
            "summary": summary,
        ]
    }

    static func operation(_ figures: OperationResult?) -> Any {
        guard let figures else { return NSNull() }
        return [
            "median_ns": figures.timing.median,
            "p10_ns": figures.timing.p10,
            "p90_ns": figures.timing.p90,
            "min_ns": figures.timing.minimum,
            "max_ns": figures.timing.maximum,
            "samples_ns": figures.timing.samples,
            "iterations_per_round": figures.iterationsPerRound,
            "rounds": figures.timing.samples.count,
            "ns_per_item": nullable(figures.nanosecondsPerItem),
            "mb_per_s": figures.megabytesPerSecond,
            "allocations": nullable(figures.allocations),
            "ratio_to_protobuf": nullable(figures.ratioToProtobuf),
        ] as [String: Any]
    }

    static func nullable<T>(_ value: T?) -> Any {
        guard let value else { return NSNull() }
        if let double = value as? Double, !double.isFinite { return NSNull() }
        return value
    }
}
