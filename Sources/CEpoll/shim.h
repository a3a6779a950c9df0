#ifndef OUTLIERS_CEPOLL_SHIM_H
#define OUTLIERS_CEPOLL_SHIM_H
// Linux's epoll and eventfd, which the Glibc module does not always surface.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <fcntl.h>

// accept4 needs _GNU_SOURCE, which a module header cannot set for the Glibc module.
static inline int cepoll_accept_nonblocking(int fd, struct sockaddr *address, socklen_t *length) {
    int client = accept(fd, address, length);
    if (client >= 0) {
        int flags = fcntl(client, F_GETFL, 0);
        fcntl(client, F_SETFL, flags | O_NONBLOCK);
        fcntl(client, F_SETFD, FD_CLOEXEC);
    }
    return client;
}
#endif
