/// What a server connection remembers of the client's stream ids, to judge a HEADERS
/// frame on a stream that is not open (RFC 9113 §5.1, §5.1.1).
///
/// nghttp2 opens a stream only for an id above every id it has seen and otherwise ignores
/// the HEADERS frame, unless it still holds that closed stream (its source says why: after
/// a RST_STREAM of ours the client may rightly send trailers it had queued). So a client
/// that goes back to a lower id is never told it broke §5.1.1. The rules here:
///   * an id the client skipped (it opened 5 before ever using 3) can only be a new stream
///     with a lower id: connection error PROTOCOL_ERROR (§5.1.1);
///   * an id we reset: the client may not have seen our RST_STREAM yet; the frame is
///     ignored (§5.1, "closed": "MUST ignore frames ... after it has sent a RST_STREAM");
///   * any other used id is a closed stream: connection error STREAM_CLOSED (§5.1, "closed").
/// Both memories are bounded: a client that skips ids all the time, or sees thousands of
/// resets, gets STREAM_CLOSED for the oldest, still a connection error as §5.1 allows.
struct ClientStreamIDs {
    enum Verdict: Equatable {
        /// Higher than every id before: nghttp2 opens (or refuses) it.
        case newStream
        /// A stream still open on our side (trailers); nghttp2 checks the frame.
        case openStream
        /// A stream we reset: ignore what the client had already sent.
        case resetByServer
        /// Never used, below one that was: a new stream with a lower id.
        case lowerThanUsed
        /// Used and closed.
        case closed
    }

    private(set) var highest: Int32 = 0
    /// Ranges of ids the client jumped over, oldest first.
    private var skipped: [ClosedRange<Int32>] = []
    /// Ids we sent RST_STREAM on, a ring of the newest.
    private var reset: [Int32] = []
    private var resetNext = 0

    static let skippedRangeLimit = 16
    static let resetLimit = 256

    /// Judges the HEADERS frame starting on client stream `id` (odd); `isOpen`: we hold it.
    mutating func headersFrame(on id: Int32, isOpen: Bool) -> Verdict {
        if id > highest {
            let expected: Int32 = highest == 0 ? 1 : highest + 2
            if id > expected {
                if skipped.count == Self.skippedRangeLimit { skipped.removeFirst() }
                skipped.append(expected...(id - 2))
            }
            highest = id
            return .newStream
        }
        if isOpen { return .openStream }
        if reset.contains(id) { return .resetByServer }
        if skipped.contains(where: { $0.contains(id) }) { return .lowerThanUsed }
        return .closed
    }

    /// We sent RST_STREAM on `id`.
    mutating func serverReset(_ id: Int32) {
        if reset.count < Self.resetLimit {
            reset.append(id)
        } else {
            reset[resetNext] = id
            resetNext = (resetNext + 1) % Self.resetLimit
        }
    }
}
