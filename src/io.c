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

static long read_try(cio__op *op)
{
    return cio__nowait_read(op->fd, op->buf, op->n);
}

/* write(2) raises SIGPIPE in the thread that writes; here that is a worker,
 * which blocks it.  Take it back, so the caller can raise it (see run). */
static void take_sigpipe(cio__op *op)
{
    sigset_t pending, pipe_only;
    int signo;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    if (sigpending(&pending) == 0 && sigismember(&pending, SIGPIPE) &&
        sigwait(&pipe_only, &signo) == 0)
        op->raise_sigpipe = 1;
}

/* Rule 5: all n bytes, or the count written before the cut, or the reason.
 * It resumes after op->done, the bytes that the caller's try wrote. */
static long write_thunk(cio__op *op)
{
    const char *p = op->buf;
    size_t done = op->done;
    while (done < op->n) {
        ssize_t r = write(op->fd, p + done, op->n - done);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        if (errno == EPIPE)
            take_sigpipe(op);
        int reason = errno == EINTR ? interrupted(op) : errno;
        if (reason)
            return done ? (long)done : -reason;
    }
    return (long)done;
}

static long write_try(cio__op *op)
{
    const char *p = op->buf;
    return cio__nowait_write(op->fd, p + op->done, op->n - op->done);
}

static ssize_t run(cio_file *f, int i, cio__op *op)
{
    if (!f || (!op->buf && op->n))
        return cio__fail(-EINVAL);
    if (op->n == 0)
        return 0;
    long r = cio__file_do(f, i, op);
    if (op->raise_sigpipe)
        pthread_kill(pthread_self(), SIGPIPE); /* as write(2) would have */
    return r < 0 ? cio__fail(r) : r;
}

ssize_t cio_read(cio_file *f, void *buf, size_t n)
{
    cio__op op = {.run = read_thunk, .try = read_try, .buf = buf, .n = n};
    return run(f, CIO__R, &op);
}

ssize_t cio_write(cio_file *f, const void *buf, size_t n)
{
    cio__op op = {.run = write_thunk, .try = write_try, .buf = (void *)buf, .n = n};
    return run(f, CIO__W, &op);
}
