import CPOSIXShims

/// How much free memory glibc's malloc keeps at the top of a heap before it gives the
/// pages back to the kernel.
///
/// The default (128 KiB, adjusted as large blocks come and go) makes the servers' arenas
/// shrink and grow again around every request of a few tens of kilobytes: the pages
/// come back zeroed through page faults, and madvise and page faults showed in the
/// backend's profile at several percent, 10–20% of its throughput under h2load. A
/// fixed threshold keeps that much per arena for reuse; blocks above the mmap
/// threshold (128 KiB once the threshold is fixed) are still mapped and unmapped
/// on their own, so a 16 MB body is returned to the kernel when it is freed.
public enum HeapTrimThreshold {
    /// The servers' setting: 8 MiB per arena.
    public static let servers = 8 << 20

    /// Sets the threshold for the whole process; false if glibc refused it.
    @discardableResult
    public static func set(bytes: Int) -> Bool {
        precondition(bytes > 0 && bytes <= Int(Int32.max), "a trim threshold of \(bytes) bytes")
        return mallopt(M_TRIM_THRESHOLD, Int32(bytes)) == 1
    }
}
