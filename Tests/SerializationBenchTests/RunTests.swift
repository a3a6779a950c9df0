import Detection
import Foundation
import OutliersJSON
import OutliersProto
import OutliersClient
import SwiftProtobuf
import Testing
@testable import SerializationBench

/// A codec that loses precision: values go through Float. The check must catch it.
struct LossyFloatJSON: BenchCodec {
    var id: String { "lossy" }
    var title: String { "deliberately broken (Float values)" }
    func prepare(_ message: Pb_OutliersRequest) throws -> Pb_OutliersRequest { message }
    func encode(_ native: Pb_OutliersRequest) throws -> [UInt8] {
        var copy = native
        for index in copy.metrics.indices { copy.metrics[index].value = Double(Float(copy.metrics[index].value)) }
        return JSONCodec.encodeRequest(copy)
    }
    func decode(_ wire: [UInt8]) throws -> Pb_OutliersRequest { try JSONCodec.decodeRequest(wire) }
    func message(from native: Pb_OutliersRequest) throws -> Pb_OutliersRequest { native }
}

/// A codec that drops the last metric.
struct DroppingCodec: BenchCodec {
    var id: String { "dropping" }
    var title: String { "deliberately broken (drops a metric)" }
    func prepare(_ message: Pb_OutliersRequest) throws -> Pb_OutliersRequest { message }
    func encode(_ native: Pb_OutliersRequest) throws -> [UInt8] {
        var copy = native
        copy.metrics.removeLast()
        return try copy.serializedBytes()
    }
    func decode(_ wire: [UInt8]) throws -> Pb_OutliersRequest { try Pb_OutliersRequest(serializedBytes: wire) }
    func message(from native: Pb_OutliersRequest) throws -> Pb_OutliersRequest { native }
}

/// A response codec whose decoder throws on its own output.
struct UnreadableResponse: BenchCodec {
    var id: String { "unreadable" }
    var title: String { "deliberately broken (cannot read itself)" }
    func prepare(_ message: Pb_OutliersResponse) throws -> Pb_OutliersResponse { message }
    func encode(_ native: Pb_OutliersResponse) throws -> [UInt8] { Array("not json".utf8) }
    func decode(_ wire: [UInt8]) throws -> Pb_OutliersResponse { try Pb_OutliersResponse(jsonUTF8Bytes: wire) }
    func message(from native: Pb_OutliersResponse) throws -> Pb_OutliersResponse { native }
}

@Test func quickRunHasEveryCodecAndSizeAndChecksRoundTrips() throws {
    var steps: [String] = []
    let report = try Benchmark.run(.quick()) { steps.append($0) }
    // Round trips are all checked before the first timing.
    let firstTiming = try #require(steps.firstIndex { $0.hasPrefix("timing") })
    #expect(steps[..<firstTiming].filter { $0.hasPrefix("checking") }.count == 2)
    #expect(!steps[firstTiming...].contains { $0.hasPrefix("checking") })

    #expect(report.results.count == 2 * (Codecs.request.count + Codecs.response.count))
    #expect(Set(report.results.map(\.metrics)) == [10, 100])
    #expect(report.method.quick && report.method.rounds == 3)
    #expect(report.data.source == "demo" && report.data.timestamps == .same && report.data.seed == 2020)
    #expect(report.build == (BuildInfo.isDebug ? "debug" : "release"))
    #expect(report.machine.cores >= 1 && !report.machine.cpuModel.isEmpty)

    for row in report.results {
        #expect(row.skipped == nil)
        #expect((row.bytes ?? 0) > 0 && (row.gzipBytes ?? 0) > 0)
        #expect(row.sizeRatio != nil)
        // Which operations are timed, per codec and message.
        let expectEncode = !(row.codec == "gateway" && row.message == .request)
        let expectDecode = !(row.message == .response && (row.codec == "gateway" || row.codec == "json-outliers"))
        #expect((row.encode != nil) == expectEncode, "\(row.codec) \(row.message) encode")
        #expect((row.decode != nil) == expectDecode, "\(row.codec) \(row.message) decode")
        for figures in [row.encode, row.decode].compactMap({ $0 }) {
            #expect(figures.timing.samples.count == 3)
            #expect(figures.timing.p10 <= figures.timing.median && figures.timing.median <= figures.timing.p90)
            #expect(figures.iterationsPerRound >= 1)
            #expect(figures.ratioToProtobuf != nil)
            #expect(figures.megabytesPerSecond > 0)
            if report.method.allocationsCounted { #expect(figures.allocations != nil) }
        }
    }
    // Protobuf is the baseline; a request metric is 24 bytes of protobuf, and the
    // demo data's JSON is 2.98× that (the same ratio Go's encoding/json gave).
    for row in report.results where row.codec == "protobuf" {
        #expect(row.sizeRatio == 1 && row.encode?.ratioToProtobuf == 1 && row.decode?.ratioToProtobuf == 1)
        if row.message == .request { #expect(row.bytes == 24 * row.metrics) }
    }
    let jsonSizes = report.results.filter { $0.message == .request && $0.codec.hasPrefix("json") }.compactMap(\.sizeRatio)
    #expect(jsonSizes.count == 6 && jsonSizes.allSatisfy { (2.9...3.05).contains($0) })
    // Responses are the detector's answers: index 7 is planted in both sizes.
    #expect(report.results.filter { $0.message == .response }.allSatisfy { $0.items == 1 })
    let summary = try #require(report.summary)
    #expect(summary.metrics == 100 && summary.against == "json-foundation")
    #expect(summary.line.hasPrefix("protobuf ") && summary.line.contains("(article: about 7.5× faster, about 4× smaller)"))
}

@Test func aBrokenCodecFailsTheRunBeforeAnythingIsTimed() throws {
    var steps: [String] = []
    let codecs = Codecs.request + [AnyBenchCodec(LossyFloatJSON())]
    do {
        _ = try Benchmark.run(.quick(sizes: [10]), requestCodecs: codecs) { steps.append($0) }
        Issue.record("the run should have failed")
    } catch let error {
        guard case let .roundTrip(codec, _, message, items, detail) = error else {
            Issue.record("unexpected error \(error)")
            return
        }
        #expect(codec == "lossy" && message == .request && items == 10)
        #expect(detail.hasPrefix("metrics[0].value"))
        #expect(error.description.contains("round-trip check failed"))
    }
    #expect(!steps.contains { $0.hasPrefix("timing") })
}

@Test func aCodecThatDropsAMetricOrCannotReadItselfFails() {
    #expect(throws: BenchError.self) {
        _ = try Benchmark.run(.quick(sizes: [3]), requestCodecs: [AnyBenchCodec(DroppingCodec())], responseCodecs: [])
    }
    do {
        _ = try Benchmark.run(.quick(sizes: [3]), requestCodecs: [],
                                       responseCodecs: [AnyBenchCodec(UnreadableResponse())])
        Issue.record("the run should have failed")
    } catch {
        guard case .codecFailed(codec: "unreadable", message: .response, items: _, detail: _) = error else {
            Issue.record("unexpected error \(error)")
            return
        }
    }
}

@Test func distinctTimestampsAndSeedsChangeTheData() throws {
    var configuration = BenchConfiguration.quick(sizes: [5])
    configuration.timestamps = .distinct
    configuration.seed = 7
    configuration.countAllocations = false
    let report = try Benchmark.run(configuration)
    #expect(report.data.timestamps == .distinct && report.data.seed == 7)
    #expect(!report.method.allocationsCounted && report.method.allocations.hasPrefix("n/a"))
    #expect(report.results.allSatisfy { $0.encode?.allocations == nil && $0.decode?.allocations == nil })
    // Distinct times make every protobuf metric's varint the same length here; the JSON is the same size too.
    let protobuf = try #require(report.results.first { $0.codec == "protobuf" && $0.message == .request })
    #expect(protobuf.bytes == 5 * 24)
    // The default seed is the one the demo uses, and the one --help names.
    configuration.seed = nil
    #expect(try Benchmark.run(configuration).data.seed == DemoData.defaultSeed)
    #expect(DemoData.defaultSeed == 2020)
    #expect(DemoRequest.make(count: 20) == DemoRequest.make(count: 20, seed: DemoData.defaultSeed))
}

@Test func inputFileOfAnyDetectShapeIsMeasured() throws {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("bench-input-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: directory) }

    let numbers = directory.appendingPathComponent("numbers.json")
    try Data("[1, 2, 100, 1, 3, 200, 1]".utf8).write(to: numbers)
    var configuration = BenchConfiguration.quick()
    configuration.input = try BenchConfiguration.Input.load(path: numbers.path)
    let report = try Benchmark.run(configuration)
    #expect(report.data.source == "file" && report.data.sizes == [7])
    #expect(report.results.filter { $0.message == .response }.allSatisfy { $0.items == 1 })   // [5]
    #expect(report.results.allSatisfy { $0.skipped == nil })

    // Sub-second times: the Foundation codec cannot carry them and says so.
    let fractional = directory.appendingPathComponent("fractional.json")
    try Data(#"{"metrics":[{"time":"2020-05-22T14:13:11.25Z","name":"CPU","value":97.3},{"value":1}]}"#.utf8).write(to: fractional)
    configuration.input = try BenchConfiguration.Input.load(path: fractional.path)
    let partial = try Benchmark.run(configuration)
    let skipped = partial.results.filter { $0.skipped != nil }
    #expect(skipped.map(\.codec) == ["json-foundation"])
    #expect(skipped.first?.bytes == nil)
    // The summary falls back to the next JSON codec.
    #expect(partial.summary?.against == "json-swift-protobuf")
    #expect(partial.summary?.line.contains("proto3 JSON (swift-protobuf)") == true)
    #expect(partial.notes.contains { $0.contains("skipped") && $0.contains(".iso8601") })

    // A value the detector rejects: the responses are empty, and a note says why.
    let infinite = directory.appendingPathComponent("infinite.json")
    try Data(#"[1, "Infinity", 2]"#.utf8).write(to: infinite)
    configuration.input = try BenchConfiguration.Input.load(path: infinite.path)
    let rejected = try Benchmark.run(configuration)
    #expect(rejected.results.filter { $0.message == .response }.allSatisfy { $0.items == 0 })
    #expect(rejected.notes.contains { $0.contains("detector rejects") })

    #expect(throws: BenchError.self) { _ = try BenchConfiguration.Input.load(path: directory.appendingPathComponent("missing").path) }
    let bad = directory.appendingPathComponent("bad.json")
    try Data(#"{"metrics":[{"value":}]}"#.utf8).write(to: bad)
    do {
        _ = try BenchConfiguration.Input.load(path: bad.path)
        Issue.record("expected a JSON error")
    } catch {
        #expect(error.description.contains("line 1"))
    }
}

@Test func badConfigurationsAreRejected() {
    var configuration = BenchConfiguration.quick()
    configuration.rounds = 0
    #expect(throws: BenchError.self) { _ = try Benchmark.run(configuration) }
    configuration = .quick(sizes: [])
    #expect(throws: BenchError.self) { _ = try Benchmark.run(configuration) }
}
