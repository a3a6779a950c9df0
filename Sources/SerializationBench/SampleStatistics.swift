import Glibc

/// Order statistics over timings.
public enum SampleStatistics {
    /// The `p`-quantile (0…1) of `values`, by linear interpolation between the
    /// closest ranks (numpy's default, R's type 7): for n sorted values the rank is
    /// `(n - 1) * p`. Empty input gives NaN.
    public static func percentile(_ values: [Double], _ p: Double) -> Double {
        percentile(sorted: values.sorted(), p)
    }

    /// `percentile` on values already in ascending order.
    public static func percentile(sorted values: [Double], _ p: Double) -> Double {
        guard !values.isEmpty else { return .nan }
        let clamped = min(max(p, 0), 1)
        let rank = Double(values.count - 1) * clamped
        let lower = Int(rank.rounded(.down))
        let upper = min(lower + 1, values.count - 1)
        let fraction = rank - Double(lower)
        return values[lower] + (values[upper] - values[lower]) * fraction
    }

    /// The middle value; the mean of the two middle ones for an even count.
    public static func median(_ values: [Double]) -> Double {
        percentile(values, 0.5)
    }
}

/// Median and spread of one operation's per-message times over the rounds.
public struct TimingSummary: Sendable, Equatable {
    /// Nanoseconds per operation, one sample per round.
    public let samples: [Double]
    public let median: Double
    public let p10: Double
    public let p90: Double
    public let minimum: Double
    public let maximum: Double

    public init(samples: [Double]) {
        let sorted = samples.sorted()
        self.samples = samples
        median = SampleStatistics.percentile(sorted: sorted, 0.5)
        p10 = SampleStatistics.percentile(sorted: sorted, 0.1)
        p90 = SampleStatistics.percentile(sorted: sorted, 0.9)
        minimum = sorted.first ?? .nan
        maximum = sorted.last ?? .nan
    }
}

/// How many iterations make one timed round last at least the minimum time.
public enum Calibration {
    /// Starts at one iteration and grows (at most tenfold a step, aiming 20 % above
    /// the target so the next try usually lands) until `measure(n)`, the
    /// nanoseconds `n` iterations take, reaches `minimumNanoseconds`. The runs it
    /// makes on the way double as warm-up. Returns the count and its last timing.
    public static func iterations(minimumNanoseconds: Double, maximumIterations: Int = 1 << 30,
                                  measure: (Int) throws -> Double) rethrows -> (iterations: Int, nanoseconds: Double) {
        var count = 1
        while true {
            let elapsed = try measure(count)
            if elapsed >= minimumNanoseconds || count >= maximumIterations { return (count, elapsed) }
            var next: Int
            if elapsed <= 0 || !elapsed.isFinite {
                next = count &* 10
            } else {
                let estimate = (Double(count) * minimumNanoseconds / elapsed * 1.2).rounded(.up)
                next = estimate >= Double(Int.max / 2) ? Int.max / 2 : Int(estimate)
            }
            next = min(max(next, count + 1), count &* 10, maximumIterations)
            count = next
        }
    }
}
