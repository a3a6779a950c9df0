import Foundation
import OutliersProto
import Testing
@testable import OutliersClient

@Test func sourcesAreNamedByPath() {
    #expect(DetectRequestSource(path: "-") == .standardInput)
    #expect(DetectRequestSource(path: "metrics.json") == .file(path: "metrics.json"))
}

@Test func theDemoIsTheArticlesRequest() throws {
    let request = try DetectRequestSource.demo.load()
    #expect(request == DemoRequest.make())
    #expect(request.metrics.count == 1000 && request.metrics.allSatisfy { $0.name == "CPU" && $0.time == DemoRequest.timestamp })
}

@Test func fileErrorsSayWhichFileAndWhy() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("outliers-client-\(getpid())-\(UInt32.random(in: 0...UInt32.max))")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }
    let good = directory.appendingPathComponent("good.json").path
    try Data("[1, 2, 100, 1, 3, 200, 1]".utf8).write(to: URL(fileURLWithPath: good))
    #expect(try DetectRequestSource(path: good).load().metrics.map(\.value) == [1, 2, 100, 1, 3, 200, 1])

    let bad = directory.appendingPathComponent("bad.json").path
    try Data(#"{"metrics":[{"value":"x"}]}"#.utf8).write(to: URL(fileURLWithPath: bad))
    #expect { try DetectRequestSource(path: bad).load() } throws: { error in
        "\(error)".hasPrefix("\(bad): metrics[0].value: ")
    }
    let missing = directory.appendingPathComponent("missing.json").path
    #expect { try DetectRequestSource(path: missing).load() } throws: { error in
        "\(error)".hasPrefix("cannot read \(missing): ")
    }
}

@Test func theArticlesClientText() {
    #expect(DetectCall.articleText([7, 113, 835]) == "outliers at: [7 113 835]")
    #expect(DetectCall.articleText([]) == "outliers at: []")
}
