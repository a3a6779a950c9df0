import ArgumentParser
import Foundation
import SerializationBench

extension BenchConfiguration.Timestamps: ExpressibleByArgument {}
extension ReportFormat: ExpressibleByArgument {}

/// `outliers bench`: JSON against protobuf, size and speed. Flags only; the work is
/// in SerializationBench. A program of its own, `outliers-bench`, which `outliers bench`
/// runs in its place: the server's commands do not link the benchmark (nor its
/// allocation counter, which rewrites relocation slots of every loaded object).
@main
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        // What the user typed: `outliers bench` runs this program with its arguments.
        commandName: "outliers bench",
        abstract: "Measure JSON against protobuf: encoded size and encode/decode speed of OutliersRequest and OutliersResponse.",
        discussion: """
            Codecs: protobuf binary (swift-protobuf); proto3 JSON through the gateway's codec \
            (OutliersJSON: a direct writer, jansson to read); proto3 JSON through swift-protobuf; \
            plain JSON with Foundation's JSONEncoder/JSONDecoder on Codable structs (the article's \
            Go encoding/json: times as Date with the .iso8601 strategy, "2020-05-22T14:13:11Z"); \
            and the gateway's whole conversions (JSON body → protobuf bytes for requests, protobuf \
            bytes → JSON body for responses). OutliersJSON has no response decoder, so that one \
            decode is not timed.

            Every codec's output is decoded back and compared with the input (times, names, value \
            bit patterns) before anything is timed; one that does not round-trip fails the run \
            (exit 1).

            Per operation: one call, calibration to rounds of at least --min-time, one discarded \
            round, then --rounds timed rounds; the report gives the median per message with p10–p90 \
            over the rounds, ns per metric, MB/s of encoded bytes, heap allocations per operation \
            (malloc & co. counted by interposing them at run time; "n/a" where that is not possible), \
            gzip (zlib level 6) size, and ratios to protobuf binary. It ends with a summary line \
            against the article's claim. A debug build is refused unless --allow-debug (or --quick).

            --format json writes schema "outliers-bench/1" (see docs/BENCHMARKS.md).
            """
    )

    @Option(help: ArgumentHelp("Request sizes in metrics, comma-separated (default 10,1000,100000; with --quick 10,100).",
                               valueName: "N,N,…"))
    var sizes: String?

    @Option(help: "Timestamps of the demo data: same (one repeated time, as the article's client sends) or distinct.")
    var timestamps: BenchConfiguration.Timestamps = .same

    @Option(help: ArgumentHelp("Use this JSON body instead of the demo data (any body POST /detect accepts).", valueName: "FILE"))
    var input: String?

    @Option(help: "Seed of the demo data generator (default 2020, the one `outliers detect --demo` uses).")
    var seed: UInt64?

    @Option(name: .customLong("min-time"), help: ArgumentHelp("Minimum duration of one timed round (default 0.02).", valueName: "SECONDS"))
    var minTime: Double?

    @Option(help: "Timed rounds per operation, at least 10 (default 10; --quick 3).")
    var rounds: Int?

    @Flag(help: "Time the detection rules instead (ZSCORE, MAD, IQR and a full sort for scale) on --sizes values (default 1000,1000000), as a Markdown table.")
    var detection = false

    @Flag(help: "A short run for tests: sizes 10,100, 3 rounds of ≥ 1 ms; allowed in a debug build. Timings are not meaningful.")
    var quick = false

    @Flag(help: "Time a debug build anyway (its timings say little about a release build).")
    var allowDebug = false

    @Flag(inversion: .prefixedNo, help: "Count heap allocations per operation.")
    var countAllocations = true

    @Option(help: "Output format: table (fits 120 columns), wide (every figure of a codec on one line), json, csv or markdown.")
    var format: ReportFormat = .table

    @Flag(help: "Add to the table how it is measured: rounds, the allocation count, the columns.")
    var verbose = false

    @Option(help: ArgumentHelp("Write the report to FILE instead of standard output.", valueName: "FILE"))
    var output: String?

    @Option(help: ArgumentHelp("Also write a bar chart (SVG) of sizes and times to FILE.", valueName: "FILE.svg"))
    var chart: String?

    private var parsedSizes: [Int]? {
        sizes.map { $0.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) ?? -1 } }
    }

    func validate() throws {
        if let parsedSizes {
            guard !parsedSizes.isEmpty, parsedSizes.allSatisfy({ (1...1_000_000).contains($0) }) else {
                throw ValidationError("--sizes must be a comma-separated list of metric counts 1...1000000, e.g. 10,1000,100000")
            }
            if input != nil { throw ValidationError("give --sizes or --input, not both") }
        }
        if detection && (input != nil || chart != nil || format != .table) {
            throw ValidationError("--detection times the rules on demo values: --input, --chart and --format do not apply")
        }
        if input != nil && timestamps != .same { throw ValidationError("--timestamps applies to the demo data, not to --input") }
        if input != nil && seed != nil { throw ValidationError("--seed applies to the demo data, not to --input") }
        if let minTime, !(minTime > 0 && minTime <= 60) { throw ValidationError("--min-time must be 0 < SECONDS <= 60") }
        if let rounds {
            guard rounds <= 10_000 else { throw ValidationError("--rounds must be at most 10000") }
            guard quick || rounds >= 10 else { throw ValidationError("--rounds must be at least 10 (p10 and p90 need them); --quick allows fewer") }
            guard rounds >= 1 else { throw ValidationError("--rounds must be at least 1") }
        }
        if BuildInfo.isDebug && !allowDebug && !quick {
            throw ValidationError("this is a debug build, whose timings mislead: build with `swift build -c release`, or pass --allow-debug")
        }
    }

    func run() throws {
        var configuration = quick ? BenchConfiguration.quick(sizes: parsedSizes) : BenchConfiguration()
        if let parsedSizes { configuration.sizes = parsedSizes }
        configuration.timestamps = timestamps
        configuration.seed = seed
        if let minTime { configuration.minimumRoundNanoseconds = minTime * 1e9 }
        if let rounds { configuration.rounds = rounds }
        configuration.countAllocations = countAllocations
        configuration.command = (["outliers", "bench"] + CommandLine.arguments.dropFirst()).joined(separator: " ")
        // Progress on one self-erasing line, when stderr is a terminal.
        let interactive = isatty(STDERR_FILENO) != 0
        func status(_ text: String) {
            if interactive { FileHandle.standardError.write(Data("\r\u{1B}[K\(text)".utf8)) }
        }
        if detection {
            let sizes = parsedSizes ?? (quick ? [100, 1000] : [1000, 1_000_000])
            do {
                let rows = try DetectionTiming.run(sizes: sizes, configuration: configuration, progress: status)
                status("")
                let text = DetectionTiming.markdown(rows, command: configuration.command ?? "outliers bench --detection")
                if let output {
                    try Data(text.utf8).write(to: URL(fileURLWithPath: output))
                } else {
                    FileHandle.standardOutput.write(Data(text.utf8))
                }
            } catch {
                status("")
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode.failure
            }
            return
        }
        let report: BenchReport
        do {
            if let input { configuration.input = try BenchConfiguration.Input.load(path: input) }
            report = try Benchmark.run(configuration, progress: status)
            status("")
        } catch {
            status("")
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let text = format.render(report, verbose: verbose)
        do {
            if let output {
                try Data(text.utf8).write(to: URL(fileURLWithPath: output))
            } else {
                FileHandle.standardOutput.write(Data(text.utf8))
            }
            if let chart {
                try Data(Chart.svg(report).utf8).write(to: URL(fileURLWithPath: chart))
            }
        } catch {
            FileHandle.standardError.write(Data("error: cannot write: \(error.localizedDescription)\n".utf8))
            throw ExitCode.failure
        }
    }
}
