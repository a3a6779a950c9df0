// The decimal-to-double parser of the JSON fast path (OutliersJSON's DecimalParser:
// Clinger's fast path, Eisel–Lemire, strtod for the rest) against glibc's strtod,
// which jansson uses and whose answers the fast path must give bit for bit:
// - no crash on any bytes;
// - it accepts exactly the texts of JSON's number grammar (RFC 8259 §6), checked here
//   by a direct reading of the grammar;
// - on every text it accepts, its double has strtod's bits (NaN cannot occur).
import FuzzSupport
import Glibc
@_spi(Fuzzing) import OutliersJSON

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`, whole.
func isJSONNumber(_ bytes: UnsafeRawBufferPointer) -> Bool {
    var index = 0
    func digits() -> Int {
        let start = index
        while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
        return index - start
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: "-") { index += 1 }
    guard index < bytes.count else { return false }
    if bytes[index] == UInt8(ascii: "0") {
        index += 1
    } else if digits() == 0 {
        return false
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: ".") {
        index += 1
        guard digits() > 0 else { return false }
    }
    if index < bytes.count, bytes[index] == UInt8(ascii: "e") || bytes[index] == UInt8(ascii: "E") {
        index += 1
        if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") { index += 1 }
        guard digits() > 0 else { return false }
    }
    return index == bytes.count
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = UnsafeRawBufferPointer(start: start, count: count)
    let ours = FuzzingSeam.parseDecimal(text)
    let grammatical = isJSONNumber(text)
    guard let ours else {
        if grammatical { fuzzFailure("refused \(shown(text)), a JSON number") }
        return 0
    }
    guard grammatical else { fuzzFailure("accepted \(shown(text)), not a JSON number, as \(ours)") }
    let reference = (Array(text) + [0]).withUnsafeBufferPointer { buffer in
        buffer.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buffer.count) { strtod($0, nil) }
    }
    guard ours.bitPattern == reference.bitPattern else {
        fuzzFailure("\(shown(text)): \(ours) (bits \(String(ours.bitPattern, radix: 16))), strtod \(reference) (bits \(String(reference.bitPattern, radix: 16)))")
    }
    return 0
}
