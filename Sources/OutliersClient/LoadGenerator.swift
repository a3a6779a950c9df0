import Foundation
import Glibc
import H2GRPC
import OutliersProto
import POSIXSupport

/// `outliers detect --calls N --concurrency C [--rate R]`: N Detect calls, at most C in
/// flight at a time, started at most R a second; every call's status is counted and
/// its latency kept for the summary.
public struct LoadGenerator: Sendable {
    public var calls: Int
    public var concurrency: Int
    /// Calls started per second at most; nil: each as soon as a slot is free.
    public var rate: Double?
    public var timeoutNanoseconds: Int64
    /// Sent with every call (an authorization token, say).
    public var metadata: [(name: String, value: String)]

    public init(calls: Int, concurrency: Int = 1, rate: Double? = nil, timeoutNanoseconds: Int64,
                metadata: [(name: String, value: String)] = []) {
        self.metadata = metadata
        self.calls = calls
        self.concurrency = concurrency
        self.rate = rate
        self.timeoutNanoseconds = timeoutNanoseconds
    }

    /// Makes the calls with `request` (a serialized `OutliersRequest`) and waits for all.
    public func run(_ channel: GRPCChannel, request: [UInt8]) -> LoadSummary {
        let tally = Tally()
        let slots = DispatchSemaphore(value: concurrency)
        let all = DispatchGroup()
        let started = MonotonicClock.now()
        for number in 0..<calls {
            if let rate {
                let due = started + UInt64(Double(number) / rate * 1e9)
                let now = MonotonicClock.now()
                // Pacing, not waiting for a state change: a plain sleep until the call is due.
                if due > now { Thread.sleep(forTimeInterval: Double(min(due - now, 1_000_000_000)) / 1e9) }
            }
            slots.wait()
            all.enter()
            let callStarted = MonotonicClock.now()
            channel.unary(path: MethodPath.detect, request: request, metadata: metadata,
                          timeout: .nanoseconds(timeoutNanoseconds)) { result in
                let code: String
                switch result {
                case .success: code = "OK"
                case .failure(let error): code = error.code.description
                }
                tally.add(code, latency: MonotonicClock.now() - callStarted)
                slots.signal()
                all.leave()
            }
        }
        all.wait()
        let (codes, latencies) = tally.snapshot()
        return LoadSummary(calls: calls, concurrency: concurrency, codes: codes,
                           seconds: Double(MonotonicClock.now() - started) / 1e9, latencies: latencies)
    }
}

/// What a load run did: the status of every call, how long the run took, and the
/// calls' latency percentiles.
public struct LoadSummary: Sendable, Equatable {
    public let calls: Int
    public let concurrency: Int
    /// Status code name ("OK", "UNAVAILABLE", …) → how many calls ended with it.
    public let codes: [String: Int]
    public let seconds: Double
    /// Every call's latency in nanoseconds, ascending.
    public let sortedLatencies: [UInt64]

    public init(calls: Int, concurrency: Int, codes: [String: Int], seconds: Double, latencies: [UInt64]) {
        self.calls = calls
        self.concurrency = concurrency
        self.codes = codes
        self.seconds = seconds
        sortedLatencies = latencies.sorted()
    }

    public var callsPerSecond: Double { Double(calls) / seconds }

    /// Whether every call ended OK.
    public var allSucceeded: Bool { !codes.keys.contains { $0 != "OK" } }

    /// The latency at `p` (0…1) in milliseconds; 0 with no calls.
    ///
    /// The nearest rank above: the value at index ⌊p·n⌋ (the last one for p = 1), so
    /// p99 of 100 calls is the slowest. A load check's tail wants a latency some call
    /// really had, not the linear interpolation of `outliers bench`'s timing rounds.
    public func latencyMilliseconds(atPercentile p: Double) -> Double {
        guard !sortedLatencies.isEmpty else { return 0 }
        let index = min(sortedLatencies.count - 1, Int(p * Double(sortedLatencies.count)))
        return Double(sortedLatencies[index]) / 1e6
    }

    private var sortedCodes: [(key: String, value: Int)] { codes.sorted { $0.key < $1.key } }

    /// One line: `calls: 100 concurrency: 8 OK=100 seconds: 0.052 calls/s: 1923 p50: 0.310ms p99: 1.204ms`.
    public var text: String {
        let codeText = sortedCodes.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "calls: \(calls) concurrency: \(concurrency) \(codeText) seconds: \(String(format: "%.3f", seconds)) "
            + "calls/s: \(String(format: "%.0f", callsPerSecond)) p50: \(String(format: "%.3f", latencyMilliseconds(atPercentile: 0.5)))ms "
            + "p99: \(String(format: "%.3f", latencyMilliseconds(atPercentile: 0.99)))ms"
    }

    /// One JSON object: calls, concurrency, codes, seconds, calls_per_second, p50_ms, p99_ms.
    public var json: String {
        let codeJSON = sortedCodes.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
        return "{\"calls\":\(calls),\"concurrency\":\(concurrency),\"codes\":{\(codeJSON)},\"seconds\":\(seconds),"
            + "\"calls_per_second\":\(callsPerSecond),\"p50_ms\":\(latencyMilliseconds(atPercentile: 0.5)),"
            + "\"p99_ms\":\(latencyMilliseconds(atPercentile: 0.99))}"
    }
}

/// Counts call outcomes from the channel's loop.
/// `@unchecked Sendable`: every field is read and written under `lock`.
private final class Tally: @unchecked Sendable {
    private let lock = NSLock()
    private var codes: [String: Int] = [:]
    private var latencies: [UInt64] = []

    func add(_ code: String, latency: UInt64) {
        lock.lock()
        codes[code, default: 0] += 1
        latencies.append(latency)
        lock.unlock()
    }

    func snapshot() -> ([String: Int], [UInt64]) {
        lock.lock()
        defer { lock.unlock() }
        return (codes, latencies)
    }
}
