import Synchronization

/// One metric family's objects, made once per label set on first use and kept
/// (swift-metrics' objects are cheap to use, not to make): `metric(for:)` takes the key
/// of a label set and makes the object only the first time.
final class LabeledMetrics<Key: Hashable & Sendable, Metric: Sendable>: Sendable {
    private let made = Mutex<[Key: Metric]>([:])

    func metric(for key: Key, make: () -> Metric) -> Metric {
        made.withLock { made in
            if let metric = made[key] { return metric }
            let metric = make()
            made[key] = metric
            return metric
        }
    }
}
