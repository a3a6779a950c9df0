// A whole gRPC server connection fed arbitrary bytes. The outliers backend
// (pb.Outliers, health, reflection: what `outliers backend` serves) runs once in
// this process on 127.0.0.1; each input goes over a new loopback connection after
// the HTTP/2 client preface, so the fuzzer starts at the frame layer. The client
// half-closes and reads until the server closes (a server that holds a half-closed
// connection open for 5 s is a finding). Every 100 inputs a real Detect call must
// still answer [5] for the article's example, and the process must hold no more
// descriptors than after the first inputs.
import Dispatch
import FuzzSupport
import H2GRPC
import OutliersProto
import OutliersService
import SwiftProtobuf
import Glibc

/// The server and a client for the liveness check, made on the first input.
final class Harness: Sendable {
    let backend: OutliersBackend
    let port: Int
    let client: GRPCChannel

    init() {
        var configuration = GRPCServerConfiguration()
        configuration.host = "127.0.0.1"
        configuration.port = 0
        configuration.threads = 1
        // Small enough that the fuzzer can reach RESOURCE_EXHAUSTED with a short input.
        configuration.maximumReceiveMessageLength = 64 * 1024
        do {
            backend = try OutliersBackend(configuration: configuration)
            try backend.start()
            port = backend.server.port
            client = try GRPCChannel(targets: ["127.0.0.1:\(port)"])
        } catch {
            fuzzFailure("cannot start the backend: \(error)")
        }
    }

    /// A real unary Detect call over a fresh channel's connection.
    func detectStillAnswers() {
        var request = Pb_OutliersRequest()
        request.metrics = [1, 2, 100, 1, 3, 200, 1].map { value in
            var metric = Pb_Metric()
            metric.value = value
            return metric
        }
        let bytes: [UInt8]
        do { bytes = try request.serializedBytes() } catch { fuzzFailure("cannot serialize: \(error)") }
        let done = DispatchSemaphore(value: 0)
        let answer = Answer()
        client.unary(path: "/pb.Outliers/Detect", request: bytes, timeout: .seconds(5)) { result in
            answer.set(result)
            done.signal()
        }
        guard done.wait(timeout: .now() + 10) == .success else { fuzzFailure("Detect did not complete in 10 s") }
        switch answer.get() {
        case .success(let response):
            let indices = (try? Pb_OutliersResponse(serializedBytes: response.message))?.indices
            guard indices == [5] else { fuzzFailure("Detect answered \(String(describing: indices)), not [5]") }
        case .failure(let error):
            fuzzFailure("Detect failed after fuzzing: \(error)")
        case nil:
            fuzzFailure("no answer")
        }
    }
}

final class Answer: @unchecked Sendable {
    private let lock = NSLockLike()
    private var result: Result<GRPCResponse, RPCError>?
    func set(_ value: Result<GRPCResponse, RPCError>) { lock.locked { result = value } }
    func get() -> Result<GRPCResponse, RPCError>? { lock.locked { result } }
}

/// A pthread mutex, to avoid Foundation for one lock.
final class NSLockLike: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    init() { pthread_mutex_init(&mutex, nil) }
    func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }
}

let harness = Harness()
nonisolated(unsafe) var leakCheck = DescriptorLeakCheck(interval: 100)
nonisolated(unsafe) var inputCount = 0
let preface = Array("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".utf8)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = preface + Array(UnsafeRawBufferPointer(start: start, count: count))
    let result = bytes.withUnsafeBytes { exchange(port: harness.port, $0, halfClose: true, timeoutMilliseconds: 5000) }
    guard result.closedByServer else {
        fuzzFailure("the server kept a half-closed connection open for 5 s after \(shown(bytes))")
    }
    inputCount += 1
    if inputCount % 100 == 0 { harness.detectStillAnswers() }
    leakCheck.afterInput()
    return 0
}
