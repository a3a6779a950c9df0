import Testing
@testable import SerializationBench

// MARK: Percentiles and median (numpy's default, linear interpolation)

@Test func percentilesInterpolateBetweenClosestRanks() {
    let values = (1...10).map(Double.init)
    #expect(SampleStatistics.percentile(values, 0.1) == 1.9)
    #expect(SampleStatistics.percentile(values, 0.5) == 5.5)
    #expect(abs(SampleStatistics.percentile(values, 0.9) - 9.1) < 1e-12)
    #expect(SampleStatistics.percentile(values, 0) == 1)
    #expect(SampleStatistics.percentile(values, 1) == 10)
}

@Test func percentileSortsItsInputAndClampsP() {
    let values: [Double] = [9, 1, 5, 3, 7]
    #expect(SampleStatistics.percentile(values, 0.5) == 5)
    #expect(SampleStatistics.percentile(values, 0.25) == 3)
    #expect(SampleStatistics.percentile(values, -1) == 1)
    #expect(SampleStatistics.percentile(values, 2) == 9)
}

@Test func medianOfOddAndEvenCounts() {
    #expect(SampleStatistics.median([3, 1, 2]) == 2)
    #expect(SampleStatistics.median([4, 1, 3, 2]) == 2.5)
    #expect(SampleStatistics.median([42]) == 42)
    #expect(SampleStatistics.median([]).isNaN)
}

@Test func timingSummaryOfSyntheticRounds() {
    // Ten rounds of a 1 µs operation with one slow outlier round.
    let samples: [Double] = [1000, 1010, 990, 1005, 995, 1002, 998, 1001, 999, 5000]
    let summary = TimingSummary(samples: samples)
    #expect(summary.median == 1000.5)
    #expect(summary.minimum == 990)
    #expect(summary.maximum == 5000)
    #expect(abs(summary.p10 - 994.5) < 1e-9)
    #expect(abs(summary.p90 - 1409) < 1e-9)     // 1010 + 0.1 * (5000 - 1010)
    #expect(summary.samples == samples)
    #expect(summary.p10 <= summary.median && summary.median <= summary.p90)
}

// MARK: Calibration

@Test func calibrationReachesTheMinimumWithoutOvershootingMuch() {
    var calls: [Int] = []
    let perIteration = 7_000.0   // 7 µs per operation
    let (iterations, nanoseconds) = Calibration.iterations(minimumNanoseconds: 20_000_000) { count in
        calls.append(count)
        return Double(count) * perIteration
    }
    #expect(nanoseconds >= 20_000_000)
    #expect(Double(iterations) * perIteration == nanoseconds)
    // Aims 20 % above the target: no more than 1.25 × the minimum needed.
    #expect(Double(iterations) <= (20_000_000 / perIteration).rounded(.up) * 1.25)
    // Starts at one and never grows more than tenfold a step.
    #expect(calls.first == 1)
    for (previous, next) in zip(calls, calls.dropFirst()) { #expect(next > previous && next <= previous * 10) }
    // Every try but the last fell short.
    #expect(calls.dropLast().allSatisfy { Double($0) * perIteration < 20_000_000 })
}

@Test func calibrationOfASlowOperationIsOneIteration() {
    var calls = 0
    let (iterations, _) = Calibration.iterations(minimumNanoseconds: 20_000_000) { count in
        calls += 1
        return Double(count) * 150_000_000   // 150 ms per message
    }
    #expect(iterations == 1)
    #expect(calls == 1)
}

@Test func calibrationWithAClockThatReadsZeroGrowsTenfold() {
    var calls: [Int] = []
    let (iterations, _) = Calibration.iterations(minimumNanoseconds: 1_000, maximumIterations: 100_000) { count in
        calls.append(count)
        return count >= 10_000 ? 2_000 : 0   // a coarse clock: nothing, then a jump
    }
    #expect(calls == [1, 10, 100, 1_000, 10_000])
    #expect(iterations == 10_000)
}

@Test func calibrationStopsAtTheIterationCap() {
    let (iterations, _) = Calibration.iterations(minimumNanoseconds: 1e9, maximumIterations: 500) { Double($0) }
    #expect(iterations == 500)
}

@Test func calibrationCopesWithNoisyTimings() {
    // Timings that jump around (a shared machine): it still ends at or above the minimum.
    var generator = 12345 as UInt64
    let (_, nanoseconds) = Calibration.iterations(minimumNanoseconds: 5_000_000) { count in
        generator = generator &* 6364136223846793005 &+ 1442695040888963407
        let noise = 0.5 + Double(generator >> 11) / Double(1 << 53)   // 0.5…1.5
        return Double(count) * 3_000 * noise
    }
    #expect(nanoseconds >= 5_000_000)
}
