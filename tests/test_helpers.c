/*
 * Description: the read helpers of DESIGN rule 20, cio_read_until,
 * cio_read_full and cio_unread.  A delimiter split across writes is found
 * (an invariant over many lines written a byte or a few at a time, with
 * random timing), a delimiter at the very end of cap counts, bytes read
 * past the delimiter are served first to the next cio_read, cio_readv and
 * cio_recv, cap reached without the delimiter is ENOBUFS with nothing
 * consumed, end of file returns what was read, a deadline or a cancel
 * fails the helper with every byte kept in the file (and a copy in buf),
 * and so does a Plan 9 note (EINTR),
 * a long search reads in chunks far larger than a byte, and cio_detach
 * seeks back over held bytes of a regular file.
 */
#include "support.h"

#include <cancelio/plan9.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define JOIN_MS 5000

static void put(int fd, const char *s)
{
    assert_int_equal(write_all(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static cio_file *pipe_file(int *wfd)
{
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    *wfd = p[1];
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    return f;
}

/* ---- a writer that dribbles a text ---- */

struct dribble {
    int fd;
    const char *text;
    unsigned seed;
    pthread_t thread;
};

static void *dribble_main(void *arg)
{
    struct dribble *d = arg;
    struct rng r;
    rng_init(&r, d->seed);
    size_t n = strlen(d->text);
    for (size_t i = 0; i < n;) {
        size_t k = 1 + rng_below(&r, 3);
        if (k > n - i)
            k = n - i;
        if (write_all(d->fd, d->text + i, k) != (ssize_t)k)
            break;
        i += k;
        random_delay_us(&r, 200);
    }
    close(d->fd);
    return NULL;
}

/* Lines written a few bytes at a time with random pauses: every "\r\n"
 * split across writes (and reads) is found, and the lines come back whole
 * and in order, then end of file gives 0. */
static void read_until_finds_delimiters_split_across_writes(void **state)
{
    (void)state;
    char text[4096] = "";
    char line[64];
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof line, "line %d of the text\r\n", i);
        strcat(text, line);
    }
    int wfd;
    cio_file *f = pipe_file(&wfd);
    struct dribble d = {wfd, text, test_seed("split"), 0};
    assert_int_equal(pthread_create(&d.thread, NULL, dribble_main, &d), 0);
    char buf[64];
    for (int i = 0; i < 100; i++) {
        snprintf(line, sizeof line, "line %d of the text\r\n", i);
        ssize_t n = cio_read_until(f, buf, sizeof buf, "\r\n", 2);
        assert_int_equal(n, (ssize_t)strlen(line));
        assert_memory_equal(buf, line, (size_t)n);
    }
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\r\n", 2), 0);
    pthread_join(d.thread, NULL);
    assert_int_equal(cio_close(f), 0);
}

/* The bytes past the delimiter stay in f: cio_unread counts them and the
 * next cio_read returns them before anything newer. */
static void bytes_past_the_delimiter_go_to_the_next_cio_read(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    put(wfd, "hello\nworld");
    char buf[32];
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\n", 1), 6);
    assert_memory_equal(buf, "hello\n", 6);
    assert_int_equal(cio_unread(f), 5);
    put(wfd, "!");
    memset(buf, 0, sizeof buf);
    assert_int_equal(cio_read(f, buf, sizeof buf), 5);
    assert_string_equal(buf, "world");
    assert_int_equal(cio_unread(f), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), 1);
    assert_int_equal(buf[0], '!');
    close(wfd);
    assert_int_equal(cio_close(f), 0);
}

/* A delimiter ending exactly at cap is found; one byte short of it is
 * ENOBUFS, with the cap bytes copied to buf and all kept in f. */
static void delimiter_at_the_very_end_of_cap_and_cap_reached(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    put(wfd, "abc\n");
    char buf[8];
    assert_int_equal(cio_read_until(f, buf, 4, "\n", 1), 4);
    assert_memory_equal(buf, "abc\n", 4);

    put(wfd, "abcd\nxy");
    memset(buf, 0, sizeof buf);
    EXPECT_FAIL(cio_read_until(f, buf, 4, "\n", 1), ENOBUFS);
    assert_memory_equal(buf, "abcd", 4);
    assert_int_equal(cio_unread(f), 4); /* nothing consumed; never reads past cap */
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\n", 1), 5);
    assert_memory_equal(buf, "abcd\n", 5);
    EXPECT_FAIL(cio_read_until(f, buf, 0, "\n", 1), ENOBUFS);
    assert_int_equal(cio_read(f, buf, sizeof buf), 2);
    assert_memory_equal(buf, "xy", 2);
    close(wfd);
    assert_int_equal(cio_close(f), 0);
}

/* End of file before the delimiter: the count read, consumed; then 0. */
static void end_of_file_returns_what_was_read(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    put(wfd, "no newline");
    close(wfd);
    char buf[32];
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\n", 1), 10);
    assert_memory_equal(buf, "no newline", 10);
    assert_int_equal(cio_unread(f), 0);
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\n", 1), 0);
    assert_int_equal(cio_read_full(f, buf, sizeof buf), 0);
    assert_int_equal(cio_close(f), 0);
}

/* A deadline while the delimiter has not come: ETIMEDOUT not before it,
 * a copy of what was read in buf, and every byte still in f, served first
 * to the next read call of each kind. */
enum next_read { NEXT_READ, NEXT_READV, NEXT_RECV, NEXT_UNTIL };

static void deadline_keeps_bytes_for(enum next_read how)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    put(sv[1], "partial li");
    char buf[64] = "";
    cio_time_t t = cio_after_ms(scaled_ms(50));
    assert_int_equal(cio_set_read_deadline(f, t), 0);
    EXPECT_FAIL(cio_read_until(f, buf, sizeof buf, "\n", 1), ETIMEDOUT);
    assert_true(cio_now() >= t);
    assert_memory_equal(buf, "partial li", 10);
    assert_int_equal(cio_unread(f), 10);
    EXPECT_FAIL(cio_read(f, buf, sizeof buf), ETIMEDOUT); /* rule 4: still past */
    assert_int_equal(cio_unread(f), 10);
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    put(sv[1], "ne\n");
    memset(buf, 0, sizeof buf);
    ssize_t n;
    if (how == NEXT_READ) {
        n = cio_read(f, buf, 4);
    } else if (how == NEXT_READV) {
        struct iovec iov[2] = {{buf, 2}, {buf + 2, 2}};
        n = cio_readv(f, iov, 2);
    } else if (how == NEXT_RECV) {
        n = cio_recv(f, buf, 4, 0);
    } else {
        n = cio_read_until(f, buf, sizeof buf, "\n", 1);
        assert_int_equal(n, 13);
        assert_memory_equal(buf, "partial line\n", 13);
        n = 4;
    }
    assert_int_equal(n, 4);
    assert_memory_equal(buf, "part", 4);
    close(sv[1]);
    assert_int_equal(cio_close(f), 0);
}

static void deadline_keeps_bytes_for_the_next_cio_read(void **state)
{
    (void)state;
    deadline_keeps_bytes_for(NEXT_READ);
}

static void deadline_keeps_bytes_for_the_next_cio_readv(void **state)
{
    (void)state;
    deadline_keeps_bytes_for(NEXT_READV);
}

static void deadline_keeps_bytes_for_the_next_cio_recv(void **state)
{
    (void)state;
    deadline_keeps_bytes_for(NEXT_RECV);
}

static void deadline_keeps_bytes_for_the_next_read_until(void **state)
{
    (void)state;
    deadline_keeps_bytes_for(NEXT_UNTIL);
}

/* Rule 20: a helper refused before it reads anything (its deadline already
 * past, a Plan 9 note pending) still leaves in buf a copy of the bytes f
 * holds, up to cap, as cio_unread counts them: a caller may look at them
 * after any failure. */
static void a_helper_refused_at_once_copies_the_held_bytes_to_buf(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    put(sv[1], "partial li");
    char buf[64];
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(30))), 0);
    EXPECT_FAIL(cio_read_until(f, buf, sizeof buf, "\n", 1), ETIMEDOUT);
    assert_int_equal(cio_unread(f), 10);
    /* the deadline is past now: refused at once */
    memset(buf, '#', sizeof buf);
    EXPECT_FAIL(cio_read_until(f, buf, sizeof buf, "\n", 1), ETIMEDOUT);
    assert_memory_equal(buf, "partial li", 10);
    assert_int_equal(buf[10], '#');
    memset(buf, '#', sizeof buf);
    EXPECT_FAIL(cio_read_full(f, buf, 4), ETIMEDOUT);
    assert_memory_equal(buf, "part", 4); /* cap 4: no further */
    assert_int_equal(buf[4], '#');
    /* a note pending refuses the next op */
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_postnote(cio_proc_self(), "interrupt"), 0);
    memset(buf, '#', sizeof buf);
    EXPECT_FAIL(cio_read_until(f, buf, sizeof buf, "\n", 1), EINTR);
    assert_memory_equal(buf, "partial li", 10);
    assert_int_equal(cio_unread(f), 10);
    put(sv[1], "ne\n");
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\n", 1), 13);
    assert_memory_equal(buf, "partial line\n", 13);
    close(sv[1]);
    assert_int_equal(cio_close(f), 0);
}

/* MSG_PEEK sees held bytes without taking them; recvfrom reports no
 * address for them (as for a connected stream socket). */
static void recv_peek_and_recvfrom_see_held_bytes(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    put(sv[1], "a\nbcd");
    char buf[16];
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\n", 1), 2);
    assert_int_equal(cio_recv(f, buf, 2, MSG_PEEK), 2);
    assert_memory_equal(buf, "bc", 2);
    assert_int_equal(cio_unread(f), 3);
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    assert_int_equal(cio_recvfrom(f, buf, 2, 0, (struct sockaddr *)&ss, &len), 2);
    assert_memory_equal(buf, "bc", 2);
    assert_int_equal(len, 0);
    struct iovec iov = {buf, sizeof buf};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    assert_int_equal(cio_recvmsg(f, &msg, 0), 1);
    assert_int_equal(buf[0], 'd');
    close(sv[1]);
    assert_int_equal(cio_close(f), 0);
}

/* A recvmsg served from held bytes checks its buffers as cio_readv does:
 * a NULL base with a length is EINVAL, and the bytes stay held. */
static void recvmsg_with_a_bad_buffer_keeps_the_held_bytes(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    put(sv[1], "a\nbc");
    char buf[16];
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\n", 1), 2);
    assert_int_equal(cio_unread(f), 2);
    struct iovec bad[2] = {{buf, 1}, {NULL, 8}};
    struct msghdr msg = {.msg_iov = bad, .msg_iovlen = 2};
    EXPECT_FAIL(cio_recvmsg(f, &msg, 0), EINVAL);
    msg.msg_iov = NULL;
    EXPECT_FAIL(cio_recvmsg(f, &msg, 0), EINVAL);
    struct iovec huge[2] = {{buf, SIZE_MAX / 2 + 1}, {buf, SIZE_MAX / 2 + 1}};
    msg = (struct msghdr){.msg_iov = huge, .msg_iovlen = 2};
    EXPECT_FAIL(cio_recvmsg(f, &msg, 0), EINVAL);
    assert_int_equal(cio_unread(f), 2);
    struct iovec ok[2] = {{buf, 1}, {buf + 1, 8}};
    msg = (struct msghdr){.msg_iov = ok, .msg_iovlen = 2};
    assert_int_equal(cio_recvmsg(f, &msg, 0), 2);
    assert_memory_equal(buf, "bc", 2);
    close(sv[1]);
    assert_int_equal(cio_close(f), 0);
}

struct until_thread {
    cio_file *f;
    char buf[64];
    ssize_t r;
    int err;
    atomic_int done;
    atomic_int tid;
    pthread_t thread;
};

static void *until_main(void *arg)
{
    struct until_thread *u = arg;
    block_cancel_signal_in_this_thread();
    atomic_store(&u->tid, (int)current_tid());
    errno = 0;
    u->r = cio_read_until(u->f, u->buf, sizeof u->buf, "END", 3);
    u->err = errno;
    atomic_store(&u->done, 1);
    return NULL;
}

/* cio_cancel stops a helper that is blocked after reading some bytes:
 * ECANCELED, and the bytes stay in f; a read waiting behind the helper is
 * not served out of order. */
static void cancel_fails_read_until_and_keeps_its_bytes(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    put(wfd, "some E");
    struct until_thread u = {.f = f};
    uint64_t before = op_starts();
    assert_int_equal(pthread_create(&u.thread, NULL, until_main, &u), 0);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(cio_fileno(f), CIO_READ, 1, JOIN_MS));
    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    pthread_join(u.thread, NULL);
    assert_int_equal(u.r, -1);
    assert_int_equal(u.err, ECANCELED);
    assert_memory_equal(u.buf, "some E", 6);
    assert_int_equal(cio_unread(f), 6);
    put(wfd, "ND");
    char buf[16];
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "END", 3), 8);
    assert_memory_equal(buf, "some END", 8);
    close(wfd);
    assert_int_equal(cio_close(f), 0);
}

/* A Plan 9 note (rule 16) posted to the thread blocked in a helper fails
 * it with EINTR, the bytes kept the same way. */
static int take_every_note(void *arg, char *note)
{
    (void)arg;
    (void)note;
    return 1;
}

struct noted_thread {
    struct until_thread u;
    _Atomic(cio_proc *) proc;
};

static void *noted_main(void *arg)
{
    struct noted_thread *n = arg;
    cio_atnotify(take_every_note, 1);
    atomic_store(&n->proc, cio_proc_self());
    until_main(&n->u);
    cio_atnotify(take_every_note, 0);
    return NULL;
}

static void a_note_fails_read_until_with_EINTR_and_keeps_its_bytes(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    put(wfd, "some E");
    struct noted_thread n = {.u = {.f = f}};
    uint64_t before = op_starts();
    assert_int_equal(pthread_create(&n.u.thread, NULL, noted_main, &n), 0);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(cio_fileno(f), CIO_READ, 1, JOIN_MS));
    assert_int_equal(cio_postnote(atomic_load(&n.proc), "interrupt"), 0);
    pthread_join(n.u.thread, NULL);
    assert_int_equal(n.u.r, -1);
    assert_int_equal(n.u.err, EINTR);
    assert_memory_equal(n.u.buf, "some E", 6);
    assert_int_equal(cio_unread(f), 6);
    put(wfd, "ND");
    char buf[16];
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "END", 3), 8);
    assert_memory_equal(buf, "some END", 8);
    close(wfd);
    assert_int_equal(cio_close(f), 0);
}

/* cio_close fails a blocked helper with EBADF; the held bytes are freed
 * with the file (the leak check of the fixture and ASan see to that). */
static void close_fails_read_until_with_EBADF(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    put(wfd, "abc");
    struct until_thread u = {.f = f};
    uint64_t before = op_starts();
    assert_int_equal(pthread_create(&u.thread, NULL, until_main, &u), 0);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_int_equal(cio_close(f), 0);
    pthread_join(u.thread, NULL);
    assert_int_equal(u.r, -1);
    assert_int_equal(u.err, EBADF);
    close(wfd);
}

struct blob_writer {
    int fd;
    size_t n;
    pthread_t thread;
};

static void *blob_main(void *arg)
{
    struct blob_writer *b = arg;
    unsigned char *p = malloc(b->n);
    if (p) {
        fill_pattern(p, b->n, 0);
        for (size_t i = 0; i < b->n; i++)
            if (p[i] == '#')
                p[i] = '.';
        p[b->n - 1] = '#';
        write_all(b->fd, p, b->n);
        write_all(b->fd, "tail", 4);
        free(p);
    }
    close(b->fd);
    return NULL;
}

/* A delimiter 300 KB in: found, the bytes before it intact, the stream
 * after it intact, and far fewer reads than bytes (chunks, not bytes). */
static void a_long_search_reads_in_chunks(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    struct blob_writer b = {wfd, 300 * 1024, 0};
    assert_int_equal(pthread_create(&b.thread, NULL, blob_main, &b), 0);
    size_t cap = 1024 * 1024;
    unsigned char *buf = malloc(cap);
    assert_non_null(buf);
    cio_stats s0, s1;
    cio_get_stats(&s0);
    assert_int_equal(cio_read_until(f, buf, cap, "#", 1), (ssize_t)b.n);
    cio_get_stats(&s1);
    assert_true(s1.ops_started - s0.ops_started < 1000);
    for (size_t i = 0; i + 1 < b.n; i++)
        if (buf[i] != (pattern_byte(i) == '#' ? '.' : pattern_byte(i)))
            fail_msg("byte %zu differs", i);
    assert_int_equal(cio_read_full(f, buf, 4), 4);
    assert_memory_equal(buf, "tail", 4);
    assert_int_equal(cio_read_full(f, buf, 4), 0);
    pthread_join(b.thread, NULL);
    free(buf);
    assert_int_equal(cio_close(f), 0);
}

/* cio_get_stats: a helper that fails before it reads the fd (its deadline
 * already past, a cancel while it waits for its turn) is counted like any
 * op that fails before it starts: started, done, and its reason. */
static void a_helper_that_fails_before_reading_is_counted(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    char buf[8];
    cio_stats s0, s1;
    assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
    cio_get_stats(&s0);
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\n", 1), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(cio_read_full(f, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    cio_get_stats(&s1);
    assert_int_equal(s1.ops_started - s0.ops_started, 2);
    assert_int_equal(s1.ops_done - s0.ops_done, 2);
    assert_int_equal(s1.timeouts - s0.timeouts, 2);

    /* a helper waiting behind a blocked read, and that read, cancelled */
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    uint64_t before = op_starts();
    struct op_thread *first = start_reader(f, 4);
    assert_non_null(first);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    struct until_thread u = {.f = f};
    assert_int_equal(pthread_create(&u.thread, NULL, until_main, &u), 0);
    while (!atomic_load(&u.tid))
        sleep_us(100);
    assert_true(wait_thread_sleeping(atomic_load(&u.tid), JOIN_MS));
    cio_get_stats(&s0);
    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    assert_true(op_join(first, JOIN_MS));
    assert_int_equal(pthread_join(u.thread, NULL), 0);
    assert_int_equal(first->err, ECANCELED);
    assert_int_equal(u.r, -1);
    assert_int_equal(u.err, ECANCELED);
    cio_get_stats(&s1);
    assert_int_equal(s1.cancels - s0.cancels, 2);
    op_free(first);
    assert_int_equal(cio_close(f), 0);
    close(wfd);
}

/* cio_read_full: exactly n across many writes; short at end of file; on a
 * deadline nothing consumed and a copy in buf. */
static void read_full_reads_exactly_n(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    struct dribble d = {wfd, "0123456789abcdefghij", test_seed("full"), 0};
    assert_int_equal(pthread_create(&d.thread, NULL, dribble_main, &d), 0);
    char buf[32];
    assert_int_equal(cio_read_full(f, buf, 12), 12);
    assert_memory_equal(buf, "0123456789ab", 12);
    assert_int_equal(cio_read_full(f, buf, 20), 8);
    assert_memory_equal(buf, "cdefghij", 8);
    assert_int_equal(cio_read_full(f, buf, 0), 0);
    pthread_join(d.thread, NULL);
    assert_int_equal(cio_close(f), 0);

    f = pipe_file(&wfd);
    put(wfd, "xyz");
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(30))), 0);
    memset(buf, 0, sizeof buf);
    EXPECT_FAIL(cio_read_full(f, buf, 5), ETIMEDOUT);
    assert_memory_equal(buf, "xyz", 3);
    assert_int_equal(cio_unread(f), 3);
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    put(wfd, "uvw");
    assert_int_equal(cio_read_full(f, buf, 5), 5);
    assert_memory_equal(buf, "xyzuv", 5);
    assert_int_equal(cio_unread(f), 0); /* never reads past n: "w" is in the pipe */
    assert_int_equal(cio_read(f, buf, sizeof buf), 1);
    assert_int_equal(buf[0], 'w');
    close(wfd);
    assert_int_equal(cio_close(f), 0);
}

/* cio_detach seeks a regular file back over the held bytes: the fd it
 * hands back is where a reader of the helper's answers expects it. */
static void detach_seeks_back_over_held_bytes(void **state)
{
    (void)state;
    char path[] = "/tmp/cio_helpers_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    put(fd, "first\nsecond\nthird\n");
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    char buf[64];
    assert_int_equal(cio_read_until(f, buf, sizeof buf, "\n", 1), 6);
    assert_true(cio_unread(f) > 0);
    assert_int_equal(cio_detach(f), fd);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 6);
    assert_int_equal(read(fd, buf, 7), 7);
    assert_memory_equal(buf, "second\n", 7);
    close(fd);
}

/* Bad input: EINVAL and nothing read. */
static void bad_input_is_EINVAL_and_reads_nothing(void **state)
{
    (void)state;
    int wfd;
    cio_file *f = pipe_file(&wfd);
    put(wfd, "x\n");
    char buf[8];
    EXPECT_FAIL(cio_read_until(NULL, buf, sizeof buf, "\n", 1), EINVAL);
    EXPECT_FAIL(cio_read_until(f, NULL, sizeof buf, "\n", 1), EINVAL);
    EXPECT_FAIL(cio_read_until(f, buf, sizeof buf, NULL, 1), EINVAL);
    EXPECT_FAIL(cio_read_until(f, buf, sizeof buf, "\n", 0), EINVAL);
    EXPECT_FAIL(cio_read_full(NULL, buf, 1), EINVAL);
    EXPECT_FAIL(cio_read_full(f, NULL, 1), EINVAL);
    assert_int_equal(cio_unread(NULL), 0);
    assert_true(fd_readable_now(cio_fileno(f)));
    assert_int_equal(cio_read(f, buf, sizeof buf), 2);
    close(wfd);
    assert_int_equal(cio_close(f), 0);
}

/* The invariant under random timing: lines dribbled by a writer are read
 * back by a mix of cio_read_until (under random short deadlines, and
 * cancelled at random by another thread), cio_read_full and cio_read, and
 * the bytes returned, in order, are exactly the bytes written: none lost,
 * none twice, whatever failed in between. */
struct canceller {
    cio_file *f;
    unsigned seed;
    atomic_int stop;
    pthread_t thread;
};

static void *canceller_main(void *arg)
{
    struct canceller *c = arg;
    struct rng r;
    rng_init(&r, c->seed);
    while (!atomic_load(&c->stop)) {
        random_delay_us(&r, 3000);
        cio_cancel(c->f, CIO_READ);
    }
    return NULL;
}

static void no_byte_lost_or_doubled_under_random_deadlines_and_cancels(void **state)
{
    (void)state;
    size_t cap = 64 * 1024, got = 0;
    char *text = malloc(cap), *back = malloc(cap);
    assert_non_null(text);
    assert_non_null(back);
    size_t len = 0;
    for (int i = 0; len + 64 < cap - 64 && i < 1500; i++)
        len += (size_t)snprintf(text + len, 64, "%d:%.*s\n", i, i % 23, "abcdefghijklmnopqrstuvw");
    int wfd;
    cio_file *f = pipe_file(&wfd);
    unsigned seed = test_seed("mix");
    struct dribble d = {wfd, text, seed, 0};
    struct canceller c = {.f = f, .seed = seed + 1};
    assert_int_equal(pthread_create(&d.thread, NULL, dribble_main, &d), 0);
    assert_int_equal(pthread_create(&c.thread, NULL, canceller_main, &c), 0);
    struct rng r;
    rng_init(&r, seed + 2);
    unsigned failures = 0;
    for (;;) {
        char buf[128];
        unsigned how = rng_below(&r, 4);
        cio_set_read_deadline(f, how == 0 ? cio_after_ms(rng_below(&r, 3)) : CIO_NO_DEADLINE);
        ssize_t n = how <= 1   ? cio_read_until(f, buf, sizeof buf, "\n", 1)
                    : how == 2 ? cio_read_full(f, buf, 1 + rng_below(&r, 40))
                               : cio_read(f, buf, 1 + rng_below(&r, 40));
        if (n < 0) {
            if (errno != ETIMEDOUT && errno != ECANCELED)
                fail_msg("unexpected errno %d", errno);
            failures++;
            continue;
        }
        if (n == 0)
            break;
        if (got + (size_t)n > len)
            fail_msg("more bytes back than written");
        memcpy(back + got, buf, (size_t)n);
        got += (size_t)n;
    }
    atomic_store(&c.stop, 1);
    pthread_join(c.thread, NULL);
    pthread_join(d.thread, NULL);
    assert_int_equal(got, len);
    assert_memory_equal(back, text, len);
    assert_true(failures > 0); /* the deadlines and cancels did cut in */
    free(text);
    free(back);
    assert_int_equal(cio_close(f), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup_watched, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(read_until_finds_delimiters_split_across_writes),
        T(bytes_past_the_delimiter_go_to_the_next_cio_read),
        T(delimiter_at_the_very_end_of_cap_and_cap_reached),
        T(end_of_file_returns_what_was_read),
        T(deadline_keeps_bytes_for_the_next_cio_read),
        T(deadline_keeps_bytes_for_the_next_cio_readv),
        T(deadline_keeps_bytes_for_the_next_cio_recv),
        T(deadline_keeps_bytes_for_the_next_read_until),
        T(a_helper_refused_at_once_copies_the_held_bytes_to_buf),
        T(recv_peek_and_recvfrom_see_held_bytes),
        T(recvmsg_with_a_bad_buffer_keeps_the_held_bytes),
        T(cancel_fails_read_until_and_keeps_its_bytes),
        T(a_note_fails_read_until_with_EINTR_and_keeps_its_bytes),
        T(close_fails_read_until_with_EBADF),
        T(a_long_search_reads_in_chunks),
        T(read_full_reads_exactly_n),
        T(a_helper_that_fails_before_reading_is_counted),
        T(detach_seeks_back_over_held_bytes),
        T(bad_input_is_EINVAL_and_reads_nothing),
        T(no_byte_lost_or_doubled_under_random_deadlines_and_cancels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
