import POSIXSupport

/// Client-side health checking (grpc's health-checking.md, by polling `Check` rather than
/// holding a `Watch` stream open): every `healthCheckInterval`, each address not backing
/// off is asked `grpc.health.v1.Health/Check` for the whole server (service ""), on its
/// own connection. Anything but SERVING takes the address out of the round robin until a
/// Check says SERVING again; UNIMPLEMENTED (no health service) leaves it to its
/// connection; a Check that fails otherwise (the connection, a deadline) changes nothing:
/// connection failures have their own backoff.
extension ChannelCore {
    static let healthCheckPath = "/grpc.health.v1.Health/Check"

    func scheduleHealthChecks() {
        guard !closed, let interval = configuration.healthCheckInterval else { return }
        healthTimer = loop.schedule(at: interval.deadline(from: MonotonicClock.now())) { [weak self] in
            guard let self, !self.closed else { return }
            for endpoint in self.endpoints { self.checkHealth(endpoint) }
            self.scheduleHealthChecks()
        }
    }

    func checkHealth(_ endpoint: Endpoint) {
        guard !closed, let interval = configuration.healthCheckInterval, !endpoint.healthCheckInFlight,
              !endpoint.isRetired else { return }
        if case .backingOff = endpoint.health { return }
        endpoint.healthCheckInFlight = true
        let checked = LoopBound(endpoint, loop: loop)
        // No longer than the interval, so that checks never pile up, and at most 5 s.
        let timeout = min(interval, .seconds(5))
        let call = ClientCall(path: Self.healthCheckPath, message: [], metadata: [],
                              deadline: timeout.deadline(from: MonotonicClock.now()),
                              maximumReceiveMessageLength: 1024) { result in
            let endpoint = checked.value
            endpoint.healthCheckInFlight = false
            switch result {
            case .success(let response):
                endpoint.healthChecked(HealthCheckAnswer.serving(response.message))
            case .failure(let error) where error.code == .unimplemented:
                endpoint.healthChecked(.noHealthService)
            case .failure:
                break
            }
        }
        call.pinned = endpoint
        start(call)
    }
}

/// A `grpc.health.v1.HealthCheckResponse`, read without a protobuf library: field 1,
/// `status`, a varint enum (UNKNOWN 0, SERVING 1, NOT_SERVING 2, SERVICE_UNKNOWN 3);
/// other fields are skipped.
enum HealthCheckAnswer {
    static func serving(_ message: [UInt8]) -> Endpoint.Serving {
        guard let status = status(message) else { return .notServing("a malformed HealthCheckResponse") }
        switch status {
        case 1: return .serving
        case 0: return .notServing("UNKNOWN")
        case 2: return .notServing("NOT_SERVING")
        case 3: return .notServing("SERVICE_UNKNOWN")
        default: return .notServing("status \(status)")
        }
    }

    /// The status field (0 when absent, as proto3 says); nil for bytes that are not a message.
    static func status(_ bytes: [UInt8]) -> UInt64? {
        var index = 0
        var status: UInt64 = 0
        func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while index < bytes.count, shift < 64 {
                let byte = bytes[index]
                index += 1
                value |= UInt64(byte & 0x7F) << shift
                if byte & 0x80 == 0 { return value }
                shift += 7
            }
            return nil
        }
        while index < bytes.count {
            guard let key = varint(), key >> 3 != 0 else { return nil }
            switch key & 7 {
            case 0:
                guard let value = varint() else { return nil }
                if key >> 3 == 1 { status = value }
            case 1, 5:
                let width = key & 7 == 1 ? 8 : 4
                guard bytes.count - index >= width else { return nil }
                index += width
            case 2:
                guard let length = varint(), length <= UInt64(bytes.count - index) else { return nil }
                index += Int(length)
            default:
                return nil
            }
        }
        return status
    }
}
