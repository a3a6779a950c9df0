/// SplitMix64 (Steele, Lea and Flood, 2014): a tiny seeded generator that Swift,
/// Python and the fixtures script all implement the same way, so test data made
/// on one side can be rebuilt bit for bit on the other.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform double in [0, 1): the top 53 bits.
    public mutating func nextUnit() -> Double {
        Double(next() >> 11) * 0x1p-53
    }
}

/// The article's demo data: 1000 CPU readings, normally below 40 %, with three
/// spikes planted at 7, 113 and 835 (its Go client's `dummyData`).
public enum DemoData {
    public static let defaultSeed: UInt64 = 2020
    public static let plantedOutliers: [(index: Int, value: Double)] = [(7, 97.3), (113, 92.1), (835, 93.2)]

    /// `count` values uniform in [0, 40), then the planted spikes where they fit.
    public static func values(count: Int = 1000, seed: UInt64 = defaultSeed) -> [Double] {
        var generator = SplitMix64(seed: seed)
        var values = (0..<count).map { _ in 0 + 40 * generator.nextUnit() }
        for (index, value) in plantedOutliers where index < count {
            values[index] = value
        }
        return values
    }
}
