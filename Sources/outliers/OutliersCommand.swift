import ArgumentParser
import Foundation

/// `outliers`: the root command. Each capability is a subcommand; the logic lives
/// in the library modules, this target only parses flags and wires them up.
@main
struct OutliersCommand: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "outliers",
        abstract: "Outlier detection over gRPC, with a JSON/REST front.",
        discussion: """
            Flags values more than two standard deviations from the mean (the rule of \
            the article "Python and Go: Part I - gRPC"), served as /pb.Outliers/Detect.

            Every flag of serve, backend, gateway and detect can also be set from the \
            environment as OUTLIERS_<FLAG>: --http-port 8081 as OUTLIERS_HTTP_PORT=8081, \
            --no-ui as OUTLIERS_NO_UI=true. A flag on the command line wins over its variable.
            """,
        version: version,
        subcommands: [ServeCommand.self, BackendCommand.self, GatewayCommand.self, DetectCommand.self, BenchCommand.self]
    )

    /// The commands whose flags the environment may give (`EnvironmentArguments`);
    /// bench passes its arguments to outliers-bench as they are.
    static let configurable: [String: ParsableCommand.Type] = [
        "serve": ServeCommand.self, "backend": BackendCommand.self, "gateway": GatewayCommand.self,
        "detect": DetectCommand.self,
    ]

    /// argument-parser's main, with the environment's flags added first.
    static func main() async {
        var arguments = Array(CommandLine.arguments.dropFirst())
        var variables: [String: String] = [:]
        if let name = arguments.first, let command = configurable[name] {
            do {
                let flags = EnvironmentArguments.flags(of: command, root: Self.self)
                let expanded = try EnvironmentArguments.expand(Array(arguments.dropFirst()), flags: flags,
                                                               environment: ProcessInfo.processInfo.environment)
                arguments = [name] + expanded.arguments
                variables = expanded.variables
            } catch {
                FileHandle.standardError.write(Data("Error: \(error.description)\n".utf8))
                Foundation.exit(ExitCode.validationFailure.rawValue)
            }
        }
        do {
            var command = try parseAsRoot(arguments)
            if var asyncCommand = command as? AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch {
            if let message = EnvironmentArguments.message(for: error, root: Self.self, variables: variables) {
                FileHandle.standardError.write(Data((message + "\n").utf8))
                Foundation.exit(exitCode(for: error).rawValue)
            }
            exit(withError: error)
        }
    }
}
