/*
 * Description: fault injection by link-time interposition.  The test is
 * linked with ld's --wrap for pthread_create, malloc, calloc, realloc, free
 * and timer_create (tests/stress.cmake, static library only), so every
 * call the library makes goes through the wrappers below.  A failure is
 * armed on one thread and hits only the calls made on that thread, which
 * is where the library makes them (cio_fdopen's allocation, the timer heap
 * growing in cio_set_deadline, a new worker in cio_read): nothing else in
 * the process is disturbed.  (A worker makes its timer on its own thread:
 * that failure is armed for the next call in the process.)  The wrappers
 * also count the blocks alive, so "nothing leaks" is an exact count here,
 * not only under ASan.
 *
 * Checked: pthread_create failing makes the op fail with EAGAIN, no thread
 * or block leaks and the file works afterwards, also with a busy worker
 * beside; a write the fast path had half done when no worker could be made
 * returns the count written; with the thread cap reached, ops waiting for a
 * worker honour their deadlines (on time), cancels and close, and the
 * queued ones run in order when the worker frees up; a write cut while
 * waiting returns what the fast path wrote; an allocation failure in
 * cio_fdopen gives ENOMEM with the fd open and nothing made; one while
 * arming a deadline (the heap grows past its slots) gives ENOMEM and leaves
 * the old deadline in force (none, or one in the past), undoing the read
 * half of cio_set_deadline; every allocation and thread creation of a
 * cold start, failing in turn, is reported and leaks nothing; and a new
 * worker that cannot make its kernel timer, where the one before could,
 * still has its deadline delivered and its cancel land.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define JOIN_MS 5000
#define AT_ONCE_MS 500
#define LATE_BOUND_MS 2000

/* ---- the wrappers ------------------------------------------------------------ */

int __real_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg);
void *__real_malloc(size_t n);
void *__wrap_malloc(size_t n);
void *__real_calloc(size_t k, size_t n);
void *__wrap_calloc(size_t k, size_t n);
void *__real_realloc(void *p, size_t n);
void *__wrap_realloc(void *p, size_t n);
void __real_free(void *p);
void __wrap_free(void *p);
int __real_timer_create(clockid_t c, struct sigevent *ev, timer_t *id);
int __wrap_timer_create(clockid_t c, struct sigevent *ev, timer_t *id);

/* What is armed on this thread: the nth call from now fails (0: none; -1:
 * every call), and how many calls were seen and failed since arming. */
struct arming {
    long nth, calls, failures;
};

/* The faults here are a worker's (its thread, its timer, its memory): every
 * blocked read waits on one (cio_options.waits). */
static const cio_options on_workers = {.waits = CIO_WAIT_WORKER};
static _Thread_local struct arming threads_armed, allocs_armed;
static atomic_long live_blocks;

static bool hit(struct arming *a)
{
    if (a->nth == 0)
        return false;
    a->calls++;
    bool fail = a->nth < 0 || a->calls == a->nth;
    a->failures += fail;
    return fail;
}

/* How long a failing pthread_create takes on this thread (0: no time), as
 * it can under the limit that fails it. */
static _Thread_local unsigned slow_failure_ms;
static atomic_int failures_begun; /* failing calls begun, on any thread */

int __wrap_pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    if (!hit(&threads_armed))
        return __real_pthread_create(t, a, fn, arg);
    atomic_fetch_add(&failures_begun, 1);
    if (slow_failure_ms)
        sleep_us(slow_failure_ms * 1000u);
    return EAGAIN;
}

static void *counted(void *p)
{
    if (p)
        atomic_fetch_add(&live_blocks, 1);
    return p;
}

void *__wrap_malloc(size_t n)
{
    return hit(&allocs_armed) ? (errno = ENOMEM, NULL) : counted(__real_malloc(n));
}

void *__wrap_calloc(size_t k, size_t n)
{
    return hit(&allocs_armed) ? (errno = ENOMEM, NULL) : counted(__real_calloc(k, n));
}

void *__wrap_realloc(void *p, size_t n)
{
    if (hit(&allocs_armed))
        return errno = ENOMEM, NULL;
    void *q = __real_realloc(p, n);
    return p ? q : counted(q);
}

void __wrap_free(void *p)
{
    if (p)
        atomic_fetch_sub(&live_blocks, 1);
    __real_free(p);
}

/* A worker makes its timer on its own thread, not the arming one: these
 * many timer_create calls from now fail, whichever thread makes them. */
static atomic_long timers_to_fail;

int __wrap_timer_create(clockid_t c, struct sigevent *ev, timer_t *id)
{
    long n = atomic_load(&timers_to_fail);
    while (n > 0 && !atomic_compare_exchange_weak(&timers_to_fail, &n, n - 1))
        ;
    return n > 0 ? (errno = EAGAIN, -1) : __real_timer_create(c, ev, id);
}

/* Arm: the nth pthread_create / allocation on this thread fails (-1: all). */
static void fail_thread_creation(long nth)
{
    threads_armed = (struct arming){nth, 0, 0};
}

static void fail_allocation(long nth)
{
    allocs_armed = (struct arming){nth, 0, 0};
}

/* Disarm both; the number of failures that happened since arming. */
static long disarm(void)
{
    long n = threads_armed.failures + allocs_armed.failures;
    threads_armed = allocs_armed = (struct arming){0, 0, 0};
    return n;
}

/* ---- observing the library ------------------------------------------------------ */

/* OP_START by fd, from a tracer of our own: the op was handed to the pool. */
#define MAX_FD 4096
static atomic_uint starts_on[MAX_FD];

static void count_starts(const cio_event *ev, void *arg)
{
    (void)arg;
    if (ev->type == CIO_EV_OP_START && ev->fd >= 0 && ev->fd < MAX_FD)
        atomic_fetch_add(&starts_on[ev->fd], 1);
}

struct start_wait {
    int fd;
    unsigned n;
};

static bool started_on(void *arg)
{
    struct start_wait *w = arg;
    return atomic_load(&starts_on[w->fd]) >= w->n;
}

/* Wait until op thread t's op on fd was handed to the pool and its caller
 * sleeps waiting for it. */
static void wait_handed_over(struct op_thread *t, int fd, unsigned before)
{
    struct start_wait w = {fd, before + 1};
    assert_non_null(t);
    assert_true(fd < MAX_FD);
    assert_true(wait_until(started_on, &w, JOIN_MS));
    assert_true(wait_op_sleeping(t, JOIN_MS));
}

static unsigned workers(void)
{
    cio_stats s;
    cio_get_stats(&s);
    return s.threads;
}

/* Every worker back on the idle list: the next op reuses one rather than
 * making another (a caller is woken before its worker is idle again). */
static bool all_workers_idle(void *arg)
{
    (void)arg;
    cio_stats s;
    cio_get_stats(&s);
    return s.threads > 0 && s.threads_idle == s.threads;
}

static unsigned timers(void)
{
    cio_stats s;
    cio_get_stats(&s);
    return s.timers;
}

static bool threads_at_most(void *arg)
{
    return thread_count() <= *(int *)arg;
}

/* A thread just joined may linger in /proc/self/task for a moment. */
static void assert_threads_back_to(int n)
{
    if (!wait_until(threads_at_most, &n, JOIN_MS))
        fail_msg("%d threads, not %d", thread_count(), n);
}

static void write_str(int fd, const char *s)
{
    assert_int_equal(write_all(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void assert_read(struct op_thread *t, const char *want)
{
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, (ssize_t)strlen(want));
    assert_memory_equal(t->buf, want, strlen(want));
    op_free(t);
}

static void assert_fails(struct op_thread *t, int err, int64_t within_ms)
{
    assert_true(op_join(t, within_ms));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, err);
    op_free(t);
}

struct pipe_file {
    int r, w;
    cio_file *f; /* on r */
};

static void open_pipe_file(struct pipe_file *p)
{
    int fds[2];
    assert_int_equal(make_pipe(fds), 0);
    p->r = fds[0];
    p->w = fds[1];
    p->f = cio_fdopen(p->r);
    assert_non_null(p->f);
}

/* The same pipe opened again through /proc as a FIFO is (O_RDWR): Linux
 * has no non-blocking try for it (RWF_NOWAIT), so its blocked reads wait
 * on a worker whatever cio_options.waits says.  0 where /proc cannot. */
static int open_fifo_file(struct pipe_file *p)
{
    int fds[2];
    char path[64];
    assert_int_equal(make_pipe(fds), 0);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fds[0]);
    p->r = open(path, O_RDWR | O_CLOEXEC);
    close(fds[0]);
    p->w = fds[1];
    p->f = p->r >= 0 ? cio_fdopen(p->r) : NULL;
    if (p->r >= 0)
        assert_non_null(p->f);
    return p->f != NULL;
}

static void close_pipe_file(struct pipe_file *p)
{
    if (p->f)
        assert_int_equal(cio_close(p->f), 0);
    close(p->w);
}

/* ---- pthread_create fails --------------------------------------------------------- */

/* pthread_create failing with EAGAIN: the read that needed a worker fails
 * with EAGAIN, leaving no thread, no block and no op behind; the file works
 * afterwards, on the fast path and through a worker; and with a worker
 * busy on another file, a second blocking read fails the same way while
 * the first one goes on unharmed. */
static void a_failed_pthread_create_fails_the_op_with_EAGAIN_and_the_file_works_after(void **state)
{
    (void)state;
    assert_int_equal(cio_init(&on_workers), 0);
    cio_set_trace(count_starts, NULL);
    struct pipe_file a, b;
    open_pipe_file(&a);
    open_pipe_file(&b);
    long live0 = atomic_load(&live_blocks);
    int threads0 = thread_count();
    char c;

    fail_thread_creation(1);
    ssize_t r = cio_read(a.f, &c, 1); /* empty: it needs a worker */
    int err = errno;
    assert_int_equal(disarm(), 1);
    assert_int_equal(r, -1);
    assert_int_equal(err, EAGAIN);
    cio_stats s;
    cio_get_stats(&s);
    assert_int_equal(s.threads, 0);
    assert_int_equal(s.ops_started, s.ops_done);
    assert_threads_back_to(threads0);
    assert_int_equal(atomic_load(&live_blocks), live0);

    write_str(a.w, "x");
    assert_int_equal(cio_read(a.f, &c, 1), 1);
    assert_int_equal(c, 'x');
    if (workers() > 0) /* no try for a pipe here: a worker read it */
        assert_true(wait_until(all_workers_idle, NULL, JOIN_MS));
    struct op_thread *t = start_reader(a.f, 8);
    assert_true(wait_in_syscall_on(a.r, CIO_READ, 1, JOIN_MS));
    write_str(a.w, "yz");
    assert_read(t, "yz");
    assert_true(wait_until(all_workers_idle, NULL, JOIN_MS));

    t = start_reader(a.f, 8); /* takes the one worker */
    assert_true(wait_in_syscall_on(a.r, CIO_READ, 1, JOIN_MS));
    fail_thread_creation(1);
    r = cio_read(b.f, &c, 1);
    err = errno;
    assert_int_equal(disarm(), 1);
    assert_int_equal(r, -1);
    assert_int_equal(err, EAGAIN);
    assert_int_equal(workers(), 1);
    assert_false(op_is_done(t));
    write_str(a.w, "still");
    assert_read(t, "still");
    write_str(b.w, "b");
    assert_int_equal(cio_read(b.f, &c, 1), 1);

    cio_set_trace(NULL, NULL);
    close_pipe_file(&a);
    close_pipe_file(&b);
}

/* Rule 2: a deadline that passed while a thread start failed slowly is
 * the answer (the op never started), not EAGAIN; so is a cio_call's. */
static long seven(void *arg)
{
    (void)arg;
    return 7;
}

static void a_deadline_that_passed_while_no_worker_could_be_made_is_ETIMEDOUT(void **state)
{
    (void)state;
    assert_int_equal(cio_init(&on_workers), 0);
    struct pipe_file a;
    open_pipe_file(&a);
    char c;
    slow_failure_ms = 150;
    /* A deadline 30 ms out, which the 150 ms failure outlasts; a slow
     * machine (ThreadSanitizer) may pass it before the op even asks for a
     * thread (then no start was tried): another round. */
    ssize_t r = 0;
    int err = 0, tried = 0;
    for (int round = 0; round < 20 && !tried; round++) {
        assert_int_equal(cio_set_read_deadline(a.f, cio_after_ms(30)), 0);
        fail_thread_creation(1);
        r = cio_read(a.f, &c, 1);
        err = errno;
        tried = disarm() == 1;
    }
    assert_true(tried);
    assert_int_equal(r, -1);
    assert_int_equal(err, ETIMEDOUT);
    long v = 0;
    tried = 0;
    for (int round = 0; round < 20 && !tried; round++) {
        fail_thread_creation(1);
        v = cio_call(seven, NULL, cio_after_ms(30));
        err = errno;
        tried = disarm() == 1;
    }
    assert_true(tried);
    assert_int_equal(v, -1);
    assert_int_equal(err, ETIMEDOUT);
    /* no deadline, or one still ahead: EAGAIN, as before */
    assert_int_equal(cio_set_read_deadline(a.f, cio_after_ms(scaled_ms(60000))), 0);
    fail_thread_creation(1);
    r = cio_read(a.f, &c, 1);
    err = errno;
    assert_int_equal(disarm(), 1);
    assert_int_equal(r, -1);
    assert_int_equal(err, EAGAIN);
    slow_failure_ms = 0;
    assert_int_equal(cio_call(seven, NULL, CIO_NO_DEADLINE), 7);
    close_pipe_file(&a);
}

/* The bytes in the pipe right now (reads them). */
static size_t pipe_content(int fd)
{
    return drain_now(fd);
}

/* Rule 5 with the fast path: a cio_write larger than the pipe's room writes
 * what fits on the caller's thread and needs a worker for the rest; when
 * no worker can be made it must return the count already written (the
 * caller resumes from there), not fail as if nothing went out. */
static void a_write_that_cannot_get_a_worker_returns_the_bytes_already_written(void **state)
{
    (void)state;
    assert_int_equal(cio_init(&on_workers), 0);
    int fds[2];
    assert_int_equal(make_pipe(fds), 0);
    cio_file *w = cio_fdopen(fds[1]);
    assert_non_null(w);
    int cap = pipe_capacity(fds[1]);
    size_t n = (size_t)(cap > 0 ? cap : 65536) + 4096;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    fill_pattern(buf, n, 0);

    fail_thread_creation(-1);
    ssize_t r = cio_write(w, buf, n);
    int err = errno;
    disarm();
    size_t in_pipe = pipe_content(fds[0]);
    if (in_pipe > 0 && r != (ssize_t)in_pipe)
        fail_msg("cio_write returned %zd (errno %s) but wrote %zu bytes", r,
                 r < 0 ? strerror(err) : "-", in_pipe);
    if (in_pipe == 0) {
        assert_int_equal(r, -1); /* no fast path here: nothing went out */
        assert_int_equal(err, EAGAIN);
    }
    assert_int_equal(workers(), 0);
    free(buf);
    assert_int_equal(cio_close(w), 0);
    close(fds[0]);
}

/* ---- the thread cap --------------------------------------------------------------- */

/* With max_threads = 1 and its worker blocked on A, reads on B..E wait for
 * a worker.  Waiting, they still honour their deadline (B: ETIMEDOUT, not
 * before the deadline, within a generous bound after), cancel (C) and close
 * (D), at once; E waits on.  Data for A frees the worker, which then runs
 * E; B's file works after its timeout; never more than one worker. */
static void with_the_thread_cap_reached_waiting_ops_honour_deadlines_cancels_and_close(void **state)
{
    (void)state;
    cio_options opt = {.max_threads = 1, .waits = CIO_WAIT_WORKER};
    assert_int_equal(cio_init(&opt), 0);
    cio_set_trace(count_starts, NULL);
    struct pipe_file p[5]; /* A B C D E */
    for (int i = 0; i < 5; i++)
        open_pipe_file(&p[i]);
    cio_stats s0;
    cio_get_stats(&s0);

    struct op_thread *ta = start_reader(p[0].f, 8);
    assert_true(wait_in_syscall_on(p[0].r, CIO_READ, 1, JOIN_MS));
    assert_int_equal(workers(), 1);
    cio_time_t d = cio_after_ms(scaled_ms(1000)); /* four threads start first */
    assert_int_equal(cio_set_read_deadline(p[1].f, d), 0);
    struct op_thread *t[5] = {ta};
    for (int i = 1; i < 5; i++) {
        unsigned before = atomic_load(&starts_on[p[i].r]);
        t[i] = start_reader(p[i].f, 8);
        wait_handed_over(t[i], p[i].r, before);
    }
    assert_true(cio_now() < d); /* B was waiting before its deadline */
    for (int i = 1; i < 5; i++)
        assert_int_equal(threads_in_syscall_on(p[i].r, CIO_READ), 0);
    assert_int_equal(workers(), 1);

    assert_int_equal(cio_cancel(p[2].f, CIO_READ), 0);
    assert_fails(t[2], ECANCELED, AT_ONCE_MS);
    assert_int_equal(cio_close(p[3].f), 0);
    p[3].f = NULL;
    assert_fails(t[3], EBADF, AT_ONCE_MS);
    assert_true(op_join(t[1], JOIN_MS));
    assert_int_equal(t[1]->result, -1);
    assert_int_equal(t[1]->err, ETIMEDOUT);
    assert_true(t[1]->end >= d);
    assert_true(elapsed_ms(d, t[1]->end) <= (double)scaled_ms(LATE_BOUND_MS));
    op_free(t[1]);
    assert_false(op_is_done(ta));
    assert_false(op_is_done(t[4]));
    assert_int_equal(workers(), 1);

    write_str(p[0].w, "a");
    assert_read(ta, "a");
    assert_true(wait_in_syscall_on(p[4].r, CIO_READ, 1, JOIN_MS)); /* E's turn */
    write_str(p[4].w, "e");
    assert_read(t[4], "e");
    assert_int_equal(cio_set_read_deadline(p[1].f, CIO_NO_DEADLINE), 0);
    write_str(p[1].w, "b");
    char c;
    assert_int_equal(cio_read(p[1].f, &c, 1), 1);
    assert_int_equal(workers(), 1);

    cio_stats s1;
    cio_get_stats(&s1);
    assert_int_equal(s1.timeouts - s0.timeouts, 1);
    assert_int_equal(s1.cancels - s0.cancels, 1);
    assert_int_equal(s1.ops_started, s1.ops_done);
    cio_set_trace(NULL, NULL);
    for (int i = 0; i < 5; i++)
        close_pipe_file(&p[i]);
}

/* A blocking read on its own thread, whose worker's start fails after a
 * while (the arming is per thread). */
struct failing_start {
    cio_file *f;
    long nth;         /* which of its thread starts fail (-1: all) */
    unsigned slow_ms; /* how long each failure takes (0: 300 ms, scaled) */
    pthread_t thread;
    ssize_t result;
    int err;
    long failures;
};

static void *read_with_a_failing_start(void *arg)
{
    struct failing_start *fs = arg;
    block_cancel_signal_in_this_thread();
    char c;
    slow_failure_ms = fs->slow_ms ? fs->slow_ms : (unsigned)scaled_ms(300);
    fail_thread_creation(fs->nth);
    fs->result = cio_read(fs->f, &c, 1);
    fs->err = errno;
    fs->failures = disarm();
    slow_failure_ms = 0;
    return NULL;
}

/* With max_threads = 1, a read on A makes the one worker, whose start
 * fails, slowly.  Meanwhile a read on B finds the pool full (the starting
 * worker counts) and waits for a worker.  A fails with EAGAIN; B must not
 * wait for ever with no worker left: it gets a worker of its own (round
 * 0: only A's start fails) or, when no thread can be made at all, fails
 * with EAGAIN too (round 1); either way at once, not at a deadline (it has
 * none). */
static void an_op_queued_behind_a_failed_thread_start_is_not_stranded(void **state)
{
    (void)state;
    for (int round = 0; round < 2; round++) {
        cio_options opt = {.max_threads = 1, .waits = CIO_WAIT_WORKER};
        assert_int_equal(cio_init(&opt), 0);
        cio_set_trace(count_starts, NULL);
        struct pipe_file a, b;
        open_pipe_file(&a);
        open_pipe_file(&b);
        struct failing_start fs = {.f = a.f, .nth = round == 0 ? 1 : -1};
        unsigned before = atomic_load(&starts_on[a.r]);
        assert_int_equal(pthread_create(&fs.thread, NULL, read_with_a_failing_start, &fs), 0);
        struct start_wait sw = {a.r, before + 1};
        assert_true(wait_until(started_on, &sw, JOIN_MS)); /* A's worker is starting */
        before = atomic_load(&starts_on[b.r]);
        struct op_thread *tb = start_reader(b.f, 8);
        wait_handed_over(tb, b.r, before);
        assert_int_equal(pthread_join(fs.thread, NULL), 0);
        assert_int_equal(fs.result, -1);
        assert_int_equal(fs.err, EAGAIN);
        if (round == 0) {
            assert_int_equal(fs.failures, 1);
            write_str(b.w, "b");
            assert_read(tb, "b");
        } else {
            assert_true(fs.failures >= 2); /* A's start and B's */
            assert_fails(tb, EAGAIN, AT_ONCE_MS);
        }
        cio_stats s;
        cio_get_stats(&s);
        assert_int_equal(s.ops_started, s.ops_done);
        cio_set_trace(NULL, NULL);
        close_pipe_file(&a);
        close_pipe_file(&b);
        assert_int_equal(cio_shutdown(), 0);
    }
}

static bool failures_begun_at_least(void *arg)
{
    return atomic_load(&failures_begun) >= *(int *)arg;
}

static bool a_worker_idle(void *arg)
{
    (void)arg;
    cio_stats s;
    cio_get_stats(&s);
    return s.threads_idle > 0;
}

/* The same with a worker left: with max_threads = 2, W runs a read on A;
 * X's start fails, and B queued behind it gets a start of its own, which
 * fails too (every start on X's thread does, slowly).  W, busy when B's
 * start began, goes idle while it fails: B must go to W, not back to a
 * queue that no thread will look at again. */
static void an_op_whose_own_start_fails_goes_to_a_worker_gone_idle(void **state)
{
    (void)state;
    cio_options opt = {.max_threads = 2, .waits = CIO_WAIT_WORKER};
    assert_int_equal(cio_init(&opt), 0);
    cio_set_trace(count_starts, NULL);
    struct pipe_file a, b, x;
    open_pipe_file(&a);
    open_pipe_file(&b);
    open_pipe_file(&x);
    struct op_thread *ta = start_reader(a.f, 8); /* W */
    assert_true(wait_in_syscall_on(a.r, CIO_READ, 1, JOIN_MS));
    atomic_store(&failures_begun, 0);
    /* Not scaled: W retires after 5 s idle, and must still be there when
     * B's start fails (a slower machine only makes W late to go idle, and
     * then it takes B from the queue). */
    struct failing_start fs = {.f = x.f, .nth = -1, .slow_ms = 1500};
    unsigned before = atomic_load(&starts_on[x.r]);
    assert_int_equal(pthread_create(&fs.thread, NULL, read_with_a_failing_start, &fs), 0);
    struct start_wait sw = {x.r, before + 1};
    assert_true(wait_until(started_on, &sw, JOIN_MS));
    before = atomic_load(&starts_on[b.r]);
    struct op_thread *tb = start_reader(b.f, 8);
    wait_handed_over(tb, b.r, before); /* queued: two threads, one starting */
    int two = 2;
    assert_true(wait_until(failures_begun_at_least, &two, JOIN_MS)); /* B's own start */
    write_str(a.w, "a");
    assert_read(ta, "a");
    assert_true(wait_until(a_worker_idle, NULL, JOIN_MS)); /* W, before B's start fails */
    assert_int_equal(pthread_join(fs.thread, NULL), 0);
    assert_int_equal(fs.result, -1);
    assert_int_equal(fs.err, EAGAIN);
    write_str(b.w, "b");
    assert_read(tb, "b");
    cio_set_trace(NULL, NULL);
    close_pipe_file(&a);
    close_pipe_file(&b);
    close_pipe_file(&x);
}

/* ---- the library's threads' stacks ------------------------------------------------- */

/* Where a program can set the default stack of the threads it makes
 * (glibc; what RLIMIT_STACK at a program's start decides). */
#if defined(__GLIBC__) && defined(_GNU_SOURCE)

/* The process's virtual size in bytes (VmSize), 0 if unknown. */
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    if (f)
        fclose(f);
    return kb * 1024;
}

/* In a child: a deadline set with a default thread stack of 1 GiB (what
 * RLIMIT_STACK at 1 GiB gives a program from its start; glibc reads the
 * limit then) and the address space limited to what there is now plus
 * 256 MiB; 77 where that cannot be arranged. */
static int set_a_deadline_under_a_huge_default_stack(void)
{
    pthread_attr_t big;
    if (pthread_attr_init(&big) != 0 || pthread_attr_setstacksize(&big, (size_t)1 << 30) != 0 ||
        pthread_setattr_default_np(&big) != 0)
        return 77;
    size_t vm = vm_size();
    struct rlimit as = {vm + (256u << 20), vm + (256u << 20)};
    if (!vm || setrlimit(RLIMIT_AS, &as) != 0)
        return 77;
    cio_options o = {.stack_size = 64 * 1024, .waits = CIO_WAIT_WORKER};
    int p[2];
    if (cio_init(&o) != 0 || make_pipe(p) != 0)
        return 2;
    cio_file *f = cio_fdopen(p[0]);
    if (!f)
        return 3;
    return cio_set_read_deadline(f, cio_after_ms(1000)) == 0 ? 0 : 4;
}
#else
static int set_a_deadline_under_a_huge_default_stack(void)
{
    return 77;
}
#endif

/* cio_options.stack_size sizes every thread the library makes, the timer
 * thread too: one made with no attributes takes its stack from
 * RLIMIT_STACK, and with that at 1 GiB and the address space limited, it
 * could not be made and no deadline could be set (EAGAIN), while the
 * workers started fine. */
static void the_timer_thread_runs_on_stack_size_not_rlimit_stack(void **state)
{
    (void)state;
#if defined(CIO_ASAN) || defined(CIO_TSAN)
    skip(); /* their shadow memory needs terabytes of address space */
#endif
    if (CIO_TEST_ON_VALGRIND())
        skip();
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(set_a_deadline_under_a_huge_default_stack());
    int st = child_status_within(pid, (double)scaled_ms(JOIN_MS));
    assert_true(WIFEXITED(st));
    if (WEXITSTATUS(st) == 77)
        skip();
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* ---- a worker's timer cannot be made ------------------------------------------------ */

/* No worker, and the last one to start got its timer. */
static void empty_pool_after_a_worker_with_a_timer(cio_file *f)
{
    assert_int_equal(cio_shutdown(), 0); /* files stay valid */
    assert_int_equal(cio_init(&on_workers), 0);
    time_out_one_read(f);
    assert_int_equal(cio_shutdown(), 0);
    assert_int_equal(cio_init(&on_workers), 0);
    assert_int_equal(workers(), 0);
}

/* Once a worker has been seen to get a kernel timer, a read that starts a
 * new one is left to that worker's timer: its caller does not wake at the
 * deadline.  If timer_create fails on the new thread, the timer thread
 * delivers the deadline instead, and a cancel is sent again until it lands:
 * neither may hang.  (Where workers have no such timer, timer_create is
 * never called and the failures stay unused: the test says so and skips.) */
static void a_new_worker_without_its_timer_still_honours_deadlines_and_cancels(void **state)
{
    (void)state;
    assert_int_equal(cio_init(&on_workers), 0);
    struct pipe_file p;
    open_pipe_file(&p);
    char c;

    /* A deadline, on a new worker that has no timer. */
    empty_pool_after_a_worker_with_a_timer(p.f);
    atomic_store(&timers_to_fail, 1);
    cio_time_t d = cio_after_ms(50);
    assert_int_equal(cio_set_read_deadline(p.f, d), 0);
    ssize_t r = cio_read(p.f, &c, 1);
    int err = errno;
    cio_time_t end = cio_now();
    if (atomic_load(&timers_to_fail) == 1) {
        atomic_store(&timers_to_fail, 0);
        close_pipe_file(&p);
        skip(); /* no worker timers here */
    }
    assert_int_equal(r, -1);
    assert_int_equal(err, ETIMEDOUT);
    assert_true(end >= d);
    assert_true(elapsed_ms(d, end) <= (double)scaled_ms(LATE_BOUND_MS));

    /* A cancel, on another new worker without a timer. */
    empty_pool_after_a_worker_with_a_timer(p.f);
    atomic_store(&timers_to_fail, 1);
    assert_int_equal(cio_set_read_deadline(p.f, CIO_NO_DEADLINE), 0);
    struct op_thread *t = start_reader(p.f, 1);
    assert_true(wait_in_syscall_on(p.r, CIO_READ, 1, JOIN_MS));
    assert_int_equal(atomic_load(&timers_to_fail), 0);
    assert_int_equal(cio_cancel(p.f, CIO_READ), 0);
    assert_fails(t, ECANCELED, AT_ONCE_MS);

    /* The file works after, on a worker with a timer again. */
    assert_int_equal(cio_set_read_deadline(p.f, cio_after_ms(20)), 0);
    assert_int_equal(cio_read(p.f, &c, 1), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(cio_set_read_deadline(p.f, CIO_NO_DEADLINE), 0);
    write_str(p.w, "x");
    assert_int_equal(cio_read(p.f, &c, 1), 1);
    assert_int_equal(c, 'x');
    close_pipe_file(&p);
}

/* Rule 5 with the fast path and the thread cap: a cio_write larger than
 * the pipe's room writes what fits on the caller's thread, then waits for
 * the one worker (busy elsewhere).  Its deadline passes while it waits: it
 * must return the count written (and the next write fail ETIMEDOUT), not
 * -1, or the caller writes those bytes twice.  The same for a cancel. */
static void a_write_cut_while_waiting_for_a_worker_returns_the_bytes_already_written(void **state)
{
    (void)state;
    cio_options opt = {.max_threads = 1, .waits = CIO_WAIT_WORKER};
    assert_int_equal(cio_init(&opt), 0);
    cio_set_trace(count_starts, NULL);
    struct pipe_file busy;
    open_pipe_file(&busy);
    struct op_thread *tb = start_reader(busy.f, 8);
    assert_true(wait_in_syscall_on(busy.r, CIO_READ, 1, JOIN_MS));

    int fds[2];
    assert_int_equal(make_pipe(fds), 0);
    cio_file *w = cio_fdopen(fds[1]);
    assert_non_null(w);
    int cap = pipe_capacity(fds[1]);
    size_t n = (size_t)(cap > 0 ? cap : 65536) + 4096;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    fill_pattern(buf, n, 0);
    for (int round = 0; round < 2; round++) {
        bool cancel = round == 1;
        cio_time_t d = cancel ? CIO_NO_DEADLINE : cio_after_ms(scaled_ms(100));
        assert_int_equal(cio_set_write_deadline(w, d), 0);
        unsigned before = atomic_load(&starts_on[fds[1]]);
        struct op_thread *tw = start_writer(w, buf, n);
        wait_handed_over(tw, fds[1], before);
        if (cancel)
            assert_int_equal(cio_cancel(w, CIO_WRITE), 0);
        assert_true(op_join(tw, JOIN_MS));
        size_t in_pipe = pipe_content(fds[0]);
        if (in_pipe > 0 && tw->result != (ssize_t)in_pipe)
            fail_msg("%s: cio_write returned %zd (%s) but %zu bytes went out",
                     cancel ? "cancelled" : "timed out", tw->result,
                     tw->result < 0 ? strerror(tw->err) : "-", in_pipe);
        if (in_pipe == 0) { /* no fast path here */
            assert_int_equal(tw->result, -1);
            assert_int_equal(tw->err, cancel ? ECANCELED : ETIMEDOUT);
        }
        op_free(tw);
        if (!cancel) {
            assert_int_equal(cio_write(w, buf, 1), -1);
            assert_int_equal(errno, ETIMEDOUT);
        }
    }
    free(buf);
    write_str(busy.w, "z");
    assert_read(tb, "z");
    cio_set_trace(NULL, NULL);
    assert_int_equal(cio_close(w), 0);
    close(fds[0]);
    close_pipe_file(&busy);
}

/* ---- allocation fails ------------------------------------------------------------ */

/* Each allocation cio_fdopen makes, failing in turn: NULL with ENOMEM, the
 * fd still open, no block and no fd more or less; past the last one it
 * succeeds and the file works. */
static long no_op(void *arg)
{
    (void)arg;
    return 0;
}

static void an_allocation_failure_in_fdopen_gives_ENOMEM_and_leaves_the_fd_open(void **state)
{
    (void)state;
    assert_int_equal(cio_init(&on_workers), 0);
    /* An idle worker now, before the count: where the system has no try
     * for a pipe (the POSIX-only build) the read below runs on a worker,
     * which must not count as a block the file left behind. */
    assert_int_equal(cio_call(no_op, NULL, CIO_NO_DEADLINE), 0);
    assert_true(wait_until(all_workers_idle, NULL, scaled_ms(5000)));
    int fds[2];
    assert_int_equal(make_pipe(fds), 0);
    long live0 = atomic_load(&live_blocks);
    int nfds = fd_count();
    cio_file *f = NULL;
    int k;
    for (k = 1; k < 50; k++) {
        fail_allocation(k);
        f = cio_fdopen(fds[0]);
        int err = errno;
        if (disarm() == 0)
            break;
        assert_null(f);
        assert_int_equal(err, ENOMEM);
        assert_true(fd_is_open(fds[0]));
        assert_int_equal(fd_count(), nfds);
        assert_int_equal(atomic_load(&live_blocks), live0);
    }
    assert_true(k > 1); /* at least one allocation was made to fail */
    assert_non_null(f);
    write_str(fds[1], "ok");
    char buf[4];
    assert_int_equal(cio_read(f, buf, sizeof buf), 2);
    assert_int_equal(cio_close(f), 0);
    assert_false(fd_is_open(fds[0]));
    close(fds[1]);
    assert_int_equal(atomic_load(&live_blocks), live0);
}

static int max_files(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return 1000;
    return rl.rlim_cur > 1100 ? 1000 : (int)rl.rlim_cur - 100;
}

/* A read on f that blocks: it has no deadline.  Waits past `past` (a
 * deadline that must not be in force), then cancels it. */
static void assert_no_read_deadline(cio_file *f, int fd, cio_time_t past)
{
    struct op_thread *t = start_reader(f, 8);
    assert_true(wait_in_syscall_on(fd, CIO_READ, 1, JOIN_MS));
    wait_for_time(past + scaled_ms(100) * NS_PER_MS);
    assert_false(op_is_done(t));
    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    assert_fails(t, ECANCELED, JOIN_MS);
}

/* The timer heap has a slot for every armed deadline and grows by doubling
 * when full.  Arming deadlines on file after file with every allocation
 * failing, the one that must grow the heap fails with ENOMEM and changes
 * nothing: that file still has no deadline; one whose deadline is in the
 * past keeps it (its read fails ETIMEDOUT at once); cio_set_deadline,
 * whose read half fits and write half does not, undoes the read half.
 * Then the heap grows as usual and the deadline works. */
static void an_allocation_failure_arming_a_deadline_gives_ENOMEM_and_keeps_the_old_one(void **state)
{
    (void)state;
    assert_int_equal(cio_init(&on_workers), 0);
    int fds[2];
    assert_int_equal(make_pipe(fds), 0);
    int limit = max_files();
    cio_file **files = calloc((size_t)limit, sizeof *files);
    int *fd = calloc((size_t)limit, sizeof *fd);
    assert_non_null(files);
    assert_non_null(fd);
    int n = 0, err = 0;
    cio_time_t tried = 0;
    for (;;) {
        assert_true(n < limit);
        fd[n] = dup(fds[0]);
        assert_true(fd[n] >= 0);
        files[n] = cio_fdopen(fd[n]);
        assert_non_null(files[n]);
        tried = cio_after_ms(50);
        fail_allocation(-1);
        int r = cio_set_read_deadline(files[n], tried);
        err = errno;
        long failures = disarm();
        if (r != 0) {
            assert_true(failures > 0);
            break;
        }
        assert_int_equal(failures, 0);
        assert_int_equal(cio_set_read_deadline(files[n], cio_after_ms(600000)), 0);
        n++;
    }
    assert_int_equal(err, ENOMEM);
    assert_int_equal(timers(), (unsigned)n); /* the heap is full */
    cio_file *k = files[n];
    int kfd = fd[n];
    n++;
    assert_no_read_deadline(k, kfd, tried);

    assert_int_equal(cio_set_read_deadline(k, cio_now() - 1), 0); /* past: no slot */
    fail_allocation(-1);
    assert_int_equal(cio_set_read_deadline(k, cio_after_ms(600000)), -1);
    err = errno;
    disarm();
    assert_int_equal(err, ENOMEM);
    char c;
    cio_time_t t0 = cio_now();
    assert_int_equal(cio_read(k, &c, 1), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(elapsed_ms(t0, cio_now()) < (double)scaled_ms(AT_ONCE_MS));

    assert_int_equal(cio_set_read_deadline(files[0], CIO_NO_DEADLINE), 0); /* one slot */
    assert_int_equal(cio_set_deadline(k, CIO_NO_DEADLINE), 0);
    unsigned armed = timers();
    tried = cio_after_ms(50);
    fail_allocation(-1);
    assert_int_equal(cio_set_deadline(k, tried), -1);
    err = errno;
    disarm();
    assert_int_equal(err, ENOMEM);
    assert_int_equal(timers(), armed); /* the read half was undone */
    assert_no_read_deadline(k, kfd, tried);

    cio_time_t d = cio_after_ms(20);
    assert_int_equal(cio_set_deadline(k, d), 0);
    assert_int_equal(timers(), armed + 2);
    assert_int_equal(cio_read(k, &c, 1), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(cio_now() >= d);
    for (int i = 0; i < n; i++)
        assert_int_equal(cio_close(files[i]), 0);
    free(files);
    free(fd);
    close(fds[0]);
    close(fds[1]);
}

/* From a cold start (no library thread), a read with a deadline makes the
 * timer thread and a worker, allocating on the way.  Each of those
 * allocations and thread creations, failing in turn: the call that met it
 * fails with ENOMEM or EAGAIN, and once the library is shut down again
 * no thread and no block is left.  Past the last one, the read times out
 * as it should. */
static void every_failure_on_a_cold_start_is_reported_and_leaks_nothing(void **state)
{
    (void)state;
    struct pipe_file p;
    if (!open_fifo_file(&p)) { /* the read must need a worker */
        close(p.w);
        skip();
    }
    slow_failure_ms = 0; /* whatever a failed test before left */
    cio_shutdown();
    int threads0 = thread_count();                                         /* ours alone */
    assert_int_equal(cio_set_read_deadline(p.f, cio_after_ms(600000)), 0); /* heap grown */
    assert_int_equal(cio_set_read_deadline(p.f, CIO_NO_DEADLINE), 0);
    int points = 0;
    for (int kind = 0; kind < 2; kind++) {
        int k;
        for (k = 1; k < 50; k++) {
            cio_shutdown();
            long live0 = atomic_load(&live_blocks);
            if (kind == 0)
                fail_allocation(k);
            else
                fail_thread_creation(k);
            /* far enough that a slow machine (ThreadSanitizer) cannot pass
             * it before the read asks for its worker: then nothing would
             * be tried, and the sweep would end early */
            cio_time_t d = cio_after_ms(scaled_ms(200));
            int r1 = cio_set_read_deadline(p.f, d), e1 = errno;
            char c;
            ssize_t r2 = r1 == 0 ? cio_read(p.f, &c, 1) : 0;
            int e2 = errno;
            long failures = disarm();
            if (failures == 0) {
                assert_int_equal(r1, 0);
                assert_int_equal(r2, -1);
                assert_int_equal(e2, ETIMEDOUT);
                assert_true(cio_now() >= d);
                break;
            }
            points++;
            int e = r1 != 0 ? e1 : e2;
            if (r1 == 0)
                assert_int_equal(r2, -1);
            if (e != ENOMEM && e != EAGAIN)
                fail_msg("%s %d failing: errno %s", kind ? "thread" : "allocation", k, strerror(e));
            if (r1 != 0)
                assert_int_equal(timers(), 0); /* the deadline was not armed */
            assert_int_equal(cio_set_read_deadline(p.f, CIO_NO_DEADLINE), 0);
            cio_shutdown();
            assert_int_equal(workers(), 0);
            assert_threads_back_to(threads0);
            assert_int_equal(atomic_load(&live_blocks), live0);
        }
        assert_true(k > 1);
    }
    printf("cold start: %d failure points\n", points);
    cio_set_read_deadline(p.f, CIO_NO_DEADLINE);
    close_pipe_file(&p);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)

static void *nothing(void *arg)
{
    return arg;
}

int main(void)
{
    block_cancel_signal_in_this_thread();
    /* A sanitizer may start a thread of its own with the first thread made:
     * let that happen before any test takes its baseline of threads. */
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) == 0)
        pthread_join(t, NULL);
    const struct CMUnitTest tests[] = {
        T(a_failed_pthread_create_fails_the_op_with_EAGAIN_and_the_file_works_after),
        T(a_deadline_that_passed_while_no_worker_could_be_made_is_ETIMEDOUT),
        T(a_write_that_cannot_get_a_worker_returns_the_bytes_already_written),
        T(with_the_thread_cap_reached_waiting_ops_honour_deadlines_cancels_and_close),
        T(a_write_cut_while_waiting_for_a_worker_returns_the_bytes_already_written),
        T(an_op_queued_behind_a_failed_thread_start_is_not_stranded),
        T(an_op_whose_own_start_fails_goes_to_a_worker_gone_idle),
        T(the_timer_thread_runs_on_stack_size_not_rlimit_stack),
        T(an_allocation_failure_in_fdopen_gives_ENOMEM_and_leaves_the_fd_open),
        T(an_allocation_failure_arming_a_deadline_gives_ENOMEM_and_keeps_the_old_one),
        T(every_failure_on_a_cold_start_is_reported_and_leaks_nothing),
        T(a_new_worker_without_its_timer_still_honours_deadlines_and_cancels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
