import ZlibCompression

/// gzip for the report's compressed sizes, through the project's `ZlibCompression`
/// (Foundation has no compression on Linux).
public enum Gzip {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// The gzip member (RFC 1952) of `bytes` at `level` (zlib's default, 6, is what
    /// `gzip -6`, nginx's `gzip_comp_level 6` and Go's `gzip.DefaultCompression` use).
    public static func compress(_ bytes: [UInt8], level: Int32 = 6) throws(Failure) -> [UInt8] {
        guard (0...9).contains(level) else { throw Failure(description: "zlib: compression level \(level) is not 0...9") }
        return Zlib.compress(bytes, as: .gzip, level: level)
    }

    /// The bytes of a gzip member (for checks; not timed).
    public static func decompress(_ bytes: [UInt8]) throws(Failure) -> [UInt8] {
        do {
            return try Zlib.decompress(bytes, from: .gzip, limit: Int(Int32.max))
        } catch {
            throw Failure(description: "gzip data \(error)")
        }
    }
}
