import Glibc

/// How many processors this process can run on now.
public enum CoreCount {
    /// Online processors (sysconf _SC_NPROCESSORS_ONLN); 1 when the system cannot say.
    public static var available: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
}
