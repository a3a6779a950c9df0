// The fast wire reader for requests (OutliersRequestValues.decodeRequest) against
// swift-protobuf: the reader may decline any bytes, but whenever it answers,
// swift-protobuf must decode the same bytes to the same values, in order, double
// for double by bit pattern, and to the same options (absent, or the same message,
// compared as bytes). And no crash on any bytes.
import FuzzSupport
import OutliersProto
import SwiftProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let fast = OutliersRequestValues.decodeRequest(bytes) else { return 0 }
    let request: Pb_OutliersRequest
    do {
        request = try Pb_OutliersRequest(serializedBytes: Array(bytes))
    } catch {
        fuzzFailure("the fast reader read \(fast.values.count) values from \(shown(bytes)), swift-protobuf refuses it: \(error)")
    }
    let reference = request.metrics.map(\.value.bitPattern)
    guard fast.values.map(\.bitPattern) == reference else {
        fuzzFailure("values differ for \(shown(bytes)):\n fast \(fast.values.map(\.bitPattern))\n swift-protobuf \(reference)")
    }
    guard (fast.options != nil) == request.hasOptions,
          (try? fast.options?.serializedBytes()) as [UInt8]?? == (try? (request.hasOptions ? request.options : nil)?.serializedBytes()) as [UInt8]?? else {
        fuzzFailure("options differ for \(shown(bytes)):\n fast \(String(describing: fast.options))\n swift-protobuf \(request.hasOptions ? "\(request.options)" : "none")")
    }
    return 0
}
