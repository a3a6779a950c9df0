import CPOSIXShims

/// Bytes from the kernel's generator (getrandom(2), which Glibc's Swift module does not
/// import): one system call for a whole buffer, where SystemRandomNumberGenerator
/// makes one per 8 bytes.
public enum KernelRandom {
    /// Fills `buffer`; false if the kernel gave fewer bytes (a signal, or a
    /// generator not yet seeded at boot).
    public static func fill(_ buffer: UnsafeMutableRawBufferPointer) -> Bool {
        guard let base = buffer.baseAddress else { return true }
        return getrandom(base, buffer.count, 0) == buffer.count
    }
}
