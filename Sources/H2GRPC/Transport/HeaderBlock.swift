import CNGHTTP2

/// Builds the `nghttp2_nv` array for a submit call. nghttp2 copies names and values
/// during `nghttp2_submit_*`, so the storage only has to live for the call.
struct HeaderBlock {
    private var bytes: [UInt8] = []
    private var ranges: [(nameStart: Int, nameLength: Int, valueLength: Int)] = []

    init() {
        bytes.reserveCapacity(160)
    }

    mutating func add(_ name: String, _ value: String) {
        let start = bytes.count
        bytes.append(contentsOf: name.utf8)
        let nameLength = bytes.count - start
        bytes.append(contentsOf: value.utf8)
        ranges.append((start, nameLength, bytes.count - start - nameLength))
    }

    /// The fields as text, in order (for tests and logs).
    var fields: [(name: String, value: String)] {
        ranges.map { field in
            (String(decoding: bytes[field.nameStart..<field.nameStart + field.nameLength], as: UTF8.self),
             String(decoding: bytes[field.nameStart + field.nameLength..<field.nameStart + field.nameLength + field.valueLength],
                    as: UTF8.self))
        }
    }

    func withNameValues<R>(_ body: (UnsafePointer<nghttp2_nv>, Int) -> R) -> R {
        var copy = bytes
        return copy.withUnsafeMutableBufferPointer { storage in
            let base = storage.baseAddress!
            var nva = ranges.map { field in
                nghttp2_nv(name: base + field.nameStart, value: base + field.nameStart + field.nameLength,
                           namelen: field.nameLength, valuelen: field.valueLength,
                           flags: UInt8(NGHTTP2_NV_FLAG_NONE.rawValue))
            }
            return nva.withUnsafeMutableBufferPointer { body($0.baseAddress!, $0.count) }
        }
    }
}
