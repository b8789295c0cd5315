/* Systems without a per-call non-blocking read: every op goes to a worker. */
#include "internal.h"

#include <errno.h>

long cio__nowait_read(int fd, void *buf, size_t n)
{
    (void)fd;
    (void)buf;
    (void)n;
    return -EOPNOTSUPP;
}

long cio__nowait_write(int fd, const void *buf, size_t n)
{
    (void)fd;
    (void)buf;
    (void)n;
    return -EOPNOTSUPP;
}
