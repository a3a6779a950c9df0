/// Something an event loop watches: a socket, a listener's acceptor.
protocol EventHandler: AnyObject {
    /// Called on the loop's thread with the epoll event bits that fired.
    func handleEvents(_ events: UInt32)
}
