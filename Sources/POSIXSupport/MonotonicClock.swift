import Glibc

/// Monotonic nanoseconds (CLOCK_MONOTONIC), the clock of every deadline and measurement.
public enum MonotonicClock {
    @inline(__always)
    public static func now() -> UInt64 {
        var spec = timespec()
        // CLOCK_MONOTONIC with a valid pointer cannot fail (clock_gettime(2)).
        let result = clock_gettime(CLOCK_MONOTONIC, &spec)
        assert(result == 0, "clock_gettime(CLOCK_MONOTONIC) failed")
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }
}
