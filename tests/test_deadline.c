/*
 * Description: deadlines (DESIGN.md Semantics rules 1-5).  A read on an
 * empty pipe times out with ETIMEDOUT not before its deadline and consumes
 * nothing; an op started after its deadline fails at once without touching
 * the fd; a deadline equal to cio_now() and negative deadlines are past;
 * moving a deadline later, into the past or clearing it acts on an op that
 * is already blocked, and a cleared or moved-out deadline leaves no stale
 * timer; read and write deadlines are independent; a write cut short by its
 * deadline returns its count, the next call fails and after clearing the
 * rest goes out exactly once, also when its reader keeps making room;
 * zero-length ops return 0 at once.
 *
 * The same cases run once per timer backend: test_deadline_heap.c and
 * test_deadline_timerfd.c define CIO_TEST_TIMER and include this file, and
 * each test's setup calls cio_init with that backend.
 */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#ifndef CIO_TEST_TIMER
#define CIO_TEST_TIMER CIO_TIMER_AUTO
#endif

#define DEADLINE_MS 50
#define LATE_BOUND_MS 2000 /* a timeout may come this much after its deadline */
#define AT_ONCE_MS 500     /* "at once" */
#define JOIN_MS 5000

static int setup_backend(void **state)
{
    fixture_setup_watched(state);
    cio_options opt = {.timer = CIO_TEST_TIMER};
    if (cio_init(&opt) != 0) {
        fprintf(stderr, "cio_init(timer=%d): %s\n", CIO_TEST_TIMER, strerror(errno));
        return -1;
    }
    return 0;
}

/* A timed-out op: -1/ETIMEDOUT, not before deadline d, within the bound. */
static void assert_timed_out(ssize_t r, int err, cio_time_t end, cio_time_t d)
{
    assert_int_equal(r, -1);
    assert_int_equal(err, ETIMEDOUT);
    assert_true(end >= d);
    assert_true(elapsed_ms(d, end) < (double)scaled_ms(LATE_BOUND_MS));
}

/* Wait until t's op sits in a read/write syscall on fd. */
static void wait_blocked(struct op_thread *t, uint64_t started_before, int fd, int which)
{
    assert_non_null(t);
    assert_true(wait_op_starts(started_before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(fd, which, 1, JOIN_MS));
}

static void write_str(int fd, const char *s)
{
    assert_int_equal(write_all(fd, s, strlen(s)), (ssize_t)strlen(s));
}

/* Rules 2, 4: a read on an empty pipe times out and data written after is
 * read whole by the next read, whether the deadline was cleared or renewed. */
static void read_times_out_on_empty_pipe_and_data_survives(void **state)
{
    (void)state;
    int p[2];
    char buf[64];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);

    for (int round = 0; round < 2; round++) {
        cio_time_t d = cio_after_ms(DEADLINE_MS);
        assert_int_equal(cio_set_read_deadline(f, d), 0);
        ssize_t r = cio_read(f, buf, sizeof buf);
        int err = errno;
        assert_timed_out(r, err, cio_now(), d);

        write_str(p[1], "hello, world");
        /* round 0 clears the deadline, round 1 sets a new one */
        cio_time_t next = round == 0 ? CIO_NO_DEADLINE : cio_after_ms(60000);
        assert_int_equal(cio_set_read_deadline(f, next), 0);
        memset(buf, 0, sizeof buf);
        assert_int_equal(cio_read(f, buf, sizeof buf), 12);
        assert_memory_equal(buf, "hello, world", 12);
    }
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 2: an op started after its deadline fails at once and leaves the fd
 * alone: the data in the pipe stays for a raw read. */
static void op_started_after_deadline_fails_at_once_without_touching_fd(void **state)
{
    (void)state;
    int p[2];
    char buf[16];
    assert_int_equal(make_pipe(p), 0);
    cio_file *rf = cio_fdopen(p[0]);
    cio_file *wf = cio_fdopen(p[1]);
    assert_non_null(rf);
    assert_non_null(wf);
    write_str(p[1], "data");

    cio_time_t past = cio_now() - 1;
    assert_int_equal(cio_set_read_deadline(rf, past), 0);
    assert_int_equal(cio_set_write_deadline(wf, past), 0);
    cio_time_t t0 = cio_now();
    assert_int_equal(cio_read(rf, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(cio_write(wf, "more", 4), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(elapsed_ms(t0, cio_now()) < (double)scaled_ms(AT_ONCE_MS));

    assert_int_equal(read(p[0], buf, sizeof buf), 4); /* nothing consumed */
    assert_memory_equal(buf, "data", 4);
    assert_false(fd_readable_now(p[0])); /* nothing written */
    assert_int_equal(cio_close(rf), 0);
    assert_int_equal(cio_close(wf), 0);
}

/* Rule 2 and the time convention: cio_now() itself, 1, negative values and
 * INT64_MIN are past deadlines, for reads and writes alike. */
static void deadline_of_exactly_now_and_negative_deadlines_count_as_expired(void **state)
{
    (void)state;
    int p[2];
    char buf[16];
    assert_int_equal(make_pipe(p), 0);
    cio_file *rf = cio_fdopen(p[0]);
    cio_file *wf = cio_fdopen(p[1]);
    assert_non_null(rf);
    assert_non_null(wf);
    write_str(p[1], "x");

    const cio_time_t fixed[] = {1, -1, -1000000000, INT64_MIN};
    for (int i = 0; i < 5; i++) {
        cio_time_t d = i == 4 ? cio_now() : fixed[i];
        assert_int_equal(cio_set_read_deadline(rf, d), 0);
        assert_int_equal(cio_set_write_deadline(wf, i == 4 ? cio_now() : d), 0);
        assert_int_equal(cio_read(rf, buf, sizeof buf), -1);
        assert_int_equal(errno, ETIMEDOUT);
        assert_int_equal(cio_write(wf, "y", 1), -1);
        assert_int_equal(errno, ETIMEDOUT);
    }
    assert_int_equal(cio_set_deadline(rf, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_read(rf, buf, sizeof buf), 1); /* still there */
    assert_int_equal(buf[0], 'x');
    assert_false(fd_readable_now(p[0]));
    assert_int_equal(cio_close(rf), 0);
    assert_int_equal(cio_close(wf), 0);
}

/* Rule 3: a deadline moved later keeps the blocked read waiting past the
 * old deadline (the old timer must not fire), then data completes it. */
static void moving_the_deadline_later_keeps_a_blocked_read_waiting(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    cio_time_t d1 = cio_after_ms(scaled_ms(300));
    assert_int_equal(cio_set_read_deadline(f, d1), 0);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 64);
    wait_blocked(t, before, p[0], CIO_READ);

    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(60000)), 0);
    assert_true(cio_now() < d1); /* else the machine is too slow: scale up */
    wait_for_time(d1 + scaled_ms(200) * NS_PER_MS);
    assert_false(op_is_done(t));

    write_str(p[1], "late data");
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, 9);
    assert_memory_equal(t->buf, "late data", 9);
    op_free(t);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 3: a deadline moved into the past interrupts the blocked read at
 * once with ETIMEDOUT; rule 4: the data that comes later is read whole. */
static void moving_the_deadline_into_the_past_interrupts_at_once(void **state)
{
    (void)state;
    int p[2];
    char buf[64];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 64);
    wait_blocked(t, before, p[0], CIO_READ);

    cio_time_t moved = cio_now();
    assert_int_equal(cio_set_read_deadline(f, moved), 0);
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, ETIMEDOUT);
    assert_true(elapsed_ms(moved, t->end) < (double)scaled_ms(AT_ONCE_MS));
    op_free(t);

    write_str(p[1], "whole");
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), 5);
    assert_memory_equal(buf, "whole", 5);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 3: clearing the deadline of a blocked read lets it wait past the old
 * deadline without limit; data then completes it. */
static void clearing_the_deadline_lets_a_blocked_read_wait_without_limit(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    cio_time_t d = cio_after_ms(scaled_ms(300));
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 64);
    wait_blocked(t, before, p[0], CIO_READ);

    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    assert_true(cio_now() < d); /* else the machine is too slow: scale up */
    wait_for_time(d + scaled_ms(200) * NS_PER_MS);
    assert_false(op_is_done(t));

    write_str(p[1], "at last");
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, 7);
    assert_memory_equal(t->buf, "at last", 7);
    op_free(t);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rules 1, 3 (Go #57114 and the extend-did-not-disarm bug): a 30 ms
 * deadline cleared, or moved far out, before any op runs must never fire:
 * a read blocked well past 30 ms stays blocked until data comes. */
static void a_deadline_cleared_or_moved_out_before_it_fires_leaves_no_stale_timer(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        int p[2];
        assert_int_equal(make_pipe(p), 0);
        cio_file *f = cio_fdopen(p[0]);
        assert_non_null(f);
        cio_time_t d = cio_after_ms(30);
        assert_int_equal(cio_set_read_deadline(f, d), 0);
        cio_time_t later = variant == 0 ? CIO_NO_DEADLINE : cio_after_ms(60000);
        assert_int_equal(cio_set_read_deadline(f, later), 0);

        uint64_t before = op_starts();
        struct op_thread *t = start_reader(f, 64);
        wait_blocked(t, before, p[0], CIO_READ);
        wait_for_time(d + scaled_ms(250) * NS_PER_MS);
        assert_false(op_is_done(t));

        write_str(p[1], "fed");
        assert_true(op_join(t, JOIN_MS));
        assert_int_equal(t->result, 3);
        assert_memory_equal(t->buf, "fed", 3);
        op_free(t);
        assert_int_equal(cio_close(f), 0);
        assert_int_equal(close(p[1]), 0);
    }
}

/* Rules 2, 4, 11 (a late interrupt must not hit the next op): many reads
 * with random deadlines a few hundred microseconds out all time out not
 * before the deadline; after each, with the deadline cleared, a read that
 * blocks until a byte arrives at a random moment gets exactly that byte. */
static void a_timeout_leaves_nothing_behind_for_the_next_read(void **state)
{
    (void)state;
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int p[2];
    char buf[8];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);

    for (int i = 0; i < 300; i++) {
        cio_time_t d = cio_now() + (cio_time_t)rng_below(&rng, 400) * 1000;
        assert_int_equal(cio_set_read_deadline(f, d), 0);
        ssize_t r = cio_read(f, buf, sizeof buf);
        int err = errno;
        assert_timed_out(r, err, cio_now(), d);

        assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
        struct late_act w = {.fd = p[1], .delay_us = rng_below(&rng, 300), .byte = '!'};
        late_act_start(&w);
        r = cio_read(f, buf, sizeof buf);
        err = errno;
        assert_int_equal(late_act_join(&w), 1);
        if (r != 1)
            fprintf(stderr, "iteration %d: read %zd errno %d\n", i, r, err);
        assert_int_equal(r, 1);
        assert_int_equal(buf[0], '!');
    }
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rules 1, 3 (Go #57114, the stale timer): a deadline cleared, or moved
 * far out, just as it fires must never fire afterwards.  Over many
 * iterations the deadline, due a few microseconds out together with those
 * of a crowd of idle files (so the timer thread has a batch to work
 * through), is cleared or moved at a random moment; the next read, blocking
 * until a byte comes at a random moment, gets that byte, never ETIMEDOUT. */
static void a_deadline_cleared_as_it_fires_never_fires_later(void **state)
{
    (void)state;
    enum { CROWD = 32 };
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int p[2], crowd_fds[CROWD][2];
    cio_file *crowd[CROWD];
    char buf[8];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    for (int c = 0; c < CROWD; c++) {
        assert_int_equal(make_pipe(crowd_fds[c]), 0);
        crowd[c] = cio_fdopen(crowd_fds[c][0]);
        assert_non_null(crowd[c]);
    }

    for (int i = 0; i < 600; i++) {
        cio_time_t d = cio_now() + (cio_time_t)(20 + rng_below(&rng, 100)) * 1000;
        for (int c = 0; c < CROWD; c++)
            assert_int_equal(cio_set_read_deadline(crowd[c], d), 0);
        assert_int_equal(cio_set_read_deadline(f, d), 0);
        random_delay_us(&rng, 150);
        cio_time_t later = i % 2 ? CIO_NO_DEADLINE : cio_after_ms(60000);
        assert_int_equal(cio_set_read_deadline(f, later), 0);
        struct late_act w = {.fd = p[1], .delay_us = rng_below(&rng, 200), .byte = '!'};
        late_act_start(&w);
        ssize_t r = cio_read(f, buf, sizeof buf);
        int err = errno;
        assert_int_equal(late_act_join(&w), 1);
        if (r != 1)
            fail_msg("iteration %d: read gave %zd errno %d", i, r, err);
        assert_int_equal(buf[0], '!');
    }
    for (int c = 0; c < CROWD; c++) {
        assert_int_equal(cio_close(crowd[c]), 0);
        close(crowd_fds[c][1]);
    }
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 1: a past write deadline does not affect reads (nor a blocked
 * read), and a past read deadline does not affect writes. */
static void read_and_write_deadlines_are_independent(void **state)
{
    (void)state;
    int sv[2];
    char buf[16];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);

    assert_int_equal(cio_set_write_deadline(f, cio_now()), 0);
    write_str(sv[1], "in");
    assert_int_equal(cio_read(f, buf, sizeof buf), 2);
    assert_memory_equal(buf, "in", 2);
    assert_int_equal(cio_write(f, "out", 3), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_false(fd_readable_now(sv[1]));

    /* a blocked read ignores a write deadline passing */
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 16);
    wait_blocked(t, before, sv[0], CIO_READ);
    assert_int_equal(cio_set_write_deadline(f, cio_now()), 0);
    cio_time_t moved = cio_now();
    wait_for_time(moved + scaled_ms(200) * NS_PER_MS);
    assert_false(op_is_done(t));
    write_str(sv[1], "go");
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, 2);
    assert_memory_equal(t->buf, "go", 2);
    op_free(t);

    assert_int_equal(cio_set_write_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_set_read_deadline(f, cio_now()), 0);
    write_str(sv[1], "kept");
    assert_int_equal(cio_write(f, "out", 3), 3);
    assert_int_equal(read(sv[1], buf, sizeof buf), 3);
    assert_memory_equal(buf, "out", 3);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), 4);
    assert_memory_equal(buf, "kept", 4);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* Rule 1: cio_set_deadline sets both deadlines: a past one fails both
 * directions, a future one cuts a blocked read and a blocked write, and
 * clearing it clears both. */
static void set_deadline_sets_both_directions(void **state)
{
    (void)state;
    int sv[2];
    char buf[16];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    cio_file *f = cio_fdopen(sv[0]);
    assert_non_null(f);

    assert_int_equal(cio_set_deadline(f, cio_now()), 0);
    write_str(sv[1], "x");
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(cio_write(f, "y", 1), -1);
    assert_int_equal(errno, ETIMEDOUT);

    assert_int_equal(cio_set_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), 1);
    assert_int_equal(cio_write(f, "y", 1), 1);
    assert_int_equal(read(sv[1], buf, sizeof buf), 1);
    assert_int_equal(buf[0], 'y');

    /* a blocked read and a blocked (big) write, both cut by one deadline */
    size_t big = 8u << 20;
    unsigned char *data = malloc(big);
    assert_non_null(data);
    fill_pattern(data, big, 0);
    uint64_t before = op_starts();
    struct op_thread *r = start_reader(f, 16);
    wait_blocked(r, before, sv[0], CIO_READ);
    struct op_thread *w = start_writer(f, data, big);
    wait_blocked(w, before + 1, sv[0], CIO_WRITE);
    cio_time_t d = cio_after_ms(DEADLINE_MS);
    assert_int_equal(cio_set_deadline(f, d), 0);
    assert_true(op_join(r, JOIN_MS));
    assert_true(op_join(w, JOIN_MS));
    assert_timed_out(r->result, r->err, r->end, d);
    assert_true(w->result > 0 && (size_t)w->result < big); /* rule 5 */
    assert_true(w->end >= d);
    op_free(r);
    op_free(w);
    assert_int_equal(cio_write(f, data, 1), -1); /* deadline still past */
    assert_int_equal(errno, ETIMEDOUT);
    free(data);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(sv[1]), 0);
}

/* Rules 2, 4 on a terminal (an fd with no non-blocking try): a read on a
 * pty master times out with ETIMEDOUT not before its deadline, and what
 * the slave writes afterwards is read whole by the next read. */
static void read_times_out_on_a_tty_and_data_survives(void **state)
{
    (void)state;
    int m, s;
    if (!open_pty(&m, &s))
        skip(); /* no pseudo-terminals here */
    cio_file *f = cio_fdopen(m);
    assert_non_null(f);
    int fl = fcntl(m, F_GETFL);
    char buf[16];
    cio_time_t d = cio_after_ms(DEADLINE_MS);
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    ssize_t r = cio_read(f, buf, sizeof buf);
    int err = errno;
    assert_timed_out(r, err, cio_now(), d);
    assert_int_equal(fcntl(m, F_GETFL), fl);

    write_str(s, "tty");
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(60000)), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), 3);
    assert_memory_equal(buf, "tty", 3);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(s), 0);
}

/* Rules 2, 5: a write to a full pipe times out with ETIMEDOUT and writes
 * nothing: the reader then sees exactly the bytes that were there before. */
static void write_times_out_on_a_full_pipe_and_writes_nothing(void **state)
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
    unsigned char *data = malloc((size_t)cap);
    assert_non_null(data);
    fill_pattern(data, (size_t)cap, 0);
    assert_int_equal(write_all(p[1], data, (size_t)cap), cap);

    cio_file *wf = cio_fdopen(p[1]);
    assert_non_null(wf);
    cio_time_t d = cio_after_ms(DEADLINE_MS);
    assert_int_equal(cio_set_write_deadline(wf, d), 0);
    ssize_t r = cio_write(wf, "0123456789", 10);
    int err = errno;
    assert_timed_out(r, err, cio_now(), d);

    memset(data, 0, (size_t)cap);
    assert_int_equal(read_full(p[0], data, (size_t)cap), cap);
    assert_int_equal(pattern_mismatch(data, (size_t)cap, 0), (size_t)cap);
    assert_false(fd_readable_now(p[0])); /* not one byte more */
    free(data);
    assert_int_equal(cio_close(wf), 0);
    assert_int_equal(close(p[0]), 0);
}

/* Rule 5: a write of more than the pipe holds, cut by its deadline, returns
 * the positive count; the next call fails ETIMEDOUT; after clearing, the
 * rest goes out and the reader gets every byte once, in order. */
static void write_cut_short_by_deadline_returns_its_count_and_resumes(void **state)
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
    size_t total = (size_t)cap + 1000;
    unsigned char *data = malloc(total);
    assert_non_null(data);
    fill_pattern(data, total, 0);
    cio_file *wf = cio_fdopen(p[1]);
    assert_non_null(wf);

    cio_time_t d = cio_after_ms(DEADLINE_MS);
    assert_int_equal(cio_set_write_deadline(wf, d), 0);
    ssize_t n = cio_write(wf, data, total);
    assert_true(cio_now() >= d);
    assert_true(n > 0 && (size_t)n < total);
    assert_true(n <= cap);
    assert_int_equal(cio_write(wf, data + n, total - (size_t)n), -1);
    assert_int_equal(errno, ETIMEDOUT);

    struct raw_reader *rr = start_raw_reader(p[0], total + 64);
    assert_non_null(rr);
    assert_int_equal(cio_set_write_deadline(wf, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_write(wf, data + n, total - (size_t)n), (ssize_t)(total - (size_t)n));
    assert_int_equal(cio_close(wf), 0); /* EOF ends the reader */
    assert_true(raw_reader_join(rr, JOIN_MS));
    assert_int_equal(rr->got, total);
    assert_int_equal(pattern_mismatch(rr->buf, total, 0), total);
    raw_reader_free(rr);
    free(data);
    assert_int_equal(close(p[0]), 0);
}

/* Drains a pipe a page at a time with a pause between reads while `trickle`
 * is set, at full speed after: a reader that keeps a writer moving bytes. */
struct trickle {
    struct raw_reader rr;
    atomic_int trickle;
};

static void *trickle_main(void *arg)
{
    struct trickle *t = arg;
    while (t->rr.got < t->rr.cap) {
        size_t k = t->rr.cap - t->rr.got < 4096 ? t->rr.cap - t->rr.got : 4096;
        ssize_t r = read(t->rr.fd, t->rr.buf + t->rr.got, k);
        if (r <= 0)
            break;
        t->rr.got += (size_t)r;
        if (atomic_load(&t->trickle))
            sleep_us(200);
    }
    atomic_store(&t->rr.done, 1);
    return NULL;
}

/* Rules 2, 5: a write whose reader keeps making room is still cut at its
 * deadline.  A signal there makes write(2) short rather than fail with
 * EINTR; the worker must then see that the deadline has passed (its own
 * timer sent the signal and set no reason) instead of writing on until a
 * repeat signal finds it moving nothing. */
static void a_write_that_keeps_moving_still_stops_at_its_deadline(void **state)
{
    (void)state;
    const size_t total = (size_t)32 << 20; /* 1.6 s at the trickle's pace */
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    unsigned char *data = malloc(total);
    assert_non_null(data);
    fill_pattern(data, total, 0);
    struct trickle t = {.rr = {.fd = p[0], .cap = total, .buf = malloc(total)}};
    assert_non_null(t.rr.buf);
    atomic_init(&t.trickle, 1);
    assert_int_equal(pthread_create(&t.rr.thread, NULL, trickle_main, &t), 0);
    cio_file *wf = cio_fdopen(p[1]);
    assert_non_null(wf);

    /* Three cuts in a row: a write that goes on past its deadline stops
     * by chance (a repeat signal that finds it moving nothing) often
     * enough that one cut alone could pass. */
    size_t off = 0;
    for (int cut = 0; cut < 3; cut++) {
        cio_time_t d = cio_after_ms(100);
        assert_int_equal(cio_set_write_deadline(wf, d), 0);
        ssize_t n = cio_write(wf, data + off, total - off);
        cio_time_t end = cio_now();
        printf("cut at %zd of %zu bytes, %.1f ms after the deadline\n", n, total - off,
               elapsed_ms(d, end));
        assert_true(end >= d);
        assert_true(n > 0 && (size_t)n < total - off);
        assert_true(elapsed_ms(d, end) < (double)scaled_ms(LATE_BOUND_MS / 4));
        off += (size_t)n;
        assert_int_equal(cio_write(wf, data + off, total - off), -1);
        assert_int_equal(errno, ETIMEDOUT);
    }

    atomic_store(&t.trickle, 0);
    assert_int_equal(cio_set_write_deadline(wf, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_write(wf, data + off, total - off), (ssize_t)(total - off));
    assert_int_equal(cio_close(wf), 0);
    assert_true(raw_reader_join(&t.rr, JOIN_MS));
    assert_int_equal(t.rr.got, total);
    assert_int_equal(pattern_mismatch(t.rr.buf, total, 0), total);
    free(t.rr.buf);
    free(data);
    assert_int_equal(close(p[0]), 0);
}

/* Rule 5: zero-length reads and writes return 0 at once and consume
 * nothing: even with a past deadline, and on an empty pipe (read) or a
 * full one (write) with no deadline, where a real syscall would block. */
static void zero_length_read_and_write_return_0_at_once_and_consume_nothing(void **state)
{
    (void)state;
    int p[2];
    char buf[8];
    assert_int_equal(make_pipe(p), 0);
    cio_file *rf = cio_fdopen(p[0]);
    cio_file *wf = cio_fdopen(p[1]);
    assert_non_null(rf);
    assert_non_null(wf);

    struct op_thread *t = start_reader(rf, 0); /* empty pipe */
    assert_non_null(t);
    assert_true(op_join(t, AT_ONCE_MS));
    assert_int_equal(t->result, 0);
    op_free(t);

    write_str(p[1], "ab");
    assert_int_equal(cio_read(rf, buf, 0), 0);
    assert_int_equal(cio_write(wf, "zz", 0), 0);
    /* at once means before any deadline check, too */
    assert_int_equal(cio_set_deadline(rf, cio_now()), 0);
    assert_int_equal(cio_set_deadline(wf, cio_now()), 0);
    assert_int_equal(cio_read(rf, buf, 0), 0);
    assert_int_equal(cio_write(wf, "zz", 0), 0);
    assert_int_equal(cio_set_deadline(rf, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_set_deadline(wf, CIO_NO_DEADLINE), 0);
    assert_int_equal(read(p[0], buf, sizeof buf), 2);
    assert_memory_equal(buf, "ab", 2);

    int cap = pipe_capacity(p[1]);
    if (cap > 0) {
        unsigned char *fill = calloc(1, (size_t)cap);
        assert_non_null(fill);
        assert_int_equal(write_all(p[1], fill, (size_t)cap), cap);
        t = start_writer(wf, "q", 0); /* full pipe */
        assert_non_null(t);
        assert_true(op_join(t, AT_ONCE_MS));
        assert_int_equal(t->result, 0);
        op_free(t);
        assert_int_equal(read_full(p[0], fill, (size_t)cap), cap);
        free(fill);
    }
    assert_false(fd_readable_now(p[0]));
    assert_int_equal(cio_close(rf), 0);
    assert_int_equal(cio_close(wf), 0);
}

/* Rules 1, 2, 3: several blocked reads given different deadlines together
 * each time out on their own (not before, within the bound); the deadlines
 * cleared while armed never fire.  The deadlines are set once every read
 * is blocked, so that a slow start (12 readers under a sanitizer on a
 * loaded machine can take seconds) cannot let one fire early. */
static void many_armed_deadlines_each_fire_on_their_own(void **state)
{
    (void)state;
    enum { N = 12 };
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int p[N][2];
    cio_file *f[N];
    cio_time_t d[N];
    struct op_thread *t[N];
    for (int i = 0; i < N; i++) {
        assert_int_equal(make_pipe(p[i]), 0);
        f[i] = cio_fdopen(p[i][0]);
        assert_non_null(f[i]);
        uint64_t before = op_starts();
        t[i] = start_reader(f[i], 8);
        wait_blocked(t[i], before, p[i][0], CIO_READ);
    }
    for (int i = 0; i < N; i++) {
        d[i] = cio_after_ms(scaled_ms(400) + rng_below(&rng, 200));
        assert_int_equal(cio_set_read_deadline(f[i], d[i]), 0);
    }
    cio_stats s;
    cio_get_stats(&s);
    assert_true(s.timers >= N);
    for (int i = 0; i < N; i += 3) {
        assert_int_equal(cio_set_read_deadline(f[i], CIO_NO_DEADLINE), 0);
        assert_true(cio_now() < d[i]); /* else too slow: scale up */
    }
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0)
            continue;
        assert_true(op_join(t[i], JOIN_MS));
        assert_timed_out(t[i]->result, t[i]->err, t[i]->end, d[i]);
    }
    wait_for_time(cio_now() + scaled_ms(100) * NS_PER_MS);
    for (int i = 0; i < N; i += 3) {
        assert_false(op_is_done(t[i]));
        write_str(p[i][1], "k");
        assert_true(op_join(t[i], JOIN_MS));
        assert_int_equal(t[i]->result, 1);
    }
    cio_get_stats(&s);
    assert_int_equal(s.timers, 0);
    for (int i = 0; i < N; i++) {
        op_free(t[i]);
        assert_int_equal(cio_close(f[i]), 0);
        assert_int_equal(close(p[i][1]), 0);
    }
}

static int count_timerfds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dir))) {
        char path[300], target[128];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t len = readlink(path, target, sizeof target - 1);
        if (len > 0) {
            target[len] = 0;
            n += strstr(target, "timerfd") != NULL;
        }
    }
    closedir(dir);
    return n;
}

/* Backend choice (cio_options.timer): while a deadline is armed, the
 * timerfd backend holds a timerfd and the heap backend holds none. */
static void the_chosen_timer_backend_is_the_one_running(void **state)
{
    (void)state;
    if (CIO_TEST_TIMER == CIO_TIMER_AUTO || count_timerfds() < 0)
        skip();
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    cio_time_t d = cio_after_ms(scaled_ms(300));
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 8);
    wait_blocked(t, before, p[0], CIO_READ);
    int n = count_timerfds();
    if (CIO_TEST_TIMER == CIO_TIMER_TIMERFD)
        assert_true(n >= 1);
    else
        assert_int_equal(n, 0);
    assert_true(op_join(t, JOIN_MS));
    assert_timed_out(t->result, t->err, t->end, d);
    op_free(t);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 3 under random timing: a blocked read's deadline is moved once, at a
 * random moment, later, earlier (still ahead), into the past, or cleared.
 * Whatever the interleaving with the deadline's own signal (delivered
 * straight to the worker where the system can), the read obeys the deadline
 * in force: never early, never after a deadline that was moved away before
 * it came, and a cleared one never fires; the data written after a clear is
 * read whole. */
static void a_deadline_moved_at_random_moments_is_obeyed_as_last_set(void **state)
{
    (void)state;
    struct rng r;
    rng_init(&r, test_seed("deadline_moved_randomly"));
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    int timeouts = 0, reads = 0;
    for (int round = 0; round < 60; round++) {
        cio_time_t d0 = cio_after_ms(5 + (int64_t)rng_below(&r, 20)), d1;
        assert_int_equal(cio_set_read_deadline(f, d0), 0);
        struct op_thread *t = start_reader(f, 16);
        assert_non_null(t);
        random_delay_us(&r, 25000);      /* before it blocks, or after */
        int how = (int)rng_below(&r, 4); /* later, earlier, past, clear */
        d1 = how == 0   ? cio_after_ms(10 + (int64_t)rng_below(&r, 30))
             : how == 1 ? cio_after_ms(1 + (int64_t)rng_below(&r, 3))
             : how == 2 ? cio_now() - 1
                        : CIO_NO_DEADLINE;
        assert_int_equal(cio_set_read_deadline(f, d1), 0);
        cio_time_t moved = cio_now();
        int wrote = 0;
        if (how == 3) {
            sleep_us(30000); /* d0 passes: nothing may fire any more */
            if ((wrote = !op_is_done(t)))
                write_str(p[1], "after clear");
        }
        assert_true(op_join(t, JOIN_MS));
        if (t->result == -1) {
            timeouts++;
            assert_int_equal(t->err, ETIMEDOUT);
            cio_time_t first = how == 3 || d1 > d0 ? d0 : d1;
            assert_true(t->end >= first); /* never early */
            /* moved away before it came: the old deadline is gone */
            assert_false(moved < d0 && how == 3);
            if (moved < d0 && how == 0)
                assert_true(t->end >= d1);
            char drain[16];
            if (wrote) /* it timed out at d0, before the clear */
                assert_int_equal(cio_read(f, drain, sizeof drain), 11);
        } else {
            reads++;
            assert_int_equal(how, 3);
            assert_int_equal(t->result, 11);
            assert_memory_equal(t->buf, "after clear", 11);
        }
        op_free(t);
        assert_false(fd_readable_now(p[0])); /* nothing left behind */
    }
    printf("%d timeouts, %d reads\n", timeouts, reads);
    assert_true(timeouts > 0);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

#ifdef CIO_TEST_THREAD_TIMER
/* The calling thread's voluntary context switches (its sleeps), or -1. */
static long my_sleeps(void)
{
    FILE *f = fopen("/proc/thread-self/status", "r");
    if (!f)
        return -1;
    char line[256];
    long n = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
            n = strtol(line + 24, NULL, 10);
    fclose(f);
    return n;
}

/* Under valgrind the counts of sleeps below mean nothing: it runs one
 * thread at a time, under a lock of its own that every thread sleeps on in
 * turn. */

/* The worker, back from its syscall with EINTR, is held 30 ms (its whole
 * way out of the op, as on a loaded machine) before it finishes.  A read
 * that a stop released while it was parked (docs/protocol.md, 4p) has no
 * way out to hold: its worker sees no EINTR.  Under valgrind, where workers
 * have no timer, the caller stops its own read at the deadline and that is
 * what happens. */
static atomic_int held_on_eintr;

static void hold_worker_on_eintr(const cio_event *ev, void *arg)
{
    (void)arg;
    if (ev->type != CIO_EV_EINTR)
        return;
    atomic_store(&held_on_eintr, 1);
    wait_for_time(cio_now() + 30 * NS_PER_MS); /* restarts after the timer's repeats */
}

/* One read on f timed out `ahead` from now, its worker held on its way
 * out: how many times the caller slept in it. */
static long sleeps_of_a_held_timeout(cio_file *f, cio_time_t ahead)
{
    char c;
    atomic_store(&held_on_eintr, 0);
    cio_set_trace(hold_worker_on_eintr, NULL);
    cio_time_t d = cio_now() + ahead;
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    long before = my_sleeps();
    ssize_t r = cio_read(f, &c, 1);
    int err = errno;
    cio_time_t end = cio_now();
    long sleeps = my_sleeps() - before;
    cio_set_trace(NULL, NULL);
    assert_timed_out(r, err, end, d);
    if (!under_valgrind()) /* its worker's timer delivers the deadline to it */
        assert_true(atomic_load(&held_on_eintr));
    if (atomic_load(&held_on_eintr))
        assert_true(elapsed_ms(d, end) >= 25); /* the caller waited for it */
    return sleeps;
}

/* A file on the read end of pipe p, after one read on it timed out: a
 * worker has run (and got its timer, or not). */
static const cio_options on_workers = {.timer = CIO_TEST_TIMER, .waits = CIO_WAIT_WORKER};

/* A pipe's read end whose first read timed out on a worker (the worker's
 * timer is proven to work; the library restarted with waits on workers). */
static cio_file *file_after_a_first_timeout(int p[2])
{
    assert_int_equal(cio_shutdown(), 0);
    assert_int_equal(cio_init(&on_workers), 0);
    assert_int_equal(pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    time_out_one_read(f);
    return f;
}

/* CIO_EV_TIMER_FIRE by a worker's own timer, and by anyone else (worker 0:
 * the timer thread, or a caller that times its own op). */
static atomic_int fires_by_worker, fires_by_timer;

static void count_fires(const cio_event *ev, void *arg)
{
    (void)arg;
    if (ev->type == CIO_EV_TIMER_FIRE)
        atomic_fetch_add(ev->worker ? &fires_by_worker : &fires_by_timer, 1);
}
#endif

/* A read on an idle worker gets its deadline from that worker's own timer
 * (its CIO_EV_TIMER_FIRE names the worker), except under valgrind, where a
 * worker has no timer (platform/wtimer_thread.c: valgrind met the timer's
 * repeat before every restart of a write and the write never stopped):
 * there the timer thread or the caller delivers it (worker 0). */
static void a_worker_times_its_read_itself_but_under_valgrind(void **state)
{
    (void)state;
#ifndef CIO_TEST_THREAD_TIMER
    skip(); /* no worker timer here */
#else
    int p[2];
    char c;
    cio_file *f = file_after_a_first_timeout(p); /* a worker exists, idle */
    atomic_store(&fires_by_worker, 0);
    atomic_store(&fires_by_timer, 0);
    cio_set_trace(count_fires, NULL);
    cio_time_t d = cio_after_ms(scaled_ms(100)); /* the worker is in read(2) by then */
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    ssize_t r = cio_read(f, &c, 1);
    int err = errno;
    cio_time_t end = cio_now();
    cio_set_trace(NULL, NULL);
    assert_timed_out(r, err, end, d);
    int by_worker = atomic_load(&fires_by_worker), by_timer = atomic_load(&fires_by_timer);
    printf("the deadline came from %s (%d by the worker, %d by worker 0)\n",
           by_worker ? "the worker's timer" : "the timer thread or the caller", by_worker,
           by_timer);
    if (under_valgrind()) {
        assert_int_equal(by_worker, 0);
        assert_true(by_timer >= 1);
    } else {
        assert_true(by_worker >= 1);
    }
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
#endif
}

/* Where workers have a kernel timer of their own (Linux): a read handed to
 * an idle worker is timed out by that timer, and its caller sleeps until
 * the worker wakes it: once, however long the worker takes to leave.  A
 * caller that also slept until the deadline (as the caller of an op left
 * in the pool's queue must) would wake there, find its op still running
 * and sleep again: two sleeps an op. */
static void a_timed_out_read_on_an_idle_worker_costs_its_caller_one_sleep(void **state)
{
    (void)state;
#ifndef CIO_TEST_THREAD_TIMER
    skip(); /* no worker timer (the caller is the deadline's timer there), or
             * a caller woken under the lock, which may sleep on it again */
#else
    if (my_sleeps() < 0)
        skip();
    int p[2];
    cio_file *f = file_after_a_first_timeout(p); /* a worker exists, idle */
    const int ops = 6;
    long sleeps = 0;
    for (int i = 0; i < ops; i++)
        sleeps += sleeps_of_a_held_timeout(f, 20 * NS_PER_MS);
    printf("%ld sleeps for %d timed-out reads\n", sleeps, ops);
    /* Two sleeps an op are the failure; a lock may be contended now and
     * then. */
    if (!under_valgrind()) /* (the reads and their timeouts are checked there too) */
        assert_in_range(sleeps, ops, 2 * ops - 1);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
#endif
}

/* The same for a read that needs a new thread (no worker is idle), once a
 * worker of the process has been seen to get its timer: its caller does not
 * time it either.  At a mass expiry of reads each started with its deadline
 * already set, thousands of such callers woke at their deadlines only to
 * find their ops on their workers' way out (docs/performance.md, sixth
 * round). */
static void a_timed_out_read_on_a_new_worker_costs_its_caller_one_sleep(void **state)
{
    (void)state;
#ifndef CIO_TEST_THREAD_TIMER
    skip(); /* as above */
#else
    if (my_sleeps() < 0)
        skip();
    int p[2];
    cio_file *f = file_after_a_first_timeout(p);
    const int ops = 6;
    long sleeps = 0;
    for (int i = 0; i < ops; i++) {
        assert_int_equal(cio_shutdown(), 0); /* files stay valid */
        assert_int_equal(cio_init(&on_workers), 0);
        cio_stats st;
        cio_get_stats(&st);
        assert_int_equal(st.threads, 0); /* this read starts one */
        /* Room for the thread to start (slow under sanitizers): the
         * deadline must reach it in its syscall, where it is held. */
        sleeps += sleeps_of_a_held_timeout(f, 100 * NS_PER_MS);
    }
    printf("%ld sleeps for %d timed-out reads, each on a new worker\n", sleeps, ops);
#ifndef CIO_TSAN /* its pthread_create waits for the new thread: a sleep more */
    if (!under_valgrind())
        assert_in_range(sleeps, ops, 2 * ops - 1);
#endif
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
#endif
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup_backend, fixture_teardown)

int main(void)
{
    block_cancel_signal_in_this_thread();
    const struct CMUnitTest tests[] = {
        T(read_times_out_on_empty_pipe_and_data_survives),
        T(op_started_after_deadline_fails_at_once_without_touching_fd),
        T(deadline_of_exactly_now_and_negative_deadlines_count_as_expired),
        T(moving_the_deadline_later_keeps_a_blocked_read_waiting),
        T(moving_the_deadline_into_the_past_interrupts_at_once),
        T(clearing_the_deadline_lets_a_blocked_read_wait_without_limit),
        T(a_deadline_cleared_or_moved_out_before_it_fires_leaves_no_stale_timer),
        T(a_timeout_leaves_nothing_behind_for_the_next_read),
        T(a_deadline_cleared_as_it_fires_never_fires_later),
        T(read_and_write_deadlines_are_independent),
        T(set_deadline_sets_both_directions),
        T(read_times_out_on_a_tty_and_data_survives),
        T(write_times_out_on_a_full_pipe_and_writes_nothing),
        T(write_cut_short_by_deadline_returns_its_count_and_resumes),
        T(a_write_that_keeps_moving_still_stops_at_its_deadline),
        T(zero_length_read_and_write_return_0_at_once_and_consume_nothing),
        T(many_armed_deadlines_each_fire_on_their_own),
        T(the_chosen_timer_backend_is_the_one_running),
        T(a_deadline_moved_at_random_moments_is_obeyed_as_last_set),
        T(a_timed_out_read_on_an_idle_worker_costs_its_caller_one_sleep),
        T(a_timed_out_read_on_a_new_worker_costs_its_caller_one_sleep),
        T(a_worker_times_its_read_itself_but_under_valgrind),
    };
    const char *name = CIO_TEST_TIMER == CIO_TIMER_HEAP      ? "deadline_heap"
                       : CIO_TEST_TIMER == CIO_TIMER_TIMERFD ? "deadline_timerfd"
                                                             : "deadline";
    return _cmocka_run_group_tests(name, tests, sizeof tests / sizeof tests[0], NULL, NULL);
}
