import ArgumentParser
import Foundation
import H2GRPC
import Logging
import OutliersService
import ZlibCompression

/// Options every long-running command shares.
struct LoggingOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "Log lines as text, or as JSON objects, one per line (for log collectors).")
    var logFormat: LogFormat = .text

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("unknown --log-level '\(logLevel)'; use trace, debug, info, notice, warning, error or critical")
        }
    }

    /// Configures swift-log once (stderr) and returns a logger for `label`.
    func makeLogger(_ label: String) -> Logger {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let format = logFormat
        LoggingSystem.bootstrap { label in
            switch format {
            case .text:
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            case .json:
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        }
        var logger = Logger(label: label)
        logger.logLevel = level
        return logger
    }
}

/// `--log-format`.
enum LogFormat: String, ExpressibleByArgument, CaseIterable, Sendable {
    case text, json
}

/// A duration on the command line: a number and a unit, `10s`, `250ms`, `1.5m`,
/// `100us`, `2h` (as Go's time.ParseDuration takes them, one unit).
struct DurationArgument: ExpressibleByArgument, Sendable, CustomStringConvertible {
    let nanoseconds: Int64

    init?(argument: String) {
        let units: [(String, Double)] = [("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("m", 60e9), ("h", 3600e9)]
        for (unit, scale) in units.sorted(by: { $0.0.count > $1.0.count }) where argument.hasSuffix(unit) {
            let number = argument.dropLast(unit.count)
            guard !number.isEmpty, number.allSatisfy({ $0.isNumber || $0 == "." }), let value = Double(number),
                  value.isFinite, value > 0, value * scale < 9.2e18 else { return nil }
            nanoseconds = Int64(value * scale)
            return
        }
        return nil
    }

    var description: String {
        nanoseconds % 1_000_000_000 == 0 ? "\(nanoseconds / 1_000_000_000)s" : "\(Double(nanoseconds) / 1e6)ms"
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// A duration, or `off` (`--keepalive off`).
enum DurationOrOff: ExpressibleByArgument, Sendable, CustomStringConvertible {
    case off
    case duration(DurationArgument)

    init?(argument: String) {
        if argument == "off" {
            self = .off
        } else if let duration = DurationArgument(argument: argument) {
            self = .duration(duration)
        } else {
            return nil
        }
    }

    var duration: DurationArgument? {
        if case .duration(let duration) = self { return duration }
        return nil
    }

    var description: String { duration?.description ?? "off" }
}

/// How the gRPC server treats its connections (`backend` and `serve`): their age and
/// the clients' keepalive pings, with grpc-go's names and defaults.
struct ServerConnectionOptions: ParsableArguments {
    @Option(help: "Ask a client connection older than this (±10 %) to go: GOAWAY, its calls finish, then it closes, so that long-lived clients reconnect and rebalance onto new servers (default: never).")
    var maxConnectionAge: DurationArgument?

    @Option(help: "After --max-connection-age's GOAWAY, cut off calls still open this long (default: wait for them).")
    var maxConnectionAgeGrace: DurationArgument?

    @Option(help: "A client that pings more often than this while calls are open (three times, data from the server forgiving) gets GOAWAY ENHANCE_YOUR_CALM and is dropped.")
    var keepaliveMinInterval = DurationArgument(argument: "5m")!

    @Option(help: "Whether clients may ping while no call is open (on or off); when off, such pings count against them.")
    var keepalivePermitWithoutCalls = Switch.off

    func apply(to configuration: inout GRPCServerConfiguration) {
        configuration.maximumConnectionAge = maxConnectionAge.map { .nanoseconds($0.nanoseconds) }
        configuration.maximumConnectionAgeGrace = maxConnectionAgeGrace.map { .nanoseconds($0.nanoseconds) }
        configuration.keepalivePolicy.minimumInterval = .nanoseconds(keepaliveMinInterval.nanoseconds)
        configuration.keepalivePolicy.permitWithoutCalls = keepalivePermitWithoutCalls == .on
    }
}

/// `--auth-token-file FILE`, or the environment variable `OUTLIERS_AUTH_TOKEN`: the
/// bearer token the backend requires (backend, serve) or the client sends (detect).
struct AuthTokenOptions: ParsableArguments {
    static let environmentVariable = "OUTLIERS_AUTH_TOKEN"

    @Option(help: ArgumentHelp(
        "A file holding the bearer token (surrounding whitespace ignored); without it, the environment variable OUTLIERS_AUTH_TOKEN.",
        valueName: "FILE"))
    var authTokenFile: String?

    func validate() throws {
        _ = try token()
    }

    /// The token, nil when neither the flag nor the variable gives one.
    func token() throws -> String? {
        let text: String
        let source: String
        if let authTokenFile {
            guard let contents = FileManager.default.contents(atPath: authTokenFile) else {
                throw ValidationError("--auth-token-file: cannot read \(authTokenFile)")
            }
            text = String(decoding: contents, as: UTF8.self)
            source = "--auth-token-file \(authTokenFile)"
        } else if let value = ProcessInfo.processInfo.environment[Self.environmentVariable] {
            text = value
            source = Self.environmentVariable
        } else {
            return nil
        }
        let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard BearerTokenAuth(token: token) != nil else {
            // The token itself is never echoed.
            throw ValidationError("\(source): the token must be non-empty printable ASCII without spaces")
        }
        return token
    }

    func auth() throws -> BearerTokenAuth? {
        try token().flatMap { BearerTokenAuth(token: $0) }
    }
}

/// `--compression gzip|deflate|none`: how a client compresses its gRPC messages.
enum CompressionArgument: String, ExpressibleByArgument, CaseIterable, Sendable {
    case gzip, deflate, none

    var coding: ZlibCoding? {
        switch self {
        case .gzip: .gzip
        case .deflate: .deflate
        case .none: nil
        }
    }
}
