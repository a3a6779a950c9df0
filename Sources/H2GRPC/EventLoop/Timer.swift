/// Cancels a scheduled timer; cancelling after it ran does nothing.
final class TimerHandle {
    fileprivate var task: (() -> Void)?
    fileprivate init(task: @escaping () -> Void) { self.task = task }
    func cancel() { task = nil }
}

/// A binary min-heap of deadlines; cancelled timers stay until they surface.
struct TimerHeap {
    private var entries: [(deadline: UInt64, handle: TimerHandle)] = []

    @discardableResult
    mutating func insert(deadline: UInt64, task: @escaping () -> Void) -> TimerHandle {
        let handle = TimerHandle(task: task)
        entries.append((deadline, handle))
        var child = entries.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard entries[child].deadline < entries[parent].deadline else { break }
            entries.swapAt(child, parent)
            child = parent
        }
        return handle
    }

    /// epoll_wait's timeout: -1 when idle, else the milliseconds to the next deadline (rounded up).
    func millisecondsUntilNext(now: UInt64) -> Int32 {
        guard let first = entries.first else { return -1 }
        guard first.deadline > now else { return 0 }
        return Int32(min((first.deadline - now + 999_999) / 1_000_000, 60_000))
    }

    /// The tasks of every timer due by `now`, removed from the heap. The loop runs them
    /// after this returns: a task that schedules a timer (a periodic one, again) must not
    /// insert while the heap is being mutated (Swift's exclusivity rule traps).
    mutating func takeExpired(now: UInt64) -> [() -> Void] {
        var due: [() -> Void] = []
        while let first = entries.first, first.deadline <= now {
            removeFirst()
            if let task = first.handle.task {
                first.handle.task = nil
                due.append(task)
            }
        }
        return due
    }

    private mutating func removeFirst() {
        let last = entries.removeLast()
        guard !entries.isEmpty else { return }
        entries[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1, right = left + 1
            var smallest = parent
            if left < entries.count && entries[left].deadline < entries[smallest].deadline { smallest = left }
            if right < entries.count && entries[right].deadline < entries[smallest].deadline { smallest = right }
            if smallest == parent { break }
            entries.swapAt(parent, smallest)
            parent = smallest
        }
    }
}
