import ZlibCompression

/// gRPC's length-prefixed messages (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"):
/// a 1-byte compressed flag, a 4-byte big-endian length, then the message. DATA
/// frame boundaries have nothing to do with message boundaries, so the reader
/// accepts its input split in any way and keeps only what it has not yet framed.
/// Public for the fuzz package only (`@_spi(Fuzzing) import H2GRPC`).
///
/// A message with the compressed flag is decompressed when the stream's grpc-encoding
/// is gzip or deflate, the receive limit applying to both its compressed and its
/// decompressed size.
@_spi(Fuzzing) public struct MessageDeframer: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        /// The length prefix announces more than the receive limit.
        case tooLarge(length: Int, limit: Int)
        /// The compressed flag is set; `encoding` is the stream's `grpc-encoding` (nil:
        /// none), which we cannot decode: we accept identity only.
        case compressed(encoding: String?)
        /// The flag byte is neither 0 nor 1.
        case badFlag(UInt8)
        /// A compressed message decompresses to more than the receive limit.
        case tooLargeAfterDecompression(limit: Int)
        /// A compressed message is not valid data of its encoding.
        case undecompressable(encoding: String, reason: String)

        /// How the call fails.
        public var rpcError: RPCError {
            switch self {
            case .tooLarge(let length, let limit):
                // grpc-go's wording, which users search for.
                return RPCError(code: .resourceExhausted, message: "grpc: received message larger than max (\(length) vs. \(limit))")
            case .compressed(let encoding):
                // grpc-go's answers and wording. Without an encoding the sender broke the
                // protocol (INTERNAL); with one we lack, PROTOCOL-HTTP2.md asks UNIMPLEMENTED.
                guard let encoding, !encoding.isEmpty, encoding != "identity" else {
                    return RPCError(code: .internalError, message: "grpc: compressed flag set with identity or empty encoding")
                }
                return RPCError(code: .unimplemented, message: "grpc: Decompressor is not installed for grpc-encoding \"\(encoding)\"")
            case .badFlag(let flag):
                return RPCError(code: .internalError, message: "invalid compressed flag \(flag) in message prefix")
            case .tooLargeAfterDecompression(let limit):
                return RPCError(code: .resourceExhausted, message: "grpc: received message after decompression larger than max (\(limit))")
            case .undecompressable(let encoding, let reason):
                return RPCError(code: .internalError, message: "grpc: failed to decompress the received message (\(encoding)): \(reason)")
            }
        }
    }

    public let maximumMessageLength: Int
    /// The stream's `grpc-encoding` header, for the status of a compressed message.
    public var messageEncoding: String?
    /// The first bytes of a prefix that has not arrived whole.
    private var prefix: [UInt8] = []
    /// The length of the message whose prefix has arrived, while its bytes arrive.
    private var expectedLength: Int?
    /// That message has the compressed flag (and the stream an encoding we read).
    private var compressed = false
    /// The bytes of that message so far, reserved to its length at once: a message
    /// is copied once from the DATA frames into its own array, which `next` hands out
    /// as it is (no copy out of a shared buffer, no regrowth as frames arrive).
    private var message: [UInt8] = []
    /// Complete messages not yet taken by `next`, oldest at `readyIndex`.
    private var ready: [[UInt8]] = []
    private var readyIndex = 0
    /// A prefix that failed after complete messages that came before it: thrown once
    /// those have been taken, as the stream read in order says.
    private var failure: Failure?

    public init(maximumMessageLength: Int) {
        self.maximumMessageLength = maximumMessageLength
    }

    /// Bytes received but not yet taken as messages by `next`.
    public var pendingByteCount: Int {
        var count = prefix.count + (expectedLength == nil ? 0 : 5 + message.count)
        for index in readyIndex..<ready.count { count += 5 + ready[index].count }
        return count
    }

    /// Appends received bytes. Each length prefix is checked as soon as it is whole,
    /// so an oversized message is refused before it is buffered.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        var rest = bytes[...]
        while failure == nil && !rest.isEmpty {
            if let length = expectedLength {
                let taken = rest.prefix(length - message.count)
                message.append(contentsOf: UnsafeRawBufferPointer(rebasing: taken))
                rest = rest[taken.endIndex...]
                if message.count == length { completeMessage() }
            } else {
                let taken = rest.prefix(5 - prefix.count)
                prefix.append(contentsOf: UnsafeRawBufferPointer(rebasing: taken))
                rest = rest[taken.endIndex...]
                if prefix.count == 5 { startMessage() }
            }
        }
        if let failure, readyIndex == ready.count { throw failure }
    }

    public mutating func append(_ bytes: [UInt8]) throws(Failure) {
        let result = bytes.withUnsafeBytes { raw in Result { () throws(Failure) in try self.append(raw) } }
        try result.get()
    }

    /// The next complete message, if one has arrived.
    public mutating func next() throws(Failure) -> [UInt8]? {
        guard readyIndex < ready.count else {
            if let failure { throw failure }
            return nil
        }
        let next = ready[readyIndex]
        ready[readyIndex] = []
        readyIndex += 1
        if readyIndex == ready.count {
            ready.removeAll(keepingCapacity: true)
            readyIndex = 0
        }
        return next
    }

    /// The prefix is whole: validate it and make room for its message.
    private mutating func startMessage() {
        let flag = prefix[0]
        let length = Int(prefix[1]) << 24 | Int(prefix[2]) << 16 | Int(prefix[3]) << 8 | Int(prefix[4])
        if flag > 1 {
            failure = .badFlag(flag)
        } else if flag == 1 && messageEncoding.flatMap(ZlibCoding.init(name:)) == nil {
            failure = .compressed(encoding: messageEncoding)
        } else if length > maximumMessageLength {
            failure = .tooLarge(length: length, limit: maximumMessageLength)
        }
        guard failure == nil else { return }
        prefix.removeAll(keepingCapacity: true)
        compressed = flag == 1
        expectedLength = length
        message = []
        message.reserveCapacity(length)
        if length == 0 { completeMessage() }
    }

    private mutating func completeMessage() {
        defer {
            message = []
            expectedLength = nil
        }
        guard compressed, let encoding = messageEncoding, let coding = ZlibCoding(name: encoding) else {
            ready.append(message)
            return
        }
        do {
            ready.append(try Zlib.decompress(message, from: coding, limit: maximumMessageLength))
        } catch .tooLarge {
            failure = .tooLargeAfterDecompression(limit: maximumMessageLength)
        } catch {
            failure = .undecompressable(encoding: encoding, reason: error.description)
        }
    }
}

/// Public for the fuzz package only (`@_spi(Fuzzing) import H2GRPC`).
@_spi(Fuzzing) public enum MessageFramer {
    /// The 5-byte prefix and the message, uncompressed.
    public static func frame(_ message: [UInt8]) -> [UInt8] {
        var framed = [UInt8]()
        framed.reserveCapacity(5 + message.count)
        appendFrame(message, to: &framed)
        return framed
    }

    public static func appendFrame(_ message: [UInt8], compressed: Bool = false, to output: inout [UInt8]) {
        output.append(contentsOf: prefix(length: message.count, compressed: compressed))
        output.append(contentsOf: message)
    }

    /// The 5-byte prefix of a message of `length` bytes (as sent: compressed, when it is).
    public static func prefix(length: Int, compressed: Bool = false) -> [UInt8] {
        precondition(length >= 0 && length <= Int(UInt32.max), "a gRPC message of \(length) bytes")
        let length = UInt32(length)
        return [compressed ? 1 : 0, UInt8(truncatingIfNeeded: length >> 24), UInt8(truncatingIfNeeded: length >> 16),
                UInt8(truncatingIfNeeded: length >> 8), UInt8(truncatingIfNeeded: length)]
    }
}
