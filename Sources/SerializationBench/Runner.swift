import Detection
import Foundation
import OutliersJSON
import OutliersProto
import OutliersClient
import OutliersService
import POSIXSupport
import SwiftProtobuf

/// What to measure and how.
public struct BenchConfiguration: Sendable {
    public enum Timestamps: String, Sendable, CaseIterable {
        /// One repeated time, as the article's Go client sends (it discards `t.Add`'s result).
        case same
        /// One second apart.
        case distinct
    }

    /// A request read from a file (any body POST /detect accepts).
    public struct Input: Sendable {
        public var name: String
        public var request: Pb_OutliersRequest

        public init(name: String, request: Pb_OutliersRequest) {
            self.name = name
            self.request = request
        }

        /// Reads `path` and decodes it with `JSONCodec.decodeRequest`, as /detect does.
        public static func load(path: String) throws(BenchError) -> Input {
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw .input("cannot read \(path): \(error.localizedDescription)")
            }
            do {
                return Input(name: path, request: try JSONCodec.decodeRequest(Array(data)))
            } catch {
                throw .input("\(path): \(error)")
            }
        }
    }

    public static let defaultSizes = [10, 1000, 100_000]
    public static let quickSizes = [10, 100]

    /// Request sizes (metrics) of the demo data; ignored with `input`.
    public var sizes: [Int]
    public var timestamps: Timestamps
    /// The demo generator's seed (nil: `DemoData.defaultSeed`, 2020).
    public var seed: UInt64?
    public var input: Input?
    /// Each timed round lasts at least this long (iterations are calibrated to it).
    public var minimumRoundNanoseconds: Double
    public var rounds: Int
    public var countAllocations: Bool
    /// A `--quick` run: small, short, for tests (its timings mean little).
    public var quick: Bool
    /// The command line, as the report repeats it.
    public var command: String?

    public init(sizes: [Int] = BenchConfiguration.defaultSizes, timestamps: Timestamps = .same, seed: UInt64? = nil,
                input: Input? = nil, minimumRoundNanoseconds: Double = 20_000_000, rounds: Int = 10,
                countAllocations: Bool = true, quick: Bool = false, command: String? = nil) {
        self.sizes = sizes
        self.timestamps = timestamps
        self.seed = seed
        self.input = input
        self.minimumRoundNanoseconds = minimumRoundNanoseconds
        self.rounds = rounds
        self.countAllocations = countAllocations
        self.quick = quick
        self.command = command
    }

    /// `--quick`: sizes 10 and 100, 3 rounds of at least 1 ms.
    public static func quick(sizes: [Int]? = nil) -> BenchConfiguration {
        BenchConfiguration(sizes: sizes ?? quickSizes, minimumRoundNanoseconds: 1_000_000, rounds: 3, quick: true)
    }
}

public enum BenchError: Error, Equatable, CustomStringConvertible {
    /// A codec's output, decoded back, differs from its input.
    case roundTrip(codec: String, title: String, message: MessageKind, items: Int, detail: String)
    /// A codec threw (on its own output, or while being timed).
    case codecFailed(codec: String, message: MessageKind, items: Int, detail: String)
    case input(String)
    case configuration(String)

    public var description: String {
        switch self {
        case let .roundTrip(codec, title, message, items, detail):
            return "round-trip check failed: \(title) [\(codec)] on a \(message) of \(items) \(message == .request ? "metrics" : "indices"): \(detail)"
        case let .codecFailed(codec, message, items, detail):
            return "codec \(codec) failed on a \(message) of \(items) \(message == .request ? "metrics" : "indices"): \(detail)"
        case let .input(text): return text
        case let .configuration(text): return text
        }
    }
}

/// One operation's figures.
public struct OperationResult: Sendable, Equatable {
    /// Nanoseconds per message over the rounds.
    public var timing: TimingSummary
    public var iterationsPerRound: Int
    /// Median nanoseconds per metric (request) or index (response); nil when there are none.
    public var nanosecondsPerItem: Double?
    /// Encoded bytes of this codec processed per second (1 MB = 10^6 bytes), at the median.
    public var megabytesPerSecond: Double
    /// Heap allocations per operation; nil when they cannot be counted.
    public var allocations: Double?
    /// Median time over protobuf binary's for the same message and operation (>1: slower).
    public var ratioToProtobuf: Double?
}

/// One codec on one message.
public struct CaseResult: Sendable, Equatable {
    public var message: MessageKind
    /// The request's metric count (also on response rows: the request they answer).
    public var metrics: Int
    /// Metrics in a request, indices in a response.
    public var items: Int
    public var codec: String
    public var title: String
    public var role: CodecRole
    /// Encoded size; nil when the codec was skipped.
    public var bytes: Int?
    public var gzipBytes: Int?
    /// Over protobuf binary's size.
    public var sizeRatio: Double?
    public var gzipRatio: Double?
    public var encode: OperationResult?
    public var decode: OperationResult?
    public var notes: [String]
    /// Why the codec could not carry this input, when it could not.
    public var skipped: String?

    public func operation(_ operation: BenchOperation) -> OperationResult? {
        operation == .encode ? encode : decode
    }
}

/// The one-line answer to the article's claim.
public struct BenchSummary: Sendable, Equatable {
    public var against: String
    public var againstTitle: String
    public var metrics: Int
    /// JSON encode time over protobuf's.
    public var encodeSpeedup: Double
    public var decodeSpeedup: Double
    /// JSON bytes over protobuf's.
    public var sizeRatio: Double
    public var gzipSizeRatio: Double?
    public static let articleSpeedup = 7.5
    public static let articleSizeRatio = 4.0

    public var line: String {
        func times(_ value: Double) -> String { String(format: value >= 10 ? "%.0f" : "%.1f", value) + "×" }
        func faster(_ value: Double) -> String { value >= 1 ? "\(times(value)) faster" : "\(times(1 / value)) slower" }
        var text = "protobuf \(faster(encodeSpeedup)) to encode, "
        text += decodeSpeedup >= 1 ? "\(times(decodeSpeedup)) to decode, " : "\(times(1 / decodeSpeedup)) slower to decode, "
        text += sizeRatio >= 1 ? "\(times(sizeRatio)) smaller" : "\(times(1 / sizeRatio)) larger"
        text += " than JSON (\(against == "json-foundation" ? "Foundation JSONEncoder/JSONDecoder on Codable structs, the equivalent of the article's Go encoding/json" : againstTitle); "
        text += "request of \(grouped(metrics)) metrics, medians"
        if let gzipSizeRatio { text += "; gzipped: \(times(gzipSizeRatio)) smaller" }
        text += ") (article: about 7.5× faster, about 4× smaller)"
        return text
    }
}

/// How the run measured, as the report states it.
public struct MethodInfo: Sendable, Equatable {
    public var minimumRoundSeconds: Double
    public var rounds: Int
    public var quick: Bool
    /// "counted …" or "n/a: …".
    public var allocations: String
    public var allocationsCounted: Bool

    public var description: String {
        "warm-up (one call, the calibration runs, one discarded round), iterations per round calibrated so a round takes "
            + "≥ \(formatSeconds(minimumRoundSeconds)), \(rounds) timed rounds; time per message = round time / iterations, "
            + "median and p10–p90 over the rounds; MB/s = encoded bytes / median time"
    }
}

/// What the run measured.
public struct DataInfo: Sendable, Equatable {
    /// "demo" or "file".
    public var source: String
    public var file: String?
    public var timestamps: BenchConfiguration.Timestamps?
    public var seed: UInt64?
    public var sizes: [Int]

    public var description: String {
        if let file { return "\(file) (\(sizes.map(grouped).joined(separator: ", ")) metrics), decoded with JSONCodec.decodeRequest; responses are the detector's answers" }
        let times = timestamps == .distinct ? "distinct timestamps one second apart" : "one repeated timestamp (as the article's client sends)"
        return "the article's demo metrics (\"CPU\", uniform [0, 40), outliers planted at 7, 113, 835; seed \(seed ?? 0)), "
            + "\(times); responses are the detector's answers (the planted indices that fit)"
    }
}

public struct BenchReport: Sendable, Equatable {
    public var started: Date
    public var command: String?
    public var machine: MachineInfo
    public var build: String
    public var swift: String
    public var method: MethodInfo
    public var data: DataInfo
    public var results: [CaseResult]
    public var summary: BenchSummary?
    /// Notes about the data (a request the detector rejects).
    public var runNotes: [String] = []

    /// Every note of the run and of every row, once, in order.
    public var notes: [String] {
        var seen = Set<String>()
        var notes: [String] = runNotes.filter { seen.insert($0).inserted }
        for result in results {
            for note in result.notes + (result.skipped.map { ["\(result.title), \(result.message) of \(grouped(result.metrics)) metrics: skipped, \($0)"] } ?? [])
            where seen.insert(note).inserted {
                notes.append(note)
            }
        }
        return notes
    }
}

/// `outliers bench`: runs the codecs over the data and reports.
public enum Benchmark {
    /// Checks every codec's round trip on every message first, then times them.
    /// Throws `BenchError.roundTrip` if any codec loses anything.
    public static func run(_ configuration: BenchConfiguration,
                           requestCodecs: [AnyBenchCodec<Pb_OutliersRequest>] = Codecs.request,
                           responseCodecs: [AnyBenchCodec<Pb_OutliersResponse>] = Codecs.response,
                           progress: (String) -> Void = { _ in }) throws(BenchError) -> BenchReport {
        guard configuration.rounds >= 1 else { throw .configuration("rounds must be at least 1") }
        guard configuration.minimumRoundNanoseconds > 0 else { throw .configuration("the minimum round time must be positive") }
        let started = Date()
        let machine = MachineInfo.current()

        // The messages.
        var requests: [Pb_OutliersRequest] = []
        if let input = configuration.input {
            requests = [input.request]
        } else {
            guard !configuration.sizes.isEmpty, configuration.sizes.allSatisfy({ $0 >= 0 }) else {
                throw .configuration("sizes must be a non-empty list of metric counts ≥ 0")
            }
            let distinct = configuration.timestamps == .distinct
            let seed = configuration.seed ?? DemoData.defaultSeed
            requests = configuration.sizes.map { DemoRequest.make(count: $0, seed: seed, distinctTimestamps: distinct) }
        }

        // Check every round trip before timing anything.
        struct Pending {
            var result: CaseResult
            var prepared: PreparedCase?
        }
        var pending: [Pending] = []
        var detectorNotes: [String] = []
        for request in requests {
            let response = detect(request, notes: &detectorNotes)
            progress("checking round trips: request of \(grouped(request.metrics.count)) metrics")
            pending += try prepare(request, metrics: request.metrics.count, codecs: requestCodecs).map(Pending.init)
            pending += try prepare(response, metrics: request.metrics.count, codecs: responseCodecs).map(Pending.init)
        }

        let allocationsAvailable = configuration.countAllocations && AllocationCounter.isAvailable
        for index in pending.indices {
            guard let prepared = pending[index].prepared else { continue }
            let row = pending[index].result
            for (operation, body) in prepared.operations {
                progress("timing \(row.message) of \(grouped(row.metrics)) metrics: \(row.codec) \(operation)")
                let result: OperationResult
                do {
                    result = try measure(body, configuration: configuration, countAllocations: allocationsAvailable,
                                         items: row.items, bytes: prepared.wire.count)
                } catch {
                    throw .codecFailed(codec: row.codec, message: row.message, items: row.items, detail: "\(operation): \(error)")
                }
                switch operation {
                case .encode: pending[index].result.encode = result
                case .decode: pending[index].result.decode = result
                }
            }
        }

        var results = pending.map(\.result)
        addRatios(&results)

        let allocationText: String
        if !configuration.countAllocations {
            allocationText = "n/a: not counted (--no-count-allocations)"
        } else if allocationsAvailable {
            allocationText = "counted: calls of malloc, calloc, realloc, posix_memalign, aligned_alloc and memalign made by the timing thread, per operation (mean over up to 64 operations, after timing), by interposing counting wrappers in every loaded object's relocation slots"
        } else {
            allocationText = "n/a: cannot interpose the allocator here (needs Linux on x86_64 or arm64 with dynamically linked libraries; glibc's mallinfo2() reports bytes, not calls)"
        }
        let method = MethodInfo(minimumRoundSeconds: configuration.minimumRoundNanoseconds / 1e9, rounds: configuration.rounds,
                                quick: configuration.quick, allocations: allocationText, allocationsCounted: allocationsAvailable)
        let data = configuration.input.map {
            DataInfo(source: "file", file: $0.name, timestamps: nil, seed: nil, sizes: [$0.request.metrics.count])
        } ?? DataInfo(source: "demo", file: nil, timestamps: configuration.timestamps, seed: configuration.seed ?? DemoData.defaultSeed,
                      sizes: configuration.sizes)
        return BenchReport(started: started, command: configuration.command, machine: machine, build: BuildInfo.mode,
                           swift: BuildInfo.swiftVersion, method: method, data: data, results: results,
                           summary: summary(results), runNotes: detectorNotes)
    }

    /// The detector's answer to `request`, as the backend would send it.
    static func detect(_ request: Pb_OutliersRequest, notes: inout [String]) -> Pb_OutliersResponse {
        do {
            let bytes: [UInt8] = try request.serializedBytes()
            let answer = try DetectService.detect(bytes, detector: DetectService().detector)
            return try Pb_OutliersResponse(serializedBytes: answer)
        } catch {
            notes.append("The detector rejects the request of \(grouped(request.metrics.count)) metrics (\(error)); its response rows use an empty answer.")
            return Pb_OutliersResponse()
        }
    }

    private static func prepare<Message: BenchMessage>(_ message: Message, metrics: Int,
                                                       codecs: [AnyBenchCodec<Message>]) throws(BenchError) -> [(CaseResult, PreparedCase?)] {
        var rows: [(CaseResult, PreparedCase?)] = []
        for codec in codecs {
            var row = CaseResult(message: Message.kind, metrics: metrics, items: message.itemCount, codec: codec.id,
                                 title: codec.title, role: codec.role, bytes: nil, gzipBytes: nil, sizeRatio: nil,
                                 gzipRatio: nil, encode: nil, decode: nil, notes: [], skipped: nil)
            let outcome: PreparedOutcome
            do {
                outcome = try codec.makeCase(message)
            } catch let error as BenchError {
                throw error
            } catch {
                throw .codecFailed(codec: codec.id, message: Message.kind, items: message.itemCount, detail: "\(error)")
            }
            switch outcome {
            case .skipped(let reason):
                row.skipped = reason
                rows.append((row, nil))
            case .ready(let prepared):
                row.bytes = prepared.wire.count
                row.gzipBytes = prepared.gzip.count
                row.notes = prepared.notes
                rows.append((row, prepared))
            }
        }
        return rows
    }

    /// Warm-up, calibration, `rounds` timed rounds, then the allocation count.
    static func measure(_ body: () throws -> Void, configuration: BenchConfiguration, countAllocations: Bool,
                        items: Int, bytes: Int) throws -> OperationResult {
        func round(_ iterations: Int) throws -> Double {
            let start = MonotonicClock.now()
            for _ in 0..<iterations { try body() }
            return Double(MonotonicClock.now() - start)
        }
        try body()
        let (iterations, _) = try Calibration.iterations(minimumNanoseconds: configuration.minimumRoundNanoseconds,
                                                         measure: round)
        _ = try round(iterations)
        var samples: [Double] = []
        samples.reserveCapacity(configuration.rounds)
        for _ in 0..<configuration.rounds {
            samples.append(try round(iterations) / Double(iterations))
        }
        let timing = TimingSummary(samples: samples)
        var allocations: Double?
        if countAllocations {
            let count = min(iterations, 64)
            allocations = try AllocationCounter.count {
                for _ in 0..<count { try body() }
            }.map { Double($0) / Double(count) }
        }
        return OperationResult(timing: timing, iterationsPerRound: iterations,
                               nanosecondsPerItem: items > 0 ? timing.median / Double(items) : nil,
                               megabytesPerSecond: Double(bytes) / timing.median * 1e3,
                               allocations: allocations, ratioToProtobuf: nil)
    }

    /// Sizes and times over protobuf binary's, for the same message and request size.
    static func addRatios(_ results: inout [CaseResult]) {
        for index in results.indices {
            let row = results[index]
            guard let baseline = results.first(where: {
                $0.codec == Codecs.baselineID && $0.message == row.message && $0.metrics == row.metrics
            }) else { continue }
            if let bytes = row.bytes, let base = baseline.bytes, base > 0 { results[index].sizeRatio = Double(bytes) / Double(base) }
            if let gzip = row.gzipBytes, let base = baseline.gzipBytes, base > 0 { results[index].gzipRatio = Double(gzip) / Double(base) }
            for operation in BenchOperation.allCases {
                guard let mine = row.operation(operation), let theirs = baseline.operation(operation),
                      theirs.timing.median > 0 else { continue }
                let ratio = mine.timing.median / theirs.timing.median
                switch operation {
                case .encode: results[index].encode?.ratioToProtobuf = ratio
                case .decode: results[index].decode?.ratioToProtobuf = ratio
                }
            }
        }
    }

    /// Protobuf against the Go encoding/json equivalent (or the first JSON codec of
    /// `Codecs.summaryJSONIDs` that carried the input), on the request closest to the
    /// article's 1000 metrics.
    static func summary(_ results: [CaseResult]) -> BenchSummary? {
        let usable = results.filter {
            $0.message == .request && $0.encode?.ratioToProtobuf != nil && $0.decode?.ratioToProtobuf != nil && $0.sizeRatio != nil
        }
        guard let codec = Codecs.summaryJSONIDs.first(where: { id in usable.contains { $0.codec == id } }) else { return nil }
        let candidates = usable.filter { $0.codec == codec }
        guard let row = candidates.min(by: { abs(log(Double(max($0.metrics, 1)) / 1000)) < abs(log(Double(max($1.metrics, 1)) / 1000)) }),
              let encode = row.encode?.ratioToProtobuf, let decode = row.decode?.ratioToProtobuf, let size = row.sizeRatio else {
            return nil
        }
        return BenchSummary(against: row.codec, againstTitle: row.title, metrics: row.metrics, encodeSpeedup: encode,
                            decodeSpeedup: decode, sizeRatio: size, gzipSizeRatio: row.gzipRatio)
    }
}

/// 1234567 → "1,234,567".
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var output = ""
    for (position, character) in digits.enumerated() {
        if position > 0 && (digits.count - position) % 3 == 0 { output.append(",") }
        output.append(character)
    }
    return value < 0 ? "-" + output : output
}

func formatSeconds(_ seconds: Double) -> String {
    if seconds >= 1 { return String(format: "%g s", seconds) }
    if seconds >= 1e-3 { return String(format: "%g ms", seconds * 1e3) }
    return String(format: "%g µs", seconds * 1e6)
}
