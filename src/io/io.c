/*
 * The I/O calls.  Each is a thunk that the worker runs (the syscall and its
 * EINTR loop) and a public call that checks the arguments and hands the
 * thunk to cio__file_do.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
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

/* On the caller's thread: straight into the caller's buffer. */
static long read_try(cio__op *op)
{
    return cio__nowait_read(op->fd, op->user_buf, op->n);
}

static void deliver_copy(cio__op *op, const char *src, size_t len)
{
    memcpy(op->user_buf, src, len);
}

/* A read that may outlive its caller (rule 15) reads into a bounce buffer
 * inside its own op, which the worker frees if the caller has gone. */
#define BOUNCE_MAX ((size_t)8 << 20)

static ssize_t run_bounced(cio_file *f, const cio__op *tmpl)
{
    size_t n = tmpl->n > BOUNCE_MAX ? BOUNCE_MAX : tmpl->n;
    cio__op *op = malloc(sizeof *op + n);
    if (!op)
        return cio__fail(-ENOMEM);
    int gone = 0;
    *op = *tmpl;
    op->n = n;
    op->buf = op + 1;
    op->may_orphan = 1;
    op->gone = &gone;
    long r = cio__file_do(f, CIO__R, op);
    if (!gone)
        free(op);
    return r < 0 ? cio__fail(r) : r;
}

/* write(2) raises SIGPIPE in the thread that writes; here that is a worker,
 * which blocks it.  Take it back, so the caller can raise it (see run). */
void cio__take_sigpipe(cio__op *op)
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
            cio__take_sigpipe(op);
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
    cio__give_sigpipe(op);
    return r < 0 ? cio__fail(r) : r;
}

void cio__give_sigpipe(const cio__op *op)
{
    if (op->raise_sigpipe)
        pthread_kill(pthread_self(), SIGPIPE); /* as write(2) would have */
}

ssize_t cio_read(cio_file *f, void *buf, size_t n)
{
    cio__op op = {.run = read_thunk,
                  .try = read_try,
                  .buf = buf,
                  .n = n,
                  .user_buf = buf,
                  .deliver = deliver_copy};
    if (f && buf && n && cio__file_may_orphan(f))
        return run_bounced(f, &op);
    return run(f, CIO__R, &op);
}

ssize_t cio_write(cio_file *f, const void *buf, size_t n)
{
    cio__op op = {.run = write_thunk, .try = write_try, .buf = (void *)buf, .n = n, .whole = 1};
    return run(f, CIO__W, &op);
}

/* ---- positioned I/O: not serialised, like pread(2) ---- */

static long pread_thunk(cio__op *op)
{
    for (;;) {
        ssize_t r = pread(op->fd, op->buf, op->n, op->off);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
        int reason = interrupted(op);
        if (reason)
            return -reason;
    }
}

static long pwrite_thunk(cio__op *op)
{
    const char *p = op->buf;
    off_t off = op->off;
    size_t done = op->done;
    while (done < op->n) {
        ssize_t r = pwrite(op->fd, p + done, op->n - done, off + (off_t)done);
        if (r >= 0) {
            done += (size_t)r;
            continue;
        }
        if (errno == EPIPE)
            cio__take_sigpipe(op);
        int reason = errno == EINTR ? interrupted(op) : errno;
        if (reason)
            return done ? (long)done : -reason;
    }
    return (long)done;
}

ssize_t cio_pread(cio_file *f, void *buf, size_t n, off_t off)
{
    cio__op op = {.run = pread_thunk,
                  .buf = buf,
                  .n = n,
                  .off = off,
                  .parallel = 1,
                  .user_buf = buf,
                  .deliver = deliver_copy};
    if (off < 0)
        return cio__fail(-EINVAL);
    if (f && buf && n && cio__file_may_orphan(f))
        return run_bounced(f, &op);
    return run(f, CIO__R, &op);
}

ssize_t cio_pwrite(cio_file *f, const void *buf, size_t n, off_t off)
{
    cio__op op = {.run = pwrite_thunk, .buf = (void *)buf, .n = n, .off = off, .parallel = 1};
    if (off < 0)
        return cio__fail(-EINVAL);
    return run(f, CIO__W, &op);
}

/* ---- vector I/O ---- */

struct vec {
    const struct iovec *iov;
    int iovcnt;
};

/* Scatter bytes that an orphan read earlier over the caller's iovec. */
static void deliver_scatter(cio__op *op, const char *src, size_t len)
{
    const struct vec *v = op->arg;
    for (int i = 0; i < v->iovcnt && len > 0; i++) {
        size_t k = v->iov[i].iov_len < len ? v->iov[i].iov_len : len;
        memcpy(v->iov[i].iov_base, src, k);
        src += k;
        len -= k;
    }
}

static long readv_thunk(cio__op *op)
{
    const struct vec *v = op->arg;
    for (;;) {
        ssize_t r = readv(op->fd, v->iov, v->iovcnt);
        if (r >= 0)
            return r;
        if (errno != EINTR)
            return -errno;
        int reason = interrupted(op);
        if (reason)
            return -reason;
    }
}

/* writev until every byte is out: after a short write, the rest goes out
 * one buffer at a time (no copy of the caller's iovec array is needed). */
static long writev_thunk(cio__op *op)
{
    const struct vec *v = op->arg;
    size_t done = 0;
    for (;;) {
        ssize_t r;
        if (done == 0) {
            r = writev(op->fd, v->iov, v->iovcnt);
        } else {
            size_t skip = done;
            int i = 0;
            while (i < v->iovcnt && skip >= v->iov[i].iov_len)
                skip -= v->iov[i++].iov_len;
            if (i == v->iovcnt)
                return (long)done;
            r = write(op->fd, (const char *)v->iov[i].iov_base + skip, v->iov[i].iov_len - skip);
        }
        if (r >= 0) {
            done += (size_t)r;
            if (done >= op->n)
                return (long)done;
            continue;
        }
        if (errno == EPIPE)
            cio__take_sigpipe(op);
        int reason = errno == EINTR ? interrupted(op) : errno;
        if (reason)
            return done ? (long)done : -reason;
    }
}

static ssize_t run_vec(cio_file *f, int i, cio__thunk thunk, const struct iovec *iov, int iovcnt)
{
    if (!f || iovcnt < 0 || iovcnt > IOV_MAX || (!iov && iovcnt))
        return cio__fail(-EINVAL);
    size_t n = 0;
    for (int k = 0; k < iovcnt; k++) {
        if (!iov[k].iov_base && iov[k].iov_len)
            return cio__fail(-EINVAL);
        if (iov[k].iov_len > (size_t)SSIZE_MAX - n)
            return cio__fail(-EINVAL);
        n += iov[k].iov_len;
    }
    struct vec v = {iov, iovcnt};
    cio__op op = {.run = thunk, .buf = (void *)iov, .n = n, .arg = &v, .deliver = deliver_scatter};
    return run(f, i, &op);
}

ssize_t cio_readv(cio_file *f, const struct iovec *iov, int iovcnt)
{
    return run_vec(f, CIO__R, readv_thunk, iov, iovcnt);
}

ssize_t cio_writev(cio_file *f, const struct iovec *iov, int iovcnt)
{
    return run_vec(f, CIO__W, writev_thunk, iov, iovcnt);
}
