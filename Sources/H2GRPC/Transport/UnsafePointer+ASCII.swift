import Glibc

/// Header names and values as nghttp2 hands them over: bytes and a length, no terminator.
extension UnsafePointer<UInt8> {
    /// Compares `length` bytes here with an ASCII literal.
    func equals(_ literal: StaticString, length: Int) -> Bool {
        guard literal.utf8CodeUnitCount == length else { return false }
        return memcmp(self, literal.utf8Start, length) == 0
    }

    func hasPrefix(_ literal: StaticString, length: Int) -> Bool {
        guard literal.utf8CodeUnitCount <= length else { return false }
        return memcmp(self, literal.utf8Start, literal.utf8CodeUnitCount) == 0
    }

    func string(length: Int) -> String {
        String(decoding: UnsafeBufferPointer(start: self, count: length), as: UTF8.self)
    }
}
