/*
 * Linux: preadv2/pwritev2 with RWF_NOWAIT (Linux 4.14 for files, later for
 * pipes and sockets) fail with EAGAIN instead of blocking, for this one
 * call, without touching the O_NONBLOCK flag that other holders of the open
 * file description see.  Descriptors that cannot do it (ttys, some devices
 * and file systems) answer EOPNOTSUPP.
 */
#include "internal.h"

#include <errno.h>
#include <sys/uio.h>

static long result(ssize_t r)
{
    if (r >= 0)
        return r;
    /* ENOSYS, EINVAL: a kernel without the call or the flag.  EPERM: a
     * sandbox (seccomp) that denies the call, whose usual answer that is;
     * a write that is really not permitted gets it again from write(2). */
    return errno == ENOSYS || errno == EINVAL || errno == EPERM ? -EOPNOTSUPP : -errno;
}

long cio__nowait_read(int fd, void *buf, size_t n)
{
    struct iovec v = {buf, n};
    return result(preadv2(fd, &v, 1, -1, RWF_NOWAIT));
}

long cio__nowait_write(int fd, const void *buf, size_t n)
{
    struct iovec v = {(void *)buf, n};
    return result(pwritev2(fd, &v, 1, -1, RWF_NOWAIT));
}
