import ArgumentParser
import Foundation
import H2GRPC
import OutliersClient
import OutliersJSON
import OutliersProto

/// `outliers detect`: the article's Go client, as a command.
struct DetectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "detect",
        abstract: "Send metrics to a Detect server over gRPC and print the outliers.",
        discussion: """
            Reads a JSON body of any shape POST /detect takes ({"metrics":[…]}, an array of \
            metric objects, or an array of numbers) from FILE or stdin (-), or sends the \
            article's demo data with --demo. Prints `outliers at: [7 113 835]`, or \
            {"indices":[…]} with --json. --method, --threshold, --group-by-name and \
            --details set the request's options (over any the body has); with --details \
            the outliers are printed as a table (index, name, value, score) with each \
            series' center, spread and bounds. Exits 1 with the gRPC status on error.
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

    @Option(help: "The detection rule: zscore (the article's), mad (median absolute deviation) or iqr (Tukey's fences).")
    var method: MethodArgument?

    @Option(help: "The rule's threshold k; 0 or absent: the method's default (2 for zscore, 3.5 for mad, 1.5 for iqr).")
    var threshold: Double?

    @Flag(help: "Treat each distinct metric name as its own series.")
    var groupByName = false

    @Flag(help: "Ask for the details: each outlier's score and each series' center, spread and bounds.")
    var details = false

    @Option(help: "Send the request this many times and print a summary instead of the answer (a load check).")
    var calls = 1

    @Option(help: "With --calls: how many calls in flight at once, over one connection per address.")
    var concurrency = 1

    @Option(help: "With --calls: start at most this many calls per second (default: as fast as they complete).")
    var rate: Double?

    @Option(help: "Compress the request message (grpc-encoding): gzip, deflate or none. Compressed answers are read either way.")
    var compression = CompressionArgument.none

    @OptionGroup(title: "TLS") var tls: ClientTLSOptions

    @OptionGroup(title: "Authentication (sent as authorization: Bearer <token>)")
    var authToken: AuthTokenOptions

    @Argument(help: "A JSON file of metrics, or - for stdin.")
    var file: String?

    /// The options the flags give; only those given replace the body's.
    private var overrides: DetectOptionsOverrides {
        DetectOptionsOverrides(method: method?.method, threshold: threshold,
                               groupByName: groupByName ? true : nil, details: details ? true : nil)
    }

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
        if let threshold, !(threshold >= 0 && threshold.isFinite) {
            throw ValidationError("--threshold must be a finite number >= 0 (0 means the method's default)")
        }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be a positive number of calls per second") }
    }

    func run() throws {
        let source = demo ? DetectRequestSource.demo : DetectRequestSource(path: file!)
        let request: [UInt8]
        do {
            var message = try source.load()
            if !overrides.isEmpty { message.options = overrides.applied(to: message.options) }
            request = try message.serializedBytes()
        } catch {
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
        let channel: GRPCChannel
        do {
            var configuration = GRPCClientConfiguration()
            configuration.userAgent = UserAgent.outliersClient
            configuration.compression = compression.coding
            do {
                configuration.tls = try tls.credentials()
            } catch {
                FileHandle.standardError.write(Data("error: \(error)\n".utf8))
                throw ExitCode.failure
            }
            channel = try GRPCChannel(targets: targets, configuration: configuration)
        } catch let error as RPCError {
            FileHandle.standardError.write(Data("error: \(error.code): \(error.message)\n".utf8))
            throw ExitCode.failure
        }
        defer { channel.close() }
        let metadata = try authToken.token().map { [("authorization", "Bearer \($0)")] } ?? []
        if calls > 1 {
            let summary = LoadGenerator(calls: calls, concurrency: concurrency, rate: rate,
                                        timeoutNanoseconds: timeout.nanoseconds, metadata: metadata).run(channel, request: request)
            print(json ? summary.json : summary.text)
            if !summary.allSucceeded { throw ExitCode.failure }
            return
        }
        switch DetectCall.run(channel, request: request, metadata: metadata, timeoutNanoseconds: timeout.nanoseconds) {
        case .success(let response):
            if json {
                print(String(decoding: JSONCodec.encodeResponse(response), as: UTF8.self))
            } else if details || !response.series.isEmpty {
                print(DetectCall.detailsText(response))
            } else {
                print(DetectCall.articleText(response.indices))
            }
        case .failure(let error):
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}

/// `--method`: the request's `options.method`.
enum MethodArgument: String, ExpressibleByArgument, CaseIterable, Sendable {
    case zscore, mad, iqr

    var method: Pb_DetectOptions.Method {
        switch self {
        case .zscore: .zscore
        case .mad: .mad
        case .iqr: .iqr
        }
    }
}
