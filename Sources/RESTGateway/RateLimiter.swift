import H2GRPC
import POSIXSupport
import Synchronization

/// At most `perSecond` events a second pass; the rest are counted.
final class RateLimiter: Sendable {
    private let perSecond: Int
    private let window = Mutex<(start: UInt64, passed: Int, suppressed: Int)>((0, 0, 0))

    init(perSecond: Int) { self.perSecond = perSecond }

    /// nil when the event is suppressed; else how many were suppressed before it.
    func admit() -> Int? {
        let now = MonotonicClock.now()
        return window.withLock { window -> Int? in
            if now - window.start >= 1_000_000_000 {
                window.start = now
                window.passed = 0
            }
            guard window.passed < perSecond else {
                window.suppressed += 1
                return nil
            }
            window.passed += 1
            defer { window.suppressed = 0 }
            return window.suppressed
        }
    }
}
