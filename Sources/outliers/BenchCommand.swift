import ArgumentParser
import Foundation
import Glibc

/// `outliers bench`: runs `outliers-bench`, the program built next to this one, in
/// this process's place (execv) with the same arguments, `--help` included. The
/// benchmark is a program of its own so that `serve`, `backend`, `gateway` and
/// `detect` do not link SerializationBench and its allocation counter.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Measure JSON against protobuf: encoded size and encode/decode speed of OutliersRequest and OutliersResponse.",
        // Every argument, --help too, is outliers-bench's to parse.
        helpNames: []
    )

    @Argument(parsing: .captureForPassthrough, help: "The arguments of outliers-bench (see outliers bench --help).")
    var arguments: [String] = []

    func run() throws {
        let bench = Self.benchPath()
        guard access(bench, X_OK) == 0 else {
            FileHandle.standardError.write(Data(
                "error: outliers bench runs \(bench), which is missing: build it with `swift build` (the outliers-bench product)\n".utf8))
            throw ExitCode.failure
        }
        var argv: [UnsafeMutablePointer<CChar>?] = ([bench] + arguments).map { strdup($0) }
        argv.append(nil)
        execv(bench, argv)
        // Only reached when execv failed.
        let reason = String(cString: strerror(errno))
        FileHandle.standardError.write(Data("error: cannot run \(bench): \(reason)\n".utf8))
        throw ExitCode.failure
    }

    /// `outliers-bench` in the folder of this executable (/proc/self/exe, so that a
    /// symlink or a relative argv[0] finds the real one).
    static func benchPath() -> String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"))
            ?? CommandLine.arguments[0]
        return URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("outliers-bench").path
    }
}
