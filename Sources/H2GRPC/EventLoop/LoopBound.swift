/// A value confined to one event loop, carried across threads (as swift-nio's
/// `NIOLoopBound`): it may travel anywhere, but it is read and written only on its
/// loop's thread, which every access checks. This is what lets loop-confined state
/// (connections, streams, calls) go without locks and without `@unchecked Sendable`.
struct LoopBound<Value>: @unchecked Sendable {  // safe: every access to `storage` checks `loop.inEventLoop`
    let loop: EventLoop
    private var storage: Value

    /// Binds a value made on the loop.
    init(_ value: Value, loop: EventLoop) {
        precondition(loop.inEventLoop, "LoopBound created off its loop \(loop.name)")
        self.loop = loop
        storage = value
    }

    /// Binds a value made elsewhere and handed over whole: `sending` makes the compiler
    /// check that the caller keeps no other reference to it.
    init(handingOver value: sending Value, to loop: EventLoop) {
        self.loop = loop
        storage = value
    }

    var value: Value {
        get {
            precondition(loop.inEventLoop, "LoopBound value read off its loop \(loop.name)")
            return storage
        }
        set {
            precondition(loop.inEventLoop, "LoopBound value written off its loop \(loop.name)")
            storage = newValue
        }
    }
}
