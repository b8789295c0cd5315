/*
 * The I/O calls.  Each is a thunk that the worker runs (the syscall and its
 * EINTR loop) and a public call that checks the arguments and hands the
 * thunk to cio__file_do.
 */
#include "internal.h"

#include <errno.h>
#include <unistd.h>

/* The syscall failed with EINTR: the op's reason to stop, or 0 to retry. */
static int interrupted(cio__op *op)
{
    CIO__EMIT(CIO_EV_EINTR, op->fd, op->which + 1, op->worker, -EINTR, EINTR);
    return cio__op_stop_reason(op);
}

static long read_thunk(cio__op *op)
{
    for (;;) {
        ssize_t r = read(op->fd, op->buf, op->n);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
        int reason = interrupted(op);
        if (reason)
            return -reason;
    }
}

/* Rule 5: all n bytes, or the count written before the cut, or the reason. */
static long write_thunk(cio__op *op)
{
    const char *p = op->buf;
    size_t done = 0;
    while (done < op->n) {
        ssize_t r = write(op->fd, p + done, op->n - done);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        int reason = errno == EINTR ? interrupted(op) : errno;
        if (reason)
            return done ? (long)done : -reason;
    }
    return (long)done;
}

static ssize_t run(cio_file *f, int i, cio__thunk thunk, const void *buf, size_t n)
{
    if (!f || (!buf && n))
        return cio__fail(-EINVAL);
    if (n == 0)
        return 0;
    cio__op op = {.run = thunk, .buf = (void *)buf, .n = n};
    long r = cio__file_do(f, i, &op);
    return r < 0 ? cio__fail(r) : r;
}

ssize_t cio_read(cio_file *f, void *buf, size_t n)
{
    return run(f, CIO__R, read_thunk, buf, n);
}

ssize_t cio_write(cio_file *f, const void *buf, size_t n)
{
    return run(f, CIO__W, write_thunk, buf, n);
}
