#ifndef OUTLIERS_CEPOLL_SHIM_H
#define OUTLIERS_CEPOLL_SHIM_H
// Linux's epoll and eventfd, which the Glibc module does not always surface.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#endif
