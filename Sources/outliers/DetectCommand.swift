import ArgumentParser
import Foundation
import H2GRPC
import OutliersJSON
import OutliersProto
import OutliersService
import POSIXSupport
import SwiftProtobuf

/// `outliers detect`: the article's Go client, as a command.
struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Send metrics to a Detect server over gRPC and print the outliers.",
        discussion: """
            Reads a JSON body of any shape POST /detect takes ({"metrics":[…]}, an array of \
            metric objects, or an array of numbers) from FILE or stdin (-), or sends the \
            article's demo data with --demo. Prints `outliers at: [7 113 835]`, or \
            {"indices":[…]} with --json. Exits 1 with the gRPC status on error.
            """
    )

    @Option(help: "The server, host:port; a comma-separated list, or a name resolving to many addresses, is balanced over.")
    var server = "127.0.0.1:9999"

    @Option(help: "Deadline for the call, e.g. 10s, 500ms.")
    var timeout = DurationArgument(argument: "10s")!

    @Flag(help: "Send the article's demo data: 1000 CPU metrics, outliers planted at 7, 113, 835.")
    var demo = false

    @Flag(help: "Print the answer as JSON: {\"indices\":[…]}.")
    var json = false

    @Option(help: "Send the request this many times and print a summary instead of the answer (a load check).")
    var calls = 1

    @Option(help: "With --calls: how many calls in flight at once, over one connection per address.")
    var concurrency = 1

    @Option(help: "With --calls: start at most this many calls per second (default: as fast as they complete).")
    var rate: Double?

    @Argument(help: "A JSON file of metrics, or - for stdin.")
    var file: String?

    private var targets: [String] { server.split(separator: ",").map { String($0) } }

    func validate() throws {
        if demo && file != nil { throw ValidationError("give FILE or --demo, not both") }
        if !demo && file == nil { throw ValidationError("give a FILE of metrics, - for stdin, or --demo") }
        for target in targets {
            do {
                try GRPCChannel.validate(target: target)
            } catch {
                throw ValidationError("--server: \(error.message)")
            }
        }
        guard calls >= 1 else { throw ValidationError("--calls must be at least 1") }
        guard (1...100_000).contains(concurrency) else { throw ValidationError("--concurrency must be 1...100000") }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a positive number of calls per second") }
    }

    func run() throws {
        let request = try loadRequest()
        let channel: GRPCChannel
        do {
            var configuration = GRPCClientConfiguration()
            configuration.userAgent = UserAgent.outliersClient
            channel = try GRPCChannel(targets: targets, configuration: configuration)
        } catch {
            FileHandle.standardError.write(Data("error: \(error.code): \(error.message)\n".utf8))
            throw ExitCode.failure
        }
        defer { channel.close() }
        if calls > 1 {
            try runMany(channel, request: try request.serializedBytes())
            return
        }
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        channel.unary(path: MethodPath.detect, request: try request.serializedBytes(),
                      timeout: .nanoseconds(timeout.nanoseconds)) { result in
            outcome.result = result
            done.signal()
        }
        done.wait()
        switch outcome.result! {
        case .success(let response):
            let indices: [Int32]
            do {
                indices = try Pb_OutliersResponse(serializedBytes: response.message).indices
            } catch {
                FileHandle.standardError.write(Data("error: the server's answer is not an OutliersResponse: \(error)\n".utf8))
                throw ExitCode.failure
            }
            if json {
                print(String(decoding: OutliersJSON.encodeResponse(indices: indices), as: UTF8.self))
            } else {
                // The article's Go client logs the slice with %v: [7 113 835].
                print("outliers at: [\(indices.map(String.init).joined(separator: " "))]")
            }
        case .failure(let error):
            FileHandle.standardError.write(Data("error: \(error.code): \(error.message)\n".utf8))
            throw ExitCode.failure
        }
    }

    private func loadRequest() throws -> Pb_OutliersRequest {
        if demo { return DemoRequest.make() }
        let data: Data
        do {
            data = file == "-" ? FileHandle.standardInput.readDataToEndOfFile()
                : try Data(contentsOf: URL(fileURLWithPath: file!))
        } catch {
            FileHandle.standardError.write(Data("error: cannot read \(file!): \(error.localizedDescription)\n".utf8))
            throw ExitCode.failure
        }
        do {
            return try OutliersJSON.decodeRequest(Array(data))
        } catch {
            FileHandle.standardError.write(Data("error: \(file == "-" ? "stdin" : file!): \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

extension DetectCommand {
    /// `--calls N --concurrency C`: N calls, C in flight at a time; prints one
    /// summary line (JSON with --json): every call's status counted, the rate, and
    /// latency percentiles. Exits 1 when any call failed.
    private func runMany(_ channel: GRPCChannel, request: [UInt8]) throws {
        let tally = Tally()
        let slots = DispatchSemaphore(value: concurrency)
        let all = DispatchGroup()
        let started = MonotonicClock.now()
        for number in 0..<calls {
            if let rate {
                let due = started + UInt64(Double(number) / rate * 1e9)
                let now = MonotonicClock.now()
                if due > now { usleep(useconds_t(min((due - now) / 1000, 1_000_000))) }
            }
            slots.wait()
            all.enter()
            let callStarted = MonotonicClock.now()
            channel.unary(path: MethodPath.detect, request: request, timeout: .nanoseconds(timeout.nanoseconds)) { result in
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
        let seconds = Double(MonotonicClock.now() - started) / 1e9
        let (codes, latencies) = tally.snapshot()
        let sorted = latencies.sorted()
        func percentile(_ p: Double) -> Double {
            sorted.isEmpty ? 0 : Double(sorted[min(sorted.count - 1, Int(p * Double(sorted.count)))]) / 1e6
        }
        let rate = Double(calls) / seconds
        let codeList = codes.sorted { $0.key < $1.key }
        if json {
            let codeJSON = codeList.map { "\"\($0.key)\":\($0.value)" }.joined(separator: ",")
            print("{\"calls\":\(calls),\"concurrency\":\(concurrency),\"codes\":{\(codeJSON)},\"seconds\":\(seconds),"
                + "\"calls_per_second\":\(rate),\"p50_ms\":\(percentile(0.5)),\"p99_ms\":\(percentile(0.99))}")
        } else {
            let codeText = codeList.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            print("calls: \(calls) concurrency: \(concurrency) \(codeText) seconds: \(String(format: "%.3f", seconds)) "
                + "calls/s: \(String(format: "%.0f", rate)) p50: \(String(format: "%.3f", percentile(0.5)))ms "
                + "p99: \(String(format: "%.3f", percentile(0.99)))ms")
        }
        if codes.keys.contains(where: { $0 != "OK" }) { throw ExitCode.failure }
    }
}

/// Counts call outcomes from the channel's loop.
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

/// Carries the call's result from the channel's loop to the waiting main thread.
private final class Outcome: @unchecked Sendable {
    var result: Result<GRPCResponse, RPCError>?
}
