// JSON → protobuf, differentially. PlainBodyScanner may decline any body (jansson
// then decides), but whenever it answers, jansson must accept the same body and
// write the same bytes; those bytes must be swift-protobuf's serialization of what
// decodeRequest builds, and transcodeRequest must give the answer of the path it
// took. Any disagreement stops the run with both results.
import FuzzSupport
@_spi(Fuzzing) import OutliersJSON
import OutliersProto
import SwiftProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let body = UnsafeRawBufferPointer(start: start, count: count)
    let scanned = FuzzingSeam.scannerTranscode(body)
    let jansson = Result { () throws(JSONCodecError) -> [UInt8] in try FuzzingSeam.janssonTranscode(body) }
    let public_ = Result { () throws(JSONCodecError) -> [UInt8] in try JSONCodec.transcodeRequest(body) }
    let decoded = Result { () throws(JSONCodecError) -> Pb_OutliersRequest in try JSONCodec.decodeRequest(body) }

    if let scanned {
        switch jansson {
        case .success(let bytes) where bytes == scanned: break
        case .success(let bytes):
            fuzzFailure("scanner and jansson disagree on \(shown(body)):\n scanner \(shown(scanned))\n jansson \(shown(bytes))")
        case .failure(let error):
            fuzzFailure("scanner accepted what jansson refuses, \(shown(body)):\n scanner \(shown(scanned))\n jansson \(error)")
        }
    }
    // transcodeRequest is the scanner's answer when there is one, else jansson's.
    switch (public_, scanned, jansson) {
    case (.success(let bytes), .some(let expected), _) where bytes == expected: break
    case (.success(let bytes), .none, .success(let expected)) where bytes == expected: break
    case (.failure(let error), .none, .failure(let expected)) where error == expected: break
    default:
        fuzzFailure("transcodeRequest \(public_) is neither path's answer for \(shown(body)): scanner \(scanned.map { shown($0) } ?? "declined"), jansson \(jansson)")
    }
    // The jansson transcoder and the message decoder walk the same tree: same verdict,
    // same error, and bytes equal to swift-protobuf's serialization of the message.
    switch (jansson, decoded) {
    case (.success(let bytes), .success(let request)):
        let serialized: [UInt8]
        do { serialized = try request.serializedBytes() } catch { fuzzFailure("swift-protobuf cannot serialize \(request): \(error)") }
        guard serialized == bytes else {
            fuzzFailure("jansson transcoding differs from swift-protobuf's serialization for \(shown(body)):\n transcoded \(shown(bytes))\n serialized \(shown(serialized))")
        }
        let reparsed: Pb_OutliersRequest
        do { reparsed = try Pb_OutliersRequest(serializedBytes: bytes) } catch { fuzzFailure("transcoded bytes do not parse: \(error), \(shown(bytes))") }
        guard reparsed.metrics.count == request.metrics.count,
              zip(reparsed.metrics, request.metrics).allSatisfy(sameMetric) else {
            fuzzFailure("transcoded bytes parse to other metrics for \(shown(body))")
        }
    case (.failure(let a), .failure(let b)) where a == b: break
    default:
        fuzzFailure("transcodeWithJansson \(jansson) and decodeRequest \(decoded) disagree on \(shown(body))")
    }
    return 0
}

/// Field by field, the double by bit pattern (NaN is not equal to itself).
func sameMetric(_ a: Pb_Metric, _ b: Pb_Metric) -> Bool {
    a.hasTime == b.hasTime && a.time.seconds == b.time.seconds && a.time.nanos == b.time.nanos
        && a.name == b.name && a.value.bitPattern == b.value.bitPattern
}
