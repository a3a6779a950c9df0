import POSIXSupport

/// One resolved address of a channel target, and the connection to it.
/// Confined to the channel's event loop.
final class Endpoint: CustomStringConvertible {
    enum Health { case idle, connecting, ready, backingOff(until: UInt64) }

    /// What the address's grpc.health.v1 Check last said (`GRPCClientConfiguration.healthCheckInterval`).
    enum Serving: Equatable {
        /// Not asked yet, or health checks are off: in rotation.
        case unknown
        case serving
        /// NOT_SERVING, UNKNOWN or SERVICE_UNKNOWN (the status's name): out of rotation.
        case notServing(String)
        /// Check is UNIMPLEMENTED (the article's server, a plain grpc-go server): judged by
        /// its connection alone, in rotation.
        case noHealthService
    }

    let address: SocketAddress
    let target: ChannelTarget
    /// `host:port` as the user wrote it: the `:authority` of every call.
    var authority: String { target.authority }
    /// The authority's host: the name a TLS server's certificate must carry.
    var host: String { target.host }
    var description: String { address.description }
    private let backoff: GRPCClientConfiguration.Backoff
    private let events: (@Sendable (ChannelEvent) -> Void)?
    /// Whether the address was last reported reachable (nil: nothing reported yet).
    private var reportedReachable: Bool?
    private(set) var connection: ClientConnection?
    private(set) var consecutiveFailures = 0
    private(set) var retryAt: UInt64 = 0
    private(set) var lastError: String?
    private(set) var serving = Serving.unknown
    /// A health check of this address is out.
    var healthCheckInFlight = false
    /// Left its target's addresses: out of rotation, its calls in flight finish.
    private(set) var isRetired = false

    init(address: SocketAddress, target: ChannelTarget, backoff: GRPCClientConfiguration.Backoff,
         events: (@Sendable (ChannelEvent) -> Void)? = nil) {
        self.address = address
        self.target = target
        self.backoff = backoff
        self.events = events
    }

    var health: Health {
        if let connection, connection.isUsable {
            return connection.state == .ready ? .ready : .connecting
        }
        if consecutiveFailures > 0 && MonotonicClock.now() < retryAt { return .backingOff(until: retryAt) }
        return .idle
    }

    /// Whether round robin may pick it: not retired, and not reported unhealthy.
    var isInRotation: Bool {
        if isRetired { return false }
        if case .notServing = serving { return false }
        return true
    }

    func adopt(_ connection: ClientConnection) { self.connection = connection }

    func connectionSucceeded() {
        consecutiveFailures = 0
        lastError = nil
        // Told only as the end of an unreachable spell: a first connection that works is
        // what everyone expects.
        if reportedReachable == false { events?(.reachable(address: description)) }
        reportedReachable = true
    }

    func connectionFailed(_ connection: ClientConnection, message: String) {
        if self.connection === connection { self.connection = nil }
        consecutiveFailures += 1
        lastError = message
        if reportedReachable != false { events?(.unreachable(address: description, cause: message)) }
        reportedReachable = false
        retryAt = backoff.delay(afterFailures: consecutiveFailures).deadline(from: MonotonicClock.now())
    }

    /// GOAWAY or exhausted stream ids: calls in flight finish there; new calls get a new connection.
    func connectionDraining(_ connection: ClientConnection) {
        if self.connection === connection { self.connection = nil }
    }

    func connectionClosed(_ connection: ClientConnection) {
        if self.connection === connection { self.connection = nil }
    }

    /// A health check's answer; a change is told once.
    func healthChecked(_ now: Serving) {
        guard now != serving else { return }
        let was = serving
        serving = now
        switch now {
        case .notServing(let status):
            events?(.notServing(address: description, status: status))
        case .serving, .noHealthService:
            if case .notServing = was { events?(.serving(address: description)) }
        case .unknown:
            break
        }
    }

    /// The address left its target's resolution: no new calls; those in flight finish on
    /// its connection, which then closes.
    func retire() {
        isRetired = true
        let draining = connection
        connection = nil
        draining?.retire()
    }
}
