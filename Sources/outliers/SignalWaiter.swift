import Dispatch
import Glibc

/// Blocks until SIGINT or SIGTERM arrives, so a command can drain and exit 0.
enum SignalWaiter {
    static func waitForTermination() -> Int32 {
        signal(SIGINT, SIG_IGN)
        signal(SIGTERM, SIG_IGN)
        let received = DispatchSemaphore(value: 0)
        nonisolated(unsafe) var which: Int32 = 0
        let queue = DispatchQueue(label: "signals")
        let sources = [SIGINT, SIGTERM].map { number in
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler {
                which = number
                received.signal()
            }
            source.resume()
            return source
        }
        received.wait()
        for source in sources { source.cancel() }
        return queue.sync { which }
    }
}
