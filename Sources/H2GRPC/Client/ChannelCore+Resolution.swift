import Dispatch
import POSIXSupport

/// `dns:///` targets resolved again: every `resolveInterval`, and soon after a connection
/// to one of their addresses fails (or a call finds no address), never more than once per
/// `minimumResolveSpacing`. getaddrinfo blocks, so it runs on a global queue and the
/// answer comes back to the loop. New addresses join the round robin; addresses no
/// longer there are retired (their calls in flight finish, then the connection closes).
/// A resolution that fails, or finds nothing, keeps the addresses in use.
extension ChannelCore {
    func scheduleResolution() {
        guard !closed, targets.contains(where: \.target.reResolves) else { return }
        resolveTimer = loop.schedule(at: configuration.resolveInterval.deadline(from: MonotonicClock.now())) { [weak self] in
            guard let self, !self.closed else { return }
            for index in self.targets.indices where self.targets[index].target.reResolves { self.resolve(targetIndex: index) }
            self.scheduleResolution()
        }
    }

    /// A connection to `endpoint` failed or was lost: its target may have moved.
    func addressFailed(_ endpoint: Endpoint) {
        guard let index = targets.firstIndex(where: { $0.target.description == endpoint.target.description }) else { return }
        resolveSoon(targetIndex: index)
    }

    /// Every `dns:///` target, soon (a call found no address).
    func resolveSoon() {
        for index in targets.indices { resolveSoon(targetIndex: index) }
    }

    private func resolveSoon(targetIndex index: Int) {
        let state = targets[index]
        guard !closed, state.target.reResolves, !state.isResolving, state.earlyResolution == nil else { return }
        let earliest = state.resolvedAt &+ UInt64(configuration.minimumResolveSpacing.saturatingNanoseconds)
        if state.resolvedAt == 0 || MonotonicClock.now() >= earliest {
            resolve(targetIndex: index)
            return
        }
        state.earlyResolution = loop.schedule(at: earliest) { [weak self] in
            guard let self else { return }
            self.targets[index].earlyResolution = nil
            self.resolve(targetIndex: index)
        }
    }

    private func resolve(targetIndex index: Int) {
        let state = targets[index]
        guard !closed, !state.isResolving else { return }
        state.isResolving = true
        state.resolvedAt = MonotonicClock.now()
        state.earlyResolution?.cancel()
        state.earlyResolution = nil
        let target = state.target
        let core = LoopBound(self, loop: loop)
        DispatchQueue.global().async {
            let result: Result<[SocketAddress], RPCError>
            do throws(RPCError) { result = .success(try target.resolve()) } catch { result = .failure(error) }
            core.loop.execute { core.value.resolved(targetIndex: index, result, initial: false) }
        }
    }

    /// A resolution's answer: the target's addresses become exactly these.
    func resolved(targetIndex index: Int, _ result: Result<[SocketAddress], RPCError>, initial: Bool) {
        let state = targets[index]
        state.isResolving = false
        if initial { state.resolvedAt = MonotonicClock.now() }
        guard !closed else { return }
        let target = state.target
        let addresses: [SocketAddress]
        switch result {
        case .failure(let error):
            if state.lastError != error.message {
                state.lastError = error.message
                configuration.events?(.resolutionFailed(target: target.description, cause: error.message))
            }
            return
        case .success(let resolved):
            state.lastError = nil
            addresses = resolved
        }
        let current = endpoints.filter { $0.target.description == target.description }
        let wanted = Set(addresses.map(\.description))
        for endpoint in current where !wanted.contains(endpoint.description) {
            endpoints.removeAll { $0 === endpoint }
            endpoint.retire()
            configuration.events?(.removed(address: endpoint.description, target: target.description))
        }
        let known = Set(current.map(\.description))
        for address in addresses where !known.contains(address.description) {
            let endpoint = Endpoint(address: address, target: target, backoff: configuration.backoff,
                                    events: configuration.events)
            endpoints.append(endpoint)
            if !initial { configuration.events?(.added(address: endpoint.description, target: target.description)) }
            checkHealth(endpoint)
        }
    }
}
