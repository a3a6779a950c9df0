import Testing
@testable import OutliersClient

// MARK: Latency percentiles (nearest rank above)

@Test func percentilesAreTheNearestRankAbove() {
    // 1…100 ms, shuffled: the summary sorts them.
    let latencies = (1...100).map { UInt64($0) * 1_000_000 }.shuffled()
    let summary = LoadSummary(calls: 100, concurrency: 1, codes: ["OK": 100], seconds: 1, latencies: latencies)
    #expect(summary.sortedLatencies == latencies.sorted())
    #expect(summary.latencyMilliseconds(atPercentile: 0) == 1)
    #expect(summary.latencyMilliseconds(atPercentile: 0.5) == 51)    // index 50
    #expect(summary.latencyMilliseconds(atPercentile: 0.99) == 100)  // index 99: the slowest
    #expect(summary.latencyMilliseconds(atPercentile: 1) == 100)     // clamped to the last
}

@Test func percentilesOfFewCalls() {
    func at(_ p: Double, _ latencies: [UInt64]) -> Double {
        LoadSummary(calls: latencies.count, concurrency: 1, codes: [:], seconds: 1, latencies: latencies)
            .latencyMilliseconds(atPercentile: p)
    }
    #expect(at(0.5, []) == 0 && at(0.99, []) == 0)
    #expect(at(0.5, [2_500_000]) == 2.5 && at(0.99, [2_500_000]) == 2.5)
    #expect(at(0.5, [3_000_000, 1_000_000]) == 3)   // ⌊0.5 · 2⌋ = 1: the higher of two
    #expect(at(0.5, [1_000_000, 2_000_000, 3_000_000]) == 2)
    #expect(at(0.99, [1_000_000, 2_000_000, 3_000_000]) == 3)
}

// MARK: The summary line

@Test func summaryTextAndJSON() {
    let summary = LoadSummary(calls: 4, concurrency: 2, codes: ["UNAVAILABLE": 1, "OK": 3], seconds: 0.5,
                              latencies: [1_000_000, 4_000_000, 2_000_000, 3_000_000])
    #expect(summary.callsPerSecond == 8)
    #expect(!summary.allSucceeded)
    #expect(summary.text == "calls: 4 concurrency: 2 OK=3 UNAVAILABLE=1 seconds: 0.500 calls/s: 8 p50: 3.000ms p99: 4.000ms")
    #expect(summary.json == #"{"calls":4,"concurrency":2,"codes":{"OK":3,"UNAVAILABLE":1},"seconds":0.5,"calls_per_second":8.0,"p50_ms":3.0,"p99_ms":4.0}"#)
    #expect(LoadSummary(calls: 1, concurrency: 1, codes: ["OK": 1], seconds: 1, latencies: [1]).allSucceeded)
}
