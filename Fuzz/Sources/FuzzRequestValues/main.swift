// The fast wire reader for request values (OutliersRequestValues.decode) against
// swift-protobuf: the reader may decline any bytes, but whenever it answers,
// swift-protobuf must decode the same bytes to the same values, in order, double
// for double by bit pattern. And no crash on any bytes.
import FuzzSupport
import OutliersProto
import SwiftProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let bytes = UnsafeRawBufferPointer(start: start, count: count)
    guard let fast = OutliersRequestValues.decode(bytes) else { return 0 }
    let request: Pb_OutliersRequest
    do {
        request = try Pb_OutliersRequest(serializedBytes: Array(bytes))
    } catch {
        fuzzFailure("the fast reader read \(fast.count) values from \(shown(bytes)), swift-protobuf refuses it: \(error)")
    }
    let reference = request.metrics.map(\.value.bitPattern)
    guard fast.map(\.bitPattern) == reference else {
        fuzzFailure("values differ for \(shown(bytes)):\n fast \(fast.map(\.bitPattern))\n swift-protobuf \(reference)")
    }
    return 0
}
