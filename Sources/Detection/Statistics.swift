/// Mean and population standard deviation, computed the way numpy computes
/// `data.mean()` and `data.std()` (ddof = 0): pairwise summation of the values,
/// then pairwise summation of the squared deviations from that mean. Two passes
/// keep a large offset (1e9 plus small noise) exact where a one-pass sum of
/// squares would cancel catastrophically; the pairwise order makes the result
/// equal numpy's to the last bit.
public struct Statistics: Sendable, Equatable {
    public let count: Int
    public let mean: Double
    public let standardDeviation: Double

    /// Throws for the first non-finite value, naming its index.
    public init(of values: UnsafeBufferPointer<Double>) throws(NonFiniteValue) {
        for i in values.indices where !values[i].isFinite {
            throw NonFiniteValue(index: i, value: values[i])
        }
        count = values.count
        guard let base = values.baseAddress, count > 0 else {
            // numpy gives NaN for an empty mean; no index can be an outlier anyway.
            mean = .nan
            standardDeviation = .nan
            return
        }
        let n = Double(count)
        let mean = pairwiseSum(base, count) { $0 } / n
        self.mean = mean
        let variance = pairwiseSum(base, count) { let d = $0 - mean; return d * d } / n
        standardDeviation = variance.squareRoot()
    }

    public init(of values: [Double]) throws(NonFiniteValue) {
        self = try values.withUnsafeBufferPointer { buffer throws(NonFiniteValue) in
            try Statistics(of: buffer)
        }
    }
}

/// numpy's `pairwise_sum` for float64 (numpy/_core/src/umath/loops_utils.h.src),
/// with the summand transformed on the fly so no temporary array is allocated:
/// fewer than 8 values are added in order; up to 128 are added into 8 interleaved
/// partial sums combined as a tree; longer runs split in two at a multiple of 8.
@inline(__always)
func pairwiseSum(_ a: UnsafePointer<Double>, _ n: Int, _ f: (Double) -> Double) -> Double {
    if n < 8 {
        var sum = 0.0
        for i in 0..<n { sum += f(a[i]) }
        return sum
    } else if n <= 128 {
        var r0 = f(a[0]), r1 = f(a[1]), r2 = f(a[2]), r3 = f(a[3])
        var r4 = f(a[4]), r5 = f(a[5]), r6 = f(a[6]), r7 = f(a[7])
        var i = 8
        let end = n - n % 8
        while i < end {
            r0 += f(a[i]); r1 += f(a[i + 1]); r2 += f(a[i + 2]); r3 += f(a[i + 3])
            r4 += f(a[i + 4]); r5 += f(a[i + 5]); r6 += f(a[i + 6]); r7 += f(a[i + 7])
            i += 8
        }
        var sum = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n {
            sum += f(a[i])
            i += 1
        }
        return sum
    } else {
        var half = n / 2
        half -= half % 8
        return pairwiseSum(a, half, f) + pairwiseSum(a + half, n - half, f)
    }
}
