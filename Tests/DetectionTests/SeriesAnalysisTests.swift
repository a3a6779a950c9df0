import Foundation
import Testing
@testable import Detection

/// numpy's and scipy's answers for every method, written by
/// Tests/fixtures/make_robust_fixtures.py: indices exactly, every number to the bit.
struct RobustFixtures: Decodable {
    struct Case: Decodable, CustomTestStringConvertible {
        let name: String
        let method: String
        let threshold: Double
        let values: [Double]?
        let generate: Fixtures.Generate?
        let count: Int
        let center: Double
        let spread: Double
        let lower: Double
        let upper: Double
        let outliers: [[Fixtures.JSONValue]]

        var testDescription: String { name }

        var detectionMethod: DetectionMethod {
            switch method {
            case "ZSCORE": .zScore
            case "MAD": .medianAbsoluteDeviation
            case "IQR": .interquartileRange
            default: fatalError("unknown method \(method) in robust.json")
            }
        }

        func data() -> [Double] {
            Fixtures.Case(name: name, threshold: threshold, values: values, generate: generate, indices: [],
                          mean: nil, std: nil).data()
        }
    }
    let cases: [Case]

    static let shared: RobustFixtures = {
        let url = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("fixtures/robust.json")
        // A missing or unreadable fixture file is a test failure, not a skip.
        let data = try! Data(contentsOf: url)
        return try! JSONDecoder().decode(RobustFixtures.self, from: data)
    }()
}

private func sameBits(_ a: Double, _ b: Double) -> Bool { a.bitPattern == b.bitPattern || (a == 0 && b == 0) }

@Test("every method's answer equals numpy's and scipy's, to the bit", arguments: RobustFixtures.shared.cases)
func robustMatchesNumpy(_ fixture: RobustFixtures.Case) throws {
    let analysis = try OutlierDetector(threshold: fixture.threshold).analyze(fixture.data(), method: fixture.detectionMethod)
    let summary = analysis.summary
    #expect(summary.count == fixture.count)
    #expect(sameBits(summary.center, fixture.center), "center \(summary.center) vs \(fixture.center)")
    #expect(sameBits(summary.spread, fixture.spread), "spread \(summary.spread) vs \(fixture.spread)")
    #expect(sameBits(summary.lower, fixture.lower), "lower \(summary.lower) vs \(fixture.lower)")
    #expect(sameBits(summary.upper, fixture.upper), "upper \(summary.upper) vs \(fixture.upper)")
    #expect(analysis.outliers.map(\.index) == fixture.outliers.map { Int32($0[0].value) })
    for (got, want) in zip(analysis.outliers, fixture.outliers) {
        #expect(sameBits(got.value, want[1].value), "value at \(got.index)")
        #expect(sameBits(got.score, want[2].value), "score at \(got.index): \(got.score) vs \(want[2].value)")
    }
}

@Test func zScoreAnalysisAgreesWithTheArticlesRule() throws {
    // The z-score path of analyze is the article's rule: same indices as outliers(in:).
    for fixture in Fixtures.shared.cases {
        let values = fixture.data()
        let detector = OutlierDetector(threshold: fixture.threshold)
        #expect(try detector.analyze(values, method: .zScore).outliers.map(\.index) == detector.outliers(in: values),
                "\(fixture.name)")
    }
}

@Test func robustFixturesCoverTheContract() {
    let cases = RobustFixtures.shared.cases
    for method in ["ZSCORE", "MAD", "IQR"] {
        let ofMethod = cases.filter { $0.method == method }
        #expect(Set(ofMethod.map(\.threshold)).count >= 3, "\(method): several thresholds")
        #expect(ofMethod.contains { $0.count == 0 }, "\(method): empty")
        #expect(ofMethod.contains { $0.count == 1 }, "\(method): one value")
        #expect(ofMethod.contains { $0.spread == 0 && $0.count > 1 }, "\(method): constant")
        #expect(ofMethod.contains { $0.count % 2 == 0 && $0.count > 0 } && ofMethod.contains { $0.count % 2 == 1 })
        #expect(ofMethod.contains { $0.center > 1e8 }, "\(method): a 1e9 offset")
    }
    #expect(cases.contains { $0.count >= 1_000_000 && $0.method == "MAD" })
    #expect(cases.contains { $0.count >= 1_000_000 && $0.method == "IQR" })
}

@Test func aZeroSpreadMakesEveryDifferentValueAnOutlierForTheRobustMethods() throws {
    let values = [3.25, 3.25, 3.25, 3.25, 3.5, 3.25, 3.0]
    let mad = try OutlierDetector(threshold: 3.5).analyze(values, method: .medianAbsoluteDeviation)
    #expect(mad.summary.spread == 0 && mad.outliers.map(\.index) == [4, 6])
    #expect(mad.outliers.map(\.score) == [.infinity, -.infinity])
    let iqr = try OutlierDetector(threshold: 1.5).analyze(values, method: .interquartileRange)
    #expect(iqr.summary.spread == 0 && iqr.outliers.map(\.index) == [4, 6])
    // And none for the z-score rule, whose std is not zero here but is for a constant series.
    #expect(try OutlierDetector().analyze(Array(repeating: 3.25, count: 9), method: .zScore).outliers.isEmpty)
}

@Test func nonFiniteValuesAreRefusedByEveryMethod() {
    for method in DetectionMethod.allCases {
        do {
            _ = try OutlierDetector().analyze([1, 2, .nan, 4], method: method)
            Issue.record("\(method) took a NaN")
        } catch {
            #expect(error.index == 2)
        }
    }
}

@Test func selectionFindsEveryRankOfAdversarialInputs() {
    var generator = SplitMix64(seed: 42)
    let shapes: [[Double]] = [
        (0..<1000).map(Double.init),                       // sorted
        (0..<1000).reversed().map(Double.init),            // reversed
        Array(repeating: 5, count: 1000),                  // all equal
        (0..<1000).map { Double($0 % 3) },                 // few distinct values
        (0..<1000).map { _ in Double(generator.next() % 100) },
        (0..<1001).map { $0 % 2 == 0 ? Double($0) : -Double($0) },  // organ pipe-ish
    ]
    for shape in shapes {
        let sorted = shape.sorted()
        for k in [0, 1, shape.count / 4, shape.count / 2, shape.count - 2, shape.count - 1] {
            var scratch = shape
            #expect(OrderStatistics.select(&scratch, k, in: 0..<scratch.count) == sorted[k])
            #expect(scratch[..<k].allSatisfy { $0 <= sorted[k] } && scratch[(k + 1)...].allSatisfy { $0 >= sorted[k] })
        }
    }
}

@Test func defaultThresholdsAreTheLiteraturesOnes() {
    #expect(DetectionMethod.zScore.defaultThreshold == 2)
    #expect(DetectionMethod.medianAbsoluteDeviation.defaultThreshold == 3.5)
    #expect(DetectionMethod.interquartileRange.defaultThreshold == 1.5)
    #expect(abs(normalMADScale * 0.67448975019608171 - 1) < 1e-15)  // 1 / Φ⁻¹(3/4), scipy's constant
}
