/*
 * A pipe whose two ends are close-on-exec: POSIX 2008 has no pipe2, so
 * pipe(2) then fcntl(FD_CLOEXEC).  Another thread's fork+exec that falls
 * between the two may inherit an end: the window is documented.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

static int set_cloexec(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags >= 0 && fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0 ? 0 : -errno;
}

int cio__pipe_cloexec(int fds[2])
{
    if (pipe(fds) < 0)
        return -errno;
    int e = set_cloexec(fds[0]);
    if (e == 0)
        e = set_cloexec(fds[1]);
    if (e < 0) {
        close(fds[0]);
        close(fds[1]);
    }
    return e;
}
