/*
 * The I/O calls.  Each is a thunk that the worker runs (the syscall and its
 * EINTR loop) and a public call that checks the arguments and hands the
 * thunk to cio__file_do.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

/* The syscall failed with EINTR: the op's reason to stop, or 0 to retry
 * (step 3 of the protocol: a stray or late signal changes nothing). */
static int interrupted(cio__op *op)
{
    /* First: a deadline that the worker's own timer delivered is traced
     * there (its fire, its signal), before the EINTR that it caused. */
    int reason = cio__op_eintr_reason(op);
    CIO__EMIT(CIO_EV_EINTR, op->fd, op->which + 1, op->worker, -EINTR, EINTR);
    return reason;
}

long cio__sys(long r)
{
    return r >= 0 ? r : -errno;
}

static int would_block(long r)
{
#if EAGAIN != EWOULDBLOCK
    if (r == -EWOULDBLOCK)
        return 1;
#endif
    return r == -EAGAIN;
}

#define UNREADY_FREE 4    /* tries that poll at once: a race, not a device */
#define UNREADY_MAX_MS 64 /* then sleep 2, 4, ... up to this between tries */

/* The syscall would have blocked, and says EAGAIN because the fd is
 * O_NONBLOCK: another holder set it, and rule 14 leaves it so.  Block
 * here as the syscall would have, in poll(2), which the cancel signal
 * interrupts whatever SA_RESTART says; a signal that lands just before it
 * is sent again like one before the syscall (rule 11).  0: try the
 * syscall again; or -reason.  A device that keeps polling ready and
 * saying EAGAIN (`unready` counts the tries since the last progress) is
 * tried again after a back-off, not in a spin. */
static long await_ready(cio__op *op, unsigned *unready)
{
    struct pollfd p = {op->fd, op->which == CIO__R ? POLLIN : POLLOUT, 0};
    int ms = -1;
    if (++*unready > UNREADY_FREE) {
        unsigned k = *unready - UNREADY_FREE;
        ms = k >= 6 ? UNREADY_MAX_MS : 1 << k;
    }
    if (poll(ms < 0 ? &p : NULL, ms < 0 ? 1 : 0, ms) < 0 && errno == EINTR) {
        int reason = interrupted(op);
        if (reason)
            return -reason;
    }
    return 0;
}

long cio__retry(cio__op *op, cio__thunk once)
{
    unsigned unready = 0;
    for (;;) {
        long r = once(op);
        if (would_block(r) && !op->dontwait) {
            if ((r = await_ready(op, &unready)) < 0)
                return r;
            continue;
        }
        if (r != -EINTR)
            return r;
        int reason = interrupted(op);
        if (reason)
            return -reason;
    }
}

static long read_once(cio__op *op)
{
    return cio__sys(read(op->fd, op->buf, op->n));
}

/* Step 3p: an op whose caller's try found the fd not ready (nothing to
 * read, no room to write) waits for it on its worker, parked
 * (docs/protocol.md), and tries again without blocking.  A stop that finds
 * it parked releases the caller at once: one hand-off, where an op blocked
 * in the syscall costs two (the worker's EINTR, then its wake-up of the
 * caller).  Ready but not able to move a byte, again and again (another
 * holder took the data or the room first, or a device whose poll always
 * says ready): it blocks in the syscall instead (`blocking`), as an op
 * that never parked.  A write goes on until all n bytes are out, or it is
 * cut (rule 5): the bytes it moved are in op->done, which a release (made
 * only while it is parked) reports. */
void (*cio__park_hook)(void);

static long run_parked(cio__op *op, short events, cio__thunk blocking)
{
    struct cio__worker *w = op->worker;
    int fd = op->fd; /* once parked, op is not to be touched: it may be gone */
    unsigned unready = 0;
    cio__park_mask();
    while (unready < UNREADY_FREE) {
        cio__op_park(w);
        void (*hook)(void) = cio__park_hook;
        if (hook)
            hook(); /* a test's pause between the park and the wait */
        long p = cio__park_wait(fd, events);
        if (!cio__op_unpark(w))
            return 0; /* released: op may be gone (step 4p) */
        if (p == -EINTR) {
            int reason = interrupted(op);
            if (reason)
                return cio__op_cut_result(op, reason);
            continue;
        }
        long t = p < 0 ? p : op->try(op);
        if (t == -EOPNOTSUPP || p < 0)
            break;
        if (would_block(t) || t == -EINTR) {
            unready++;
            continue;
        }
        if (t >= 0 && op->whole) { /* a write */
            op->done += (size_t)t;
            unready = 0;
            /* All out, or cut where a stop or the deadline says (as
             * write_all asks: the worker's own timer sets no reason). */
            if (op->done == op->n || cio__op_eintr_reason(op))
                return (long)op->done;
            continue;
        }
        if (t == -EPIPE)
            cio__take_sigpipe(op);
        return t < 0 && op->done ? (long)op->done : t;
    }
    /* A signal that came for a stop while it tried runs its handler here;
     * its reason is set by then (before the kill), so look before blocking. */
    cio__park_unmask();
    int reason = cio__op_stop_reason(op);
    if (reason)
        return cio__op_cut_result(op, reason);
    return blocking(op);
}

/* Step 3c: the same wait on the caller's own thread, where a stop sends
 * its one signal to the caller itself and a deadline is the wait's own
 * timeout: no worker, no hand-off at all (docs/protocol.md).  Its result,
 * or CIO__TO_WORKER: ppoll failed, or the fd keeps saying ready and not
 * moving a byte (a regular file whose pages are not in memory, another
 * holder faster to the data), and a worker blocks in the syscall instead. */
atomic_int cio__park_on_caller = 1;

static long run_on_caller(cio__op *op, short events)
{
    cio__park_caller pc;
    unsigned unready = 0;
    long r = CIO__TO_WORKER;
    cio__park_caller_enter(&pc);
    while (unready < UNREADY_FREE) {
        cio_time_t due;
        int reason = cio__op_caller_park(op, &due, &pc);
        if (reason) {
            r = cio__op_cut_result(op, reason);
            break;
        }
        void (*hook)(void) = cio__park_hook;
        if (hook)
            hook(); /* a test's pause between the park and the wait */
        long p = cio__park_caller_wait(op->fd, events, due, &pc);
        cio__op_caller_unpark(op, &pc);
        if (p == 0 || p == -EINTR)
            continue; /* the park looks for a reason, a passed deadline */
        if (p < 0)
            break;
        long t = op->try(op);
        if (t == -EOPNOTSUPP)
            break;
        if (would_block(t) || t == -EINTR) {
            unready++;
            continue;
        }
        if (t >= 0 && op->whole) { /* a write: the rest, unless it is cut */
            op->done += (size_t)t;
            unready = 0;
            if (op->done < op->n)
                continue;
        }
        r = op->whole && t >= 0 ? (long)op->done : t < 0 && op->done ? (long)op->done : t;
        break;
    }
    cio__park_caller_leave(&pc);
    return r;
}

static long read_park(cio__op *op)
{
    return run_on_caller(op, POLLIN);
}

static long write_park(cio__op *op)
{
    return run_on_caller(op, POLLOUT);
}

static long read_blocking(cio__op *op)
{
    return cio__retry(op, read_once);
}

static long read_thunk(cio__op *op)
{
    return op->parkable ? run_parked(op, POLLIN, read_blocking) : read_blocking(op);
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

static long run_bounced(cio_file *f, const cio__op *tmpl)
{
    size_t n = tmpl->n > BOUNCE_MAX ? BOUNCE_MAX : tmpl->n;
    cio__op *op = malloc(sizeof *op + n);
    if (!op)
        return -ENOMEM;
    int gone = 0;
    *op = *tmpl;
    op->n = n;
    op->buf = op + 1;
    op->may_orphan = 1;
    op->gone = &gone;
    long r = cio__file_do(f, CIO__R, op);
    if (!gone)
        free(op);
    return r;
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
 * It resumes after op->done, the bytes that the caller's try wrote; `once`
 * writes some of what is left after `done` (its count, or -errno). */
static long write_all(cio__op *op, long (*once)(cio__op *op, size_t done))
{
    size_t done = op->done;
    unsigned unready = 0;
    while (done < op->n) {
        long r = once(op, done);
        if (would_block(r) && (r = await_ready(op, &unready)) == 0)
            continue; /* an O_NONBLOCK fd: all n bytes still, rule 5 */
        if (r >= 0) {
            done += (size_t)r;
            unready = 0;
            /* A signal made it short: cut here if the op must stop.  Ask
             * as after EINTR (step 3a), not only for a reason already set:
             * the worker's own timer delivers a deadline without setting
             * one, and a write that still moves bytes would otherwise go
             * on until a repeat signal happened to find it moving none. */
            if (done < op->n && cio__op_eintr_reason(op))
                return (long)done;
            continue;
        }
        if (r == -EPIPE)
            cio__take_sigpipe(op);
        int reason = r == -EINTR ? interrupted(op) : (int)-r;
        if (reason)
            return done ? (long)done : -reason;
    }
    return (long)done;
}

static long write_once(cio__op *op, size_t done)
{
    const char *p = op->buf;
    return cio__sys(write(op->fd, p + done, op->n - done));
}

static long write_blocking(cio__op *op)
{
    return write_all(op, write_once);
}

static long write_thunk(cio__op *op)
{
    return op->parkable ? run_parked(op, POLLOUT, write_blocking) : write_blocking(op);
}

static long write_try(cio__op *op)
{
    const char *p = op->buf;
    return cio__nowait_write(op->fd, p + op->done, op->n - op->done);
}

/* run and run_bounced give the library's own results (-errno); the public
 * calls convert them once, with out. */
static long run(cio_file *f, int i, cio__op *op)
{
    if (!f || (!op->buf && op->n))
        return -EINVAL;
    if (op->n == 0)
        return 0;
    long r = cio__file_do(f, i, op);
    cio__give_sigpipe(op);
    return r;
}

static ssize_t out(long r)
{
    return r < 0 ? cio__fail(r) : r;
}

void cio__give_sigpipe(const cio__op *op)
{
    if (op->raise_sigpipe)
        pthread_kill(pthread_self(), SIGPIPE); /* as write(2) would have */
}

static long read_op(cio_file *f, void *buf, size_t n, int spanned)
{
    cio__op op = {.run = read_thunk,
                  .try = read_try,
                  .park = read_park,
                  .buf = buf,
                  .n = n,
                  .user_buf = buf,
                  .deliver = deliver_copy,
                  .spanned = spanned};
    if (f && buf && n && cio__file_may_orphan(f))
        return run_bounced(f, &op);
    return run(f, CIO__R, &op);
}

ssize_t cio_read(cio_file *f, void *buf, size_t n)
{
    return out(read_op(f, buf, n, 0));
}

long cio__read_spanned(cio_file *f, void *buf, size_t n)
{
    return read_op(f, buf, n, 1);
}

ssize_t cio_write(cio_file *f, const void *buf, size_t n)
{
    cio__op op = {.run = write_thunk,
                  .try = write_try,
                  .park = write_park,
                  .buf = (void *)buf,
                  .n = n,
                  .whole = 1};
    return out(run(f, CIO__W, &op));
}

/* ---- positioned I/O: not serialised, like pread(2) ---- */

static long pread_once(cio__op *op)
{
    return cio__sys(pread(op->fd, op->buf, op->n, op->off));
}

static long pread_thunk(cio__op *op)
{
    return cio__retry(op, pread_once);
}

static long pwrite_once(cio__op *op, size_t done)
{
    const char *p = op->buf;
    return cio__sys(pwrite(op->fd, p + done, op->n - done, op->off + (off_t)done));
}

static long pwrite_thunk(cio__op *op)
{
    return write_all(op, pwrite_once);
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
        return out(run_bounced(f, &op));
    return out(run(f, CIO__R, &op));
}

ssize_t cio_pwrite(cio_file *f, const void *buf, size_t n, off_t off)
{
    cio__op op = {
        .run = pwrite_thunk, .buf = (void *)buf, .n = n, .off = off, .parallel = 1, .whole = 1};
    if (off < 0)
        return cio__fail(-EINVAL);
    return out(run(f, CIO__W, &op));
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

static long readv_once(cio__op *op)
{
    const struct vec *v = op->arg;
    return cio__sys(readv(op->fd, v->iov, v->iovcnt));
}

static long readv_thunk(cio__op *op)
{
    return cio__retry(op, readv_once);
}

/* The whole iovec first; after a short write, the rest goes out one buffer
 * at a time (no copy of the caller's iovec array is needed).  done < n, so
 * some buffer still has bytes left. */
static long writev_once(cio__op *op, size_t done)
{
    const struct vec *v = op->arg;
    if (done == 0)
        return cio__sys(writev(op->fd, v->iov, v->iovcnt));
    int i = 0;
    while (done >= v->iov[i].iov_len)
        done -= v->iov[i++].iov_len;
    const char *p = v->iov[i].iov_base;
    return cio__sys(write(op->fd, p + done, v->iov[i].iov_len - done));
}

static long writev_thunk(cio__op *op)
{
    return write_all(op, writev_once);
}

/* IOV_MAX is XSI, outside POSIX's base: the limit is asked at run time (a
 * constant in glibc and musl, a sysctl on FreeBSD), only past the 16 that
 * every system takes (_XOPEN_IOV_MAX); -1, no limit known, leaves it to
 * the kernel. */
static int too_many(size_t iovcnt)
{
    if (iovcnt <= 16)
        return 0;
    if (iovcnt > INT_MAX)
        return 1;
    long max = sysconf(_SC_IOV_MAX);
    return max > 0 && iovcnt > (size_t)max;
}

long cio__iov_total(const struct iovec *iov, size_t iovcnt, int too_many_err)
{
    if (too_many(iovcnt))
        return -too_many_err;
    if (!iov && iovcnt)
        return -EINVAL;
    size_t n = 0;
    for (size_t k = 0; k < iovcnt; k++) {
        if (!iov[k].iov_base && iov[k].iov_len)
            return -EINVAL;
        if (iov[k].iov_len > (size_t)SSIZE_MAX - n)
            return -EINVAL;
        n += iov[k].iov_len;
    }
    return (long)n;
}

static ssize_t run_vec(cio_file *f, int i, cio__thunk thunk, const struct iovec *iov, int iovcnt)
{
    if (!f || iovcnt < 0)
        return cio__fail(-EINVAL);
    long total = cio__iov_total(iov, (size_t)iovcnt, EINVAL); /* as readv(2) */
    if (total < 0)
        return cio__fail(total);
    size_t n = (size_t)total;
    struct vec v = {iov, iovcnt};
    cio__op op = {.run = thunk,
                  .buf = (void *)iov,
                  .n = n,
                  .arg = &v,
                  .deliver = deliver_scatter,
                  .whole = i == CIO__W};
    if (i == CIO__R && n && cio__file_may_orphan(f)) {
        op.run = read_thunk; /* one read(2) into the bounce buffer, scattered after */
        return out(run_bounced(f, &op));
    }
    return out(run(f, i, &op));
}

ssize_t cio_readv(cio_file *f, const struct iovec *iov, int iovcnt)
{
    return run_vec(f, CIO__R, readv_thunk, iov, iovcnt);
}

ssize_t cio_writev(cio_file *f, const struct iovec *iov, int iovcnt)
{
    return run_vec(f, CIO__W, writev_thunk, iov, iovcnt);
}
