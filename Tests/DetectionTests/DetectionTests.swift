import Foundation
import Testing
@testable import Detection

/// numpy's answers, written by Tests/fixtures/make_fixtures.py (seeded). The
/// generated cases are rebuilt here from the same SplitMix64 stream.
struct Fixtures: Decodable {
    struct Generate: Decodable {
        let seed: UInt64
        let count: Int
        let offset: Double
        let scale: Double
        let planted: [[Double]]
    }
    struct Case: Decodable {
        let name: String
        let threshold: Double
        let values: [Double]?
        let generate: Generate?
        let indices: [Int32]
        let mean: Double?
        let std: Double?
    }
    struct Rejection: Decodable {
        let name: String
        let values: [JSONValue]
        let index: Int
    }
    /// A number, or "NaN" / "Infinity" / "-Infinity" written as a string.
    struct JSONValue: Decodable {
        let value: Double
        init(from decoder: Decoder) throws {
            let container = try decoder.singleValueContainer()
            if let number = try? container.decode(Double.self) {
                value = number
            } else {
                switch try container.decode(String.self) {
                case "NaN": value = .nan
                case "Infinity": value = .infinity
                case "-Infinity": value = -.infinity
                case let other: throw DecodingError.dataCorruptedError(in: container, debugDescription: other)
                }
            }
        }
    }
    let cases: [Case]
    let rejections: [Rejection]

    static let shared: Fixtures = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures/detection.json")
        // A missing or unreadable fixture file is a test failure, not a skip.
        let data = try! Data(contentsOf: url)
        return try! JSONDecoder().decode(Fixtures.self, from: data)
    }()
}

extension Fixtures.Case: CustomTestStringConvertible {
    var testDescription: String { name }

    func data() -> [Double] {
        if let values { return values }
        let g = generate!
        var generator = SplitMix64(seed: g.seed)
        var values = (0..<g.count).map { _ in g.offset + g.scale * generator.nextUnit() }
        for pair in g.planted { values[Int(pair[0])] = pair[1] }
        return values
    }
}

extension Fixtures.Rejection: CustomTestStringConvertible {
    var testDescription: String { name }
}

@Test("indices equal numpy's", arguments: Fixtures.shared.cases)
func matchesNumpy(_ fixture: Fixtures.Case) throws {
    let values = fixture.data()
    let detector = OutlierDetector(threshold: fixture.threshold)
    #expect(try detector.outliers(in: values) == fixture.indices)
}

@Test("mean and std equal numpy's to the bit", arguments: Fixtures.shared.cases.filter { $0.mean != nil })
func statisticsMatchNumpy(_ fixture: Fixtures.Case) throws {
    let statistics = try Statistics(of: fixture.data())
    #expect(statistics.mean.bitPattern == fixture.mean!.bitPattern, "mean \(statistics.mean) vs numpy \(fixture.mean!)")
    #expect(statistics.standardDeviation.bitPattern == fixture.std!.bitPattern,
            "std \(statistics.standardDeviation) vs numpy \(fixture.std!)")
}

@Test("non-finite values are rejected with their index", arguments: Fixtures.shared.rejections)
func rejectsNonFinite(_ fixture: Fixtures.Rejection) {
    let values = fixture.values.map(\.value)
    #expect(throws: NonFiniteValue.self) { try OutlierDetector().outliers(in: values) }
    do {
        _ = try OutlierDetector().outliers(in: values)
    } catch {
        #expect(error.index == fixture.index)
        #expect(error.description.contains("index \(fixture.index)"))
    }
}

@Test func fixturesCoverTheContract() {
    let names = Set(Fixtures.shared.cases.map(\.name))
    // The article's demo data and its own example must be among the fixtures.
    let demo = Fixtures.shared.cases.first { $0.generate?.seed == DemoData.defaultSeed && $0.generate?.count == 1000 }
    #expect(demo?.indices == [7, 113, 835])
    #expect(Fixtures.shared.cases.contains { $0.values == [1, 2, 100, 1, 3, 200, 1] && $0.indices == [5] })
    #expect(Fixtures.shared.cases.contains { $0.data().count >= 1_000_000 }, "\(names)")
    #expect(!Fixtures.shared.rejections.isEmpty)
}

@Test func demoDataIsTheArticles() throws {
    let values = DemoData.values()
    #expect(values.count == 1000)
    #expect(values.enumerated().allSatisfy { i, v in [7, 113, 835].contains(i) || (0..<40).contains(v) })
    #expect(try OutlierDetector().outliers(in: values) == [7, 113, 835])
}

@Test func articleExampleGivesFive() throws {
    // The article's text says [2, 5]; its own 2σ rule, like numpy, gives [5].
    #expect(try OutlierDetector().outliers(in: [1, 2, 100, 1, 3, 200, 1]) == [5])
}

@Test func emptyAndTinyInputs() throws {
    #expect(try OutlierDetector().outliers(in: []) == [])
    #expect(try OutlierDetector().outliers(in: [42]) == [])
    #expect(try OutlierDetector().outliers(in: [1, 1e300]) == [])
    #expect(try OutlierDetector().outliers(in: Array(repeating: 7.5, count: 1000)) == [])
}

@Test func splitMix64KnownSequence() {
    // Reference outputs of SplitMix64 seeded with 0 (the published test vector).
    var generator = SplitMix64(seed: 0)
    #expect(generator.next() == 0xE220_A839_7B1D_CDAF)
    #expect(generator.next() == 0x6E78_9E6A_A1B9_65F4)
    #expect(generator.next() == 0x06C4_5D18_8009_454F)
}

@Test func pairwiseSumMatchesPlainSumOnIntegers() {
    // Exact for small integers, whatever the order: checks every branch's bookkeeping.
    for n in [0, 1, 7, 8, 9, 127, 128, 129, 1000, 4097] {
        let values = (0..<n).map { Double($0 % 97) }
        let sum = values.withUnsafeBufferPointer { pairwiseSum($0.baseAddress ?? UnsafePointer(bitPattern: 8)!, n) { $0 } }
        #expect(sum == values.reduce(0, +), "n = \(n)")
    }
}
