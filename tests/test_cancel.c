/*
 * Description: cancel, close and detach, and the per-direction locks
 * (DESIGN.md Semantics rules 5-8).  cio_cancel makes the blocked and the
 * waiting ops of the directions it names fail with ECANCELED and touches
 * nothing else: not the other direction, not a later op, not an idle file.
 * cio_close makes pending ops fail with EBADF, really closes the fd, and
 * never lets a stale op reach a new file that reuses the fd number (checked
 * over many iterations with random timing).  cio_detach hands the fd back
 * open.  Reads are serialised, writes are serialised, a read and a write
 * run at the same time, and the syscall's own errors come back unchanged.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define JOIN_MS 5000
#define AT_ONCE_MS 500
#define BIG (8u << 20) /* more than any socket buffer holds */

static void write_str(int fd, const char *s)
{
    assert_int_equal(write_all(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Wait until t's op sits in a read/write syscall on fd. */
static void wait_blocked(struct op_thread *t, uint64_t started_before, int fd, int which)
{
    assert_non_null(t);
    assert_true(wait_op_starts(started_before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(fd, which, 1, JOIN_MS));
}

/* Let a little time pass and check op t is still blocked (a check that
 * nothing happens, not an ordering). */
static void assert_still_blocked(struct op_thread *t)
{
    wait_for_time(cio_now() + scaled_ms(150) * NS_PER_MS);
    assert_false(op_is_done(t));
}

static unsigned char *pattern_buffer(size_t n)
{
    unsigned char *b = malloc(n);
    assert_non_null(b);
    fill_pattern(b, n, 0);
    return b;
}

/* Rule 6: cio_cancel interrupts a blocked read with ECANCELED; a read
 * started after the cancel runs normally and reads the data. */
static void cancel_interrupts_a_blocked_read_and_the_next_read_runs_normally(void **state)
{
    (void)state;
    int p[2];
    char buf[16];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    cio_stats s0, s1;
    cio_get_stats(&s0);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 16);
    wait_blocked(t, before, p[0], CIO_READ);

    cio_time_t c = cio_now();
    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, ECANCELED);
    assert_true(elapsed_ms(c, t->end) < (double)scaled_ms(AT_ONCE_MS));
    op_free(t);
    cio_get_stats(&s1);
    assert_true(s1.cancels > s0.cancels);
    assert_true(s1.signals_sent > s0.signals_sent); /* it was in read(2) */

    write_str(p[1], "after");
    assert_int_equal(cio_read(f, buf, sizeof buf), 5);
    assert_memory_equal(buf, "after", 5);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 6: with no op pending cio_cancel does nothing: the next read and
 * write run normally (the cancel is not remembered). */
static void cancel_with_nothing_pending_does_nothing(void **state)
{
    (void)state;
    int sv[2];
    char buf[16];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    assert_int_equal(cio_cancel(f, CIO_WRITE), 0);
    assert_int_equal(cio_cancel(f, CIO_READ | CIO_WRITE), 0);

    /* the next read blocks until data: it must not see the old cancel */
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 16);
    wait_blocked(t, before, sv[0], CIO_READ);
    write_str(sv[1], "fine");
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, 4);
    assert_memory_equal(t->buf, "fine", 4);
    op_free(t);
    assert_int_equal(cio_write(f, "ok", 2), 2);
    assert_int_equal(read(sv[1], buf, sizeof buf), 2);
    assert_memory_equal(buf, "ok", 2);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* Rules 5, 6: cancelling the read direction leaves a blocked write alone,
 * and cancelling the write direction leaves a blocked read alone; the cut
 * write returns its positive count and the next write runs normally, so
 * the peer gets every byte once, in order. */
static void cancel_of_one_direction_leaves_the_other_blocked(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    unsigned char *data = pattern_buffer(BIG);

    /* cancel reads: the write goes on and completes */
    uint64_t before = op_starts();
    struct op_thread *r = start_reader(f, 16);
    wait_blocked(r, before, sv[0], CIO_READ);
    struct op_thread *w = start_writer(f, data, BIG);
    wait_blocked(w, before + 1, sv[0], CIO_WRITE);
    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    assert_true(op_join(r, JOIN_MS));
    assert_int_equal(r->result, -1);
    assert_int_equal(r->err, ECANCELED);
    assert_still_blocked(w);
    assert_int_equal(threads_in_syscall_on(sv[0], CIO_WRITE) != 0, 1);
    struct raw_reader *peer = start_raw_reader(sv[1], BIG);
    assert_non_null(peer);
    assert_true(op_join(w, JOIN_MS));
    assert_int_equal(w->result, (ssize_t)BIG);
    assert_true(raw_reader_join(peer, JOIN_MS));
    assert_int_equal(peer->got, BIG);
    assert_int_equal(pattern_mismatch(peer->buf, BIG, 0), BIG);
    raw_reader_free(peer);
    op_free(r);
    op_free(w);

    /* cancel writes: the read goes on; the cut write resumes cleanly */
    before = op_starts();
    r = start_reader(f, 16);
    wait_blocked(r, before, sv[0], CIO_READ);
    w = start_writer(f, data, BIG);
    wait_blocked(w, before + 1, sv[0], CIO_WRITE);
    assert_int_equal(cio_cancel(f, CIO_WRITE), 0);
    assert_true(op_join(w, JOIN_MS));
    assert_true(w->result > 0 && (size_t)w->result < BIG);
    size_t sent = (size_t)w->result;
    assert_still_blocked(r);
    peer = start_raw_reader(sv[1], BIG);
    assert_non_null(peer);
    assert_int_equal(cio_write(f, data + sent, BIG - sent), (ssize_t)(BIG - sent));
    assert_true(raw_reader_join(peer, JOIN_MS));
    assert_int_equal(peer->got, BIG);
    assert_int_equal(pattern_mismatch(peer->buf, BIG, 0), BIG);
    raw_reader_free(peer);
    assert_false(op_is_done(r));
    write_str(sv[1], "back");
    assert_true(op_join(r, JOIN_MS));
    assert_int_equal(r->result, 4);
    assert_memory_equal(r->buf, "back", 4);
    op_free(r);
    op_free(w);
    free(data);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* Rules 5, 6: a write blocked on a full pipe with nothing written fails
 * ECANCELED on cancel; the pipe holds exactly what it held; the next
 * write runs normally. */
static void cancel_of_a_write_that_wrote_nothing_fails_it_with_ECANCELED(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    int cap = pipe_capacity(p[1]);
    if (cap <= 0) {
        close(p[0]);
        close(p[1]);
        skip();
    }
    unsigned char *data = pattern_buffer((size_t)cap + 8);
    assert_int_equal(write_all(p[1], data, (size_t)cap), cap);
    cio_file *wf = cio_fdopen(p[1]);
    assert_non_null(wf);
    uint64_t before = op_starts();
    struct op_thread *w = start_writer(wf, data + cap, 8);
    wait_blocked(w, before, p[1], CIO_WRITE);
    assert_int_equal(cio_cancel(wf, CIO_WRITE), 0);
    assert_true(op_join(w, JOIN_MS));
    assert_int_equal(w->result, -1);
    assert_int_equal(w->err, ECANCELED);
    op_free(w);

    unsigned char *got = calloc(1, (size_t)cap + 8);
    assert_non_null(got);
    assert_int_equal(read_full(p[0], got, (size_t)cap), cap);
    assert_false(fd_readable_now(p[0]));
    assert_int_equal(cio_write(wf, data + cap, 8), 8);
    assert_int_equal(read_full(p[0], got + cap, 8), 8);
    assert_int_equal(pattern_mismatch(got, (size_t)cap + 8, 0), (size_t)cap + 8);
    free(got);
    free(data);
    assert_int_equal(cio_close(wf), 0);
    assert_int_equal(close(p[0]), 0);
}

/* Rules 6, 8: with two reads on one file, one blocked and one waiting its
 * turn, a cancel fails both with ECANCELED; data then goes to the next
 * read whole. */
static void cancel_interrupts_reads_blocked_and_waiting_to_start(void **state)
{
    (void)state;
    int p[2];
    char buf[16];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *a = start_reader(f, 16);
    wait_blocked(a, before, p[0], CIO_READ);
    struct op_thread *b = start_reader(f, 16);
    assert_non_null(b);
    assert_true(wait_op_sleeping(b, JOIN_MS));
    assert_true(wait_op_sleeping(a, JOIN_MS));

    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    assert_true(op_join(a, JOIN_MS));
    assert_true(op_join(b, JOIN_MS));
    assert_int_equal(a->result, -1);
    assert_int_equal(a->err, ECANCELED);
    assert_int_equal(b->result, -1);
    assert_int_equal(b->err, ECANCELED);
    op_free(a);
    op_free(b);

    write_str(p[1], "whole");
    assert_int_equal(cio_read(f, buf, sizeof buf), 5);
    assert_memory_equal(buf, "whole", 5);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 7: cio_close with a read blocked fails the read with EBADF, returns
 * 0, and the fd is closed when it returns. */
static void close_fails_a_blocked_read_with_EBADF_and_closes_the_fd(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 16);
    wait_blocked(t, before, p[0], CIO_READ);

    assert_int_equal(cio_close(f), 0);
    assert_int_equal(fcntl(p[0], F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, EBADF);
    op_free(t);
    assert_int_equal(close(p[1]), 0);
}

/* Rules 5, 7: cio_close with one read blocked, one read waiting its turn
 * and one write blocked: every op fails with EBADF (the write may instead
 * return the positive count it got out), close returns 0, fd closed. */
static void close_fails_waiting_and_blocked_ops_of_both_directions(void **state)
{
    (void)state;
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    unsigned char *data = pattern_buffer(BIG);
    uint64_t before = op_starts();
    struct op_thread *r1 = start_reader(f, 16);
    wait_blocked(r1, before, sv[0], CIO_READ);
    struct op_thread *w = start_writer(f, data, BIG);
    wait_blocked(w, before + 1, sv[0], CIO_WRITE);
    struct op_thread *r2 = start_reader(f, 16);
    assert_non_null(r2);
    assert_true(wait_op_sleeping(r2, JOIN_MS));

    assert_int_equal(cio_close(f), 0);
    assert_false(fd_is_open(sv[0]));
    assert_true(op_join(r1, JOIN_MS));
    assert_true(op_join(r2, JOIN_MS));
    assert_true(op_join(w, JOIN_MS));
    assert_int_equal(r1->result, -1);
    assert_int_equal(r1->err, EBADF);
    assert_int_equal(r2->result, -1);
    assert_int_equal(r2->err, EBADF);
    assert_true((w->result == -1 && w->err == EBADF) || (w->result > 0 && (size_t)w->result < BIG));
    /* what the peer holds is a prefix of the pattern, of that length */
    if (w->result > 0) {
        unsigned char *got = malloc(BIG);
        assert_non_null(got);
        ssize_t n = read_full(sv[1], got, BIG); /* sv[0] closed: EOF */
        assert_int_equal(n, w->result);
        assert_int_equal(pattern_mismatch(got, (size_t)n, 0), (size_t)n);
        free(got);
    }
    op_free(r1);
    op_free(r2);
    op_free(w);
    free(data);
    assert_int_equal(close(sv[1]), 0);
}

/* Rule 7 (no fd-reuse race): over many iterations a read is started, the
 * file is closed at a random moment, and new pipes immediately take the fd
 * number: the stale read fails EBADF and never consumes the new pipe's
 * data. */
static void close_never_lets_a_stale_op_touch_a_reused_fd_number(void **state)
{
    (void)state;
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int reused = 0;
    for (int i = 0; i < 400; i++) {
        int p[2], q[2];
        assert_int_equal(make_pipe(p), 0);
        cio_file *f = cio_fdopen(p[0]);
        assert_non_null(f);
        uint64_t before = op_starts();
        struct op_thread *t = start_reader(f, 16);
        assert_non_null(t);
        assert_true(wait_op_starts(before + 1, JOIN_MS));
        random_delay_us(&rng, 300);
        assert_int_equal(cio_close(f), 0);

        assert_int_equal(make_pipe(q), 0); /* takes p[0]'s number */
        reused += q[0] == p[0];
        write_str(q[1], "NEW!");
        assert_true(op_join(t, JOIN_MS));
        if (t->result != -1 || t->err != EBADF)
            fprintf(stderr, "iteration %d: stale read gave %zd errno %d\n", i, t->result, t->err);
        assert_int_equal(t->result, -1);
        assert_int_equal(t->err, EBADF);
        op_free(t);
        char buf[8];
        assert_true(fd_readable_now(q[0]));
        assert_int_equal(read(q[0], buf, sizeof buf), 4);
        assert_memory_equal(buf, "NEW!", 4);
        close(q[0]);
        close(q[1]);
        close(p[1]);
    }
    assert_true(reused > 0); /* the test did exercise fd reuse */
}

/* Rule 7 (cio_detach): the fd comes back open and usable, with a read
 * that was blocked failing EBADF, and the file is gone. */
static void detach_returns_the_fd_open_and_usable(void **state)
{
    (void)state;
    int p[2];
    char buf[16];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    assert_int_equal(cio_detach(f), p[0]);
    assert_true(fd_is_open(p[0]));
    write_str(p[1], "one");
    assert_int_equal(read(p[0], buf, sizeof buf), 3);

    f = cio_fdopen(p[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 16);
    wait_blocked(t, before, p[0], CIO_READ);
    assert_int_equal(cio_detach(f), p[0]);
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, EBADF);
    op_free(t);
    assert_true(fd_is_open(p[0]));
    write_str(p[1], "two");
    assert_int_equal(read(p[0], buf, sizeof buf), 3); /* nothing stolen */
    assert_memory_equal(buf, "two", 3);
    assert_int_equal(close(p[0]), 0);
    assert_int_equal(close(p[1]), 0);
}

static void assert_one_in_syscall(int fd, int which)
{
    for (int i = 0; i < 20; i++) {
        int n = threads_in_syscall_on(fd, which);
        if (n < 0)
            return; /* the kernel does not tell */
        assert_int_equal(n, 1);
        sleep_us(2000);
    }
}

/* Rule 8: two reads on one file never sit in read(2) together; each byte
 * written goes to one of them in turn. */
static void reads_on_one_file_are_serialised(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *a = start_reader(f, 16);
    wait_blocked(a, before, p[0], CIO_READ);
    struct op_thread *b = start_reader(f, 16);
    assert_non_null(b);
    assert_true(wait_op_sleeping(b, JOIN_MS));
    assert_one_in_syscall(p[0], CIO_READ);

    write_str(p[1], "1");
    struct op_thread *first = NULL, *second = NULL;
    cio_time_t end = cio_now() + scaled_ms(JOIN_MS) * NS_PER_MS;
    while (!first && cio_now() < end) {
        first = op_is_done(a) ? a : op_is_done(b) ? b : NULL;
        sleep_us(100);
    }
    assert_non_null(first);
    second = first == a ? b : a;
    assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
    assert_one_in_syscall(p[0], CIO_READ);
    assert_false(op_is_done(second));
    write_str(p[1], "2");
    assert_true(op_join(first, JOIN_MS));
    assert_true(op_join(second, JOIN_MS));
    assert_int_equal(first->result, 1);
    assert_int_equal(first->buf[0], '1');
    assert_int_equal(second->result, 1);
    assert_int_equal(second->buf[0], '2');
    op_free(a);
    op_free(b);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 8: two big writes on one full pipe never sit in write(2) together,
 * so their bytes never interleave: the reader sees one whole run of 'A's
 * and one of 'B's. */
static void writes_on_one_file_are_serialised_and_never_interleave(void **state)
{
    (void)state;
    enum { RUN = 300000 };
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    int cap = pipe_capacity(p[1]);
    if (cap <= 0) {
        close(p[0]);
        close(p[1]);
        skip();
    }
    unsigned char *fill = calloc(1, (size_t)cap);
    unsigned char *as = malloc(RUN), *bs = malloc(RUN);
    assert_non_null(fill);
    assert_non_null(as);
    assert_non_null(bs);
    memset(as, 'A', RUN);
    memset(bs, 'B', RUN);
    assert_int_equal(write_all(p[1], fill, (size_t)cap), cap);
    cio_file *wf = cio_fdopen(p[1]);
    assert_non_null(wf);

    uint64_t before = op_starts();
    struct op_thread *a = start_writer(wf, as, RUN);
    wait_blocked(a, before, p[1], CIO_WRITE);
    struct op_thread *b = start_writer(wf, bs, RUN);
    assert_non_null(b);
    assert_true(wait_op_sleeping(b, JOIN_MS));
    assert_one_in_syscall(p[1], CIO_WRITE);

    size_t total = (size_t)cap + 2 * RUN;
    struct raw_reader *rr = start_raw_reader(p[0], total);
    assert_non_null(rr);
    assert_true(op_join(a, JOIN_MS));
    assert_true(op_join(b, JOIN_MS));
    assert_int_equal(a->result, RUN);
    assert_int_equal(b->result, RUN);
    assert_true(raw_reader_join(rr, JOIN_MS));
    assert_int_equal(rr->got, total);
    const unsigned char *got = rr->buf + cap;
    unsigned char x = got[0], y = x == 'A' ? 'B' : 'A';
    assert_true(x == 'A' || x == 'B');
    for (size_t i = 0; i < 2 * (size_t)RUN; i++)
        if (got[i] != (i < RUN ? x : y))
            fail_msg("byte %zu of the runs is '%c'", i, got[i]);
    raw_reader_free(rr);
    op_free(a);
    op_free(b);
    free(fill);
    free(as);
    free(bs);
    assert_int_equal(cio_close(wf), 0);
    assert_int_equal(close(p[0]), 0);
}

/* Rule 8: a read blocked on a socket does not hold up a write on the same
 * file: the write completes at once while the read stays blocked. */
static void a_read_and_a_write_on_one_file_proceed_at_the_same_time(void **state)
{
    (void)state;
    int sv[2];
    char buf[16];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *r = start_reader(f, 16);
    wait_blocked(r, before, sv[0], CIO_READ);

    struct op_thread *w = start_writer(f, "ping", 4); /* bounded, not main */
    assert_non_null(w);
    assert_true(op_join(w, AT_ONCE_MS));
    assert_int_equal(w->result, 4);
    op_free(w);
    assert_int_equal(read(sv[1], buf, sizeof buf), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_false(op_is_done(r));
    write_str(sv[1], "pong");
    assert_true(op_join(r, JOIN_MS));
    assert_int_equal(r->result, 4);
    assert_memory_equal(r->buf, "pong", 4);
    op_free(r);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* Rule 8: the syscall's own errors come back unchanged: EBADF reading a
 * write-only end or writing a read-only one, EPIPE writing a pipe with no
 * reader (SIGPIPE ignored), EISDIR reading a directory; and EOF is 0. */
static void errors_of_the_underlying_syscall_come_back_unchanged(void **state)
{
    (void)state;
    int p[2];
    char buf[16];
    assert_int_equal(make_pipe(p), 0);
    cio_file *rf = cio_fdopen(p[0]);
    cio_file *wf = cio_fdopen(p[1]);
    assert_non_null(rf);
    assert_non_null(wf);
    assert_int_equal(cio_read(wf, buf, sizeof buf), -1);
    assert_int_equal(errno, EBADF);
    assert_int_equal(cio_write(rf, "x", 1), -1);
    assert_int_equal(errno, EBADF);
    assert_true(fd_is_open(p[0]));
    assert_true(fd_is_open(p[1]));

    assert_int_equal(cio_write(wf, "last", 4), 4);
    assert_int_equal(cio_close(wf), 0);
    assert_int_equal(cio_read(rf, buf, sizeof buf), 4);
    assert_int_equal(cio_read(rf, buf, sizeof buf), 0); /* EOF */

    assert_int_equal(make_pipe(p), 0);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGPIPE, &ign, &old), 0);
    wf = cio_fdopen(p[1]);
    assert_non_null(wf);
    assert_int_equal(close(p[0]), 0);
    ssize_t r = cio_write(wf, "x", 1);
    int err = errno;
    assert_int_equal(sigaction(SIGPIPE, &old, NULL), 0);
    assert_int_equal(r, -1);
    assert_int_equal(err, EPIPE);
    assert_int_equal(cio_close(wf), 0);

    int dir = open("/", O_RDONLY | O_DIRECTORY);
    assert_true(dir >= 0);
    cio_file *df = cio_fdopen(dir);
    assert_non_null(df);
    assert_int_equal(cio_read(df, buf, sizeof buf), -1);
    assert_int_equal(errno, EISDIR);
    assert_int_equal(cio_close(df), 0);
    assert_int_equal(cio_close(rf), 0);
}

/* Rules 4, 6: a cancel racing with a byte's arrival loses nothing: over
 * many iterations the read returns the byte or ECANCELED, and after
 * ECANCELED the byte is read by the next read. */
static void a_cancel_racing_with_data_loses_no_byte(void **state)
{
    (void)state;
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int p[2];
    char buf[8];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    int cancelled = 0, got = 0;
    for (int i = 0; i < 500; i++) {
        uint64_t before = op_starts();
        struct op_thread *t = start_reader(f, 8);
        assert_non_null(t);
        assert_true(wait_op_starts(before + 1, JOIN_MS));
        struct late_act lw = {
            .fd = p[1], .delay_us = rng_below(&rng, 201), .spin = rng_next(&rng) & 1, .byte = 'd'};
        late_act_start(&lw);
        random_delay_us(&rng, 200);
        assert_int_equal(cio_cancel(f, CIO_READ), 0);
        assert_int_equal(late_act_join(&lw), 1);
        assert_true(op_join(t, JOIN_MS));
        if (t->result == -1) {
            assert_int_equal(t->err, ECANCELED);
            cancelled++;
            assert_int_equal(cio_read(f, buf, sizeof buf), 1);
            assert_int_equal(buf[0], 'd');
        } else {
            assert_int_equal(t->result, 1);
            assert_int_equal(t->buf[0], 'd');
            got++;
        }
        op_free(t);
        assert_false(fd_readable_now(p[0]));
    }
    printf("cancelled %d, read %d\n", cancelled, got);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

struct in_or_out {
    struct op_thread *t;
    uint64_t before;
};

/* The reader is inside the library (its op was handed to a worker) or has
 * left it: either way, a close may come now (rule 7 forbids only a call on
 * a file already closed). */
static bool entered_or_done(void *arg)
{
    struct in_or_out *io = arg;
    return op_is_done(io->t) || op_starts() > io->before;
}

static bool workers_all_idle(void *arg)
{
    (void)arg;
    cio_stats s;
    cio_get_stats(&s);
    return s.threads_idle == s.threads;
}

/* Steps 3c, 4c and 3p, 4p (docs/protocol.md) against data: a read whose
 * caller (cio_options.waits, the first half) or worker (the second) waits
 * for the pipe in ppoll is released by a stop (a cancel, a deadline
 * moved into the past, a deadline that passes, a close) at a random moment
 * around its byte's arrival.  Each byte is read once, in order: by that read
 * or, after the stop, by the next one; after a close, the next pipe (which
 * may get the same fd number) loses nothing to a released worker, which
 * reads nothing.  At the end no worker is left waiting. */
static void stops_of_parked_reads_racing_with_data_lose_and_repeat_no_byte(void **state)
{
    (void)state;
    static const int expect[] = {ECANCELED, ETIMEDOUT, ETIMEDOUT, EBADF};
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int p[2];
    char buf[8];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    unsigned char wrote = 0, next = 0;
    int stopped[4] = {0}, got = 0, iters = under_valgrind() ? 100 : 800;
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN); /* a byte that comes after a close */
    for (int i = 0; i < 2 * iters; i++) {
        if (i == iters) { /* the first half parked callers (3c), this one workers (3p) */
            printf("on callers: read %d; stopped by cancel %d, move %d, deadline %d, close %d\n",
                   got, stopped[0], stopped[1], stopped[2], stopped[3]);
            use_worker_waits(); /* f stays valid */
        }
        unsigned why = rng_below(&rng, 4);
        if (why == 2) /* passes by itself, 0-300 us from now */
            assert_int_equal(cio_set_read_deadline(f, cio_now() + rng_below(&rng, 300) * 1000 + 1),
                             0);
        uint64_t before = op_starts();
        struct op_thread *t = start_reader(f, 8);
        assert_non_null(t);
        struct late_act lw = {.fd = p[1],
                              .delay_us = rng_below(&rng, 301),
                              .spin = rng_next(&rng) & 1,
                              .byte = (char)wrote};
        late_act_start(&lw);
        random_delay_us(&rng, 300);
        if (why == 0)
            assert_int_equal(cio_cancel(f, CIO_READ), 0);
        else if (why == 1)
            assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
        else if (why == 3) {
            struct in_or_out io = {t, before};
            assert_true(wait_until(entered_or_done, &io, JOIN_MS));
            assert_int_equal(cio_close(f), 0); /* returns once the reader has left */
        }
        ssize_t sent = late_act_join(&lw);
        assert_true(sent == 1 || (why == 3 && sent == -1)); /* EPIPE: after the close */
        wrote++;
        assert_true(op_join(t, JOIN_MS));
        if (t->result == 1) {
            assert_int_equal((unsigned char)t->buf[0], next);
            next++;
            got++;
        } else {
            assert_int_equal(t->result, -1);
            assert_int_equal(t->err, expect[why]);
            stopped[why]++;
        }
        op_free(t);
        if (why == 3) { /* the byte, if unread, went with the pipe */
            next = wrote;
            assert_int_equal(close(p[1]), 0);
            assert_int_equal(make_pipe(p), 0);
            f = cio_fdopen(p[0]);
            assert_non_null(f);
            continue;
        }
        assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
        if (next != wrote) {
            assert_int_equal(cio_read(f, buf, sizeof buf), 1);
            assert_int_equal((unsigned char)buf[0], next);
            next++;
        }
        assert_false(fd_readable_now(p[0]));
    }
    printf("in all: read %d; stopped by cancel %d, move %d, deadline %d, close %d\n", got,
           stopped[0], stopped[1], stopped[2], stopped[3]);
    assert_true(wait_until(workers_all_idle, NULL, JOIN_MS));
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
    signal(SIGPIPE, old_pipe);
}

/* Rule 7 after a release (step 4p): the released worker may still be in
 * ppoll on the fd, and while it is there the kernel holds the open file
 * (poll keeps a reference to each file it waits on).  cio_close must not
 * return before it has left: once it returns, the pipe's read end is gone,
 * and a write to the other end fails with EPIPE at once. */
static void a_close_after_a_release_lets_go_of_the_file_before_it_returns(void **state)
{
    (void)state;
    use_worker_waits();
    void (*old_pipe)(int) = signal(SIGPIPE, SIG_IGN);
    int iters = under_valgrind() ? 50 : 300, still_open = 0;
    for (int i = 0; i < iters; i++) {
        int p[2];
        assert_int_equal(make_pipe(p), 0);
        cio_file *f = cio_fdopen(p[0]);
        assert_non_null(f);
        struct op_thread *t = start_reader(f, 8);
        assert_non_null(t);
        assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
        if (i & 1)
            assert_int_equal(cio_cancel(f, CIO_READ), 0); /* released, then closed */
        assert_int_equal(cio_close(f), 0);
        if (write(p[1], "x", 1) != -1 || errno != EPIPE)
            still_open++;
        assert_true(op_join(t, JOIN_MS));
        assert_int_equal(t->result, -1);
        assert_int_equal(t->err, (i & 1) ? ECANCELED : EBADF);
        op_free(t);
        assert_int_equal(close(p[1]), 0);
    }
    signal(SIGPIPE, old_pipe);
    assert_int_equal(still_open, 0);
}

/* Rules 2, 6, 7 for ops waiting for a worker: with max_threads 1 and the
 * one worker busy, a read handed to the pool waits in its queue; a cancel,
 * a deadline and a close each stop such a read at once, and a queued read
 * left alone runs when the worker is free. */
static void an_op_queued_for_a_worker_honours_cancel_deadline_and_close(void **state)
{
    (void)state;
    cio_options opt = {.max_threads = 1, .waits = CIO_WAIT_WORKER};
    assert_int_equal(cio_init(&opt), 0);
    int p[4][2];
    cio_file *f[4];
    for (int i = 0; i < 4; i++) {
        assert_int_equal(make_pipe(p[i]), 0);
        f[i] = cio_fdopen(p[i][0]);
        assert_non_null(f[i]);
    }
    uint64_t before = op_starts();
    struct op_thread *busy = start_reader(f[0], 8); /* takes the worker */
    wait_blocked(busy, before, p[0][0], CIO_READ);

    /* f[1]: cancelled in the queue */
    before = op_starts();
    struct op_thread *t = start_reader(f[1], 8);
    assert_non_null(t);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_op_sleeping(t, JOIN_MS));
    assert_int_equal(threads_in_syscall_on(p[1][0], CIO_READ) > 0, 0);
    assert_int_equal(cio_cancel(f[1], CIO_READ), 0);
    assert_true(op_join(t, AT_ONCE_MS));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, ECANCELED);
    op_free(t);

    /* f[2]: its deadline passes in the queue */
    cio_time_t d = cio_after_ms(50);
    assert_int_equal(cio_set_read_deadline(f[2], d), 0);
    t = start_reader(f[2], 8);
    assert_non_null(t);
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, ETIMEDOUT);
    assert_true(t->end >= d);
    op_free(t);

    /* f[3]: closed while queued, then a queued read on f[1] runs later */
    before = op_starts();
    t = start_reader(f[3], 8);
    assert_non_null(t);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_op_sleeping(t, JOIN_MS));
    assert_int_equal(cio_close(f[3]), 0);
    assert_true(op_join(t, AT_ONCE_MS));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, EBADF);
    op_free(t);

    before = op_starts();
    t = start_reader(f[1], 8);
    assert_non_null(t);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    write_str(p[1][1], "q");
    assert_false(op_is_done(busy));
    write_str(p[0][1], "b");
    assert_true(op_join(busy, JOIN_MS));
    assert_int_equal(busy->result, 1);
    assert_true(op_join(t, JOIN_MS)); /* it got the worker after busy */
    assert_int_equal(t->result, 1);
    assert_int_equal(t->buf[0], 'q');
    op_free(busy);
    op_free(t);
    for (int i = 0; i < 4; i++) {
        if (i != 3)
            assert_int_equal(cio_close(f[i]), 0);
        close(p[i][1]);
    }
}

/* Many ops wait in the pool's queue behind one busy worker; deadlines,
 * cancels and closes take them out in a random order (head, middle, tail
 * of the queue alike).  Each fails at once with its own reason, a deadline
 * never early; the ones left alone still run, in order, once the worker is
 * free.  Repeated with fresh random orders. */
#define QN 24
static void queued_ops_stopped_in_any_order_each_fail_at_once(void **state)
{
    (void)state;
    cio_options opt = {.max_threads = 1, .waits = CIO_WAIT_WORKER};
    assert_int_equal(cio_init(&opt), 0);
    struct rng r;
    rng_init(&r, test_seed("queued_any_order"));
    for (int round = 0; round < 4; round++) {
        int p[QN][2], bp[2];
        cio_file *f[QN];
        struct op_thread *t[QN];
        assert_int_equal(make_pipe(bp), 0);
        cio_file *bf = cio_fdopen(bp[0]);
        uint64_t before = op_starts();
        struct op_thread *busy = start_reader(bf, 8); /* takes the worker */
        wait_blocked(busy, before, bp[0], CIO_READ);
        for (int i = 0; i < QN; i++) {
            assert_int_equal(make_pipe(p[i]), 0);
            f[i] = cio_fdopen(p[i][0]);
            assert_non_null(f[i]);
            before = op_starts();
            t[i] = start_reader(f[i], 8);
            assert_non_null(t[i]);
            assert_true(wait_op_starts(before + 1, JOIN_MS));
            assert_true(wait_op_sleeping(t[i], JOIN_MS));
        }
        /* how each is stopped: 0 left alone, 1 cancel, 2 deadline, 3 close */
        int how[QN], order[QN];
        cio_time_t due[QN];
        for (int i = 0; i < QN; i++) {
            how[i] = i < 3 ? 0 : 1 + (int)rng_below(&r, 3);
            order[i] = i;
        }
        for (int i = QN - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint32_t)i + 1), x = order[i];
            order[i] = order[j];
            order[j] = x;
        }
        for (int k = 0; k < QN; k++) {
            int i = order[k];
            random_delay_us(&r, 300);
            if (how[i] == 1)
                assert_int_equal(cio_cancel(f[i], CIO_READ), 0);
            else if (how[i] == 2)
                assert_int_equal(cio_set_read_deadline(f[i], due[i] = cio_after_ms(1)), 0);
            else if (how[i] == 3)
                assert_int_equal(cio_close(f[i]), 0);
        }
        static const int want[4] = {0, ECANCELED, ETIMEDOUT, EBADF};
        for (int i = 0; i < QN; i++) {
            if (!how[i])
                continue;
            assert_true(op_join(t[i], JOIN_MS));
            assert_int_equal(t[i]->result, -1);
            assert_int_equal(t[i]->err, want[how[i]]);
            if (how[i] == 2)
                assert_true(t[i]->end >= due[i]);
            op_free(t[i]);
        }
        for (int i = 0; i < 3; i++) {
            assert_false(op_is_done(t[i]));
            write_str(p[i][1], "q");
        }
        write_str(bp[1], "b");
        assert_true(op_join(busy, JOIN_MS));
        assert_int_equal(busy->result, 1);
        for (int i = 0; i < 3; i++) {
            assert_true(op_join(t[i], JOIN_MS)); /* the queue still holds them */
            assert_int_equal(t[i]->result, 1);
            assert_int_equal(t[i]->buf[0], 'q');
            op_free(t[i]);
        }
        op_free(busy);
        assert_int_equal(cio_close(bf), 0);
        close(bp[1]);
        for (int i = 0; i < QN; i++) {
            if (how[i] != 3)
                assert_int_equal(cio_close(f[i]), 0);
            close(p[i][1]);
        }
    }
}

/* A queued read whose deadline comes just as the one worker frees up: its
 * own caller may take it out of the queue while the worker pops it, or
 * the worker runs it and its deadline signal reaches it there.  Either
 * way it fails with ETIMEDOUT, never before its deadline, or reads the
 * byte; that byte is never lost nor read twice.  Random timing, many
 * rounds. */
static void a_queued_read_timing_out_as_the_worker_frees_up_loses_no_byte(void **state)
{
    (void)state;
    cio_options opt = {.max_threads = 1, .waits = CIO_WAIT_WORKER};
    assert_int_equal(cio_init(&opt), 0);
    struct rng r;
    rng_init(&r, test_seed("queued_expiry_race"));
    int a[2], b[2], timeouts = 0, reads = 0;
    assert_int_equal(make_pipe(a), 0);
    assert_int_equal(make_pipe(b), 0);
    cio_file *fa = cio_fdopen(a[0]), *fb = cio_fdopen(b[0]);
    for (int round = 0; round < 40; round++) {
        uint64_t before = op_starts();
        struct op_thread *busy = start_reader(fa, 1);
        wait_blocked(busy, before, a[0], CIO_READ);
        cio_time_t d = cio_after_ms(1 + (int64_t)rng_below(&r, 6));
        assert_int_equal(cio_set_read_deadline(fb, d), 0);
        struct op_thread *t = start_reader(fb, 1);
        assert_non_null(t);
        random_delay_us(&r, 6000);
        write_str(a[1], "a"); /* the worker frees up */
        random_delay_us(&r, 3000);
        write_str(b[1], "b");
        assert_true(op_join(busy, JOIN_MS));
        assert_true(op_join(t, JOIN_MS));
        assert_int_equal(busy->result, 1);
        if (t->result == -1) {
            timeouts++;
            assert_int_equal(t->err, ETIMEDOUT);
            assert_true(t->end >= d);
            assert_int_equal(cio_set_read_deadline(fb, CIO_NO_DEADLINE), 0);
            char c = 0;
            assert_int_equal(cio_read(fb, &c, 1), 1); /* the byte is still there */
            assert_int_equal(c, 'b');
        } else {
            reads++;
            assert_int_equal(t->result, 1);
            assert_int_equal(t->buf[0], 'b');
            assert_int_equal(cio_set_read_deadline(fb, CIO_NO_DEADLINE), 0);
        }
        assert_false(fd_readable_now(b[0]));
        op_free(busy);
        op_free(t);
    }
    printf("%d timeouts, %d reads\n", timeouts, reads);
    assert_true(timeouts > 0);
    assert_int_equal(cio_close(fa), 0);
    assert_int_equal(cio_close(fb), 0);
    close(a[1]);
    close(b[1]);
}

struct chaos_stream {
    cio_file *rf, *wf;
    size_t total;
    unsigned seed;
    atomic_int writer_done, stop;
    /* each thread's own results, read after join */
    size_t sent, got;
    long write_cuts, read_cuts, partial_writes;
    int bad_line;
    long bad_a, bad_b;
};

static void chaos_fail(struct chaos_stream *c, int line, long a, long b)
{
    if (!c->bad_line) {
        c->bad_line = line;
        c->bad_a = a;
        c->bad_b = b;
    }
}

static void *chaos_writer(void *arg)
{
    struct chaos_stream *c = arg;
    block_cancel_signal_in_this_thread();
    struct rng rng;
    rng_init(&rng, c->seed * 5 + 1);
    unsigned char *chunk = malloc(8192);
    while (chunk && c->sent < c->total && !c->bad_line) {
        size_t n = 1 + rng_below(&rng, 8192);
        if (n > c->total - c->sent)
            n = c->total - c->sent;
        fill_pattern(chunk, n, c->sent);
        ssize_t r = cio_write(c->wf, chunk, n);
        int err = errno;
        if (r > 0) {
            if ((size_t)r > n)
                chaos_fail(c, __LINE__, (long)r, (long)n);
            c->partial_writes += (size_t)r < n;
            c->sent += (size_t)r; /* resume after what went out */
        } else if (r == -1 && (err == ECANCELED || err == ETIMEDOUT)) {
            c->write_cuts++;
            if (err == ETIMEDOUT)
                cio_set_write_deadline(c->wf, CIO_NO_DEADLINE);
        } else {
            chaos_fail(c, __LINE__, (long)r, err);
        }
    }
    free(chunk);
    atomic_store(&c->writer_done, 1);
    return NULL;
}

static void *chaos_reader(void *arg)
{
    struct chaos_stream *c = arg;
    block_cancel_signal_in_this_thread();
    struct rng rng;
    rng_init(&rng, c->seed * 5 + 2);
    unsigned char *buf = malloc(8192);
    while (buf && !c->bad_line) {
        ssize_t r = cio_read(c->rf, buf, 1 + rng_below(&rng, 8192));
        int err = errno;
        if (r == 0)
            break;
        if (r > 0) {
            size_t m = pattern_mismatch(buf, (size_t)r, c->got);
            if (m != (size_t)r)
                chaos_fail(c, __LINE__, (long)(c->got + m), (long)r);
            c->got += (size_t)r;
            if (rng_below(&rng, 4) == 0)
                random_delay_us(&rng, 300); /* so writes block too */
        } else if (err == ECANCELED || err == ETIMEDOUT) {
            c->read_cuts++;
            if (err == ETIMEDOUT)
                cio_set_read_deadline(c->rf, CIO_NO_DEADLINE);
        } else {
            chaos_fail(c, __LINE__, (long)r, err);
        }
    }
    free(buf);
    return NULL;
}

static void *chaos_main(void *arg)
{
    struct chaos_stream *c = arg;
    block_cancel_signal_in_this_thread();
    struct rng rng;
    rng_init(&rng, c->seed * 5 + 3);
    while (!atomic_load(&c->stop)) {
        random_delay_us(&rng, 400);
        cio_time_t soon = cio_now() + 1000 * (cio_time_t)rng_below(&rng, 400);
        switch (rng_below(&rng, 5)) {
        case 0:
            cio_cancel(c->rf, CIO_READ);
            break;
        case 1:
            cio_cancel(c->wf, CIO_WRITE);
            break;
        case 2:
            cio_set_read_deadline(c->rf, soon);
            break;
        case 3:
            cio_set_write_deadline(c->wf, soon);
            break;
        default:
            cio_set_deadline(c->rf, CIO_NO_DEADLINE);
            cio_set_deadline(c->wf, CIO_NO_DEADLINE);
        }
    }
    return NULL;
}

/* Rules 4-6: a stream through a pipe, written with cio_write and read with
 * cio_read, while a third thread cancels both directions and sets short
 * deadlines at random moments: every cut write returns its count or fails
 * with nothing written (the writer resumes from there), every cut read
 * consumed nothing, so the reader gets each byte exactly once, in order. */
static void reads_and_writes_cut_at_random_moments_lose_and_repeat_no_byte(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    struct chaos_stream c = {.total = 2u << 20, .seed = test_seed(__func__)};
    c.rf = cio_fdopen(p[0]);
    c.wf = cio_fdopen(p[1]);
    assert_non_null(c.rf);
    assert_non_null(c.wf);
    pthread_t w, r, k;
    assert_int_equal(pthread_create(&r, NULL, chaos_reader, &c), 0);
    assert_int_equal(pthread_create(&w, NULL, chaos_writer, &c), 0);
    assert_int_equal(pthread_create(&k, NULL, chaos_main, &c), 0);
    pthread_join(w, NULL);
    atomic_store(&c.stop, 1);
    pthread_join(k, NULL);
    assert_int_equal(cio_set_deadline(c.rf, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_close(c.wf), 0); /* EOF ends the reader */
    pthread_join(r, NULL);
    printf("sent %zu, got %zu; cuts: %ld writes (%ld partial), %ld reads\n", c.sent, c.got,
           c.write_cuts, c.partial_writes, c.read_cuts);
    if (c.bad_line)
        fail_msg("check at line %d failed (%ld, %ld)", c.bad_line, c.bad_a, c.bad_b);
    assert_int_equal(c.sent, c.total);
    assert_int_equal(c.got, c.total);
    assert_true(c.write_cuts + c.partial_writes + c.read_cuts > 0);
    assert_int_equal(cio_close(c.rf), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup_watched, fixture_teardown)

int main(void)
{
    block_cancel_signal_in_this_thread();
    const struct CMUnitTest tests[] = {
        T(cancel_interrupts_a_blocked_read_and_the_next_read_runs_normally),
        T(cancel_with_nothing_pending_does_nothing),
        T(cancel_of_one_direction_leaves_the_other_blocked),
        T(cancel_of_a_write_that_wrote_nothing_fails_it_with_ECANCELED),
        T(cancel_interrupts_reads_blocked_and_waiting_to_start),
        T(close_fails_a_blocked_read_with_EBADF_and_closes_the_fd),
        T(close_fails_waiting_and_blocked_ops_of_both_directions),
        T(close_never_lets_a_stale_op_touch_a_reused_fd_number),
        T(detach_returns_the_fd_open_and_usable),
        T(reads_on_one_file_are_serialised),
        T(writes_on_one_file_are_serialised_and_never_interleave),
        T(a_read_and_a_write_on_one_file_proceed_at_the_same_time),
        T(errors_of_the_underlying_syscall_come_back_unchanged),
        T(a_cancel_racing_with_data_loses_no_byte),
        T(stops_of_parked_reads_racing_with_data_lose_and_repeat_no_byte),
        T(a_close_after_a_release_lets_go_of_the_file_before_it_returns),
        T(an_op_queued_for_a_worker_honours_cancel_deadline_and_close),
        T(queued_ops_stopped_in_any_order_each_fail_at_once),
        T(a_queued_read_timing_out_as_the_worker_frees_up_loses_no_byte),
        T(reads_and_writes_cut_at_random_moments_lose_and_repeat_no_byte),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
