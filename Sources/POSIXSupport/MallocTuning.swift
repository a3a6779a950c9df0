import CPOSIXShims

/// glibc malloc's two thresholds, set for the servers.
///
/// The trim threshold is how much free memory malloc keeps at the top of a heap before
/// it gives the pages back. The default (128 KiB, adjusted as large blocks come and go)
/// makes the arenas shrink and grow again around every request of a few tens of
/// kilobytes: the pages come back zeroed through page faults, and madvise and page
/// faults showed in the backend's profile at several percent, 10-20% of its throughput
/// under h2load.
///
/// Fixing the trim threshold also fixes the mmap threshold, at 128 KiB (glibc stops
/// adjusting both once either is set): every block above it is mapped and unmapped on
/// its own, so a request of 100,000 metrics (a 1.9-7.7 MB body, a 1.1-2.4 MB message, an
/// 800 kB array of values) faulted in its pages afresh, a fifth of its time in the
/// kernel. Blocks up to 4 MiB (gRPC's default message limit) now come from the arenas
/// and are reused; larger ones (a 16 MiB body) are still mapped and returned when freed.
public enum MallocTuning {
    /// Free memory kept per arena: 8 MiB.
    public static let trimThreshold = 8 << 20
    /// Blocks larger than this are mapped on their own: 4 MiB.
    public static let mapThreshold = 4 << 20

    /// Bytes the arenas hold, in use or free (glibc's `mallinfo2().arena`; blocks
    /// mapped on their own are not counted).
    public static var arenaBytes: Int { Int(mallinfo2().arena) }

    /// Sets both for the whole process; false if glibc refused either.
    @discardableResult
    public static func forServers() -> Bool {
        // Both fit in an Int32, as mallopt takes them.
        let trimmed = mallopt(M_TRIM_THRESHOLD, Int32(trimThreshold)) == 1
        let mapped = mallopt(M_MMAP_THRESHOLD, Int32(mapThreshold)) == 1
        return trimmed && mapped
    }
}
