import Foundation
import OutliersJSON
import OutliersProto

/// Where `outliers detect` takes its request from: the article's demo data, or a JSON
/// body of any shape POST /detect takes, from a file or standard input.
public enum DetectRequestSource: Sendable, Equatable {
    case demo
    case file(path: String)
    case standardInput

    /// `-` is standard input, as for most commands.
    public init(path: String) {
        self = path == "-" ? .standardInput : .file(path: path)
    }

    /// The request, or an error whose description is the line to print after "error: ".
    public func load() throws(DetectRequestSourceError) -> Pb_OutliersRequest {
        let data: Data
        switch self {
        case .demo:
            return DemoRequest.make()
        case .standardInput:
            data = FileHandle.standardInput.readDataToEndOfFile()
        case .file(let path):
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw DetectRequestSourceError(description: "cannot read \(path): \(error.localizedDescription)")
            }
        }
        do {
            return try JSONCodec.decodeRequest(Array(data))
        } catch {
            throw DetectRequestSourceError(description: "\(name): \(error)")
        }
    }

    /// How an error names the source.
    private var name: String {
        switch self {
        case .demo: "the demo data"
        case .file(let path): path
        case .standardInput: "stdin"
        }
    }
}

/// A request that could not be read or decoded.
public struct DetectRequestSourceError: Error, Sendable, CustomStringConvertible {
    public let description: String
}
