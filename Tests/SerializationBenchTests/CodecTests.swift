import Foundation
import OutliersJSON
import OutliersProto
import OutliersClient
import SwiftProtobuf
import Testing
@testable import SerializationBench

func metric(seconds: Int64 = 1_590_156_791, nanos: Int32 = 0, name: String = "CPU", value: Double) -> Pb_Metric {
    var metric = Pb_Metric()
    metric.time = Google_Protobuf_Timestamp(seconds: seconds, nanos: nanos)
    metric.name = name
    metric.value = value
    return metric
}

func request(_ metrics: [Pb_Metric]) -> Pb_OutliersRequest {
    var request = Pb_OutliersRequest()
    request.metrics = metrics
    return request
}

/// Runs a codec's check and returns its prepared case (or the reason it was skipped).
func prepared<Message: BenchMessage>(_ codec: AnyBenchCodec<Message>, _ message: Message) throws -> PreparedOutcome {
    try codec.makeCase(message)
}

// MARK: Round-trip comparison

@Test func firstDifferenceNamesWhatChanged() {
    let original = request([metric(value: 1.5), metric(value: 2.5)])
    #expect(Pb_OutliersRequest.firstDifference(expected: original, actual: original) == nil)

    var value = original
    value.metrics[1].value = 2.5000000000000004
    #expect(Pb_OutliersRequest.firstDifference(expected: original, actual: value)?.hasPrefix("metrics[1].value") == true)

    var name = original
    name.metrics[0].name = "cpu"
    #expect(Pb_OutliersRequest.firstDifference(expected: original, actual: name)?.hasPrefix("metrics[0].name") == true)

    var time = original
    time.metrics[0].time.nanos = 1
    #expect(Pb_OutliersRequest.firstDifference(expected: original, actual: time)?.hasPrefix("metrics[0].time") == true)

    var missing = original
    missing.metrics[1].clearTime()
    #expect(Pb_OutliersRequest.firstDifference(expected: original, actual: missing)?.contains("missing") == true)

    #expect(Pb_OutliersRequest.firstDifference(expected: original, actual: request([metric(value: 1.5)]))?.contains("1 metrics") == true)
}

@Test func valuesCompareByBitPatternExceptNaN() {
    let zero = request([metric(value: 0.0)])
    let negativeZero = request([metric(value: -0.0)])
    #expect(Pb_OutliersRequest.firstDifference(expected: zero, actual: negativeZero) != nil)
    let nan = request([metric(value: .nan)])
    let otherNaN = request([metric(value: Double(nan: 5, signaling: false))])
    #expect(Pb_OutliersRequest.firstDifference(expected: nan, actual: otherNaN) == nil)
}

@Test func responsesCompareIndices() {
    var a = Pb_OutliersResponse()
    a.indices = [7, 113, 835]
    var b = a
    #expect(Pb_OutliersResponse.firstDifference(expected: a, actual: b) == nil)
    b.indices = [7, 113]
    #expect(Pb_OutliersResponse.firstDifference(expected: a, actual: b) != nil)
}

// MARK: The codecs

@Test(arguments: [false, true])
func everyRequestCodecRoundTripsTheDemoData(distinct: Bool) throws {
    let demo = DemoRequest.make(count: 1000, distinctTimestamps: distinct)
    for codec in Codecs.request {
        guard case .ready(let ready) = try prepared(codec, demo) else {
            Issue.record("\(codec.id) skipped the demo data")
            continue
        }
        #expect(!ready.wire.isEmpty)
        #expect(try Gzip.decompress(ready.gzip) == ready.wire)
        for (_, operation) in ready.operations { try operation() }
    }
}

@Test func everyResponseCodecRoundTripsTheDemoAnswer() throws {
    var notes: [String] = []
    let answer = Benchmark.detect(DemoRequest.make(count: 1000), notes: &notes)
    #expect(answer.indices == [7, 113, 835])
    #expect(notes.isEmpty)
    for codec in Codecs.response {
        guard case .ready(let ready) = try prepared(codec, answer) else {
            Issue.record("\(codec.id) skipped the demo answer")
            continue
        }
        for (_, operation) in ready.operations { try operation() }
    }
}

@Test func codecsWriteTheExpectedBytes() throws {
    let one = request([metric(value: 97.3)])
    func wire(_ codec: AnyBenchCodec<Pb_OutliersRequest>) throws -> String {
        guard case .ready(let ready) = try prepared(codec, one) else { return "skipped" }
        return String(decoding: ready.wire, as: UTF8.self)
    }
    let codecs = Dictionary(uniqueKeysWithValues: Codecs.request.map { ($0.id, $0) })
    // The protobuf metric is 24 bytes: the size in docs/BENCHMARKS.md (24,000 for 1000).
    guard case .ready(let binary) = try prepared(codecs["protobuf"]!, one) else { Issue.record("protobuf skipped"); return }
    #expect(binary.wire.count == 24)
    #expect(try wire(codecs["json-outliers"]!) == #"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3}]}"#)
    #expect(try wire(codecs["json-swift-protobuf"]!) == #"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3}]}"#)
    // Foundation writes the keys in any order; the time the way Go's time.Time does.
    let foundation = try wire(codecs["json-foundation"]!)
    #expect(foundation.contains(#""time":"2020-05-22T14:13:11Z""#))
    #expect(foundation.contains(#""name":"CPU""#) && foundation.contains(#""value":97.3"#))
    #expect(foundation.count == 71)
}

@Test func foundationCodecSkipsSubSecondTimes() throws {
    let fractional = request([metric(value: 1), metric(nanos: 500_000_000, value: 2)])
    let foundation = Codecs.request.first { $0.id == "json-foundation" }!
    guard case .skipped(let reason) = try prepared(foundation, fractional) else {
        Issue.record("expected json-foundation to be skipped")
        return
    }
    #expect(reason.contains("metrics[1].time"))
    // The proto3 JSON codecs carry nanoseconds.
    for codec in Codecs.request where codec.id != "json-foundation" {
        guard case .ready = try prepared(codec, fractional) else { Issue.record("\(codec.id) skipped"); continue }
    }
}

@Test func nonFiniteValuesRoundTripAsProto3Strings() throws {
    let odd = request([metric(value: .infinity), metric(value: -.infinity), metric(value: .nan), metric(value: -0.0),
                       metric(value: .leastNonzeroMagnitude), metric(value: .greatestFiniteMagnitude)])
    for codec in Codecs.request {
        guard case .ready = try prepared(codec, odd) else { Issue.record("\(codec.id) skipped"); continue }
    }
}

@Test func unusualNamesAndMissingTimesRoundTrip() throws {
    var bare = Pb_Metric()
    bare.value = 3
    let odd = request([metric(name: "dísk \"quoted\"\n\\ ✓", value: 1), bare, metric(seconds: -62_135_596_800, name: "", value: 2)])
    for codec in Codecs.request {
        guard case .ready = try prepared(codec, odd) else { Issue.record("\(codec.id) skipped"); continue }
    }
}
