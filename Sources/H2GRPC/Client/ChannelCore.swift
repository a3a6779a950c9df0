import POSIXSupport

/// The channel's state, confined to its event loop: its targets, their addresses
/// (`Endpoint`s, which change as `dns:///` targets resolve again, see
/// ChannelCore+Resolution.swift, and leave rotation while their health check says so, see
/// ChannelCore+HealthChecks.swift), and the round robin over them.
final class ChannelCore {
    let loop: EventLoop
    let configuration: GRPCClientConfiguration
    /// Every address of every target, those in rotation and those not (unhealthy).
    /// Retired ones (gone from their target's resolution) are removed.
    var endpoints: [Endpoint] = []
    let targets: [TargetState]
    private var nextIndex = 0
    private(set) var closed = false
    var resolveTimer: TimerHandle?
    var healthTimer: TimerHandle?

    /// One target and its resolutions.
    final class TargetState {
        let target: ChannelTarget
        /// When it was last resolved (monotonic ns; 0: never since the channel started).
        var resolvedAt: UInt64 = 0
        var isResolving = false
        /// A resolution is scheduled sooner than the next periodic one (after a failure).
        var earlyResolution: TimerHandle?
        /// Why the last resolution failed, told once per change.
        var lastError: String?

        init(target: ChannelTarget) { self.target = target }
    }

    init(loop: EventLoop, targets: [ChannelTarget], configuration: GRPCClientConfiguration) {
        self.loop = loop
        self.targets = targets.map(TargetState.init)
        self.configuration = configuration
    }

    /// On the loop, once: the addresses resolved in `GRPCChannel.init` join, and the
    /// timers of re-resolution and health checks start.
    func started(resolved: [Result<[SocketAddress], RPCError>]) {
        precondition(loop.inEventLoop, "ChannelCore.started off its loop")
        for (index, result) in resolved.enumerated() {
            self.resolved(targetIndex: index, result, initial: true)
        }
        scheduleResolution()
        scheduleHealthChecks()
    }

    func start(_ call: ClientCall) {
        guard !call.completed else { return }
        if closed {
            call.fail(.unavailable, "channel closed")
            return
        }
        if call.timer == nil, let deadline = call.deadline {
            call.timer = loop.schedule(at: deadline) { [weak self, weak call] in
                guard self != nil, let call, !call.completed else { return }
                // Completed first: the RST_STREAM below closes the stream, and its
                // CANCEL must not become the call's status.
                let connection = call.connection
                call.fail(.deadlineExceeded, "deadline exceeded")
                connection?.reset(call)
            }
        }
        let endpoint: Endpoint
        if let pinned = call.pinned {
            // A health check: that address or none.
            guard !pinned.isRetired else {
                call.fail(.unavailable, "\(pinned) left its target's addresses")
                return
            }
            if case .backingOff = pinned.health {
                call.fail(.unavailable, pinned.lastError ?? "\(pinned) is backing off")
                return
            }
            endpoint = pinned
        } else {
            // A health Check asked while every address is out of rotation goes to one of
            // them anyway: its answer (NOT_SERVING) is what the caller wants to hear.
            guard let picked = pick() ?? (call.path == Self.healthCheckPath ? pick(includingUnhealthy: true) : nil) else {
                call.fail(.unavailable, noAddressReason())
                resolveSoon()
                return
            }
            endpoint = picked
        }
        if let connection = endpoint.connection, connection.isUsable {
            connection.start(call)
            return
        }
        switch ClientConnection.connect(to: endpoint, loop: loop, channel: self, configuration: configuration) {
        case .success(let connection):
            endpoint.adopt(connection)
            connection.start(call)
        case .failure(let error):
            retryOrFail(call, error)
        }
    }

    /// Round robin over the addresses in rotation: a ready connection first, then one
    /// being made, then an address whose backoff has passed (a new connection). nil when
    /// every one is backing off, unhealthy, or there is none.
    private func pick(includingUnhealthy: Bool = false) -> Endpoint? {
        let count = endpoints.count
        guard count > 0 else { return nil }
        for wanted in 0..<3 {
            for offset in 0..<count {
                let endpoint = endpoints[(nextIndex + offset) % count]
                guard endpoint.isInRotation || (includingUnhealthy && !endpoint.isRetired) else { continue }
                let matches: Bool
                switch (wanted, endpoint.health) {
                case (0, .ready), (1, .connecting), (2, .idle): matches = true
                default: matches = false
                }
                if matches {
                    nextIndex = (nextIndex + offset + 1) % count
                    return endpoint
                }
            }
        }
        return nil
    }

    /// Why `pick` found nothing, in words.
    private func noAddressReason() -> String {
        if endpoints.isEmpty {
            let failures = targets.compactMap(\.lastError)
            return failures.isEmpty ? "no backend address" : failures.joined(separator: "; ")
        }
        let unhealthy = endpoints.compactMap { endpoint -> String? in
            if case .notServing(let status) = endpoint.serving { return "\(endpoint): \(status)" }
            return nil
        }
        if unhealthy.count == endpoints.count {
            return "every backend's health check says it is not serving (\(unhealthy.joined(separator: ", ")))"
        }
        let reasons = Set(endpoints.filter(\.isInRotation).compactMap(\.lastError)).sorted().joined(separator: "; ")
        return reasons.isEmpty ? "no backend available" : reasons
    }

    /// A call that never reached a handler goes to another connection, while
    /// retries and the deadline allow.
    func retryOrFail(_ call: ClientCall, _ error: RPCError) {
        guard !call.completed else { return }
        if call.cancelRequested {
            call.fail(.cancelled, "call cancelled")
            return
        }
        guard call.pinned == nil, call.attempts < configuration.transparentRetries else {
            call.complete(.failure(error))
            return
        }
        call.resetForRetry()
        // Only retry when some address can take it now; otherwise fail fast.
        if endpoints.contains(where: { endpoint in
            guard endpoint.isInRotation else { return false }
            if case .backingOff = endpoint.health { return false }
            return true
        }) {
            start(call)
        } else {
            call.complete(.failure(error))
        }
    }

    func cancel(_ call: ClientCall) {
        guard !call.completed else { return }
        call.cancelRequested = true
        if let connection = call.connection {
            connection.reset(call)
        }
        call.fail(.cancelled, "call cancelled")
    }

    func closeAll() {
        closed = true
        resolveTimer?.cancel()
        healthTimer?.cancel()
        for target in targets { target.earlyResolution?.cancel() }
        for endpoint in endpoints { endpoint.connection?.close() }
    }
}
