import Dispatch
import H2GRPC
import OutliersProto

/// One `/pb.Outliers/Detect` call, as the article's Go client makes it.
public enum DetectCall {
    /// Sends `request` (a serialized `OutliersRequest`) and waits for the answer.
    public static func run(_ channel: GRPCChannel, request: [UInt8], metadata: [(name: String, value: String)] = [],
                           timeoutNanoseconds: Int64) -> Result<Pb_OutliersResponse, DetectCallError> {
        let outcome = Outcome()
        let done = DispatchSemaphore(value: 0)
        channel.unary(path: MethodPath.detect, request: request, metadata: metadata,
                      timeout: .nanoseconds(timeoutNanoseconds)) { result in
            outcome.result = result
            done.signal()
        }
        done.wait()
        switch outcome.result! {
        case .success(let response):
            do {
                return .success(try Pb_OutliersResponse(serializedBytes: response.message))
            } catch {
                return .failure(.unreadableAnswer("the server's answer is not an OutliersResponse: \(error)"))
            }
        case .failure(let error):
            return .failure(.rpc(error))
        }
    }

    /// The article's Go client logs the slice with %v: `outliers at: [7 113 835]`.
    public static func articleText(_ indices: [Int32]) -> String {
        "outliers at: [\(indices.map(String.init).joined(separator: " "))]"
    }

    /// The answer's details as two aligned tables: the outliers (index, name, value,
    /// score), then each series' numbers and bounds.
    public static func detailsText(_ response: Pb_OutliersResponse) -> String {
        var lines = [articleText(response.indices), ""]
        lines += alignedTable(header: ["index", "name", "value", "score"],
                              rows: response.outliers.map { [String($0.index), $0.name, number($0.value), number($0.score)] },
                              numericColumns: [0, 2, 3])
        lines.append("")
        lines += alignedTable(header: ["series", "count", "center", "spread", "lower", "upper"],
                              rows: response.series.map {
                                  [$0.name.isEmpty ? "(all)" : $0.name, String($0.count), number($0.center),
                                   number($0.spread), number($0.lower), number($0.upper)]
                              },
                              numericColumns: [1, 2, 3, 4, 5])
        return lines.joined(separator: "\n")
    }

    /// Columns padded to their widest cell, numbers to the right.
    static func alignedTable(header: [String], rows: [[String]], numericColumns: Set<Int>) -> [String] {
        let table = [header] + rows
        let widths = header.indices.map { column in table.map { $0[column].count }.max()! }
        return table.map { row in
            row.indices.map { column in
                let padding = String(repeating: " ", count: widths[column] - row[column].count)
                return numericColumns.contains(column) ? padding + row[column] : row[column] + padding
            }.joined(separator: "  ").trailingSpacesRemoved
        }
    }

    /// The shortest text that reads back as the same double.
    static func number(_ value: Double) -> String {
        value.isNaN ? "NaN" : value.isInfinite ? (value < 0 ? "-Infinity" : "Infinity") : value.description
    }
}

/// Why a Detect call gave no indices.
public enum DetectCallError: Error, Sendable, CustomStringConvertible {
    /// The call failed with this status.
    case rpc(RPCError)
    /// The call succeeded, but its message is not an `OutliersResponse`.
    case unreadableAnswer(String)

    /// The line to print after "error: ".
    public var description: String {
        switch self {
        case .rpc(let error): "\(error.code): \(error.message)"
        case .unreadableAnswer(let text): text
        }
    }
}

/// Carries the call's result from the channel's loop to the waiting thread.
/// `@unchecked Sendable`: written once before the semaphore is signalled, read after
/// the wait, which orders the two.
private final class Outcome: @unchecked Sendable {
    var result: Result<GRPCResponse, RPCError>?
}

private extension String {
    var trailingSpacesRemoved: String {
        var text = self
        while text.last == " " { text.removeLast() }
        return text
    }
}
