#define _GNU_SOURCE
#include <sched.h>
#include <sys/socket.h>
#include "CPOSIXShims.h"

int cposix_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags) {
    return accept4(fd, address, length, flags);
}

int cposix_available_cpus(void) {
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof(set), &set) != 0) return 0;
    return CPU_COUNT(&set);
}
