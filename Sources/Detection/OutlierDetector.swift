/// The article's rule: a value is an outlier when it lies more than `threshold`
/// population standard deviations (ddof = 0) from the mean, strictly.
///
/// The statistics reproduce numpy's arithmetic step for step (`data.mean()`,
/// `data.std()`, `np.abs(data - mean) > t * std`), so the indices equal numpy's on
/// the same float64 data, values on the boundary and large offsets included.
public struct OutlierDetector: Sendable {
    /// How many standard deviations away counts as an outlier. 2 in the article.
    public let threshold: Double

    public init(threshold: Double = 2) {
        precondition(threshold.isFinite && threshold >= 0, "threshold must be finite and >= 0")
        self.threshold = threshold
    }

    /// Ascending indices of the outliers. Empty input gives no indices.
    public func outliers(in values: UnsafeBufferPointer<Double>) throws(NonFiniteValue) -> [Int32] {
        let statistics = try Statistics(of: values)
        let limit = threshold * statistics.standardDeviation
        let mean = statistics.mean
        var indices: [Int32] = []
        for i in values.indices where abs(values[i] - mean) > limit {
            indices.append(Int32(truncatingIfNeeded: i))
        }
        return indices
    }

    public func outliers(in values: [Double]) throws(NonFiniteValue) -> [Int32] {
        try values.withUnsafeBufferPointer { buffer throws(NonFiniteValue) in
            try outliers(in: buffer)
        }
    }
}

/// A NaN or an infinity, which has no place in a mean: rejected with its index.
public struct NonFiniteValue: Error, Equatable, CustomStringConvertible {
    public let index: Int
    public let value: Double

    public init(index: Int, value: Double) {
        self.index = index
        self.value = value
    }

    public var description: String {
        let name = value.isNaN ? "NaN" : (value < 0 ? "-Infinity" : "Infinity")
        return "value at index \(index) is \(name); values must be finite numbers"
    }
}
