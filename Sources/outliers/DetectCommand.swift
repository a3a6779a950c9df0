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

    @Option(help: "Compress the request message (grpc-encoding): gzip, deflate or none. Compressed answers are read either way.")
    var compression = CompressionArgument.none

    @OptionGroup(title: "TLS") var tls: ClientTLSOptions

    @OptionGroup(title: "Authentication (sent as authorization: Bearer <token>)")
    var authToken: AuthTokenOptions

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
        let source = demo ? DetectRequestSource.demo : DetectRequestSource(path: file!)
        let request: [UInt8]
        do {
            request = try source.load().serializedBytes()
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
        case .success(let indices):
            print(json ? String(decoding: JSONCodec.encodeResponse(indices: indices), as: UTF8.self)
                  : DetectCall.articleText(indices))
        case .failure(let error):
            FileHandle.standardError.write(Data("error: \(error)\n".utf8))
            throw ExitCode.failure
        }
    }
}
