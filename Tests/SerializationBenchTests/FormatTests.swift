import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import Testing
@testable import SerializationBench

/// A report with made-up, fixed figures (no timing), covering every kind of row.
func syntheticReport() -> BenchReport {
    func figures(_ median: Double, items: Int, bytes: Int, allocations: Double?, ratio: Double) -> OperationResult {
        let timing = TimingSummary(samples: (0..<10).map { median * (0.95 + 0.01 * Double($0)) })
        return OperationResult(timing: timing, iterationsPerRound: 100, nanosecondsPerItem: items > 0 ? timing.median / Double(items) : nil,
                               megabytesPerSecond: Double(bytes) / timing.median * 1e3, allocations: allocations,
                               ratioToProtobuf: ratio)
    }
    var results: [CaseResult] = []
    for metrics in [10, 1000] {
        let codecs: [(String, String, CodecRole, Double, Bool, Bool)] = [
            ("protobuf", "protobuf binary (swift-protobuf)", .codec, 1, true, true),
            ("json-outliers", "proto3 JSON (OutliersJSON/jansson)", .codec, 2.98, true, true),
            ("json-swift-protobuf", "proto3 JSON (swift-protobuf)", .codec, 2.98, true, true),
            ("json-foundation", "plain JSON (Foundation Codable)", .codec, 2.98, true, true),
            ("gateway", "gateway: JSON body → protobuf bytes", .gateway, 2.98, false, true),
        ]
        for (index, codec) in codecs.enumerated() {
            let bytes = Int(Double(24 * metrics) * codec.3)
            let slow = 1 + Double(index) * 2.3
            results.append(CaseResult(
                message: .request, metrics: metrics, items: metrics, codec: codec.0, title: codec.1, role: codec.2,
                bytes: bytes, gzipBytes: bytes / 3, sizeRatio: codec.3, gzipRatio: codec.3 / 2.2,
                encode: codec.4 ? figures(Double(metrics) * 40 * slow, items: metrics, bytes: bytes, allocations: Double(metrics) * 2, ratio: slow) : nil,
                decode: codec.5 ? figures(Double(metrics) * 60 * slow, items: metrics, bytes: bytes, allocations: 8.5, ratio: slow) : nil,
                notes: codec.2 == .gateway ? ["gateway note, with \"quotes\" & <angles>"] : [], skipped: nil))
        }
        results.append(CaseResult(message: .response, metrics: metrics, items: 1, codec: "protobuf", title: "protobuf binary (swift-protobuf)",
                                  role: .codec, bytes: 3, gzipBytes: 23, sizeRatio: 1, gzipRatio: 1,
                                  encode: figures(80, items: 1, bytes: 3, allocations: nil, ratio: 1),
                                  decode: figures(50, items: 1, bytes: 3, allocations: nil, ratio: 1), notes: [], skipped: nil))
        results.append(CaseResult(message: .response, metrics: metrics, items: 1, codec: "json-foundation", title: "plain JSON (Foundation Codable)",
                                  role: .codec, bytes: nil, gzipBytes: nil, sizeRatio: nil, gzipRatio: nil, encode: nil, decode: nil,
                                  notes: [], skipped: "a reason, with a comma"))
    }
    var report = BenchReport(
        started: Date(timeIntervalSince1970: 1_790_000_000), command: "outliers bench --format json",
        machine: MachineInfo(cores: 2, cpuModel: "Test CPU @ 1.00GHz", memoryBytes: 1 << 34, operatingSystem: "Test OS",
                             kernel: "Linux 6.1", loadAverage: [0.5, 0.25, 0.125]),
        build: "release", swift: "6.3",
        method: MethodInfo(minimumRoundSeconds: 0.02, rounds: 10, quick: false, allocations: "counted", allocationsCounted: true),
        data: DataInfo(source: "demo", file: nil, timestamps: .same, seed: 2020, sizes: [10, 1000]),
        results: results, summary: nil)
    Benchmark.addRatios(&report.results)
    report.summary = Benchmark.summary(report.results)
    return report
}

// MARK: JSON

@Test func jsonReportFollowsTheSchema() throws {
    let report = syntheticReport()
    let text = ReportFormat.json.render(report)
    let root = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
    #expect(Set(root.keys) == ["schema", "started", "command", "build", "machine", "method", "data", "results", "notes", "summary"])
    #expect(root["schema"] as? String == "outliers-bench/1")
    #expect((root["started"] as? String)?.hasSuffix("Z") == true)
    let build = try #require(root["build"] as? [String: Any])
    #expect(build["mode"] as? String == "release")
    let machine = try #require(root["machine"] as? [String: Any])
    #expect(machine["cores"] as? Int == 2 && machine["cpu"] as? String == "Test CPU @ 1.00GHz")
    #expect((machine["load_average"] as? [Double])?.count == 3)
    let method = try #require(root["method"] as? [String: Any])
    for key in ["min_round_seconds", "rounds", "quick", "statistic", "warmup", "allocations", "allocations_counted"] {
        #expect(method[key] != nil, "method.\(key)")
    }
    let data = try #require(root["data"] as? [String: Any])
    #expect(data["sizes"] as? [Int] == [10, 1000] && data["timestamps"] as? String == "same" && data["file"] is NSNull)

    let results = try #require(root["results"] as? [[String: Any]])
    #expect(results.count == report.results.count)
    let rowKeys: Set<String> = ["message", "metrics", "items", "codec", "title", "kind", "bytes", "gzip_bytes", "size_ratio",
                                "gzip_ratio", "encode", "decode", "notes", "skipped"]
    let operationKeys: Set<String> = ["median_ns", "p10_ns", "p90_ns", "min_ns", "max_ns", "samples_ns", "iterations_per_round",
                                      "rounds", "ns_per_item", "mb_per_s", "allocations", "ratio_to_protobuf"]
    for row in results {
        #expect(Set(row.keys) == rowKeys)
        #expect(["request", "response"].contains(row["message"] as? String ?? ""))
        #expect(["codec", "gateway"].contains(row["kind"] as? String ?? ""))
        #expect(row["metrics"] is Int && row["codec"] is String && row["notes"] is [String])
        let skipped = row["skipped"] is String
        #expect(skipped ? row["bytes"] is NSNull : row["bytes"] is Int)
        for key in ["encode", "decode"] {
            if row[key] is NSNull { continue }
            let operation = try #require(row[key] as? [String: Any], "\(key) is an object or null")
            #expect(Set(operation.keys) == operationKeys)
            #expect(operation["median_ns"] is Double && operation["iterations_per_round"] is Int)
            #expect((operation["samples_ns"] as? [Double])?.count == operation["rounds"] as? Int)
            #expect(operation["allocations"] is Double || operation["allocations"] is NSNull)
        }
    }
    let summary = try #require(root["summary"] as? [String: Any])
    #expect(summary["against"] as? String == "json-foundation" && summary["metrics"] as? Int == 1000)
    #expect(abs((summary["encode_speedup"] as? Double ?? 0) - 7.9) < 1e-9)   // 1 + 3 × 2.3
    #expect((summary["line"] as? String)?.contains("article: about 7.5× faster, about 4× smaller") == true)
}

@Test func jsonOfAQuickRunParses() throws {
    let report = try Benchmark.run(.quick(sizes: [4]))
    let root = try #require(try JSONSerialization.jsonObject(with: Data(ReportFormat.json.render(report).utf8)) as? [String: Any])
    #expect((root["results"] as? [Any])?.count == report.results.count)
    #expect(root["summary"] is [String: Any])
}

// MARK: CSV

/// RFC 4180 fields of one CSV text.
func parseCSV(_ text: String) -> [[String]] {
    var rows: [[String]] = []
    var row: [String] = []
    var field = ""
    var quoted = false
    var characters = Array(text)[...]
    while let character = characters.popFirst() {
        if quoted {
            if character == "\"" {
                if characters.first == "\"" { field.append("\""); characters.removeFirst() } else { quoted = false }
            } else {
                field.append(character)
            }
        } else if character == "\"" {
            quoted = true
        } else if character == "," {
            row.append(field)
            field = ""
        } else if character == "\n" {
            row.append(field)
            rows.append(row)
            row = []
            field = ""
        } else {
            field.append(character)
        }
    }
    if !field.isEmpty || !row.isEmpty { row.append(field); rows.append(row) }
    return rows
}

@Test func csvHasAHeaderAndOneRowPerResult() throws {
    let report = syntheticReport()
    let rows = parseCSV(ReportFormat.csv.render(report))
    #expect(rows.count == report.results.count + 1)
    let header = try #require(rows.first)
    #expect(header == CSVFormat.header)
    #expect(header.prefix(4) == ["message", "metrics", "items", "codec"])
    #expect(header.contains("encode_median_ns") && header.contains("decode_allocations") && header.last == "skipped")
    for row in rows.dropFirst() { #expect(row.count == header.count) }
    let column = Dictionary(uniqueKeysWithValues: header.enumerated().map { ($1, $0) })
    let gateway = try #require(rows.dropFirst().first { $0[column["codec"]!] == "gateway" })
    #expect(gateway[column["encode_median_ns"]!] == "" && Double(gateway[column["decode_median_ns"]!]) != nil)
    let skipped = try #require(rows.dropFirst().first { !$0[column["skipped"]!].isEmpty })
    #expect(skipped[column["skipped"]!] == "a reason, with a comma", "\(skipped)")
    #expect(skipped[column["bytes"]!] == "")
    let protobuf = try #require(rows.first { $0[column["codec"]!] == "protobuf" && $0[column["metrics"]!] == "1000" })
    #expect(protobuf[column["bytes"]!] == "24000" && protobuf[column["size_ratio"]!] == "1")
}

// MARK: Markdown and table

@Test func markdownTablesAreWellFormed() {
    let text = ReportFormat.markdown.render(syntheticReport())
    let tableLines = text.split(separator: "\n").filter { $0.hasPrefix("|") }
    #expect(tableLines.count == 4 * 2 + 5 * 2 + 2 * 2)   // header + rule per block, then the rows
    let pipes = Set(tableLines.map { line in line.replacingOccurrences(of: "\\|", with: "").filter { $0 == "|" }.count })
    #expect(pipes == [15])   // 14 columns
    #expect(text.contains("**request, 1,000 metrics**"))
    #expect(text.contains("**Summary:** protobuf 7.9× faster to encode"))
}

@Test func wideTableIsAlignedAndEndsWithTheSummary() {
    let text = ReportFormat.wide.render(syntheticReport())
    let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    #expect(lines.first == "outliers bench: JSON against protobuf, size and speed")
    #expect(lines.contains { $0.hasPrefix("machine:") && $0.contains("2 cores, Test CPU @ 1.00GHz") })
    #expect(lines.contains { $0.hasPrefix("build:") && $0.contains("release") })
    let summary = lines.last { !$0.isEmpty }
    #expect(summary?.hasPrefix("summary: protobuf 7.9× faster to encode, 7.9× to decode, 3.0× smaller than JSON (Foundation JSONEncoder/JSONDecoder") == true)
    #expect(summary?.hasSuffix("(article: about 7.5× faster, about 4× smaller)") == true)
    // Every data row has its "bytes" column ending at the same place as the header's.
    let header = lines.first { $0.hasPrefix("codec ") }!
    let bytesEnd = header.range(of: "bytes")!.upperBound.utf16Offset(in: header)
    let rows = lines.filter { ["protobuf binary", "proto3 JSON", "plain JSON", "gateway:"].contains(where: $0.hasPrefix) }
    #expect(rows.count == 14)
    for row in rows {
        let prefix = String(row.prefix(bytesEnd))
        #expect(prefix.last?.isNumber == true || prefix.last == "—", "\(row)")
        #expect(row.dropFirst(bytesEnd).first == " ")
    }
    #expect(text.contains("· request, 10 metrics") && text.contains("· response to 1,000 metrics (1 index)"))
    #expect(text.contains("skipped, a reason, with a comma"))
}

@Test func defaultTableFitsOneHundredTwentyColumnsWithEveryFigure() {
    let report = syntheticReport()
    for verbose in [false, true] {
        let text = ReportFormat.table.render(report, verbose: verbose)
        let lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        for line in lines { #expect(line.count <= 120, "\(line.count) columns: \(line)") }
        #expect(lines.first == "outliers bench: JSON against protobuf, size and speed")
        #expect(lines.contains { $0.hasPrefix("machine:") && $0.contains("2 cores, Test CPU @ 1.00GHz") })
        #expect(lines.contains { $0.hasPrefix("method:") } == verbose)
        // One row per codec and operation, each with the figures the wide table has.
        let wide = ReportFormat.wide.render(report)
        for result in report.results {
            for operation in BenchOperation.allCases {
                guard let figures = result.operation(operation) else { continue }
                let row = lines.first { $0.hasPrefix(result.title + " ") && $0.contains(" \(operation.rawValue) ")
                    && $0.contains(Number.timing(figures.timing)) }
                #expect(row != nil, "no \(operation) row for \(result.title) with \(Number.timing(figures.timing))")
                if let row {
                    #expect(row.hasSuffix(Number.ratio(figures.ratioToProtobuf)))
                    #expect(row.contains(Number.significant(figures.megabytesPerSecond)))
                    #expect(wide.contains(Number.timing(figures.timing)))
                }
            }
            if result.role == .codec, let bytes = result.bytes {
                #expect(lines.contains { $0.hasPrefix(result.title + " ") && $0.contains(Number.bytes(bytes))
                    && $0.hasSuffix(Number.ratio(result.sizeRatio)) }, "no size row for \(result.title)")
            }
        }
        #expect(text.contains("· request, 10 metrics") && text.contains("· response to 1,000 metrics (1 index)"))
        // The summary, wrapped, keeps every word.
        let summary = text.components(separatedBy: "summary: ").last!.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(summary == report.summary!.line.split(whereSeparator: \.isWhitespace).joined(separator: " "))
    }
}

@Test func wrappingBreaksAtSpacesWithinTheWidth() {
    let words = (1...60).map { "word\($0)" }.joined(separator: " ")
    let wrapped = CompactTableFormat.wrap(words, firstPrefix: "label: ", prefix: "       ")
    let lines = wrapped.split(separator: "\n").map(String.init)
    #expect(lines.count > 1)
    #expect(lines.allSatisfy { $0.count <= CompactTableFormat.width })
    #expect(lines[0].hasPrefix("label: word1 ") && lines.dropFirst().allSatisfy { $0.hasPrefix("       word") })
    #expect(lines.map { $0.dropFirst(7) }.joined(separator: " ") == words)
}

// MARK: SVG

@Test func chartIsWellFormedStandaloneSVG() throws {
    let report = syntheticReport()
    let svg = Chart.svg(report)
    #expect(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\""))

    // Well formed: a strict XML parse, and count what it drew.
    final class Collector: NSObject, XMLParserDelegate {
        var elements: [String: Int] = [:]
        var root: String?
        var rootAttributes: [String: String] = [:]
        var texts: [String] = []
        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?,
                    attributes: [String: String] = [:]) {
            if root == nil { root = name; rootAttributes = attributes }
            elements[name, default: 0] += 1
            if name == "rect" && attributes["class"] == "bar" { elements["bar", default: 0] += 1 }
        }
        func parser(_ parser: XMLParser, foundCharacters string: String) { texts.append(string) }
    }
    let collector = Collector()
    let parser = XMLParser(data: Data(svg.utf8))
    parser.delegate = collector
    #expect(parser.parse(), "\(String(describing: parser.parserError))")
    #expect(collector.root == "svg")
    #expect(collector.rootAttributes["width"] != nil && collector.rootAttributes["viewBox"] != nil)
    // Size panel: 4 codecs × raw and gzip; encode: 4 codecs; decode: 5; for each of 2 sizes.
    #expect(collector.elements["bar"] == 2 * (8 + 4 + 5))
    let text = collector.texts.joined(separator: " ")
    for label in ["bytes (log scale)", "time (log scale)", "request size", "10 metrics", "1,000 metrics",
                  "protobuf binary (swift-protobuf)", "plain JSON (Foundation Codable)"] {
        #expect(text.contains(label), "\(label)")
    }
    #if canImport(FoundationXML)
    let document = try XMLDocument(data: Data(svg.utf8), options: [])
    #expect(document.rootElement()?.name == "svg")
    #endif
}

@Test func chartAxisLabels() {
    #expect(Chart.timeLabel(10) == "10 ns")
    #expect(Chart.timeLabel(1_000) == "1 µs")
    #expect(Chart.timeLabel(100_000_000) == "100 ms")
    #expect(Chart.timeLabel(1e9) == "1 s")
    #expect(Chart.byteLabel(100) == "100 B")
    #expect(Chart.byteLabel(10_000) == "10 kB")
    #expect(Chart.byteLabel(1e7) == "10 MB")
    #expect(Chart.escape("a<b & \"c\">") == "a&lt;b &amp; &quot;c&quot;&gt;")
}

@Test func numbersAreFormattedForReading() {
    #expect(Number.significant(0.1234) == "0.123")
    #expect(Number.significant(1.234) == "1.23")
    #expect(Number.significant(12.34) == "12.3")
    #expect(Number.significant(123.4) == "123")
    #expect(Number.significant(12345.6) == "12,346")
    #expect(Number.timing(TimingSummary(samples: [2_860, 2_660, 3_980])) == "2.86 µs (2.70–3.76)")   // p10 = 2660 + 0.2 × 200, p90 = 2860 + 0.8 × 1120
    #expect(Number.timing(TimingSummary(samples: [157_710_000, 122_230_000, 186_452_000])) == "158 ms (129–181)")
    #expect(Number.timing(TimingSummary(samples: [193, 191, 198])) == "193 ns (191–197)")
    #expect(Number.ratio(1) == "1.00×" && Number.ratio(12.34) == "12.3×" && Number.ratio(nil) == "—")
    #expect(Number.allocations(3) == "3" && Number.allocations(2.5) == "2.5" && Number.allocations(nil) == "n/a")
    #expect(grouped(1_234_567) == "1,234,567" && grouped(-1000) == "-1,000" && grouped(999) == "999")
}
