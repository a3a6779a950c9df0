import CPOSIXShims
import Glibc

/// How many processors this process can run on now.
public enum CoreCount {
    /// The processors of this process's affinity mask (what `taskset` or a cgroup
    /// cpuset leaves it), else those online (sysconf _SC_NPROCESSORS_ONLN); at least 1.
    /// A server pinned to one core of two then runs one worker, not two that take
    /// turns on the same core.
    public static var available: Int {
        let allowed = Int(cposix_available_cpus())
        return max(1, allowed > 0 ? allowed : online)
    }

    /// Processors online, whatever this process may use.
    public static var online: Int {
        max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
    }
}
