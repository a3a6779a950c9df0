import Foundation
import Glibc
import POSIXSupport

/// How this binary was built.
public enum BuildInfo {
    /// True in a debug build (`#if DEBUG`, which SwiftPM sets for `-c debug`).
    public static var isDebug: Bool {
        #if DEBUG
        return true
        #else
        return false
        #endif
    }

    public static var mode: String { isDebug ? "debug" : "release" }

    /// The compiler that built this binary (major.minor, from `#if compiler`).
    public static var swiftVersion: String {
        #if compiler(>=6.5)
        return "6.5 or later"
        #elseif compiler(>=6.4)
        return "6.4"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "6.0"
        #endif
    }
}

/// The machine a run was timed on, as the report states it.
public struct MachineInfo: Sendable, Equatable {
    /// Cores online (`CoreCount.available`).
    public var cores: Int
    /// `model name` from /proc/cpuinfo ("unknown" when absent).
    public var cpuModel: String
    public var memoryBytes: Int?
    /// PRETTY_NAME from /etc/os-release, else the system name.
    public var operatingSystem: String
    public var kernel: String
    /// The 1, 5 and 15 minute load averages when the run started (other work on the machine).
    public var loadAverage: [Double]

    public init(cores: Int, cpuModel: String, memoryBytes: Int?, operatingSystem: String, kernel: String, loadAverage: [Double]) {
        self.cores = cores
        self.cpuModel = cpuModel
        self.memoryBytes = memoryBytes
        self.operatingSystem = operatingSystem
        self.kernel = kernel
        self.loadAverage = loadAverage
    }

    public static func current() -> MachineInfo {
        let cores = CoreCount.available
        let cpuinfo = readTextFile("/proc/cpuinfo")
        let model = value(of: "model name", in: cpuinfo, separator: ":")
            ?? value(of: "Model", in: cpuinfo, separator: ":")
            ?? value(of: "Hardware", in: cpuinfo, separator: ":") ?? "unknown"
        let meminfo = readTextFile("/proc/meminfo")
        let memory = value(of: "MemTotal", in: meminfo, separator: ":")
            .flatMap { Int($0.split(separator: " ").first ?? "") }.map { $0 * 1024 }
        let osRelease = readTextFile("/etc/os-release")
        var names = utsname()
        uname(&names)
        func field<T>(_ value: T) -> String {
            withUnsafeBytes(of: value) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        let system = field(names.sysname)
        let os = value(of: "PRETTY_NAME", in: osRelease, separator: "=")?
            .trimmingCharacters(in: CharacterSet(charactersIn: "\"")) ?? system
        let load = readTextFile("/proc/loadavg")
            .split(separator: " ").prefix(3).compactMap { Double($0) }
        return MachineInfo(cores: cores, cpuModel: model, memoryBytes: memory, operatingSystem: os,
                           kernel: "\(system) \(field(names.release))", loadAverage: load)
    }

    /// One line: "2 cores, Intel(R) Xeon(R) Processor, 23.4 GiB, Debian GNU/Linux 12 (bookworm), Linux 6.1.0, load 0.52 0.40 0.33".
    public var summary: String {
        var parts = ["\(cores) \(cores == 1 ? "core" : "cores")", cpuModel]
        if let memoryBytes { parts.append(String(format: "%.1f GiB", Double(memoryBytes) / 1_073_741_824)) }
        parts.append(operatingSystem)
        parts.append(kernel)
        if !loadAverage.isEmpty { parts.append("load " + loadAverage.map { String(format: "%.2f", $0) }.joined(separator: " ")) }
        return parts.joined(separator: ", ")
    }

    private static func value(of key: String, in text: String, separator: Character) -> String? {
        for line in text.split(separator: "\n") {
            guard let position = line.firstIndex(of: separator) else { continue }
            if line[..<position].trimmingCharacters(in: .whitespaces) == key {
                let value = line[line.index(after: position)...].trimmingCharacters(in: .whitespaces)
                return value.isEmpty ? nil : value
            }
        }
        return nil
    }
}

/// The whole text of a file, "" when unreadable. Reads to the end: /proc files
/// report a size of 0, and `String(contentsOfFile:)` stops after the first read.
func readTextFile(_ path: String) -> String {
    guard let handle = FileHandle(forReadingAtPath: path) else { return "" }
    defer { try? handle.close() }
    return String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
}
