import H2GRPC
import OutliersProto
import SwiftProtobuf
import Synchronization

/// `grpc.health.v1.Health`: Check and Watch. "" (the whole server) and each
/// registered service answer SERVING until shutdown begins; other names are
/// NOT_FOUND from Check and SERVICE_UNKNOWN from Watch, whose stream stays open.
public final class HealthService: Sendable {
    public static let serviceName = "grpc.health.v1.Health"
    typealias ServingStatus = Grpc_Health_V1_HealthCheckResponse.ServingStatus

    private struct State {
        var statuses: [String: ServingStatus]
        var watchers: [ObjectIdentifier: (service: String, writer: ServerStreamWriter)] = [:]
    }
    private let state: Mutex<State>

    public init(services: [String]) {
        var statuses: [String: ServingStatus] = ["": .serving]
        for service in services { statuses[service] = .serving }
        state = Mutex(State(statuses: statuses))
    }

    /// Sets every known service's status and tells the watchers.
    public func setAll(serving: Bool) {
        let status: ServingStatus = serving ? .serving : .notServing
        let notify = state.withLock { state in
            for key in state.statuses.keys { state.statuses[key] = status }
            return state.watchers.values.filter { state.statuses[$0.service] != nil }.map(\.writer)
        }
        let answer = Result { () throws(RPCError) in try Self.response(status) }
        for writer in notify { writer.send { () throws(RPCError) in try answer.get() } }
    }

    /// Ends every Watch stream (server shutdown): they would otherwise hold the drain.
    public func finishWatchers() {
        let writers = state.withLock { state in
            let writers = state.watchers.values.map(\.writer)
            state.watchers.removeAll()
            return writers
        }
        for writer in writers { writer.fail(RPCError(code: .unavailable, message: "server shutting down")) }
    }

    public var handlers: [String: RPCHandler] {
        [
            MethodPath.healthCheck: .unary { [self] request, _ throws(RPCError) in
                let service = try Self.serviceName(in: request)
                guard let status = state.withLock({ $0.statuses[service] }) else {
                    throw RPCError(code: .notFound, message: "unknown service \"\(service)\"")
                }
                return try Self.response(status)
            },
            MethodPath.healthWatch: .streaming { [self] _, writer in
                WatchObserver(health: self, writer: writer)
            },
        ]
    }

    fileprivate func startWatching(_ observer: WatchObserver, service: String) {
        let status = state.withLock { state -> ServingStatus in
            state.watchers[ObjectIdentifier(observer)] = (service, observer.writer)
            return state.statuses[service] ?? .serviceUnknown
        }
        observer.writer.send { () throws(RPCError) in try Self.response(status) }
    }

    fileprivate func stopWatching(_ observer: WatchObserver) {
        _ = state.withLock { $0.watchers.removeValue(forKey: ObjectIdentifier(observer)) }
    }

    static func serviceName(in request: [UInt8]) throws(RPCError) -> String {
        try Grpc_Health_V1_HealthCheckRequest.decodedRequest(request).service
    }

    static func response(_ status: ServingStatus) throws(RPCError) -> [UInt8] {
        var response = Grpc_Health_V1_HealthCheckResponse()
        response.status = status
        return try response.serializedAnswer("health response")
    }
}

/// One Watch call: the first request names the service; updates follow until the
/// client cancels or the server shuts down.
private final class WatchObserver: ServerStreamObserver {
    let health: HealthService
    let writer: ServerStreamWriter
    private var started = false

    init(health: HealthService, writer: ServerStreamWriter) {
        self.health = health
        self.writer = writer
    }

    func received(_ message: [UInt8]) {
        guard !started else { return }
        started = true
        do {
            health.startWatching(self, service: try HealthService.serviceName(in: message))
        } catch {
            writer.fail(error)
        }
    }

    func inputEnded() {
        if !started { writer.fail(RPCError(code: .internalError, message: "grpc: no request message for Watch")) }
    }

    func cancelled() { health.stopWatching(self) }
}
