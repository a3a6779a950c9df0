/// gRPC's length-prefixed messages (PROTOCOL-HTTP2.md, "Length-Prefixed-Message"):
/// a 1-byte compressed flag, a 4-byte big-endian length, then the message. DATA
/// frame boundaries have nothing to do with message boundaries, so the reader
/// accepts its input split in any way and keeps only what it has not yet framed.
/// Public for the fuzz package only (`@_spi(Fuzzing) import H2GRPC`).
@_spi(Fuzzing) public struct MessageDeframer: Sendable {
    public enum Failure: Error, Equatable, Sendable {
        /// The length prefix announces more than the receive limit.
        case tooLarge(length: Int, limit: Int)
        /// The compressed flag is set; `encoding` is the stream's `grpc-encoding` (nil:
        /// none), which we cannot decode: we accept identity only.
        case compressed(encoding: String?)
        /// The flag byte is neither 0 nor 1.
        case badFlag(UInt8)

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
            }
        }
    }

    public let maximumMessageLength: Int
    /// The stream's `grpc-encoding` header, for the status of a compressed message.
    public var messageEncoding: String?
    private var buffer: [UInt8] = []
    private var readIndex = 0

    public init(maximumMessageLength: Int) {
        self.maximumMessageLength = maximumMessageLength
    }

    /// Bytes received but not yet part of a complete message.
    public var pendingByteCount: Int { buffer.count - readIndex }

    /// Appends received bytes. The length prefix is checked as soon as it is
    /// complete, so an oversized message is refused before it is buffered.
    public mutating func append(_ bytes: UnsafeRawBufferPointer) throws(Failure) {
        buffer.append(contentsOf: bytes)
        try checkPrefix()
    }

    public mutating func append(_ bytes: [UInt8]) throws(Failure) {
        buffer.append(contentsOf: bytes)
        try checkPrefix()
    }

    /// The next complete message, if one has arrived.
    public mutating func next() throws(Failure) -> [UInt8]? {
        guard let length = try checkPrefix(), pendingByteCount >= 5 + length else { return nil }
        let start = readIndex + 5
        let message = Array(buffer[start..<start + length])
        readIndex = start + length
        if readIndex == buffer.count {
            buffer.removeAll(keepingCapacity: buffer.capacity <= 64 * 1024)
            readIndex = 0
        } else if readIndex > 64 * 1024 && readIndex * 2 > buffer.count {
            buffer.removeFirst(readIndex)
            readIndex = 0
        }
        return message
    }

    /// Validates the prefix of the next message; its length once the prefix is whole.
    @discardableResult
    private func checkPrefix() throws(Failure) -> Int? {
        guard pendingByteCount >= 5 else { return nil }
        let flag = buffer[readIndex]
        guard flag <= 1 else { throw .badFlag(flag) }
        guard flag == 0 else { throw .compressed(encoding: messageEncoding) }
        let length = Int(buffer[readIndex + 1]) << 24 | Int(buffer[readIndex + 2]) << 16
            | Int(buffer[readIndex + 3]) << 8 | Int(buffer[readIndex + 4])
        guard length <= maximumMessageLength else {
            throw .tooLarge(length: length, limit: maximumMessageLength)
        }
        return length
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

    public static func appendFrame(_ message: [UInt8], to output: inout [UInt8]) {
        let length = UInt32(truncatingIfNeeded: message.count)
        output.append(0)
        output.append(UInt8(truncatingIfNeeded: length >> 24))
        output.append(UInt8(truncatingIfNeeded: length >> 16))
        output.append(UInt8(truncatingIfNeeded: length >> 8))
        output.append(UInt8(truncatingIfNeeded: length))
        output.append(contentsOf: message)
    }
}
