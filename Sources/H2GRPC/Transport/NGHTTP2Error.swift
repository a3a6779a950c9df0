import CNGHTTP2

/// A failed nghttp2 call and its NGHTTP2_ERR_* code.
struct NGHTTP2Error: Error, CustomStringConvertible {
    let call: String
    let code: Int32

    var description: String { "\(call): \(String(cString: nghttp2_strerror(code)))" }
}
