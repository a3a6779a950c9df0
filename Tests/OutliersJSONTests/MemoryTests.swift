import CJansson
import Detection
import Foundation
import Glibc
import OutliersProto
import SwiftProtobuf
import Synchronization
import Testing
@testable import OutliersJSON

/// Live jansson blocks while the counting allocator is installed (in the exit test's
/// process only).
private let janssonLiveBlocks = Atomic<Int>(0)

@Suite struct Memory {
    @Test func tenThousandDecodesAndFailures() throws {
        let body = Array(#"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"value":1}]}"#.utf8)
        let bad = Array(#"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"valu":1}]}"#.utf8)
        let broken = Array(#"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"value":1}"#.utf8)
        for _ in 0..<10_000 {
            #expect(try JSONCodec.decodeRequest(body).metrics.count == 2)
            #expect(try transcode(body).count == 35)
            #expect(throws: JSONCodecError.self) { try transcode(bad) }
            #expect(throws: JSONCodecError.self) { try JSONCodec.decodeRequest(bad) }
            #expect(throws: JSONCodecError.self) { try JSONCodec.decodeRequest(broken) }
        }
    }

    @Test func decodesOnManyThreadsAtOnce() async throws {
        var generator = SplitMix64(seed: 5)
        let requests = (0..<16).map { _ in RoundTrips.randomRequest(&generator) }
        let bodies = requests.map { JSONCodec.encodeRequest($0) }
        let expected: [[UInt8]] = try requests.map { try $0.serializedBytes() }
        let results = await withTaskGroup(of: (Int, Bool).self) { group in
            for index in 0..<bodies.count {
                let body = bodies[index]
                let wire = expected[index]
                group.addTask {
                    var ok = true
                    for _ in 0..<200 {
                        ok = ok && (try? transcode(body)) == wire
                        ok = ok && (try? JSONCodec.decodeRequest(body).serializedBytes()) == wire
                    }
                    return (index, ok)
                }
            }
            return await group.reduce(into: [Int: Bool]()) { $0[$1.0] = $1.1 }
        }
        #expect(results.count == bodies.count && results.values.allSatisfy { $0 })
    }

    /// jansson's allocator hook counts the blocks alive; every decode, success or error,
    /// must give all of its tree back (a leaked tree per call would be thousands of
    /// blocks). In a process of its own (an exit test): `json_set_alloc_funcs` swaps a
    /// process-wide hook that every decoding test reads, in this target and in the
    /// others that share the test process, so swapping it here would race with them.
    /// The child is alone with the hook, so it counts every thread's blocks.
    @Test func janssonTreesAreFreedOnEveryPath() async {
        await #expect(processExitsWith: .success) {
            json_set_alloc_funcs({ size in
                janssonLiveBlocks.add(1, ordering: .relaxed)
                return malloc(size)
            }, { pointer in
                if pointer != nil { janssonLiveBlocks.subtract(1, ordering: .relaxed) }
                free(pointer)
            })
            var problems: [String] = []
            let before = janssonLiveBlocks.load(ordering: .relaxed)
            let good = Array(#"{"metrics":[{"time":"2020-05-22T14:13:11Z","name":"CPU","value":97.3},{"value":1}]}"#.utf8)
            for _ in 0..<1_000 {
                if (try? JSONCodec.decodeRequest(good).metrics.count) != 2 { problems.append("the good body did not decode to 2 metrics") }
                for bad in [#"{"metrics":[{"valu":1}]}"#, #"{"metrics":[{"value":1}"#, #"[1,{"value":2}]"#, #"{"metrics":[],"x":1}"#]
                where failure(bad) == nil {
                    problems.append("\(bad) was accepted")
                }
                if (try? good.withUnsafeBytes({ raw in try JSONCodec.transcodeWithJansson(raw) })) == nil {
                    problems.append("the good body did not transcode")
                }
            }
            let drift = janssonLiveBlocks.load(ordering: .relaxed) - before
            if drift != 0 { problems.append("\(drift) jansson blocks still alive after 6,000 decodes") }
            // Issues recorded here are reported by the parent; the exit status fails the test
            // even where they were not.
            #expect(problems.isEmpty, "\(Set(problems).sorted().joined(separator: "; "))")
            exit(problems.isEmpty ? EXIT_SUCCESS : EXIT_FAILURE)
        }
    }
}
