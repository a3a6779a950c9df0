#ifndef OUTLIERS_CPOSIXSHIMS_H
#define OUTLIERS_CPOSIXSHIMS_H
#include <malloc.h>
#include <sys/random.h>
#include <sys/socket.h>

// accept4 is a GNU extension: glibc declares it only under _GNU_SOURCE, which a
// header imported by Swift cannot set for the Glibc module. shims.c sets it.
int cposix_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

// The processors this process may run on (sched_getaffinity: taskset and cgroup
// cpusets narrow it); CPU_COUNT is a macro, which Swift cannot call. 0 on failure.
int cposix_available_cpus(void);
#endif
