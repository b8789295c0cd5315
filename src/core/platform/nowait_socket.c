/*
 * Systems without RWF_NOWAIT: a socket can still be tried without blocking,
 * by recv/send with MSG_DONTWAIT, a flag of this one call (the socket's
 * O_NONBLOCK is never touched).  Anything else answers EOPNOTSUPP and goes
 * to a worker: for pipes, FIFOs and ttys POSIX has no per-call non-blocking
 * read, and checking first (poll, FIONREAD) then reading is not safe, since
 * another reader of the same pipe or tty may take the bytes in between and
 * leave the caller blocked with no deadline to stop it (see
 * docs/portability.md).
 */
#include "internal.h"

#include <errno.h>
#include <sys/socket.h>

static long result(ssize_t r)
{
    if (r >= 0)
        return r;
    if (errno == ENOTSOCK)
        return -EOPNOTSUPP;
    return errno == EWOULDBLOCK ? -EAGAIN : -errno;
}

long cio__nowait_read(int fd, void *buf, size_t n)
{
    return result(recv(fd, buf, n, MSG_DONTWAIT));
}

long cio__nowait_write(int fd, const void *buf, size_t n)
{
    return result(send(fd, buf, n, MSG_DONTWAIT));
}
