// RFC 3339 parsing (OutliersJSON's RFC3339.check) against swift-protobuf's
// Timestamp JSON parser, the reference the module documents itself against:
// - no crash on any bytes;
// - where ours accepts, formatting the value and parsing that text gives the same
//   value, and our text is exactly what swift-protobuf writes for it;
// - on text swift-protobuf can be handed as a JSON string (no quote, backslash or
//   control byte, valid UTF-8), both accept with the same value or both refuse,
//   except for the one documented difference: offsets ±14:00 … ±23:59, which we
//   accept (RFC 3339 and Go do) and swift-protobuf refuses.
import FuzzSupport
@_spi(Fuzzing) import OutliersJSON
import SwiftProtobuf

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let text = UnsafeRawBufferPointer(start: start, count: count)
    let ours = FuzzingSeam.parseRFC3339(text).time

    if let ours {
        guard ours.seconds >= FuzzingSeam.minimumSeconds, ours.seconds <= FuzzingSeam.maximumSeconds,
              ours.nanos >= 0, ours.nanos <= 999_999_999 else {
            fuzzFailure("accepted \(shown(text)) as \(ours), outside what a Timestamp may hold")
        }
        let formatted = FuzzingSeam.formatRFC3339(seconds: ours.seconds, nanos: ours.nanos)
        let reparsed = Array(formatted.utf8).withUnsafeBytes { FuzzingSeam.parseRFC3339($0).time }
        guard let reparsed, reparsed == ours else {
            fuzzFailure("\(shown(text)) parses to \(ours), formats as \(formatted), which parses to \(String(describing: reparsed))")
        }
        let theirs: String
        do {
            theirs = try Google_Protobuf_Timestamp(seconds: ours.seconds, nanos: ours.nanos).jsonString()
        } catch {
            fuzzFailure("swift-protobuf cannot write \(ours) (from \(shown(text))): \(error)")
        }
        guard theirs == "\"\(formatted)\"" else {
            fuzzFailure("we format \(ours) as \(formatted), swift-protobuf as \(theirs)")
        }
    }

    guard isPlainJSONStringContent(text), let string = String(validating: text, as: UTF8.self) else { return 0 }
    let reference: (seconds: Int64, nanos: Int32)?
    do {
        let timestamp = try Google_Protobuf_Timestamp(jsonString: "\"\(string)\"")
        reference = (timestamp.seconds, timestamp.nanos)
    } catch {
        reference = nil
    }
    switch (ours, reference) {
    case (nil, nil): break
    case (let ours?, let reference?) where ours == reference: break
    case (.some, nil) where hasOffsetHourAbove13(text): break  // the documented difference
    default:
        fuzzFailure("RFC3339 and swift-protobuf disagree on \(shown(text)): ours \(String(describing: ours)), swift-protobuf \(String(describing: reference))")
    }
    return 0
}

/// Bytes that stand for themselves inside a JSON string literal.
func isPlainJSONStringContent(_ text: UnsafeRawBufferPointer) -> Bool {
    !text.contains { $0 < 0x20 || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\\") }
}

/// `…±HH:MM` at the end with HH from 14 to 23.
func hasOffsetHourAbove13(_ text: UnsafeRawBufferPointer) -> Bool {
    guard text.count >= 6 else { return false }
    let sign = text[text.count - 6], tens = text[text.count - 5], units = text[text.count - 4]
    guard sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-"),
          (0x30...0x39).contains(tens), (0x30...0x39).contains(units) else { return false }
    let hour = Int(tens - 0x30) * 10 + Int(units - 0x30)
    return hour >= 14 && hour <= 23
}
