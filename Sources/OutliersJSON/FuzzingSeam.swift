/// The two transcoding paths and the RFC 3339 parser, reachable from the fuzz
/// package (Fuzz/) without `@testable import`, which needs `-enable-testing` and so
/// a debug build of this module. SPI, not API: only `@_spi(Fuzzing) import` sees it.
@_spi(Fuzzing) public enum FuzzingSeam {
    /// `PlainBodyScanner.transcode`: protobuf bytes, or nil when the scanner declines.
    public static func scannerTranscode(_ body: UnsafeRawBufferPointer) -> [UInt8]? {
        PlainBodyScanner.transcode(body)
    }

    /// `JSONCodec.transcodeWithJansson`: the path every declined body takes.
    public static func janssonTranscode(_ body: UnsafeRawBufferPointer) throws(JSONCodecError) -> [UInt8] {
        try JSONCodec.transcodeWithJansson(body)
    }

    /// `RFC3339.check`: seconds and nanos, or nil with `outOfRange` telling why.
    public static func parseRFC3339(_ text: UnsafeRawBufferPointer) -> (time: (seconds: Int64, nanos: Int32)?, outOfRange: Bool) {
        switch RFC3339.check(text) {
        case .success(let time): return (time, false)
        case .failure(.outOfRange): return (nil, true)
        case .failure(.malformed): return (nil, false)
        }
    }

    /// `RFC3339.format`: the canonical UTC text protojson writes.
    public static func formatRFC3339(seconds: Int64, nanos: Int32) -> String {
        RFC3339.format(seconds: seconds, nanos: nanos)
    }

    /// `DecimalParser.parse` over the whole of `text`: the double, or nil when the
    /// parser refuses the text or stops before its end.
    public static func parseDecimal(_ text: UnsafeRawBufferPointer) -> Double? {
        DecimalParser.parse(text)
    }

    public static let minimumSeconds = RFC3339.minimumSeconds
    public static let maximumSeconds = RFC3339.maximumSeconds
}
