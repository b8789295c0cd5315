/*
 * The socket calls.  accept and the recv family obey the read deadline and
 * CIO_READ; connect and the send family the write deadline and CIO_WRITE.
 * The recv and send families try first with MSG_DONTWAIT (a per-call flag:
 * the socket's own O_NONBLOCK is never touched) and go to a worker only if
 * that would block; without MSG_DONTWAIT (platform/msg_dontwait_none.c)
 * they always go to a worker.  Bytes held in the file (rule 20) are served
 * first; with MSG_WAITALL too, the call then returns just them (short).
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>

struct msg_args {
    int flags;
    struct sockaddr *addr; /* recvfrom, sendto */
    socklen_t *addrlen;    /* recvfrom, accept */
    socklen_t alen;        /* sendto, connect */
    struct msghdr *msg;    /* recvmsg, sendmsg */
};

static long msg_flags(cio__op *op, int flags)
{
    struct msg_args *a = op->arg;
    if (op->which == CIO__R)
        return cio__sys(a->msg ? recvmsg(op->fd, a->msg, flags)
                               : recvfrom(op->fd, op->buf, op->n, flags, a->addr, a->addrlen));
    return cio__sys(a->msg ? sendmsg(op->fd, a->msg, flags)
                           : sendto(op->fd, op->buf, op->n, flags, a->addr, a->alen));
}

static long msg_once(cio__op *op)
{
    const struct msg_args *a = op->arg;
    return msg_flags(op, a->flags | cio__msg_nosignal);
}

/* A send that met EPIPE raises SIGPIPE unless the caller said
 * MSG_NOSIGNAL.  The worker sends with MSG_NOSIGNAL where the system has
 * it and leaves the signal to the caller; elsewhere it takes back the one
 * that landed on it. */
static void after_epipe(cio__op *op, int flags)
{
    if (!cio__msg_nosignal)
        cio__take_sigpipe(op);
    else if (!(flags & cio__msg_nosignal))
        op->raise_sigpipe = 1;
}

/* One recv or send: it may be short, as send(2) may. */
static long msg_thunk(cio__op *op)
{
    const struct msg_args *a = op->arg;
    long r = cio__retry(op, msg_once);
    if (r == -EPIPE)
        after_epipe(op, a->flags);
    return r;
}

static long msg_try(cio__op *op)
{
    const struct msg_args *a = op->arg;
    long r = msg_flags(op, a->flags | cio__msg_dontwait);
    return r == -EWOULDBLOCK ? -EAGAIN : r;
}

/* Held bytes (rule 20) served to a recv: they come from a byte stream
 * already read, so there is no sender address, control data or flag to
 * report, as for a connected stream socket. */
static void deliver_held(cio__op *op, const char *src, size_t len)
{
    struct msg_args *a = op->arg;
    if (a->addrlen)
        *a->addrlen = 0;
    if (!a->msg) {
        memcpy(op->buf, src, len);
        return;
    }
    a->msg->msg_namelen = 0;
    a->msg->msg_controllen = 0;
    a->msg->msg_flags = 0;
    for (size_t i = 0; i < (size_t)a->msg->msg_iovlen && len > 0; i++) {
        size_t k = a->msg->msg_iov[i].iov_len < len ? a->msg->msg_iov[i].iov_len : len;
        memcpy(a->msg->msg_iov[i].iov_base, src, k);
        src += k;
        len -= k;
    }
}

static ssize_t run_msg(cio_file *f, int i, void *buf, size_t n, struct msg_args *a)
{
    if (!f || (!buf && n && !a->msg))
        return cio__fail(-EINVAL);
    if (a->msg) { /* its buffers, checked as cio_readv's */
        long room = cio__iov_total(a->msg->msg_iov, (size_t)a->msg->msg_iovlen, EMSGSIZE);
        if (room < 0)
            return cio__fail(room);
        n = (size_t)room; /* only for held bytes: recvmsg(2) gets msg */
    }
    /* n == 0 is a real datagram (or a probe) on a socket: no short cut */
    cio__op op = {.run = msg_thunk,
                  .try = msg_try,
                  .buf = buf,
                  .n = n,
                  .arg = a,
                  .deliver = deliver_held,
                  .peek = (a->flags & MSG_PEEK) != 0,
                  .dontwait = (a->flags & cio__msg_dontwait) != 0};
    if (a->flags & MSG_WAITALL)
        op.try = NULL; /* a short count would not be the whole answer */
    if (!cio__msg_dontwait)
        op.try = NULL; /* nothing to try with: a worker runs it */
    long r = cio__file_do(f, i, &op);
    cio__give_sigpipe(&op);
    return r < 0 ? cio__fail(r) : r;
}

ssize_t cio_recv(cio_file *f, void *buf, size_t n, int flags)
{
    struct msg_args a = {.flags = flags};
    return run_msg(f, CIO__R, buf, n, &a);
}

ssize_t cio_send(cio_file *f, const void *buf, size_t n, int flags)
{
    struct msg_args a = {.flags = flags};
    return run_msg(f, CIO__W, (void *)buf, n, &a);
}

ssize_t cio_recvfrom(cio_file *f, void *buf, size_t n, int flags, struct sockaddr *addr,
                     socklen_t *addrlen)
{
    struct msg_args a = {.flags = flags, .addr = addr, .addrlen = addrlen};
    if (addr && !addrlen)
        return cio__fail(-EINVAL);
    return run_msg(f, CIO__R, buf, n, &a);
}

ssize_t cio_sendto(cio_file *f, const void *buf, size_t n, int flags, const struct sockaddr *addr,
                   socklen_t addrlen)
{
    struct msg_args a = {.flags = flags, .addr = (struct sockaddr *)addr, .alen = addrlen};
    return run_msg(f, CIO__W, (void *)buf, n, &a);
}

ssize_t cio_recvmsg(cio_file *f, struct msghdr *msg, int flags)
{
    struct msg_args a = {.flags = flags, .msg = msg};
    if (!msg)
        return cio__fail(-EINVAL);
    return run_msg(f, CIO__R, NULL, 0, &a);
}

ssize_t cio_sendmsg(cio_file *f, const struct msghdr *msg, int flags)
{
    struct msg_args a = {.flags = flags, .msg = (struct msghdr *)msg};
    if (!msg)
        return cio__fail(-EINVAL);
    return run_msg(f, CIO__W, NULL, 0, &a);
}

/* ---- accept ---- */

static long accept_once(cio__op *op)
{
    struct msg_args *a = op->arg;
    return cio__sys(accept(op->fd, a->addr, a->addrlen));
}

static long accept_thunk(cio__op *op)
{
    return cio__retry(op, accept_once);
}

cio_file *cio_accept(cio_file *listener, struct sockaddr *addr, socklen_t *addrlen)
{
    if (!listener || (addr && !addrlen))
        return (void)cio__fail(-EINVAL), NULL;
    struct msg_args a = {.addr = addr, .addrlen = addrlen};
    cio__op op = {.run = accept_thunk, .arg = &a};
    return cio__file_adopt(cio__file_do(listener, CIO__R, &op));
}

/* ---- connect ---- */

/* An interrupted connect(2) goes on in the kernel: calling it again would
 * fail with EALREADY.  So after a stray EINTR (or EINPROGRESS) wait for the
 * outcome with poll and read it from SO_ERROR. */
static long await_connect(cio__op *op, int eintr)
{
    struct pollfd p = {op->fd, POLLOUT, 0};
    for (;;) {
        /* after EINPROGRESS no signal came: a deadline passed is only
         * seen, not counted as one delivered */
        int reason = eintr ? cio__op_eintr_reason(op) : cio__op_stop_or_due(op);
        if (reason)
            return -reason;
        if (poll(&p, 1, -1) < 0) {
            if (errno != EINTR)
                return -errno;
            eintr = 1;
            continue;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (getsockopt(op->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            return -errno;
        return err ? -err : 0;
    }
}

static long connect_thunk(cio__op *op)
{
    const struct msg_args *a = op->arg;
    if (connect(op->fd, a->addr, a->alen) == 0)
        return 0;
    /* EINPROGRESS: an O_NONBLOCK socket (rule 14), which blocks here all the same */
    if (errno != EINTR && errno != EINPROGRESS)
        return -errno;
    return await_connect(op, errno == EINTR);
}

int cio_connect(cio_file *f, const struct sockaddr *addr, socklen_t addrlen)
{
    if (!f || !addr)
        return (int)cio__fail(-EINVAL);
    struct msg_args a = {.addr = (struct sockaddr *)addr, .alen = addrlen};
    cio__op op = {.run = connect_thunk, .arg = &a};
    long r = cio__file_do(f, CIO__W, &op);
    return r < 0 ? (int)cio__fail(r) : 0;
}
