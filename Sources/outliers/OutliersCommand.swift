import ArgumentParser

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
            """,
        version: version,
        subcommands: [ServeCommand.self, BackendCommand.self, GatewayCommand.self, DetectCommand.self, BenchCommand.self]
    )
}
