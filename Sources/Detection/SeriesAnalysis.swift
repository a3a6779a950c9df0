/// Detection beyond the article: the z-score rule with any threshold, and two robust
/// rules a single huge spike cannot hide smaller outliers from (median absolute
/// deviation, Tukey's interquartile fences), with the numbers behind each answer.
///
/// Every rule reproduces numpy's (and scipy's) float64 arithmetic step for step, so the
/// outliers equal theirs on the same data: `OutlierDetector` for the mean and standard
/// deviation, `np.median` for medians (the mean of the two middle values for an even
/// count), and `np.percentile`'s default linear method for quartiles, including its
/// `_lerp`, which interpolates from the upper neighbour when the fraction is 0.5 or more.
/// Medians and quartiles are exact order statistics found by selection, not a sort.
public enum DetectionMethod: Sendable, Equatable, CaseIterable {
    /// `|x − mean| > k·std` (population std, numpy's `data.std()`); k = 2 by default.
    case zScore
    /// `|x − median| > k · 1.482602218505602 · MAD`, MAD the median of `|x − median|`
    /// (scipy's `median_abs_deviation(scale="normal")`); k = 3.5 by default
    /// (Iglewicz and Hoaglin).
    case medianAbsoluteDeviation
    /// `x < Q1 − k·IQR` or `x > Q3 + k·IQR`, quartiles as numpy's default
    /// `percentile`; k = 1.5 by default (Tukey).
    case interquartileRange

    /// The threshold a request's 0 stands for.
    public var defaultThreshold: Double {
        switch self {
        case .zScore: 2
        case .medianAbsoluteDeviation: 3.5
        case .interquartileRange: 1.5
        }
    }
}

/// The consistency constant of the normal distribution: 1 / Φ⁻¹(3/4).
public let normalMADScale = 1.482602218505602

/// One series' numbers: what a value must leave, `lower...upper`, to be an outlier.
public struct SeriesSummary: Sendable, Equatable {
    public var count: Int
    /// The mean (z-score) or the median (MAD, and IQR's median of the data).
    public var center: Double
    /// The standard deviation, the scaled MAD, or the IQR.
    public var spread: Double
    public var lower: Double
    public var upper: Double
}

/// An outlier of a series: its index in the series, its value and its score: the
/// z-score, the modified z-score `(x − median) / spread`, or for IQR the signed distance
/// beyond the nearer fence in IQR units. A zero spread makes the score ±infinity (only
/// MAD and IQR have outliers then: every value away from the center).
public struct ScoredOutlier: Sendable, Equatable {
    public var index: Int32
    public var value: Double
    public var score: Double
}

public struct SeriesAnalysis: Sendable, Equatable {
    public var summary: SeriesSummary
    /// Ascending by index.
    public var outliers: [ScoredOutlier]
}

extension OutlierDetector {
    /// The series' summary and its scored outliers under `method`; `threshold` is this
    /// detector's (0 is a valid threshold here; callers map a request's 0 to
    /// `method.defaultThreshold`). The z-score outliers are exactly `outliers(in:)`'s.
    public func analyze(_ values: UnsafeBufferPointer<Double>,
                        method: DetectionMethod) throws(NonFiniteValue) -> SeriesAnalysis {
        for i in values.indices where !values[i].isFinite { throw NonFiniteValue(index: i, value: values[i]) }
        guard !values.isEmpty else {
            return SeriesAnalysis(summary: SeriesSummary(count: 0, center: 0, spread: 0, lower: 0, upper: 0), outliers: [])
        }
        switch method {
        case .zScore: return try zScore(values)
        case .medianAbsoluteDeviation: return medianAbsoluteDeviation(values)
        case .interquartileRange: return interquartileRange(values)
        }
    }

    public func analyze(_ values: [Double], method: DetectionMethod) throws(NonFiniteValue) -> SeriesAnalysis {
        try values.withUnsafeBufferPointer { buffer throws(NonFiniteValue) in try analyze(buffer, method: method) }
    }

    private func zScore(_ values: UnsafeBufferPointer<Double>) throws(NonFiniteValue) -> SeriesAnalysis {
        let statistics = try Statistics(of: values)
        return symmetric(values, center: statistics.mean, spread: statistics.standardDeviation)
    }

    private func medianAbsoluteDeviation(_ values: UnsafeBufferPointer<Double>) -> SeriesAnalysis {
        var scratch = Array(values)
        let median = OrderStatistics.median(&scratch)
        for i in scratch.indices { scratch[i] = abs(values[i] - median) }
        return symmetric(values, center: median, spread: normalMADScale * OrderStatistics.median(&scratch))
    }

    /// The z-score and MAD rules alike: `|x − center| > k·spread` (numpy's expression, so
    /// the same strict comparison of the same rounded numbers), score `(x − center) / spread`.
    private func symmetric(_ values: UnsafeBufferPointer<Double>, center: Double, spread: Double) -> SeriesAnalysis {
        let limit = threshold * spread
        var outliers: [ScoredOutlier] = []
        for i in values.indices where abs(values[i] - center) > limit {
            outliers.append(ScoredOutlier(index: Int32(truncatingIfNeeded: i), value: values[i], score: (values[i] - center) / spread))
        }
        return SeriesAnalysis(summary: SeriesSummary(count: values.count, center: center, spread: spread,
                                                     lower: center - limit, upper: center + limit), outliers: outliers)
    }

    private func interquartileRange(_ values: UnsafeBufferPointer<Double>) -> SeriesAnalysis {
        var scratch = Array(values)
        let (q1, median, q3) = OrderStatistics.quartiles(&scratch)
        let iqr = q3 - q1
        let lower = q1 - threshold * iqr, upper = q3 + threshold * iqr
        var outliers: [ScoredOutlier] = []
        for i in values.indices {
            let x = values[i]
            if x < lower {
                outliers.append(ScoredOutlier(index: Int32(truncatingIfNeeded: i), value: x, score: (x - lower) / iqr))
            } else if x > upper {
                outliers.append(ScoredOutlier(index: Int32(truncatingIfNeeded: i), value: x, score: (x - upper) / iqr))
            }
        }
        return SeriesAnalysis(summary: SeriesSummary(count: values.count, center: median, spread: iqr,
                                                     lower: lower, upper: upper), outliers: outliers)
    }
}

/// Exact order statistics by selection (quickselect with a median-of-three pivot and a
/// three-way partition, falling back to sorting what is left after 64 rounds, so that
/// no input is quadratic), reordering a scratch array in place. O(n) expected.
enum OrderStatistics {
    /// numpy's `np.median`: the middle value, or the mean of the two middle ones.
    static func median(_ values: inout [Double]) -> Double {
        let n = values.count
        precondition(n > 0, "the median of nothing")
        let upper = select(&values, n / 2, in: 0..<n)
        guard n % 2 == 0 else { return upper }
        // The lower middle is the largest of what selection left below.
        let lower = values[0..<(n / 2)].max()!
        return (lower + upper) / 2
    }

    /// `np.percentile(x, 25)`, `np.median(x)` and `np.percentile(x, 75)`, the
    /// percentiles by numpy's default linear method. The ranks asked for only grow (or
    /// repeat, cached), so each selection searches above the previous one.
    static func quartiles(_ values: inout [Double]) -> (Double, Double, Double) {
        let n = values.count
        precondition(n > 0, "the quartiles of nothing")
        // Selection for ascending ranks: each later one searches only above the last.
        var cache: [Int: Double] = [:]
        var floor = 0
        func rank(_ k: Int) -> Double {
            if let known = cache[k] { return known }
            let value = select(&values, k, in: floor..<n)
            cache[k] = value
            floor = k
            return value
        }
        func percentile(_ q: Double) -> Double {
            // numpy: virtual index n·q + (1 + q·(1 − 1 − 1)) − 1, exact here (n < 2^51).
            let virtual = Double(n) * q + (1 + q * -1) - 1
            let below = Int(virtual.rounded(.down))
            let gamma = virtual - Double(below)
            let a = rank(below)
            let b = below + 1 < n ? rank(below + 1) : a
            let difference = b - a
            return gamma >= 0.5 ? b - difference * (1 - gamma) : a + difference * gamma
        }
        let q1 = percentile(0.25)
        // The center is np.median's (the mean of the middle two), which can differ in the
        // last bit from the 50th percentile's interpolation.
        let middle = n % 2 == 1 ? rank(n / 2) : (rank(n / 2 - 1) + rank(n / 2)) / 2
        let q3 = percentile(0.75)
        return (q1, middle, q3)
    }

    /// The value of rank `k` (0-based) among `values[range]`, with everything of rank
    /// below it left before it and above it after it, within `range`.
    static func select(_ values: inout [Double], _ k: Int, in range: Range<Int>) -> Double {
        precondition(range.contains(k), "rank \(k) outside \(range)")
        var low = range.lowerBound, high = range.upperBound - 1
        var budget = 64  // bad partitions allowed before the rest is sorted instead
        while low < high {
            if budget == 0 {
                values[low...high].sort()
                return values[k]
            }
            budget -= 1
            let middle = low + (high - low) / 2
            // Median of three as the pivot, moved to `high`.
            if values[middle] < values[low] { values.swapAt(middle, low) }
            if values[high] < values[low] { values.swapAt(high, low) }
            if values[middle] < values[high] { values.swapAt(middle, high) }
            let pivot = values[high]
            // Three-way partition: < pivot, == pivot, > pivot (many equal values stay linear).
            var lessEnd = low, index = low, greaterStart = high
            while index < greaterStart {
                if values[index] < pivot {
                    values.swapAt(index, lessEnd)
                    lessEnd += 1
                    index += 1
                } else if values[index] > pivot {
                    greaterStart -= 1
                    values.swapAt(index, greaterStart)
                } else {
                    index += 1
                }
            }
            values.swapAt(greaterStart, high)
            // Now [low, lessEnd) < pivot, [lessEnd, greaterStart] == pivot, (greaterStart, high] > pivot.
            if k < lessEnd {
                high = lessEnd - 1
            } else if k > greaterStart {
                low = greaterStart + 1
            } else {
                return pivot
            }
        }
        return values[k]
    }
}
