extension Duration {
    /// Whole nanoseconds, saturated to Int64 (a Duration holds more); negative stays negative.
    var saturatingNanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return seconds < 0 ? .min : .max }
        let (sum, sumOverflow) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        return sumOverflow ? (seconds < 0 ? .min : .max) : sum
    }

    /// Seconds as a Double, for messages and arithmetic with factors.
    var secondsDouble: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    /// A monotonic deadline `self` from `now` (MonotonicClock nanoseconds); a negative
    /// duration is now, an enormous one saturates.
    func deadline(from now: UInt64) -> UInt64 {
        now &+ UInt64(max(0, saturatingNanoseconds))
    }
}
