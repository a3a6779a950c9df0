import ArgumentParser

/// Every flag of `serve`, `backend`, `gateway` and `detect` also from the environment:
/// `--http-port 8081` as `OUTLIERS_HTTP_PORT=8081`, a boolean flag such as `--no-ui` as
/// `OUTLIERS_NO_UI=true`. A flag on the command line wins over its variable. The
/// variables become arguments before parsing, so a bad value is judged by the same
/// rules as the flag's, and the error names the variable.
enum EnvironmentArguments {
    static let prefix = "OUTLIERS_"

    /// One flag of a command: its long name, and whether it takes a value.
    struct Flag: Equatable {
        var name: String
        var takesValue: Bool

        /// `OUTLIERS_HTTP_PORT` for `--http-port`.
        var variable: String { prefix + name.uppercased().replacingOccurrences(of: "-", with: "_") }
    }

    /// Why the environment cannot be read.
    struct Problem: Error, CustomStringConvertible {
        var description: String
    }

    /// The long flags a command's help lists (`--name <value>` or `--name`), help and
    /// version aside: read from the help text argument-parser writes, which lists every
    /// option a command has, groups included.
    static func flags(of command: ParsableCommand.Type, root: ParsableCommand.Type) -> [Flag] {
        var flags: [Flag] = []
        for line in root.helpMessage(for: command, columns: 100_000).split(separator: "\n") {
            let trimmed = line.drop { $0 == " " }
            guard trimmed.hasPrefix("--") || trimmed.hasPrefix("-h, --") else { continue }
            let spec = trimmed.hasPrefix("-h, ") ? trimmed.dropFirst(4) : trimmed
            let head = spec.prefix { $0 != " " }
            let takesValue = spec.dropFirst(head.count).drop { $0 == " " }.hasPrefix("<")
            // An inverted flag lists both names: --count-allocations/--no-count-allocations.
            for name in head.split(separator: "/") where name.hasPrefix("--") {
                let bare = String(name.dropFirst(2))
                if bare != "help" && bare != "version" { flags.append(Flag(name: bare, takesValue: takesValue)) }
            }
        }
        return flags
    }

    /// `arguments` (after the command name) with each flag the environment sets and the
    /// command line does not appended, and the variables they came from, by flag.
    static func expand(_ arguments: [String], flags: [Flag], environment: [String: String]) throws(Problem)
        -> (arguments: [String], variables: [String: String]) {
        var expanded = arguments
        var variables: [String: String] = [:]
        // Up to a "--", the command line's own flags (as --name or --name=value).
        let given = Set(arguments.prefix { $0 != "--" }.compactMap { argument -> String? in
            guard argument.hasPrefix("--") else { return nil }
            return String(argument.dropFirst(2).prefix { $0 != "=" })
        })
        var appended: [String] = []
        for flag in flags {
            guard let value = environment[flag.variable], !given.contains(flag.name) else { continue }
            // The other name of an inverted flag, given on the command line, wins too.
            if flag.name.hasPrefix("no-") && given.contains(String(flag.name.dropFirst(3))) { continue }
            if given.contains("no-" + flag.name) { continue }
            if flag.takesValue {
                appended += ["--\(flag.name)=\(value)"]
            } else {
                switch value.lowercased() {
                case "1", "true", "yes", "on": appended.append("--\(flag.name)")
                case "0", "false", "no", "off", "": break
                default:
                    throw Problem(description: "\(flag.variable)=\(value): --\(flag.name) is a switch; give true or false")
                }
            }
            variables["--\(flag.name)"] = flag.variable
        }
        // Before any "--" and what follows it, which are positional.
        let split = expanded.firstIndex(of: "--") ?? expanded.endIndex
        expanded.insert(contentsOf: appended, at: split)
        return (expanded, variables)
    }

    /// argument-parser's message for `error`, naming the variable when the flag it
    /// is about came from the environment.
    static func message(for error: Error, root: ParsableCommand.Type, variables: [String: String]) -> String? {
        let text = root.fullMessage(for: error)
        for (flag, variable) in variables.sorted(by: { $0.key < $1.key }) where mentions(text, flag) {
            return "\(text)\n(\(flag) was given by the environment variable \(variable))"
        }
        return nil
    }

    /// `text` names `flag` itself, not a longer flag it begins (`--server` in
    /// `--server-name`).
    static func mentions(_ text: String, _ flag: String) -> Bool {
        var rest = text[...]
        while let range = rest.range(of: flag) {
            let next = rest[range.upperBound...].first
            if next.map({ !($0.isLetter || $0.isNumber || $0 == "-") }) ?? true { return true }
            rest = rest[range.upperBound...]
        }
        return false
    }
}
