import Foundation
import Synchronization
import CEpoll
import Glibc
import POSIXSupport

/// One epoll instance on one thread. Everything registered with a loop is confined
/// to it: handlers, timers and the state they touch are only used on its thread, so
/// none of them need locks. Other threads reach a loop through `execute`, which
/// queues a task and wakes the loop through an eventfd.
///
/// `@unchecked Sendable`: `handlers` and `timers` are touched only on the loop's thread
/// (the methods that do assert `inEventLoop`), `queue` only under `queueLock`, and
/// `thread` only by the owner that starts and stops the loop.
final class EventLoop: @unchecked Sendable {  // safe: loop state is asserted on the loop, the queue is locked (above)
    let name: String
    private let epollFD: Int32
    private let wakeFD: Int32
    private var handlers: [Int32: EventHandler] = [:]
    /// Tasks from other threads, guarded by `queueLock`. An NSLock (a pthread mutex), not
    /// Synchronization.Mutex: under contention Mutex locks and unlocks in the kernel
    /// (futex FUTEX_LOCK_PI/FUTEX_UNLOCK_PI, called from libswiftSynchronization, which is
    /// not instrumented), so ThreadSanitizer sees no order between the threads and reports
    /// this array, and every object handed over through it, as raced (seen in
    /// ClientServerTests.manyConcurrentCallsOnOneConnection). TSan intercepts
    /// pthread_mutex_lock/unlock; the locking itself is the same.
    private let queueLock = NSLock()
    private var queue: [@Sendable () -> Void] = []
    private var timers = TimerHeap()
    private let stopping = Atomic<Bool>(false)
    private var thread: Thread?
    private let finished = DispatchSemaphore(value: 0)
    /// pthread id of the loop thread, for `inEventLoop`.
    private let loopThreadID = Atomic<UInt>(0)
    /// Scratch space for socket reads: every socket of this loop reads into it in turn.
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 256 * 1024, alignment: 16)

    /// The loop's read buffer, for its own thread only (its sockets take turns).
    var readBuffer: UnsafeMutableRawBufferPointer {
        assert(inEventLoop, "EventLoop.readBuffer off the loop")
        return scratch
    }

    init(name: String) throws(SystemError) {
        self.name = name
        epollFD = try Syscall.run("epoll_create1") { epoll_create1(Int32(EPOLL_CLOEXEC)) }
        do {
            wakeFD = try Syscall.run("eventfd") { eventfd(0, Int32(EFD_NONBLOCK | EFD_CLOEXEC)) }
        } catch {
            Syscall.close(epollFD)
            throw error
        }
        do {
            try control(EPOLL_CTL_ADD, wakeFD, events: EPOLLIN.rawValue)
        } catch {
            Syscall.close(wakeFD)
            Syscall.close(epollFD)
            throw error
        }
    }

    deinit {
        Syscall.close(wakeFD)
        Syscall.close(epollFD)
        scratch.deallocate()
    }

    var inEventLoop: Bool { loopThreadID.load(ordering: .acquiring) == UInt(pthread_self()) }

    /// Starts the loop's thread.
    func start() {
        let thread = Thread { [self] in
            loopThreadID.store(UInt(pthread_self()), ordering: .releasing)
            run()
            finished.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        self.thread = thread
        thread.start()
    }

    /// Asks the loop to stop after the current iteration and waits for its thread.
    /// Never on the loop itself: it would wait for its own end.
    func stopAndWait() {
        precondition(!inEventLoop, "EventLoop.stopAndWait called on its own loop \(name)")
        stopping.store(true, ordering: .releasing)
        wake()
        if thread != nil {
            finished.wait()
            // The thread's closure holds the loop: let both go, so the loop's epoll
            // and eventfd descriptors and its read buffer are freed.
            thread = nil
        }
    }

    /// Runs `task` on the loop's thread: queued, and the loop woken.
    func execute(_ task: @escaping @Sendable () -> Void) {
        queueLock.lock()
        queue.append(task)
        let wasEmpty = queue.count == 1
        queueLock.unlock()
        if wasEmpty { wake() }
    }

    // MARK: On the loop's thread only.

    func register(_ fd: Int32, events: UInt32, handler: EventHandler) throws(SystemError) {
        assert(inEventLoop, "EventLoop.register off the loop")
        try control(EPOLL_CTL_ADD, fd, events: events)
        handlers[fd] = handler
    }

    /// Changes the events watched on `fd`, which must be registered.
    func modify(_ fd: Int32, events: UInt32) throws(SystemError) {
        assert(inEventLoop, "EventLoop.modify off the loop")
        try control(EPOLL_CTL_MOD, fd, events: events)
    }

    /// Stops watching `fd`, registered or not (a connection that failed before it was
    /// registered is closed the same way).
    func unregister(_ fd: Int32) {
        assert(inEventLoop, "EventLoop.unregister off the loop")
        guard handlers.removeValue(forKey: fd) != nil else { return }
        do {
            try control(EPOLL_CTL_DEL, fd, events: 0)
        } catch {
            // Only a descriptor closed while registered fails here: a bug of ours.
            assertionFailure("\(error)")
        }
    }

    private func control(_ operation: Int32, _ fd: Int32, events: UInt32) throws(SystemError) {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        try Syscall.run("epoll_ctl") { epoll_ctl(epollFD, operation, fd, &event) }
    }

    /// Runs `task` on this loop at `deadline` (monotonic nanoseconds) unless cancelled.
    @discardableResult
    func schedule(at deadline: UInt64, _ task: @escaping () -> Void) -> TimerHandle {
        assert(inEventLoop, "EventLoop.schedule off the loop")
        return timers.insert(deadline: deadline, task: task)
    }

    private func wake() {
        var one: UInt64 = 1
        do {
            // wouldBlock: the counter is full, so the loop is being woken anyway.
            _ = try Syscall.nonBlocking("write eventfd") { write(wakeFD, &one, 8) }
        } catch {
            preconditionFailure("cannot wake event loop \(name): \(error)")
        }
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 256)
        while !stopping.load(ordering: .acquiring) {
            let timeout = timers.millisecondsUntilNext(now: MonotonicClock.now())
            let count = events.withUnsafeMutableBufferPointer {
                epoll_wait(epollFD, $0.baseAddress, Int32($0.count), timeout)
            }
            if count < 0 {
                // EINTR: a signal; anything else means the epoll descriptor is broken.
                precondition(errno == EINTR, "epoll_wait on loop \(name): \(SystemError(call: "epoll_wait", code: errno))")
                continue
            }
            for i in 0..<Int(count) {
                let fd = events[i].data.fd
                if fd == wakeFD {
                    drainWakeups()
                    continue
                }
                handlers[fd]?.handleEvents(events[i].events)
            }
            runQueuedTasks()
            for task in timers.takeExpired(now: MonotonicClock.now()) { task() }
        }
        runQueuedTasks()
    }

    private func drainWakeups() {
        var value: UInt64 = 0
        do {
            // wouldBlock: another wake-up was read already this turn.
            _ = try Syscall.nonBlocking("read eventfd") { read(wakeFD, &value, 8) }
        } catch {
            preconditionFailure("event loop \(name): \(error)")
        }
    }

    private func runQueuedTasks() {
        // Tasks may queue more tasks; those run on the next turn, after I/O.
        queueLock.lock()
        let tasks = queue
        queue.removeAll(keepingCapacity: true)
        queueLock.unlock()
        for task in tasks { task() }
    }
}
