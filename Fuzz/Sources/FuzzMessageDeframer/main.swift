// gRPC's length-prefixed message deframer (H2GRPC MessageDeframer).
// Input: byte 0 picks the receive limit (low 3 bits) and how many times the stream
// repeats (2^(bits 3-5), so the buffer compaction past 64 KiB is reached); byte 1
// the number of split points (low 4 bits) and the stream's grpc-encoding (bit 4: gzip,
// else bit 5: deflate, else none), then 2 bytes each; the rest is the stream.
// Checks:
// - fed in fuzzer-chosen pieces, the deframer gives exactly what it gives for the
//   whole stream at once: the same messages, the same error, the same pending bytes;
// - both equal a direct reading of the specification (PROTOCOL-HTTP2.md);
// - framing the messages again (MessageFramer) gives back the stream's consumed
//   prefix, and each message framed alone deframes to itself;
// - with an encoding, compressed messages are decompressed: pieces and the whole
//   still agree, and no message given out passes the limit (a zip bomb stops there).
import FuzzSupport
@_spi(Fuzzing) import H2GRPC

let limits = [0, 1, 5, 16, 100, 1000, 65536, 4 * 1024 * 1024]

struct Outcome: Equatable {
    var messages: [[UInt8]] = []
    var failure: MessageDeframer.Failure?
    /// Bytes held after the last message, when nothing failed.
    var pending = 0
}

/// Appends each piece and drains every complete message after it.
func deframe(_ pieces: [ArraySlice<UInt8>], limit: Int, encoding: String? = nil) -> Outcome {
    var deframer = MessageDeframer(maximumMessageLength: limit)
    deframer.messageEncoding = encoding
    var outcome = Outcome()
    do {
        for piece in pieces {
            try deframer.append(Array(piece))
            while let message = try deframer.next() { outcome.messages.append(message) }
        }
    } catch {
        outcome.failure = error
        return outcome
    }
    outcome.pending = deframer.pendingByteCount
    return outcome
}

/// The specification, read directly: flag byte, 4-byte big-endian length, message.
func specification(_ stream: [UInt8], limit: Int) -> Outcome {
    var outcome = Outcome()
    var offset = 0
    while stream.count - offset >= 5 {
        let flag = stream[offset]
        if flag > 1 { outcome.failure = .badFlag(flag); return outcome }
        if flag == 1 { outcome.failure = .compressed(encoding: nil); return outcome }
        let length = stream[offset + 1..<offset + 5].reduce(0) { $0 << 8 | Int($1) }
        if length > limit { outcome.failure = .tooLarge(length: length, limit: limit); return outcome }
        guard stream.count - offset - 5 >= length else { break }
        outcome.messages.append(Array(stream[offset + 5..<offset + 5 + length]))
        offset += 5 + length
    }
    outcome.pending = stream.count - offset
    return outcome
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzz(_ start: UnsafeRawPointer, _ count: Int) -> CInt {
    let input = Array(UnsafeRawBufferPointer(start: start, count: count))
    guard input.count >= 2 else { return 0 }
    let limit = limits[Int(input[0] & 7)]
    let repeats = 1 << Int((input[0] >> 3) & 7)
    let splitCount = Int(input[1] & 15)
    guard input.count >= 2 + 2 * splitCount else { return 0 }
    let data = input[(2 + 2 * splitCount)...]
    var stream: [UInt8] = []
    stream.reserveCapacity(data.count * repeats)
    for _ in 0..<repeats { stream.append(contentsOf: data) }

    var cuts = (0..<splitCount).map { index in
        (Int(input[2 + 2 * index]) | Int(input[3 + 2 * index]) << 8) * repeats % (stream.count + 1)
    }
    cuts.sort()
    var pieces: [ArraySlice<UInt8>] = []
    var previous = 0
    for cut in cuts + [stream.count] {
        pieces.append(stream[previous..<cut])  // empty pieces too: append([]) must be harmless
        previous = cut
    }

    let encoding: String? = input[1] & 0x10 != 0 ? "gzip" : input[1] & 0x20 != 0 ? "deflate" : nil
    if let encoding {
        let whole = deframe([stream[...]], limit: limit, encoding: encoding)
        let split = deframe(pieces, limit: limit, encoding: encoding)
        guard split == whole else {
            fuzzFailure("\(encoding), split at \(cuts) (limit \(limit)): \(split.messages.count) messages, \(String(describing: split.failure)); whole: \(whole.messages.count), \(String(describing: whole.failure)); stream \(shown(stream))")
        }
        guard whole.messages.allSatisfy({ $0.count <= limit }) else {
            fuzzFailure("\(encoding): a message of \(whole.messages.map(\.count).max() ?? 0) bytes passed the limit \(limit)")
        }
        return 0
    }
    let whole = deframe([stream[...]], limit: limit)
    let split = deframe(pieces, limit: limit)
    let expected = specification(stream, limit: limit)
    guard whole == expected else {
        fuzzFailure("whole stream (limit \(limit)) deframes to \(whole.messages.count) messages, \(String(describing: whole.failure)), pending \(whole.pending); the specification says \(expected.messages.count), \(String(describing: expected.failure)), pending \(expected.pending); stream \(shown(stream))")
    }
    guard split == whole else {
        fuzzFailure("split at \(cuts) (limit \(limit)): \(split.messages.count) messages, \(String(describing: split.failure)), pending \(split.pending); whole: \(whole.messages.count), \(String(describing: whole.failure)), pending \(whole.pending); stream \(shown(stream))")
    }

    var reframed: [UInt8] = []
    for message in whole.messages { MessageFramer.appendFrame(message, to: &reframed) }
    guard reframed[...] == stream.prefix(reframed.count) else {
        fuzzFailure("reframing \(whole.messages.count) messages does not give the stream's prefix back: \(shown(reframed)) vs \(shown(stream))")
    }
    let message = Array(data)
    let single = deframe([MessageFramer.frame(message)[...]], limit: message.count)
    guard single.messages == [message], single.failure == nil, single.pending == 0 else {
        fuzzFailure("frame then deframe of \(shown(message)) gives \(single.messages.map { shown($0) }), \(String(describing: single.failure))")
    }
    return 0
}
