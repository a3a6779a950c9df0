import CZlib

/// The two zlib codings HTTP (Content-Encoding) and gRPC (grpc-encoding) share.
public enum ZlibCoding: String, Sendable, CaseIterable {
    /// RFC 1952: a gzip member (several, one after another, for HTTP).
    case gzip
    /// RFC 1950: a zlib stream, what HTTP's `deflate` and gRPC's `deflate` mean; raw
    /// RFC 1951 data, which some HTTP clients send under that name, is read too.
    case deflate

    /// The coding of a header value naming one (any case), or nil.
    public init?(name: String) {
        self.init(rawValue: name.lowercased())
    }
}

/// Why bytes did not decompress.
public enum DecompressionError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The output would pass `limit` bytes; decompression stopped there.
    case tooLarge(limit: Int)
    /// Not valid data of the coding; zlib's words.
    case corrupt(coding: ZlibCoding, reason: String)
    /// The data ends before the stream does.
    case truncated(coding: ZlibCoding)

    public var description: String {
        switch self {
        case .tooLarge(let limit): return "decompresses to more than \(limit) bytes"
        case .corrupt(let coding, let reason): return "is not valid \(coding.rawValue) data (\(reason))"
        case .truncated(let coding): return "ends before its \(coding.rawValue) stream does"
        }
    }
}

public enum Zlib {
    /// `bytes` compressed, at zlib's default level 6 unless told (what gzip -6, nginx
    /// and Go's DefaultCompression use).
    public static func compress(_ bytes: UnsafeRawBufferPointer, as coding: ZlibCoding, level: Int32 = 6) -> [UInt8] {
        let stream = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)
        stream.initialize(to: z_stream())
        defer {
            deflateEnd(stream)
            stream.deallocate()
        }
        // windowBits 15 + 16: a gzip header and trailer; 15: zlib's.
        let status = deflateInit2_(stream, level, Z_DEFLATED, coding == .gzip ? 15 + 16 : 15, 8, Z_DEFAULT_STRATEGY,
                                   zlibVersion(), Int32(MemoryLayout<z_stream>.size))
        precondition(status == Z_OK, "zlib deflateInit2 failed: \(status)")
        let bound = Int(deflateBound(stream, UInt(bytes.count))) + 32
        return [UInt8](unsafeUninitializedCapacity: bound) { output, count in
            stream.pointee.next_in = UnsafeMutablePointer(mutating: bytes.baseAddress?.assumingMemoryBound(to: UInt8.self))
            stream.pointee.avail_in = UInt32(bytes.count)
            stream.pointee.next_out = output.baseAddress
            stream.pointee.avail_out = UInt32(output.count)
            // deflateBound is enough for one call to finish.
            let finished = deflate(stream, Z_FINISH)
            precondition(finished == Z_STREAM_END, "zlib deflate did not finish within deflateBound: \(finished)")
            count = output.count - Int(stream.pointee.avail_out)
        }
    }

    public static func compress(_ bytes: [UInt8], as coding: ZlibCoding, level: Int32 = 6) -> [UInt8] {
        bytes.withUnsafeBytes { compress($0, as: coding, level: level) }
    }

    /// The whole of `bytes` decompressed, at most `limit` bytes of output.
    public static func decompress(_ bytes: [UInt8], from coding: ZlibCoding, limit: Int) throws(DecompressionError) -> [UInt8] {
        let inflater = Inflater(coding, limit: limit)
        var output: [UInt8] = []
        let appended = bytes.withUnsafeBytes { raw in
            Result { () throws(DecompressionError) in try inflater.append(raw, to: &output) }
        }
        try appended.get()
        try inflater.finish()
        return output
    }
}

/// Decompression as the input arrives in pieces, the output bounded: a zip bomb stops
/// at `limit` bytes, whatever it would have become.
public final class Inflater {
    public let coding: ZlibCoding
    public let limit: Int
    /// zlib's state points back at the stream: it must not move, so it lives on the heap.
    private let stream: UnsafeMutablePointer<z_stream>
    private var started = false
    private var ended = false
    private var produced = 0
    /// The bytes of a deflate stream's first two, until it is known whether it has
    /// zlib's header (raw deflate has none).
    private var headerProbe: [UInt8] = []
    /// Where zlib writes before the bytes are appended to the caller's output.
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 8)

    public init(_ coding: ZlibCoding, limit: Int) {
        self.coding = coding
        self.limit = limit
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
    }

    deinit {
        if started { inflateEnd(stream) }
        stream.deallocate()
        scratch.deallocate()
    }

    /// The stream has ended (a gzip member or the zlib stream is complete).
    public var isComplete: Bool { ended }

    /// Decompresses `input`, appending to `output`.
    public func append(_ input: UnsafeRawBufferPointer, to output: inout [UInt8]) throws(DecompressionError) {
        guard !input.isEmpty else { return }
        if !started {
            if coding == .deflate && headerProbe.count + input.count < 2 {
                headerProbe.append(contentsOf: input)
                return
            }
            try start(with: input)
            if !headerProbe.isEmpty {
                let probe = headerProbe
                headerProbe = []
                let result = probe.withUnsafeBytes { raw in
                    Result { () throws(DecompressionError) in try inflate(raw, to: &output) }
                }
                try result.get()
            }
        }
        try inflate(input, to: &output)
    }

    /// The input has ended: an error unless the stream did too.
    public func finish() throws(DecompressionError) {
        guard ended else { throw .truncated(coding: coding) }
    }

    private func start(with input: UnsafeRawBufferPointer) throws(DecompressionError) {
        let windowBits: Int32
        switch coding {
        case .gzip:
            windowBits = 15 + 16
        case .deflate:
            // RFC 1950 §2.2: CM 8, and the first two bytes a multiple of 31.
            let first = headerProbe.first ?? input[0]
            let second = headerProbe.count >= 2 ? headerProbe[1] : headerProbe.count == 1 ? input[0] : input[1]
            let zlibHeader = first & 0x0F == 8 && (UInt16(first) << 8 | UInt16(second)) % 31 == 0
            windowBits = zlibHeader ? 15 : -15
        }
        guard inflateInit2_(stream, windowBits, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            throw .corrupt(coding: coding, reason: "zlib could not start")
        }
        started = true
    }

    private func inflate(_ input: UnsafeRawBufferPointer, to output: inout [UInt8]) throws(DecompressionError) {
        var rest = input[...]
        while !rest.isEmpty {
            if ended {
                // gzip: another member follows (RFC 1952 §2.2); deflate: bytes after the end.
                guard coding == .gzip else { throw .corrupt(coding: coding, reason: "bytes after the end of the stream") }
                inflateReset(stream)
                ended = false
            }
            let slice = UnsafeRawBufferPointer(rebasing: rest)
            stream.pointee.next_in = UnsafeMutablePointer(mutating: slice.baseAddress!.assumingMemoryBound(to: UInt8.self))
            stream.pointee.avail_in = UInt32(min(slice.count, Int(UInt32.max)))
            // One byte past the limit at most: enough to know it was passed.
            let room = min(scratch.count, limit - produced + 1)
            stream.pointee.next_out = scratch.baseAddress!.assumingMemoryBound(to: UInt8.self)
            stream.pointee.avail_out = UInt32(room)
            let availableIn = Int(stream.pointee.avail_in)
            let status = CZlib.inflate(stream, Z_NO_FLUSH)
            let consumed = availableIn - Int(stream.pointee.avail_in)
            let written = room - Int(stream.pointee.avail_out)
            produced += written
            if produced > limit { throw .tooLarge(limit: limit) }
            output.append(contentsOf: UnsafeRawBufferPointer(rebasing: scratch[..<written]))
            rest = rest.dropFirst(consumed)
            switch status {
            case Z_OK, Z_BUF_ERROR:
                if consumed == 0 && written == 0 { throw .corrupt(coding: coding, reason: "no progress") }
            case Z_STREAM_END:
                ended = true
            default:
                let reason = stream.pointee.msg.map { String(cString: $0) } ?? "zlib error \(status)"
                throw .corrupt(coding: coding, reason: reason)
            }
        }
    }
}
