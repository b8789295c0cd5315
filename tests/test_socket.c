/*
 * Description: the socket calls of the wider surface (DESIGN.md "The wider
 * surface" and its rules) over loopback TCP and UDP (127.0.0.1, port 0) and
 * AF_UNIX: cio_accept, cio_connect, cio_recv/cio_send, cio_recvfrom/
 * cio_sendto, cio_recvmsg/cio_sendmsg.  The read deadline and CIO_READ
 * govern accept and the recv family, the write deadline and CIO_WRITE
 * connect and the send family: each call is checked for success, its own
 * deadline (ETIMEDOUT not before it, within a generous bound after, and
 * what arrives later is read whole by the next call), the other
 * direction's deadline and cancel (no effect), its own cancel (ECANCELED),
 * cio_close while it blocks (EBADF), bad input (EINVAL, nothing changed)
 * and the syscall's own results unchanged (flags such as MSG_PEEK and
 * MSG_WAITALL, pending socket errors, a connection reset).  A connect is
 * made to block with a listener whose backlog is full (listen(fd, 0) and
 * one connection never accepted: the kernel drops the next SYNs), and a
 * storm of stray cancel signals during it must not turn into EALREADY.
 * The last test checks that the counters balance and that no thread or fd
 * outlives the suite.
 */
#include "support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#define JOIN_MS 5000
#define AT_ONCE_MS 500
#define DEADLINE_MS 200
#define LATE_MS 1000 /* a timed-out call returns within this after its deadline */
#define QUIET_MS 100 /* how long "still blocked" is watched */

/* ---- a call on a thread of its own ------------------------------------- */

struct job;
typedef long (*job_fn)(struct job *j);

/* One call run on its own thread, which blocks the test signals first and
 * records result, errno and the times around the call.  It owns its
 * buffers and addresses, so a test that fails while it still runs leaves
 * no dangling pointer (such a job is leaked on purpose, never freed). */
struct job {
    job_fn run;
    cio_file *f;
    size_t n;
    int flags;
    unsigned char data[4096];
    struct iovec iov[2];
    int iovcnt;
    struct sockaddr_storage addr; /* connect, sendto: the target; accept, recvfrom: filled */
    socklen_t addrlen;
    cio_file *accepted;
    pthread_t thread;
    atomic_int done;
    long result;
    int err;
    cio_time_t start, end;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    block_cancel_signal_in_this_thread();
    j->start = cio_now();
    errno = 0;
    j->result = j->run(j);
    j->err = errno;
    j->end = cio_now();
    atomic_store(&j->done, 1);
    return NULL;
}

static struct job *job_new(job_fn run, cio_file *f, size_t n)
{
    struct job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    j->run = run;
    j->f = f;
    j->n = n;
    memset(j->data, 0xEE, sizeof j->data);
    j->iov[0] = (struct iovec){j->data, n / 2};
    j->iov[1] = (struct iovec){j->data + n / 2, n - n / 2};
    j->iovcnt = 2;
    return j;
}

static void job_start(struct job *j)
{
    assert_int_equal(pthread_create(&j->thread, NULL, job_main, j), 0);
}

static bool job_is_done(void *j)
{
    return atomic_load(&((struct job *)j)->done) != 0;
}

static bool job_join(struct job *j, int64_t timeout_ms)
{
    if (!wait_until(job_is_done, j, timeout_ms)) {
        fprintf(stderr, "job still running after %lld ms\n", (long long)scaled_ms(timeout_ms));
        return false;
    }
    pthread_join(j->thread, NULL);
    return true;
}

static long run_accept(struct job *j)
{
    j->addrlen = sizeof j->addr;
    j->accepted = cio_accept(j->f, (struct sockaddr *)&j->addr, &j->addrlen);
    return j->accepted ? 0 : -1;
}

static long run_connect(struct job *j)
{
    return cio_connect(j->f, (struct sockaddr *)&j->addr, j->addrlen);
}

static long run_recv(struct job *j)
{
    return cio_recv(j->f, j->data, j->n, j->flags);
}

static long run_send(struct job *j)
{
    return cio_send(j->f, j->data, j->n, j->flags);
}

static long run_recvfrom(struct job *j)
{
    j->addrlen = sizeof j->addr;
    return cio_recvfrom(j->f, j->data, j->n, j->flags, (struct sockaddr *)&j->addr, &j->addrlen);
}

static long run_sendto(struct job *j)
{
    return cio_sendto(j->f, j->data, j->n, j->flags, (struct sockaddr *)&j->addr, j->addrlen);
}

static long run_recvmsg(struct job *j)
{
    struct msghdr m = {.msg_iov = j->iov, .msg_iovlen = (size_t)j->iovcnt};
    return cio_recvmsg(j->f, &m, j->flags);
}

static long run_sendmsg(struct job *j)
{
    struct msghdr m = {.msg_iov = j->iov, .msg_iovlen = (size_t)j->iovcnt};
    return cio_sendmsg(j->f, &m, j->flags);
}

/* ---- seeing a thread blocked in a given syscall ------------------------- */

/* 1 if /proc/self/task/<tid>/syscall shows one of nrs (with first argument
 * fd, unless fd < 0), 0 if not, -1 if the kernel does not say. */
static int task_in(const char *tid, const long *nrs, int count, long fd)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/syscall", tid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return errno == ENOENT ? 0 : -1;
    char *got = fgets(line, sizeof line, fp);
    fclose(fp);
    long nr;
    unsigned long arg0;
    if (!got || sscanf(line, "%ld 0x%lx", &nr, &arg0) != 2)
        return 0;
    for (int k = 0; k < count; k++)
        if (nr == nrs[k] && (fd < 0 || (int)arg0 == fd))
            return 1;
    return 0;
}

struct in_syscall {
    const long *nrs;
    int count;
    long fd;
};

static bool in_syscall_pred(void *arg)
{
    const struct in_syscall *s = arg;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return true; /* no /proc: the callers waited for op_starts */
    int n = 0, unknown = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int r = task_in(e->d_name, s->nrs, s->count, s->fd);
        unknown |= r < 0;
        n += r > 0;
    }
    closedir(d);
    return n > 0 || unknown;
}

static bool wait_in_syscall(const long *nrs, int count, long fd, int64_t timeout_ms)
{
    struct in_syscall s = {nrs, count, fd};
    if (!wait_until(in_syscall_pred, &s, timeout_ms)) {
        fprintf(stderr, "no thread in syscall %ld on fd %ld\n", nrs[0], fd);
        return false;
    }
    return true;
}

enum blocked_in { IN_READ, IN_WRITE, IN_ACCEPT, IN_CONNECT };

static const long accept_syscalls[] = {
#ifdef SYS_accept
    SYS_accept,
#endif
    SYS_accept4,
};
static const long connect_syscalls[] = {SYS_connect};
static const long poll_syscalls[] = {
#ifdef SYS_poll
    SYS_poll,
#endif
    SYS_ppoll,
};

#define NRS(a) a, (int)(sizeof a / sizeof a[0])

/* Start j and wait until its worker sleeps in the syscall `in` on fd. */
static void start_blocked(struct job *j, int fd, enum blocked_in in)
{
    uint64_t before = op_starts();
    job_start(j);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    switch (in) {
    case IN_READ:
        assert_true(wait_in_syscall_on(fd, CIO_READ, 1, JOIN_MS));
        break;
    case IN_WRITE:
        assert_true(wait_in_syscall_on(fd, CIO_WRITE, 1, JOIN_MS));
        break;
    case IN_ACCEPT:
        assert_true(wait_in_syscall(NRS(accept_syscalls), fd, JOIN_MS));
        break;
    case IN_CONNECT:
        assert_true(wait_in_syscall(NRS(connect_syscalls), fd, JOIN_MS));
        break;
    }
}

/* ---- checks ----------------------------------------------------------- */

static void assert_still_running(struct job *j)
{
    wait_for_time(cio_now() + scaled_ms(QUIET_MS) * NS_PER_MS);
    assert_false(job_is_done(j));
}

static void assert_timed_out_on_time(const struct job *j, cio_time_t deadline)
{
    assert_int_equal(j->result, -1);
    assert_int_equal(j->err, ETIMEDOUT);
    assert_true(j->end >= deadline);
    assert_true(elapsed_ms(deadline, j->end) < (double)scaled_ms(LATE_MS));
}

/* Set the deadline of direction which on f, run j to its end and check it
 * timed out on time. */
static void run_to_deadline(struct job *j, int which)
{
    cio_time_t deadline = cio_after_ms(DEADLINE_MS);
    int (*set)(cio_file *, cio_time_t) =
        which == CIO_READ ? cio_set_read_deadline : cio_set_write_deadline;
    assert_int_equal(set(j->f, deadline), 0);
    job_start(j);
    assert_true(job_join(j, JOIN_MS));
    assert_timed_out_on_time(j, deadline);
}

/* j blocks on its file in direction which: the other direction's cancel
 * leaves it alone, its own fails it at once with ECANCELED. */
static void assert_only_its_own_cancel_stops(struct job *j, int which)
{
    assert_int_equal(cio_cancel(j->f, which == CIO_READ ? CIO_WRITE : CIO_READ), 0);
    assert_still_running(j);
    cio_time_t c = cio_now();
    assert_int_equal(cio_cancel(j->f, which), 0);
    assert_true(job_join(j, JOIN_MS));
    assert_int_equal(j->result, -1);
    assert_int_equal(j->err, ECANCELED);
    assert_true(elapsed_ms(c, j->end) < (double)scaled_ms(AT_ONCE_MS));
}

/* cio_close on the file of the blocked jobs fails them with EBADF. */
static void assert_close_fails_with_EBADF(cio_file *f, int fd, struct job *a, struct job *b)
{
    assert_int_equal(cio_close(f), 0);
    assert_true(job_join(a, JOIN_MS));
    assert_int_equal(a->result, -1);
    assert_int_equal(a->err, EBADF);
    if (b) {
        assert_true(job_join(b, JOIN_MS));
        assert_int_equal(b->result, -1);
        assert_int_equal(b->err, EBADF);
    }
    assert_false(fd_is_open(fd));
}

/* ---- sockets ------------------------------------------------------------ */

static struct sockaddr_in loopback(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    return a;
}

static struct sockaddr *sa(void *p)
{
    return (struct sockaddr *)p;
}

static void bind_loopback(int fd, struct sockaddr_in *addr)
{
    *addr = loopback();
    assert_int_equal(bind(fd, sa(addr), sizeof *addr), 0);
    socklen_t len = sizeof *addr;
    assert_int_equal(getsockname(fd, sa(addr), &len), 0);
}

static int tcp_listener(int backlog, struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    bind_loopback(fd, addr);
    assert_int_equal(listen(fd, backlog), 0);
    return fd;
}

/* A connected loopback TCP pair. */
static void tcp_pair(int *client, int *server)
{
    struct sockaddr_in a;
    int l = tcp_listener(1, &a);
    *client = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*client >= 0);
    assert_int_equal(connect(*client, sa(&a), sizeof a), 0);
    *server = accept(l, NULL, NULL);
    assert_true(*server >= 0);
    assert_int_equal(close(l), 0);
}

static int udp_socket(struct sockaddr_in *addr)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    assert_true(fd >= 0);
    bind_loopback(fd, addr);
    return fd;
}

/* The port of a socket that was just closed: nobody listens there. */
static struct sockaddr_in dead_port(int type)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, type, 0);
    assert_true(fd >= 0);
    bind_loopback(fd, &a);
    assert_int_equal(close(fd), 0);
    return a;
}

static void stream_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
}

/* Send until the socket would block; the bytes sent. */
static size_t fill_send_buffer(int fd)
{
    static const unsigned char zeros[4096];
    size_t total = 0;
    ssize_t r;
    while ((r = send(fd, zeros, sizeof zeros, MSG_DONTWAIT)) > 0)
        total += (size_t)r;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    return total;
}

/* Read whatever fd holds right now; the bytes (or datagrams) read. */
static size_t drain_socket(int fd, bool count_datagrams)
{
    unsigned char buf[65536];
    size_t total = 0;
    ssize_t r;
    while ((r = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) >= 0)
        total += count_datagrams ? 1 : (size_t)r;
    return total;
}

/* Wait (bounded) until fd has events. */
static short wait_events(int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    int r;
    while ((r = poll(&p, 1, (int)scaled_ms(JOIN_MS))) == -1 && errno == EINTR)
        ;
    return r == 1 ? p.revents : 0;
}

/* Nothing arrives on fd within a little while (a check that nothing
 * happens). */
static bool stays_quiet(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    return poll(&p, 1, (int)scaled_ms(QUIET_MS)) == 0;
}

static int sock_error(int fd)
{
    int e = -1;
    socklen_t len = sizeof e;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &len);
    return e;
}

/* An AF_UNIX datagram receiver bound in a fresh directory, and an unbound
 * sender whose sendto blocks once the receiver's queue is full. */
struct dgram {
    char dir[64];
    struct sockaddr_un addr;
    int receiver, sender;
};

static void dgram_open(struct dgram *d)
{
    snprintf(d->dir, sizeof d->dir, "/tmp/cio-socket-XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    d->addr = (struct sockaddr_un){.sun_family = AF_UNIX};
    snprintf(d->addr.sun_path, sizeof d->addr.sun_path, "%s/r", d->dir);
    d->receiver = socket(AF_UNIX, SOCK_DGRAM, 0);
    d->sender = socket(AF_UNIX, SOCK_DGRAM, 0);
    assert_true(d->receiver >= 0 && d->sender >= 0);
    assert_int_equal(bind(d->receiver, sa(&d->addr), sizeof d->addr), 0);
}

/* Fill the receiver's queue; the datagrams it holds. */
static size_t dgram_fill(struct dgram *d)
{
    size_t k = 0;
    while (sendto(d->sender, "0123456789abcdef", 16, MSG_DONTWAIT, sa(&d->addr), sizeof d->addr) ==
           16)
        k++;
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    return k;
}

static void dgram_remove(struct dgram *d)
{
    assert_int_equal(unlink(d->addr.sun_path), 0);
    assert_int_equal(rmdir(d->dir), 0);
}

/* A listener whose accept queue is full: listen(fd, 0) holds one
 * established connection that is never accepted, and the kernel then
 * drops every SYN, so a blocking connect waits (retrying SYNs). */
struct full_backlog {
    int listener;
    struct sockaddr_in addr;
    int queued[8];
    int nqueued;
};

/* True once a probe's SYN went unanswered; false if the backlog could not
 * be filled within a bounded attempt (the caller skips). */
static bool fill_backlog(struct full_backlog *b)
{
    b->listener = tcp_listener(0, &b->addr);
    b->nqueued = 0;
    for (int k = 0; k < 8; k++) {
        int s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        assert_true(s >= 0);
        int r = connect(s, sa(&b->addr), sizeof b->addr);
        int e = r == 0 ? 0 : errno;
        struct pollfd p = {s, POLLOUT, 0};
        if ((r == 0 || e == EINPROGRESS) && poll(&p, 1, 200) == 1 && sock_error(s) == 0) {
            b->queued[b->nqueued++] = s;
            continue;
        }
        close(s); /* a connect still in SYN_SENT: aborted, nothing left */
        return e == EINPROGRESS && b->nqueued > 0;
    }
    return false;
}

static void backlog_close(struct full_backlog *b)
{
    for (int k = 0; k < b->nqueued; k++)
        close(b->queued[k]);
    b->nqueued = 0;
    close(b->listener);
}

/* A job that connects a fresh socket to b (blocking: the backlog is full). */
static struct job *blocked_connect(struct full_backlog *b, cio_file **f, int *fd)
{
    *fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(*fd >= 0);
    *f = cio_fdopen(*fd);
    assert_non_null(*f);
    struct job *j = job_new(run_connect, *f, 0);
    memcpy(&j->addr, &b->addr, sizeof b->addr);
    j->addrlen = sizeof b->addr;
    return j;
}

#define FULL_BACKLOG_OR_SKIP(b)                                                                    \
    do {                                                                                           \
        if (!fill_backlog(b)) {                                                                    \
            fprintf(stderr, "could not make a loopback connect block: skipped\n");                 \
            backlog_close(b);                                                                      \
            skip();                                                                                \
        }                                                                                          \
    } while (0)

/* ---- cio_accept --------------------------------------------------------- */

/* Rules 2, 4: with no connection pending, cio_accept fails with ETIMEDOUT
 * at the listener's read deadline, not before; the listener stays usable
 * and the next cio_accept takes the connection that comes later, filling
 * in the peer's address.  The write deadline does not govern accept. */
static void accept_times_out_on_its_read_deadline_then_accepts_a_connection(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = tcp_listener(4, &a);
    cio_file *l = cio_fdopen(lfd);
    assert_non_null(l);
    struct job *j = job_new(run_accept, l, 0);
    run_to_deadline(j, CIO_READ);
    assert_null(j->accepted);
    free(j);

    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, sa(&a), sizeof a), 0);
    assert_int_equal(cio_set_read_deadline(l, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_set_write_deadline(l, cio_now() - 1), 0);
    struct sockaddr_in peer, mine;
    socklen_t len = sizeof peer, mlen = sizeof mine;
    memset(&peer, 0, sizeof peer);
    cio_file *s = cio_accept(l, sa(&peer), &len);
    assert_non_null(s);
    assert_int_equal(len, sizeof peer);
    assert_int_equal(getsockname(c, sa(&mine), &mlen), 0);
    assert_int_equal(peer.sin_family, AF_INET);
    assert_int_equal(peer.sin_port, mine.sin_port);
    assert_int_equal(peer.sin_addr.s_addr, htonl(INADDR_LOOPBACK));

    assert_int_equal(write(c, "ping", 4), 4);
    char buf[8];
    assert_int_equal(cio_read(s, buf, sizeof buf), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_int_equal(cio_close(s), 0);
    assert_int_equal(cio_close(l), 0);
    assert_int_equal(close(c), 0);
}

/* Rule 6: a blocked cio_accept ignores cio_cancel(CIO_WRITE) and fails with
 * ECANCELED on CIO_READ; the cancel is not remembered: the next accept
 * takes a connection normally. */
static void accept_obeys_only_its_own_cancel(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = tcp_listener(4, &a);
    cio_file *l = cio_fdopen(lfd);
    assert_non_null(l);
    struct job *j = job_new(run_accept, l, 0);
    start_blocked(j, lfd, IN_ACCEPT);
    assert_only_its_own_cancel_stops(j, CIO_READ);
    assert_null(j->accepted);
    free(j);

    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, sa(&a), sizeof a), 0);
    cio_file *s = cio_accept(l, NULL, NULL);
    assert_non_null(s);
    assert_int_equal(cio_close(s), 0);
    assert_int_equal(cio_close(l), 0);
    assert_int_equal(close(c), 0);
}

/* Rule 7: cio_close fails a blocked cio_accept with EBADF and closes the
 * listener. */
static void close_fails_a_blocked_accept_with_EBADF(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = tcp_listener(4, &a);
    cio_file *l = cio_fdopen(lfd);
    assert_non_null(l);
    struct job *j = job_new(run_accept, l, 0);
    start_blocked(j, lfd, IN_ACCEPT);
    assert_close_fails_with_EBADF(l, lfd, j, NULL);
    assert_null(j->accepted);
    free(j);
}

/* Rule 12: a NULL listener, or an address without its length, fails with
 * EINVAL and takes nothing: the pending connection is still there for the
 * next accept. */
static void accept_rejects_bad_input_and_the_connection_stays_queued(void **state)
{
    (void)state;
    struct sockaddr_in a, peer;
    int lfd = tcp_listener(4, &a);
    cio_file *l = cio_fdopen(lfd);
    assert_non_null(l);
    assert_int_equal(cio_set_read_deadline(l, cio_after_ms(scaled_ms(LATE_MS))), 0); /* no hang */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, sa(&a), sizeof a), 0);
    assert_true(wait_events(lfd, POLLIN) & POLLIN);
    errno = 0;
    assert_null(cio_accept(NULL, NULL, NULL));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(cio_accept(l, sa(&peer), NULL));
    assert_int_equal(errno, EINVAL);
    assert_true(fd_readable_now(lfd));
    cio_file *s = cio_accept(l, NULL, NULL);
    assert_non_null(s);
    assert_int_equal(cio_close(s), 0);
    assert_int_equal(cio_close(l), 0);
    assert_int_equal(close(c), 0);
}

/* ---- cio_connect -------------------------------------------------------- */

/* cio_connect to a listening loopback socket succeeds (the read deadline,
 * past, does not govern it) and the connection carries data; a refused
 * connect reports ECONNREFUSED unchanged; a write deadline already past
 * fails at once with ETIMEDOUT without touching the socket (no SYN goes
 * out, and the socket connects normally once the deadline is cleared);
 * NULL file or address fail with EINVAL. */
static void connect_to_a_listening_loopback_socket_succeeds(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int lfd = tcp_listener(4, &a);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);

    errno = 0;
    assert_int_equal(cio_connect(NULL, sa(&a), sizeof a), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_connect(f, NULL, sizeof a), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cio_set_write_deadline(f, cio_now() - 1), 0);
    errno = 0;
    assert_int_equal(cio_connect(f, sa(&a), sizeof a), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(stays_quiet(lfd));
    struct sockaddr_in peer;
    socklen_t len = sizeof peer;
    assert_int_equal(getpeername(fd, sa(&peer), &len), -1);
    assert_int_equal(errno, ENOTCONN);

    assert_int_equal(cio_set_write_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
    assert_int_equal(cio_connect(f, sa(&a), sizeof a), 0);
    int s = accept(lfd, NULL, NULL);
    assert_true(s >= 0);
    assert_int_equal(cio_send(f, "hello", 5, 0), 5);
    char buf[8];
    assert_int_equal(read_full(s, buf, 5), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(s), 0);

    struct sockaddr_in dead = dead_port(SOCK_STREAM);
    fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    f = cio_fdopen(fd);
    assert_non_null(f);
    errno = 0;
    assert_int_equal(cio_connect(f, sa(&dead), sizeof dead), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(lfd), 0);
}

/* Rule 2: a connect blocked on a full backlog fails with ETIMEDOUT at the
 * write deadline, not before. */
static void connect_to_a_full_backlog_times_out_on_its_write_deadline(void **state)
{
    (void)state;
    struct full_backlog b;
    FULL_BACKLOG_OR_SKIP(&b);
    cio_file *f;
    int fd;
    struct job *j = blocked_connect(&b, &f, &fd);
    run_to_deadline(j, CIO_WRITE);
    free(j);
    assert_int_equal(cio_close(f), 0);
    backlog_close(&b);
}

/* Rule 6: a blocked connect ignores cio_cancel(CIO_READ) and fails with
 * ECANCELED on CIO_WRITE; it ignores a read deadline that passes too. */
static void connect_to_a_full_backlog_obeys_only_its_own_cancel(void **state)
{
    (void)state;
    struct full_backlog b;
    FULL_BACKLOG_OR_SKIP(&b);
    cio_file *f;
    int fd;
    struct job *j = blocked_connect(&b, &f, &fd);
    start_blocked(j, fd, IN_CONNECT);
    assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
    assert_only_its_own_cancel_stops(j, CIO_WRITE);
    free(j);
    assert_int_equal(cio_close(f), 0);
    backlog_close(&b);
}

/* Rule 7: cio_close fails a blocked connect with EBADF. */
static void close_fails_a_blocked_connect_with_EBADF(void **state)
{
    (void)state;
    struct full_backlog b;
    FULL_BACKLOG_OR_SKIP(&b);
    cio_file *f;
    int fd;
    struct job *j = blocked_connect(&b, &f, &fd);
    start_blocked(j, fd, IN_CONNECT);
    assert_close_fails_with_EBADF(f, fd, j, NULL);
    free(j);
    backlog_close(&b);
}

struct storm {
    atomic_int stop;
    atomic_int sent;
};

static void *storm_main(void *arg)
{
    struct storm *s = arg;
    block_all_signals_in_this_thread();
    while (!atomic_load(&s->stop)) {
        kill(getpid(), SIGUSR1);
        atomic_fetch_add(&s->sent, 1);
        sleep_us(200);
    }
    return NULL;
}

/* "A stray signal never turns into EALREADY": process-directed cancel
 * signals interrupt the blocked connect(2) (its worker is then seen
 * waiting in poll for the outcome, not calling connect again); when room
 * is made in the backlog the connection completes and cio_connect returns
 * 0, and the connection works. */
static void a_storm_of_stray_signals_during_connect_never_gives_EALREADY(void **state)
{
    (void)state;
    struct full_backlog b;
    FULL_BACKLOG_OR_SKIP(&b);
    cio_file *f;
    int fd;
    struct job *j = blocked_connect(&b, &f, &fd);
    start_blocked(j, fd, IN_CONNECT);

    struct storm s = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, storm_main, &s), 0);
    bool awaited = wait_in_syscall(NRS(poll_syscalls), -1, JOIN_MS);
    wait_for_time(cio_now() + scaled_ms(QUIET_MS) * NS_PER_MS); /* more strays, in poll */
    atomic_store(&s.stop, 1);
    pthread_join(th, NULL);
    assert_true(wait_no_pending(SIGUSR1, JOIN_MS));
    printf("storm: %d signals sent\n", atomic_load(&s.sent));
    assert_true(awaited);
    assert_false(job_is_done(j));

    for (int k = 0; k < b.nqueued; k++) { /* make room: the next SYN gets in */
        int s0 = accept(b.listener, NULL, NULL);
        assert_true(s0 >= 0);
        assert_int_equal(close(s0), 0);
    }
    assert_true(job_join(j, 2 * JOIN_MS)); /* SYNs are retried after 1 s, 3 s */
    assert_int_equal(j->result, 0);
    free(j);
    assert_true(wait_events(b.listener, POLLIN) & POLLIN);
    int srv = accept(b.listener, NULL, NULL);
    assert_true(srv >= 0);
    assert_int_equal(cio_send(f, "up", 2, 0), 2);
    char buf[4];
    assert_int_equal(read_full(srv, buf, 2), 2);
    assert_memory_equal(buf, "up", 2);
    assert_int_equal(close(srv), 0);
    assert_int_equal(cio_close(f), 0);
    backlog_close(&b);
}

/* ---- cio_recv / cio_send ------------------------------------------------ */

/* Flags reach the syscall: MSG_PEEK leaves the data for the next recv,
 * MSG_DONTWAIT on an empty socket gives EAGAIN at once, MSG_NOSIGNAL turns
 * a broken connection into EPIPE without SIGPIPE.  A zero-length recv on a
 * stream returns 0.  The other direction's deadline, past, governs
 * neither call. */
static void recv_and_send_pass_their_flags_to_the_syscall(void **state)
{
    (void)state;
    int c, s;
    tcp_pair(&c, &s);
    cio_file *f = cio_fdopen(c);
    assert_non_null(f);
    assert_int_equal(cio_set_write_deadline(f, cio_now() - 1), 0);
    assert_int_equal(write_all(s, "peekaboo", 8), 8);
    assert_true(wait_events(c, POLLIN) & POLLIN);
    char buf[16];
    assert_int_equal(cio_recv(f, buf, 4, MSG_PEEK), 4);
    assert_memory_equal(buf, "peek", 4);
    assert_int_equal(cio_recv(f, buf, 0, 0), 0);
    assert_int_equal(cio_recv(f, buf, sizeof buf, 0), 8);
    assert_memory_equal(buf, "peekaboo", 8);
    cio_time_t t = cio_now();
    errno = 0;
    assert_int_equal(cio_recv(f, buf, sizeof buf, MSG_DONTWAIT), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    assert_true(elapsed_ms(t, cio_now()) < (double)scaled_ms(AT_ONCE_MS));

    assert_int_equal(cio_set_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
    assert_int_equal(cio_send(f, "back", 4, 0), 4);
    assert_int_equal(read_full(s, buf, 4), 4);
    assert_memory_equal(buf, "back", 4);

    struct linger lg = {1, 0}; /* close with a reset */
    assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    assert_int_equal(close(s), 0);
    assert_true(wait_events(c, POLLIN) != 0);
    assert_int_equal(sock_error(c), ECONNRESET); /* taken: a broken pipe is left */
    errno = 0;
    assert_int_equal(cio_send(f, "x", 1, MSG_NOSIGNAL), -1);
    assert_int_equal(errno, EPIPE);
    sigset_t pending;
    sigpending(&pending);
    assert_false(sigismember(&pending, SIGPIPE));
    assert_int_equal(cio_close(f), 0);
}

/* A send that blocks runs on a worker; when the connection is shut down
 * under it, the worker's send fails with EPIPE, and the SIGPIPE that
 * send(2) would have raised lands on the caller, not the worker (none with
 * MSG_NOSIGNAL), however the platform keeps it off the worker: MSG_NOSIGNAL
 * on the worker's send where the system has it, taking it back there
 * elsewhere.  (TCP: Linux raises no SIGPIPE for an AF_UNIX send that was
 * already blocked when the shutdown came.) */
struct closer {
    int fd;
    bool saw_blocked;
};

/* Until a send would block, and still would a moment later: on loopback
 * the peer's window grows after the first EAGAIN and makes room again,
 * unless both buffers have a fixed size (which stops the autotuning). */
static void fill_until_blocked(int fd, int peer)
{
    int small = 4096;
    assert_int_equal(setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
    assert_int_equal(setsockopt(peer, SOL_SOCKET, SO_RCVBUF, &small, sizeof small), 0);
    char chunk[4096] = {0};
    for (;;) {
        int sent = 0;
        while (send(fd, chunk, sizeof chunk, MSG_DONTWAIT) > 0)
            sent++;
        if (!sent)
            return;
        sleep_us(50000);
    }
}

static void *shut_when_blocked(void *arg)
{
    struct closer *c = arg;
    c->saw_blocked = wait_in_syscall_on(c->fd, CIO_WRITE, 1, scaled_ms(5000));
    shutdown(c->fd, SHUT_WR);
    return NULL;
}

static void a_blocked_send_cut_by_a_shutdown_raises_SIGPIPE_in_the_caller(void **state)
{
    (void)state;
    static const int flags[] = {0, MSG_NOSIGNAL};
    sigset_t pipe_only, old, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &pipe_only, &old), 0);
    for (int k = 0; k < 2; k++) {
        int sv[2];
        tcp_pair(&sv[0], &sv[1]);
        fill_until_blocked(sv[0], sv[1]);
        cio_file *f = cio_fdopen(sv[0]);
        assert_non_null(f);
        struct closer c = {sv[0], false};
        char chunk[4096] = {0};
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, shut_when_blocked, &c), 0);
        errno = 0;
        ssize_t r = cio_send(f, chunk, sizeof chunk, flags[k]);
        int err = errno;
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(c.saw_blocked);
        assert_int_equal(r, -1);
        assert_int_equal(err, EPIPE);
        assert_int_equal(sigpending(&pending), 0);
        assert_int_equal(sigismember(&pending, SIGPIPE), flags[k] == 0);
        int signo;
        if (flags[k] == 0)
            assert_int_equal(sigwait(&pipe_only, &signo), 0);
        assert_int_equal(cio_close(f), 0);
        assert_int_equal(close(sv[1]), 0);
    }
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
}

/* Rules 2, 4: a recv on an empty connection fails with ETIMEDOUT at its
 * read deadline, not before; what the peer sends later is read whole by
 * the next recv. */
static void recv_times_out_on_its_read_deadline_and_the_data_survives(void **state)
{
    (void)state;
    int c, s;
    tcp_pair(&c, &s);
    cio_file *f = cio_fdopen(c);
    assert_non_null(f);
    struct job *j = job_new(run_recv, f, 64);
    run_to_deadline(j, CIO_READ);
    free(j);
    unsigned char src[40], buf[64];
    fill_pattern(src, sizeof src, 0);
    assert_int_equal(write_all(s, src, sizeof src), (ssize_t)sizeof src);
    assert_true(wait_events(c, POLLIN) & POLLIN);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(JOIN_MS))), 0);
    assert_int_equal(cio_recv(f, buf, sizeof buf, 0), (ssize_t)sizeof src);
    assert_memory_equal(buf, src, sizeof src);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(s), 0);
}

/* Rule 2: a send on a full socket fails with ETIMEDOUT at its write
 * deadline, not before, having sent nothing: the peer finds exactly what
 * filled the buffer; after the peer reads, the next send goes out. */
static void send_on_a_full_socket_times_out_on_its_write_deadline_having_sent_nothing(void **state)
{
    (void)state;
    int sv[2];
    stream_pair(sv);
    size_t filled = fill_send_buffer(sv[0]);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    struct job *j = job_new(run_send, f, 16);
    run_to_deadline(j, CIO_WRITE);
    free(j);
    assert_int_equal(drain_socket(sv[1], false), filled);
    assert_int_equal(cio_set_write_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_send(f, "after", 5, 0), 5);
    char buf[8];
    assert_int_equal(read_full(sv[1], buf, 5), 5);
    assert_memory_equal(buf, "after", 5);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* Rule 6, on a stream socket: a blocked receive (call rd) fails with
 * ECANCELED on CIO_READ only, a send (call wr) blocked on a full socket on
 * CIO_WRITE only, having sent nothing. */
static void stream_calls_obey_only_their_own_cancel(job_fn rd, job_fn wr)
{
    int sv[2];
    stream_pair(sv);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    struct job *r = job_new(rd, f, 16);
    start_blocked(r, sv[0], IN_READ);
    assert_only_its_own_cancel_stops(r, CIO_READ);
    free(r);

    size_t filled = fill_send_buffer(sv[0]);
    struct job *w = job_new(wr, f, 16);
    start_blocked(w, sv[0], IN_WRITE);
    assert_only_its_own_cancel_stops(w, CIO_WRITE);
    free(w);
    assert_int_equal(drain_socket(sv[1], false), filled);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* Rule 7, on a stream socket: cio_close fails a blocked receive (call rd)
 * and a blocked send (call wr) on the same socket with EBADF. */
static void stream_calls_fail_with_EBADF_on_close(job_fn rd, job_fn wr)
{
    int sv[2];
    stream_pair(sv);
    fill_send_buffer(sv[0]);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    struct job *r = job_new(rd, f, 16), *w = job_new(wr, f, 16);
    start_blocked(r, sv[0], IN_READ);
    start_blocked(w, sv[0], IN_WRITE);
    assert_close_fails_with_EBADF(f, sv[0], r, w);
    free(r);
    free(w);
    assert_int_equal(close(sv[1]), 0);
}

static void recv_and_send_obey_only_their_own_cancel(void **state)
{
    (void)state;
    stream_calls_obey_only_their_own_cancel(run_recv, run_send);
}

static void close_fails_a_blocked_recv_and_send_with_EBADF(void **state)
{
    (void)state;
    stream_calls_fail_with_EBADF_on_close(run_recv, run_send);
}

/* Rule 12: NULL file or buffer fail with EINVAL and consume nothing. */
static void recv_and_send_reject_bad_input_with_EINVAL(void **state)
{
    (void)state;
    int sv[2];
    stream_pair(sv);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    assert_int_equal(cio_set_deadline(f, cio_after_ms(scaled_ms(LATE_MS))), 0); /* no hang */
    char buf[8];
    assert_int_equal(write(sv[1], "keep", 4), 4);
    errno = 0;
    assert_int_equal(cio_recv(NULL, buf, sizeof buf, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_recv(f, NULL, sizeof buf, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_send(NULL, "x", 1, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_send(f, NULL, 1, 0), -1);
    assert_int_equal(errno, EINVAL);
    assert_true(stays_quiet(sv[1]));
    assert_int_equal(cio_recv(f, buf, sizeof buf, 0), 4);
    assert_memory_equal(buf, "keep", 4);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* Rule 8: a connected UDP socket whose last datagram met a closed port
 * holds ECONNREFUSED; recv(2) reports it (the control, on a second socket)
 * and so must cio_recv, at once, not wait for its deadline. */
static void recv_reports_a_pending_socket_error_as_recv_does(void **state)
{
    (void)state;
    struct sockaddr_in dead = dead_port(SOCK_DGRAM);
    int u[2];
    for (int k = 0; k < 2; k++) {
        u[k] = socket(AF_INET, SOCK_DGRAM, 0);
        assert_true(u[k] >= 0);
        assert_int_equal(connect(u[k], sa(&dead), sizeof dead), 0);
        assert_int_equal(send(u[k], "x", 1, 0), 1);
        assert_true(wait_events(u[k], POLLIN) & POLLERR);
    }
    char buf[8];
    errno = 0;
    assert_int_equal(recv(u[0], buf, sizeof buf, 0), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(close(u[0]), 0);

    cio_file *f = cio_fdopen(u[1]);
    assert_non_null(f);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(LATE_MS))), 0);
    errno = 0;
    ssize_t r = cio_recv(f, buf, sizeof buf, 0);
    int e = errno;
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(r, -1);
    assert_int_equal(e, ECONNREFUSED);
}

/* Rule 8: after the peer resets the connection, recv(2) reports
 * ECONNRESET (the control, on a second connection) and so must cio_recv,
 * not end of file. */
static void recv_after_a_reset_reports_ECONNRESET_as_recv_does(void **state)
{
    (void)state;
    int c[2], s;
    for (int k = 0; k < 2; k++) {
        tcp_pair(&c[k], &s);
        struct linger lg = {1, 0};
        assert_int_equal(setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
        assert_int_equal(close(s), 0);
        assert_true(wait_events(c[k], POLLIN) & POLLHUP);
    }
    char buf[8];
    errno = 0;
    assert_int_equal(recv(c[0], buf, sizeof buf, 0), -1);
    assert_int_equal(errno, ECONNRESET);
    assert_int_equal(close(c[0]), 0);

    cio_file *f = cio_fdopen(c[1]);
    assert_non_null(f);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(LATE_MS))), 0);
    errno = 0;
    ssize_t r = cio_recv(f, buf, sizeof buf, 0);
    int e = errno;
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(r, -1);
    assert_int_equal(e, ECONNRESET);
}

/* Rule 8: send(2) on a UDP socket holding ECONNREFUSED fails with it and
 * sends nothing (the control); so must cio_send. */
static void send_reports_a_pending_socket_error_as_send_does(void **state)
{
    (void)state;
    struct sockaddr_in dead = dead_port(SOCK_DGRAM);
    int u[2];
    for (int k = 0; k < 2; k++) {
        u[k] = socket(AF_INET, SOCK_DGRAM, 0);
        assert_true(u[k] >= 0);
        assert_int_equal(connect(u[k], sa(&dead), sizeof dead), 0);
        assert_int_equal(send(u[k], "x", 1, 0), 1);
        assert_true(wait_events(u[k], POLLIN) & POLLERR);
    }
    errno = 0;
    assert_int_equal(send(u[0], "y", 1, 0), -1);
    assert_int_equal(errno, ECONNREFUSED);
    assert_int_equal(close(u[0]), 0);

    cio_file *f = cio_fdopen(u[1]);
    assert_non_null(f);
    errno = 0;
    ssize_t r = cio_send(f, "y", 1, 0);
    int e = errno;
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(r, -1);
    assert_int_equal(e, ECONNREFUSED);
}

/* recv(2) with MSG_WAITALL blocks until the whole count is there (no
 * signal, error or end of file intervenes here): cio_recv must not hand
 * back the part that was already there. */
static void recv_with_MSG_WAITALL_waits_for_the_whole_count(void **state)
{
    (void)state;
    int sv[2];
    stream_pair(sv);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    assert_int_equal(write(sv[1], "0123456789", 10), 10);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(JOIN_MS))), 0);
    struct job *j = job_new(run_recv, f, 20);
    j->flags = MSG_WAITALL;
    job_start(j);
    wait_for_time(cio_now() + scaled_ms(QUIET_MS) * NS_PER_MS);
    bool waited = !job_is_done(j);
    assert_int_equal(write(sv[1], "abcdefghij", 10), 10);
    assert_true(job_join(j, JOIN_MS));
    ssize_t r = j->result;
    free(j);
    drain_socket(sv[0], false);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
    assert_true(waited);
    assert_int_equal(r, 20);
}

/* ---- cio_recvfrom / cio_sendto ------------------------------------------ */

/* Over UDP loopback, cio_sendto reaches the address given and cio_recvfrom
 * reads the datagram whole and fills in the sender's address and its
 * length; a zero-length datagram is a real one (passed to the kernel); a
 * sendto with no address on an unconnected socket fails with the
 * syscall's EDESTADDRREQ. */
static void recvfrom_and_sendto_on_udp_fill_in_the_sender_address(void **state)
{
    (void)state;
    struct sockaddr_in aa, ba, from;
    int a = udp_socket(&aa), b = udp_socket(&ba);
    cio_file *fa = cio_fdopen(a), *fb = cio_fdopen(b);
    assert_non_null(fa);
    assert_non_null(fb);
    unsigned char src[1200], buf[2000];
    fill_pattern(src, sizeof src, 0);
    assert_int_equal(cio_sendto(fa, src, sizeof src, 0, sa(&ba), sizeof ba), (ssize_t)sizeof src);
    socklen_t len = sizeof from;
    memset(&from, 0, sizeof from);
    assert_int_equal(cio_recvfrom(fb, buf, sizeof buf, 0, sa(&from), &len), (ssize_t)sizeof src);
    assert_memory_equal(buf, src, sizeof src);
    assert_int_equal(len, sizeof from);
    assert_int_equal(from.sin_family, AF_INET);
    assert_int_equal(from.sin_port, aa.sin_port);
    assert_int_equal(from.sin_addr.s_addr, htonl(INADDR_LOOPBACK));

    assert_int_equal(cio_sendto(fb, NULL, 0, 0, sa(&aa), sizeof aa), 0);
    len = sizeof from;
    memset(&from, 0, sizeof from);
    assert_int_equal(cio_recvfrom(fa, buf, sizeof buf, 0, sa(&from), &len), 0);
    assert_int_equal(from.sin_port, ba.sin_port);
    assert_true(stays_quiet(a));

    errno = 0;
    assert_int_equal(cio_sendto(fa, "x", 1, 0, NULL, 0), -1);
    assert_int_equal(errno, EDESTADDRREQ);
    assert_int_equal(cio_close(fa), 0);
    assert_int_equal(cio_close(fb), 0);
}

/* Rules 2, 4: a recvfrom on an empty UDP socket fails with ETIMEDOUT at
 * its read deadline, not before; a datagram sent afterwards is read whole,
 * with its sender's address, by the next recvfrom. */
static void recvfrom_times_out_on_its_read_deadline_and_a_later_datagram_is_read_whole(void **state)
{
    (void)state;
    struct sockaddr_in aa, ba, from;
    int a = udp_socket(&aa), b = udp_socket(&ba);
    cio_file *fb = cio_fdopen(b);
    assert_non_null(fb);
    struct job *j = job_new(run_recvfrom, fb, 2000);
    run_to_deadline(j, CIO_READ);
    free(j);

    unsigned char src[700], buf[2000];
    fill_pattern(src, sizeof src, 3);
    assert_int_equal(sendto(a, src, sizeof src, 0, sa(&ba), sizeof ba), (ssize_t)sizeof src);
    assert_int_equal(cio_set_read_deadline(fb, cio_after_ms(scaled_ms(JOIN_MS))), 0);
    socklen_t len = sizeof from;
    assert_int_equal(cio_recvfrom(fb, buf, sizeof buf, 0, sa(&from), &len), (ssize_t)sizeof src);
    assert_memory_equal(buf, src, sizeof src);
    assert_int_equal(from.sin_port, aa.sin_port);
    assert_int_equal(cio_close(fb), 0);
    assert_int_equal(close(a), 0);
}

/* Rule 2: a sendto into a full AF_UNIX datagram queue fails with ETIMEDOUT
 * at its write deadline, not before, having sent nothing: the receiver
 * holds exactly the datagrams that filled it; once it reads them the next
 * sendto goes out. */
static void sendto_a_full_datagram_queue_times_out_on_its_write_deadline(void **state)
{
    (void)state;
    struct dgram d;
    dgram_open(&d);
    size_t queued = dgram_fill(&d);
    cio_file *f = cio_fdopen(d.sender);
    assert_non_null(f);
    struct job *j = job_new(run_sendto, f, 16);
    memcpy(&j->addr, &d.addr, sizeof d.addr);
    j->addrlen = sizeof d.addr;
    run_to_deadline(j, CIO_WRITE);
    free(j);
    assert_int_equal(drain_socket(d.receiver, true), queued);
    assert_int_equal(cio_set_write_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_sendto(f, "late", 4, 0, sa(&d.addr), sizeof d.addr), 4);
    char buf[8];
    assert_int_equal(recv(d.receiver, buf, sizeof buf, 0), 4);
    assert_memory_equal(buf, "late", 4);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(d.receiver), 0);
    dgram_remove(&d);
}

/* Rule 6: a blocked recvfrom fails with ECANCELED on CIO_READ only, a
 * sendto blocked on a full queue on CIO_WRITE only, having sent nothing. */
static void recvfrom_and_sendto_obey_only_their_own_cancel(void **state)
{
    (void)state;
    struct sockaddr_in ba;
    int b = udp_socket(&ba);
    cio_file *fb = cio_fdopen(b);
    assert_non_null(fb);
    struct job *r = job_new(run_recvfrom, fb, 2000);
    start_blocked(r, b, IN_READ);
    assert_only_its_own_cancel_stops(r, CIO_READ);
    free(r);
    assert_int_equal(cio_close(fb), 0);

    struct dgram d;
    dgram_open(&d);
    size_t queued = dgram_fill(&d);
    cio_file *f = cio_fdopen(d.sender);
    assert_non_null(f);
    struct job *w = job_new(run_sendto, f, 16);
    memcpy(&w->addr, &d.addr, sizeof d.addr);
    w->addrlen = sizeof d.addr;
    start_blocked(w, d.sender, IN_WRITE);
    assert_only_its_own_cancel_stops(w, CIO_WRITE);
    free(w);
    assert_int_equal(drain_socket(d.receiver, true), queued);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(d.receiver), 0);
    dgram_remove(&d);
}

/* Rule 7: cio_close fails a blocked recvfrom and a blocked sendto with
 * EBADF. */
static void close_fails_a_blocked_recvfrom_and_sendto_with_EBADF(void **state)
{
    (void)state;
    struct sockaddr_in ba;
    int b = udp_socket(&ba);
    cio_file *fb = cio_fdopen(b);
    assert_non_null(fb);
    struct dgram d;
    dgram_open(&d);
    dgram_fill(&d);
    cio_file *f = cio_fdopen(d.sender);
    assert_non_null(f);
    struct job *r = job_new(run_recvfrom, fb, 2000), *w = job_new(run_sendto, f, 16);
    memcpy(&w->addr, &d.addr, sizeof d.addr);
    w->addrlen = sizeof d.addr;
    start_blocked(r, b, IN_READ);
    start_blocked(w, d.sender, IN_WRITE);
    assert_close_fails_with_EBADF(fb, b, r, NULL);
    assert_close_fails_with_EBADF(f, d.sender, w, NULL);
    free(r);
    free(w);
    assert_int_equal(close(d.receiver), 0);
    dgram_remove(&d);
}

/* Rule 12: NULL file or buffer, or an address without its length, fail
 * with EINVAL and the waiting datagram stays for the next recvfrom; a
 * sendto address of length 0 gets the kernel's EINVAL and sends nothing. */
static void recvfrom_and_sendto_reject_bad_input_with_EINVAL(void **state)
{
    (void)state;
    struct sockaddr_in aa, ba, from;
    int a = udp_socket(&aa), b = udp_socket(&ba);
    cio_file *fa = cio_fdopen(a), *fb = cio_fdopen(b);
    assert_non_null(fa);
    assert_non_null(fb);
    assert_int_equal(cio_set_deadline(fb, cio_after_ms(scaled_ms(LATE_MS))), 0); /* no hang */
    char buf[16];
    socklen_t len = sizeof from;
    assert_int_equal(sendto(a, "dgram", 5, 0, sa(&ba), sizeof ba), 5);
    assert_true(wait_events(b, POLLIN) & POLLIN);
    errno = 0;
    assert_int_equal(cio_recvfrom(fb, buf, sizeof buf, 0, sa(&from), NULL), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_recvfrom(NULL, buf, sizeof buf, 0, sa(&from), &len), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_recvfrom(fb, NULL, sizeof buf, 0, sa(&from), &len), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_sendto(NULL, "x", 1, 0, sa(&ba), sizeof ba), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_sendto(fa, NULL, 1, 0, sa(&ba), sizeof ba), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_sendto(fa, "x", 1, 0, sa(&ba), 0), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cio_recvfrom(fb, buf, sizeof buf, 0, sa(&from), &len), 5);
    assert_memory_equal(buf, "dgram", 5);
    assert_true(stays_quiet(b)); /* nothing else arrived */
    assert_int_equal(cio_close(fa), 0);
    assert_int_equal(cio_close(fb), 0);
}

/* ---- cio_recvmsg / cio_sendmsg ------------------------------------------ */

/* Over an AF_UNIX socketpair, cio_sendmsg gathers two buffers and passes a
 * pipe's write end with SCM_RIGHTS; cio_recvmsg scatters the bytes into
 * two buffers and receives a working descriptor. */
static void sendmsg_and_recvmsg_carry_an_iovec_and_an_fd_over_af_unix(void **state)
{
    (void)state;
    int sv[2], p[2];
    stream_pair(sv);
    assert_int_equal(make_pipe(p), 0);
    cio_file *a = cio_fdopen(sv[0]), *b = cio_fdopen(sv[1]);
    assert_non_null(a);
    assert_non_null(b);

    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } out_ctl, in_ctl;
    memset(&out_ctl, 0, sizeof out_ctl);
    struct iovec out[2] = {{"hdr:", 4}, {"body!", 5}};
    struct msghdr m = {.msg_iov = out,
                       .msg_iovlen = 2,
                       .msg_control = out_ctl.buf,
                       .msg_controllen = sizeof out_ctl.buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &p[1], sizeof(int));
    assert_int_equal(cio_sendmsg(a, &m, 0), 9);

    char x[3], y[16];
    struct iovec in[2] = {{x, sizeof x}, {y, sizeof y}};
    memset(&in_ctl, 0, sizeof in_ctl);
    struct msghdr r = {.msg_iov = in,
                       .msg_iovlen = 2,
                       .msg_control = in_ctl.buf,
                       .msg_controllen = sizeof in_ctl.buf};
    assert_int_equal(cio_recvmsg(b, &r, 0), 9);
    assert_memory_equal(x, "hdr", 3);
    assert_memory_equal(y, ":body!", 6);
    assert_int_equal(r.msg_flags & (MSG_CTRUNC | MSG_TRUNC), 0);
    struct cmsghdr *got = CMSG_FIRSTHDR(&r);
    assert_non_null(got);
    assert_int_equal(got->cmsg_level, SOL_SOCKET);
    assert_int_equal(got->cmsg_type, SCM_RIGHTS);
    int fd = -1;
    memcpy(&fd, CMSG_DATA(got), sizeof fd);
    assert_true(fd >= 0 && fd != p[1]);
    assert_int_equal(write(fd, "via", 3), 3);
    char buf[4];
    assert_int_equal(read_full(p[0], buf, 3), 3);
    assert_memory_equal(buf, "via", 3);
    assert_int_equal(close(fd), 0);
    assert_int_equal(close(p[0]), 0);
    assert_int_equal(close(p[1]), 0);
    assert_int_equal(cio_close(a), 0);
    assert_int_equal(cio_close(b), 0);
}

/* Rules 2, 4: a recvmsg on an empty socket fails with ETIMEDOUT at its
 * read deadline, not before; what the peer sends later is read whole,
 * across both buffers, by the next recvmsg. */
static void recvmsg_times_out_on_its_read_deadline_and_the_message_survives(void **state)
{
    (void)state;
    int sv[2];
    stream_pair(sv);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    struct job *j = job_new(run_recvmsg, f, 16);
    run_to_deadline(j, CIO_READ);
    free(j);
    assert_int_equal(write(sv[1], "abcdef", 6), 6);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(JOIN_MS))), 0);
    char x[3], y[8];
    struct iovec in[2] = {{x, sizeof x}, {y, sizeof y}};
    struct msghdr m = {.msg_iov = in, .msg_iovlen = 2};
    assert_int_equal(cio_recvmsg(f, &m, 0), 6);
    assert_memory_equal(x, "abc", 3);
    assert_memory_equal(y, "def", 3);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* Rule 2: a sendmsg on a full socket fails with ETIMEDOUT at its write
 * deadline, not before, having sent nothing; the next one, after the peer
 * reads, goes out whole. */
static void
sendmsg_on_a_full_socket_times_out_on_its_write_deadline_having_sent_nothing(void **state)
{
    (void)state;
    int sv[2];
    stream_pair(sv);
    size_t filled = fill_send_buffer(sv[0]);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    struct job *j = job_new(run_sendmsg, f, 16);
    run_to_deadline(j, CIO_WRITE);
    free(j);
    assert_int_equal(drain_socket(sv[1], false), filled);
    assert_int_equal(cio_set_write_deadline(f, CIO_NO_DEADLINE), 0);
    struct iovec out[2] = {{"ab", 2}, {"cde", 3}};
    struct msghdr m = {.msg_iov = out, .msg_iovlen = 2};
    assert_int_equal(cio_sendmsg(f, &m, 0), 5);
    char buf[8];
    assert_int_equal(read_full(sv[1], buf, 5), 5);
    assert_memory_equal(buf, "abcde", 5);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

static void recvmsg_and_sendmsg_obey_only_their_own_cancel(void **state)
{
    (void)state;
    stream_calls_obey_only_their_own_cancel(run_recvmsg, run_sendmsg);
}

static void close_fails_a_blocked_recvmsg_and_sendmsg_with_EBADF(void **state)
{
    (void)state;
    stream_calls_fail_with_EBADF_on_close(run_recvmsg, run_sendmsg);
}

/* Rule 12: a NULL file or message fails with EINVAL and consumes
 * nothing. */
static void recvmsg_and_sendmsg_reject_bad_input_with_EINVAL(void **state)
{
    (void)state;
    int sv[2];
    stream_pair(sv);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    assert_int_equal(cio_set_deadline(f, cio_after_ms(scaled_ms(LATE_MS))), 0); /* no hang */
    assert_int_equal(write(sv[1], "keep", 4), 4);
    char buf[8];
    struct iovec in[1] = {{buf, sizeof buf}};
    struct msghdr m = {.msg_iov = in, .msg_iovlen = 1};
    errno = 0;
    assert_int_equal(cio_recvmsg(NULL, &m, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_recvmsg(f, NULL, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_sendmsg(NULL, &m, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_sendmsg(f, NULL, 0), -1);
    assert_int_equal(errno, EINVAL);
    /* a NULL base with a length: EINVAL, as for cio_readv and cio_writev */
    struct iovec bad[1] = {{NULL, 4}};
    struct msghdr mb = {.msg_iov = bad, .msg_iovlen = 1};
    EXPECT_FAIL(cio_recvmsg(f, &mb, 0), EINVAL);
    EXPECT_FAIL(cio_sendmsg(f, &mb, 0), EINVAL);
    /* more than IOV_MAX buffers: EMSGSIZE, as recvmsg(2) and sendmsg(2) */
    long max = sysconf(_SC_IOV_MAX);
    if (max > 0) {
        struct iovec *many = calloc((size_t)max + 1, sizeof *many);
        assert_non_null(many);
        for (long k = 0; k <= max; k++)
            many[k] = (struct iovec){buf, 1};
        struct msghdr mm = {.msg_iov = many, .msg_iovlen = (size_t)max + 1};
        EXPECT_FAIL(cio_recvmsg(f, &mm, 0), EMSGSIZE);
        EXPECT_FAIL(cio_sendmsg(f, &mm, 0), EMSGSIZE);
        free(many);
    }
    assert_true(stays_quiet(sv[1]));
    assert_int_equal(cio_recvmsg(f, &m, 0), 4);
    assert_memory_equal(buf, "keep", 4);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* ---- the end of the suite ------------------------------------------------ */

static struct {
    int fds, threads;
} suite_baseline;

static bool back_to_suite_baseline(void *arg)
{
    (void)arg;
    return fd_count() == suite_baseline.fds && thread_count() == suite_baseline.threads;
}

/* Every op started was done, timeouts and cancels were counted, and after
 * cio_shutdown the process has the threads and fds it had after the first
 * shutdown (under ThreadSanitizer that baseline includes its background
 * thread). */
static void the_counters_balance_and_nothing_outlives_the_suite(void **state)
{
    (void)state;
    cio_stats s;
    cio_get_stats(&s);
    printf("stats: %llu ops started, %llu done, %llu timeouts, %llu cancels\n",
           (unsigned long long)s.ops_started, (unsigned long long)s.ops_done,
           (unsigned long long)s.timeouts, (unsigned long long)s.cancels);
    assert_true(s.ops_started == s.ops_done);
    assert_true(s.ops_started > 0);
    assert_true(s.timeouts > 0);
    assert_true(s.cancels > 0);
    assert_int_equal(cio_shutdown(), 0);
    cio_get_stats(&s);
    assert_int_equal(s.threads, 0);
    if (!wait_until(back_to_suite_baseline, NULL, 2000))
        fprintf(stderr, "leak: %d fds (was %d), %d threads (was %d)\n", fd_count(),
                suite_baseline.fds, thread_count(), suite_baseline.threads);
    assert_int_equal(fd_count(), suite_baseline.fds);
    assert_int_equal(thread_count(), suite_baseline.threads);
}

/* Start the library's threads once (a worker, the timer) and shut them
 * down, so that the baseline taken after includes whatever the runtime (a
 * sanitizer) keeps. */
static int take_suite_baseline(void)
{
    void *st = NULL;
    int sv[2];
    char c;
    fixture_setup_watched(&st); /* the watchdog thread exists from here on */
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0)
        return -1;
    cio_file *f = cio_fdopen(sv[0]);
    cio_set_read_deadline(f, cio_after_ms(10));
    cio_recv(f, &c, 1, 0);
    cio_close(f);
    close(sv[1]);
    cio_shutdown();
    suite_baseline.fds = fd_count();
    suite_baseline.threads = thread_count();
    return fixture_teardown(&st);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup_watched, fixture_teardown)

int main(void)
{
    block_cancel_signal_in_this_thread();
    if (take_suite_baseline() != 0) {
        fprintf(stderr, "could not take the suite's baseline\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(accept_times_out_on_its_read_deadline_then_accepts_a_connection),
        T(accept_obeys_only_its_own_cancel),
        T(close_fails_a_blocked_accept_with_EBADF),
        T(accept_rejects_bad_input_and_the_connection_stays_queued),
        T(connect_to_a_listening_loopback_socket_succeeds),
        T(connect_to_a_full_backlog_times_out_on_its_write_deadline),
        T(connect_to_a_full_backlog_obeys_only_its_own_cancel),
        T(close_fails_a_blocked_connect_with_EBADF),
        T(a_storm_of_stray_signals_during_connect_never_gives_EALREADY),
        T(recv_and_send_pass_their_flags_to_the_syscall),
        T(a_blocked_send_cut_by_a_shutdown_raises_SIGPIPE_in_the_caller),
        T(recv_times_out_on_its_read_deadline_and_the_data_survives),
        T(send_on_a_full_socket_times_out_on_its_write_deadline_having_sent_nothing),
        T(recv_and_send_obey_only_their_own_cancel),
        T(close_fails_a_blocked_recv_and_send_with_EBADF),
        T(recv_and_send_reject_bad_input_with_EINVAL),
        T(recv_reports_a_pending_socket_error_as_recv_does),
        T(recv_after_a_reset_reports_ECONNRESET_as_recv_does),
        T(send_reports_a_pending_socket_error_as_send_does),
        T(recv_with_MSG_WAITALL_waits_for_the_whole_count),
        T(recvfrom_and_sendto_on_udp_fill_in_the_sender_address),
        T(recvfrom_times_out_on_its_read_deadline_and_a_later_datagram_is_read_whole),
        T(sendto_a_full_datagram_queue_times_out_on_its_write_deadline),
        T(recvfrom_and_sendto_obey_only_their_own_cancel),
        T(close_fails_a_blocked_recvfrom_and_sendto_with_EBADF),
        T(recvfrom_and_sendto_reject_bad_input_with_EINVAL),
        T(sendmsg_and_recvmsg_carry_an_iovec_and_an_fd_over_af_unix),
        T(recvmsg_times_out_on_its_read_deadline_and_the_message_survives),
        T(sendmsg_on_a_full_socket_times_out_on_its_write_deadline_having_sent_nothing),
        T(recvmsg_and_sendmsg_obey_only_their_own_cancel),
        T(close_fails_a_blocked_recvmsg_and_sendmsg_with_EBADF),
        T(recvmsg_and_sendmsg_reject_bad_input_with_EINVAL),
        cmocka_unit_test(the_counters_balance_and_nothing_outlives_the_suite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
