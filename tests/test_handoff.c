/*
 * Description: an op handed to a worker that has not yet taken it (white
 * box: the pool's test seam, cio__pool_pause_hook, so it needs the static
 * library).  On a loaded machine a woken worker can wait long for a CPU and
 * for the pool's lock; a deadline moved into the past, a cancel or a close
 * must not wait with it (rules 3, 6, 7).  The seam holds the worker, on
 * demand, between being handed the op and taking it: the op must end while
 * the worker is still held, the worker must come back to the pool unharmed,
 * and no op may be lost or run twice.  A second seam holds the start of a
 * new worker's thread: another caller's deadline must hold meanwhile.  A
 * thread of the test holding the timer heap's lock stands for a holder of
 * it preempted on a loaded machine.  A third seam holds the timer thread
 * between taking due timers out of the heap and firing them, for a fork
 * that comes in between.
 */
#include "support.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* The library's seams (src/internal.h); NULL in normal use. */
extern void (*cio__pool_pause_hook)(void);
extern void (*cio__pool_spawn_hook)(void);
extern void (*cio__pool_wake_hook)(void);
extern void (*cio__timer_fire_hook)(void);

/* Every op here is a worker's (cio_options.waits): the hand-off to one is
 * what these tests hold and stop. */
static const cio_options on_workers = {.waits = CIO_WAIT_WORKER};
extern void (*cio__park_hook)(void);
/* The heap's lock and the pool's, as the library takes them around fork
 * (src/internal.h). */
void cio__timer_lock_for_fork(void);
void cio__timer_unlock_after_fork(int child);
void cio__pool_lock_for_fork(void);
void cio__pool_unlock_after_fork(int child);
/* A fork's seam, called with every lock held and the gate closed, and the
 * count of threads waiting at the gate (src/internal.h). */
extern void (*cio__fork_hook)(void);
extern atomic_uint cio__fork_gate_waiting;

#define JOIN_MS 5000
/* How long the seam holds a worker at most: far beyond any bound below. */
#define HOLD_MS 3000
/* The op must end this soon after its reason, while the worker is held. */
#define END_MS 1000

/* A gate: holds the next thread that reaches gate_hold once it is armed,
 * until released or for HOLD_MS.  Two: `gate` for the library's seams (a
 * worker handed an op, a worker's start, a wake-up's count, the timer
 * thread's fire) and for the timer heap's holder, `pool_gate` for the
 * pool's holder, so that both may hold at once. */
struct gate {
    pthread_mutex_t mu;
    pthread_cond_t cv; /* on CLOCK_MONOTONIC, made in main */
    int armed, held, release;
};
static struct gate gate = {.mu = PTHREAD_MUTEX_INITIALIZER};
static struct gate pool_gate = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void gate_hold(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    if (g->armed) {
        g->armed = 0;
        g->held = 1;
        pthread_cond_broadcast(&g->cv);
        cio_time_t until = cio_now() + scaled_ms(HOLD_MS) * NS_PER_MS;
        while (!g->release && cio_now() < until) {
            struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
            pthread_cond_timedwait(&g->cv, &g->mu, &ts);
        }
        g->held = 0;
        g->release = 0;
    }
    pthread_mutex_unlock(&g->mu);
}

/* The library's seams take no argument. */
static void hold_worker(void)
{
    gate_hold(&gate);
}

/* A wait_until predicate: arg is the gate. */
static bool gate_held(void *arg)
{
    struct gate *g = arg;
    pthread_mutex_lock(&g->mu);
    bool held = g->held;
    pthread_mutex_unlock(&g->mu);
    return held;
}

static void arm_gate(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->armed = 1;
    g->release = 0;
    pthread_mutex_unlock(&g->mu);
}

static void release_gate(struct gate *g)
{
    pthread_mutex_lock(&g->mu);
    g->armed = 0;
    g->release = 1;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

static bool all_idle(void *arg)
{
    unsigned want = *(unsigned *)arg;
    cio_stats s;
    cio_get_stats(&s);
    return s.threads >= want && s.threads_idle == s.threads;
}

/* A read that blocks on a worker, then gets a byte; the worker goes idle. */
static void read_through_a_worker(void)
{
    unsigned one = 1;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    struct op_thread *r = start_reader(f, 16);
    assert_non_null(r);
    assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_true(op_join(r, JOIN_MS));
    assert_int_equal(r->result, 1);
    assert_int_equal(r->buf[0], 'x');
    op_free(r);
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
    assert_true(wait_until(all_idle, &one, JOIN_MS));
}

enum reason { BY_DEADLINE, BY_CANCEL, BY_CLOSE };

static void stop_read(cio_file *f, enum reason why)
{
    if (why == BY_DEADLINE)
        assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
    else if (why == BY_CANCEL)
        assert_int_equal(cio_cancel(f, CIO_READ), 0);
    else
        assert_int_equal(cio_close(f), 0); /* returns once the reader left */
}

/* A read handed to a held worker; stopped by why: it must end at once,
 * with its reason, while the worker is still held. */
static void stop_a_read_a_held_worker_was_handed(enum reason why)
{
    static const int expect[] = {ETIMEDOUT, ECANCELED, EBADF};
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    arm_gate(&gate);
    struct op_thread *r = start_reader(f, 16);
    assert_non_null(r);
    bool held = wait_until(gate_held, &gate, JOIN_MS);
    cio_time_t t0 = cio_now();
    if (held)
        stop_read(f, why);
    bool ended = wait_until(op_is_done, r, END_MS);
    double ms = elapsed_ms(t0, cio_now());
    bool still_held = gate_held(&gate);
    release_gate(&gate);
    assert_true(op_join(r, JOIN_MS + HOLD_MS));
    assert_true(held);
    if (!ended || !still_held)
        fail_msg("the read ended %s (%.1f ms after its reason), not while the worker it was "
                 "handed to was held",
                 ended ? "after the worker was let go" : "only once the worker took it", ms);
    assert_int_equal(r->result, -1);
    assert_int_equal(r->err, expect[why]);
    op_free(r);
    if (why != BY_CLOSE)
        assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

/* Rules 3, 6, 7: a deadline moved into the past, a cancel and a close each
 * end a read whose worker was woken but has not yet taken it, without
 * waiting for that worker; the worker then goes back to the pool. */
static void a_stopped_op_does_not_wait_for_the_worker_it_was_handed_to(void **state)
{
    cio__pool_pause_hook = hold_worker; /* before any worker exists */
    assert_int_equal(cio_init(&on_workers), 0);
    read_through_a_worker(); /* one worker, idle */
    cio_stats s0;
    cio_get_stats(&s0);
    for (enum reason why = BY_DEADLINE; why <= BY_CLOSE; why++) {
        stop_a_read_a_held_worker_was_handed(why);
        read_through_a_worker(); /* the held worker came back and works */
    }
    cio_stats s1;
    cio_get_stats(&s1);
    assert_int_equal(s1.ops_started - s0.ops_started, 6);
    assert_int_equal(s1.threads, s1.threads_idle);
    assert_int_equal(s1.ops_done - s0.ops_done, 6);
    assert_int_equal(s1.timeouts - s0.timeouts, 1);
    assert_int_equal(s1.cancels - s0.cancels, 1);
    assert_int_equal(cio_shutdown(), 0); /* joins every worker: the hook is ours again */
    cio__pool_pause_hook = NULL;
    assert_no_leaks(state);
}

/* Steps 3p and 4p: a read whose worker has parked (published that it
 * waits for the fd) but whose wait has not begun yet, held there by the
 * seam.  A move into the past, a cancel and a close each release the
 * caller at once, with the worker still held; the worker, let go, must
 * find the one signal the stop sent it pending (the cancel signal is
 * blocked while it parks, and ppoll unblocks it for the wait alone), leave
 * at once without reading, and go back to the pool.  Had the signal run its
 * handler before the wait, the worker would wait in ppoll for data that
 * never comes, and the pool would never see it idle.  The byte written
 * after each stop goes whole to the next read. */
static void *close_in_thread(void *f)
{
    return (void *)(intptr_t)cio_close(f);
}

/* A connected pair of sockets: the library can try them without blocking
 * wherever it can try anything (MSG_DONTWAIT, where pipes have no try:
 * musl before 1.2.5, the BSDs), so their reads and writes park. */
static void park_pair(int sv[2])
{
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* Fill sv's buffers until a write would block; the bytes written. */
static size_t fill_socket(int fd)
{
    static const char chunk[4096];
    size_t total = 0;
    for (;;) {
        ssize_t r = send(fd, chunk, sizeof chunk, MSG_DONTWAIT);
        if (r <= 0)
            return total;
        total += (size_t)r;
    }
}

/* Op t on f (direction which) is parked, its worker held at the gate
 * between its park and its wait (armed before t started): stop it by why.
 * It must end with the reason while the worker is still held; a close,
 * from a thread of its own, returns once the worker is out of its wait.
 * Then the worker, let go, must come back to the pool on the one signal it
 * was sent.  Frees t. */
static void stop_a_held_parked_op(cio_file *f, int which, enum reason why, struct op_thread *t)
{
    static const int expect[] = {ETIMEDOUT, ECANCELED, EBADF};
    const char *what = which == CIO_READ ? "read" : "write";
    unsigned one = 1;
    bool held = wait_until(gate_held, &gate, JOIN_MS);
    cio_time_t t0 = cio_now();
    pthread_t closer;
    if (held && why == BY_DEADLINE)
        assert_int_equal(which == CIO_READ ? cio_set_read_deadline(f, cio_now() - 1)
                                           : cio_set_write_deadline(f, cio_now() - 1),
                         0);
    else if (held && why == BY_CANCEL)
        assert_int_equal(cio_cancel(f, which), 0);
    else if (held)
        assert_int_equal(pthread_create(&closer, NULL, close_in_thread, f), 0);
    bool ended = wait_until(op_is_done, t, END_MS);
    double ms = elapsed_ms(t0, cio_now());
    bool still_held = gate_held(&gate);
    release_gate(&gate);
    assert_true(op_join(t, JOIN_MS + HOLD_MS));
    assert_true(held);
    if (!ended || !still_held)
        fail_msg("a parked %s ended %s (%.1f ms after its reason), not while its worker was "
                 "held before its wait",
                 what, ended ? "after the worker was let go" : "only once the worker left", ms);
    if (why == BY_CLOSE) {
        void *closed;
        assert_int_equal(pthread_join(closer, &closed), 0);
        assert_int_equal((intptr_t)closed, 0);
    }
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, expect[why]);
    op_free(t);
    if (!wait_until(all_idle, &one, END_MS))
        fail_msg("the released worker did not come back to the pool: its signal was lost");
}

static void a_released_read_frees_its_worker_without_a_second_signal(void **state)
{
#ifndef CIO_TEST_PARK
    skip(); /* no ppoll: reads never park (park_none.c) */
#endif
    cio__park_hook = hold_worker;
    assert_int_equal(cio_init(&on_workers), 0);
    read_through_a_worker(); /* parks, gets its byte: the gate is not armed */
    for (enum reason why = BY_DEADLINE; why <= BY_CLOSE; why++) {
        cio_stats s0, s1;
        cio_get_stats(&s0);
        int p[2];
        park_pair(p);
        cio_file *f = cio_fdopen(p[0]);
        assert_non_null(f);
        arm_gate(&gate);
        struct op_thread *r = start_reader(f, 16);
        assert_non_null(r);
        stop_a_held_parked_op(f, CIO_READ, why, r);
        cio_get_stats(&s1);
        assert_int_equal(s1.signals_sent - s0.signals_sent, 1); /* one, never repeated */
        if (why != BY_CLOSE) {
            char c;
            assert_int_equal(write(p[1], "z", 1), 1);
            assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
            assert_int_equal(cio_read(f, &c, 1), 1);
            assert_int_equal(c, 'z');
            assert_int_equal(cio_close(f), 0);
        }
        close(p[1]);
        read_through_a_worker(); /* the released worker works */
    }
    assert_int_equal(cio_shutdown(), 0); /* joins every worker: the hook is ours again */
    cio__park_hook = NULL;
    assert_no_leaks(state);
}

/* The same for a write (step 3p waits for room): a write of 8 bytes to a
 * full socket, its worker held between its park and its wait, is released by
 * each stop with nothing written (-1 and the reason); the worker, let go,
 * leaves on its one signal without writing; the socket holds exactly what
 * it held. */
static void a_released_write_frees_its_worker_and_writes_nothing(void **state)
{
#ifndef CIO_TEST_PARK
    skip(); /* no ppoll: writes never park (park_none.c) */
#endif
    cio__park_hook = hold_worker;
    assert_int_equal(cio_init(&on_workers), 0);
    read_through_a_worker();
    for (enum reason why = BY_DEADLINE; why <= BY_CLOSE; why++) {
        int p[2];
        park_pair(p);
        size_t cap = fill_socket(p[1]);
        assert_true(cap > 0);
        cio_file *f = cio_fdopen(p[1]);
        assert_non_null(f);
        arm_gate(&gate);
        struct op_thread *wr = start_writer(f, "12345678", 8);
        assert_non_null(wr);
        stop_a_held_parked_op(f, CIO_WRITE, why, wr);
        assert_int_equal(drain_now(p[0]), cap); /* not a byte more */
        if (why != BY_CLOSE)
            assert_int_equal(cio_close(f), 0);
        close(p[0]);
        read_through_a_worker();
    }
    assert_int_equal(cio_shutdown(), 0);
    cio__park_hook = NULL;
    assert_no_leaks(state);
}

/* Rule 2 while another caller's worker is being started.  Creating a thread
 * maps a stack and can take milliseconds on a loaded machine; done under
 * the pool's lock, it held up every other submit, and with it the file
 * lock each submitter holds, so a deadline or a move into the past on any
 * file waited for it (the chaos probe in docs/performance.md, fifth round:
 * such waits chained into 100-280 ms).  The seam holds one start for up to
 * HOLD_MS: a read with a 50 ms deadline on another file must time out while
 * that start is still held, and the held start must then run its read. */
static void a_deadline_holds_while_another_worker_is_being_started(void **state)
{
    cio__pool_spawn_hook = hold_worker; /* before any worker exists */
    assert_int_equal(cio_init(&on_workers), 0);
    int a[2], b[2];
    assert_int_equal(make_pipe(a), 0);
    assert_int_equal(make_pipe(b), 0);
    cio_file *fa = cio_fdopen(a[0]), *fb = cio_fdopen(b[0]);
    assert_non_null(fa);
    assert_non_null(fb);
    arm_gate(&gate);
    struct op_thread *ra = start_reader(fa, 16); /* its worker's start is held */
    assert_non_null(ra);
    bool held = wait_until(gate_held, &gate, JOIN_MS);
    assert_int_equal(cio_set_read_deadline(fb, cio_after_ms(50)), 0);
    cio_time_t t0 = cio_now();
    struct op_thread *rb = start_reader(fb, 16);
    assert_non_null(rb);
    bool ended = wait_until(op_is_done, rb, END_MS);
    double ms = elapsed_ms(t0, cio_now());
    bool still_held = gate_held(&gate);
    release_gate(&gate);
    assert_true(op_join(rb, JOIN_MS + HOLD_MS));
    assert_true(held);
    if (!ended || !still_held)
        fail_msg("a read with a 50 ms deadline ended %s (%.1f ms), not while another "
                 "worker's start was held",
                 ended ? "after the start was let go" : "only once the start was let go", ms);
    assert_int_equal(rb->result, -1);
    assert_int_equal(rb->err, ETIMEDOUT);
    /* The held start goes on: its read blocks on its worker, then reads. */
    assert_true(wait_in_syscall_on(a[0], CIO_READ, 1, JOIN_MS));
    assert_int_equal(write(a[1], "y", 1), 1);
    assert_true(op_join(ra, JOIN_MS));
    assert_int_equal(ra->result, 1);
    assert_int_equal(ra->buf[0], 'y');
    op_free(ra);
    op_free(rb);
    assert_int_equal(cio_close(fa), 0);
    assert_int_equal(cio_close(fb), 0);
    close(a[1]);
    close(b[1]);
    assert_int_equal(cio_shutdown(), 0);
    cio__pool_spawn_hook = NULL;
    assert_no_leaks(state);
}

/* The timer heap's lock, held at the gate (armed by the caller). */
static void *hold_heap_lock(void *arg)
{
    (void)arg;
    cio__timer_lock_for_fork();
    hold_worker();
    cio__timer_unlock_after_fork(0);
    return NULL;
}

static void *close_file(void *f)
{
    return (void *)(intptr_t)cio_close(f);
}

/* Rules 3 and 7 while the timer heap's lock is taken.  A deadline moved
 * into the past used to take its timer out of the heap first, under the
 * file's lock, and so did a close: both waited for whoever held the heap's
 * lock (every thread that arms a deadline takes it; a holder preempted on a
 * loaded machine made the stop, and every op on that file, wait with it).
 * A timer with nothing left to do is now left in the heap when the lock is
 * taken (it fires later and finds nothing to do), and a close takes its
 * timers out only once its ops have left.  The read must end while the
 * lock is still held; after a move, the file must work as before. */
static void stop_while_the_timer_heap_is_locked(enum reason why)
{
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(60 * 1000)), 0); /* in the heap */
    struct op_thread *r = start_reader(f, 16);
    assert_non_null(r);
    assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
    arm_gate(&gate);
    pthread_t holder, closer;
    assert_int_equal(pthread_create(&holder, NULL, hold_heap_lock, NULL), 0);
    bool held = wait_until(gate_held, &gate, JOIN_MS);
    cio_time_t t0 = cio_now();
    if (held && why == BY_DEADLINE)
        assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
    else if (held) /* cio_close returns once the timers are out: not yet */
        assert_int_equal(pthread_create(&closer, NULL, close_file, f), 0);
    bool ended = wait_until(op_is_done, r, END_MS);
    double ms = elapsed_ms(t0, cio_now());
    bool still_held = gate_held(&gate);
    release_gate(&gate);
    assert_int_equal(pthread_join(holder, NULL), 0);
    assert_true(op_join(r, JOIN_MS + HOLD_MS));
    assert_true(held);
    if (why == BY_CLOSE) {
        void *closed;
        assert_int_equal(pthread_join(closer, &closed), 0);
        assert_int_equal((intptr_t)closed, 0);
    }
    if (!ended || !still_held)
        fail_msg(
            "a read stopped by %s ended %s (%.1f ms), not while the timer heap's lock was held",
            why == BY_DEADLINE ? "a move into the past" : "a close",
            ended ? "after the lock was let go" : "only once the lock was let go", ms);
    assert_int_equal(r->result, -1);
    assert_int_equal(r->err, why == BY_DEADLINE ? ETIMEDOUT : EBADF);
    op_free(r);
    if (why == BY_CLOSE) {
        close(p[1]);
        return;
    }
    /* The timer left behind changes nothing: a new deadline times out on
     * time, and data is read whole. */
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(30)), 0);
    char c[4];
    cio_time_t t1 = cio_now();
    assert_int_equal(cio_read(f, c, sizeof c), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(elapsed_ms(t1, cio_now()) >= 29.0);
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(write(p[1], "abc", 3), 3);
    assert_int_equal(cio_read(f, c, sizeof c), 3);
    assert_memory_equal(c, "abc", 3);
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

static void a_stop_does_not_wait_for_the_timer_heap(void **state)
{
    (void)state;
    stop_while_the_timer_heap_is_locked(BY_DEADLINE);
    stop_while_the_timer_heap_is_locked(BY_CLOSE);
}

/* ---- the pool's lock held, as by a thread preempted while it holds it ---- */

static pthread_t pool_holder;

/* The pool's lock, held at pool_gate (armed by hold_the_pool). */
static void *hold_pool_lock(void *arg)
{
    (void)arg;
    block_all_signals_in_this_thread();
    cio__pool_lock_for_fork();
    gate_hold(&pool_gate);
    cio__pool_unlock_after_fork(0);
    return NULL;
}

static void hold_the_pool(void)
{
    arm_gate(&pool_gate);
    assert_int_equal(pthread_create(&pool_holder, NULL, hold_pool_lock, NULL), 0);
    assert_true(wait_until(gate_held, &pool_gate, JOIN_MS));
}

static void let_the_pool_go(void)
{
    release_gate(&pool_gate);
    assert_int_equal(pthread_join(pool_holder, NULL), 0);
}

/* A deadline moved into the past, or a cancel, made on a thread of its own
 * so that the test sees whether it returns. */
struct stopper {
    cio_file *f;
    enum reason why;
    pthread_t thread;
    atomic_int done;
    int rc;
};

static void *stopper_main(void *arg)
{
    struct stopper *s = arg;
    block_cancel_signal_in_this_thread();
    s->rc = s->why == BY_DEADLINE ? cio_set_read_deadline(s->f, cio_now() - 1)
                                  : cio_cancel(s->f, CIO_READ);
    atomic_store(&s->done, 1);
    return NULL;
}

static bool stopper_done(void *arg)
{
    return atomic_load(&((struct stopper *)arg)->done) != 0;
}

/* Stop the read on f (its op in the pool's hands, pool.mu held by the
 * test): the stop must return while the lock is still held; then, once
 * the lock is let go, the read must end with its reason, and, if
 * worker_held, while the worker it was handed to is still held. */
static void stop_while_the_pool_is_locked(cio_file *f, struct op_thread *r, enum reason why,
                                          bool worker_held)
{
    struct stopper s = {.f = f, .why = why};
    cio_time_t t0 = cio_now();
    assert_int_equal(pthread_create(&s.thread, NULL, stopper_main, &s), 0);
    bool returned = wait_until(stopper_done, &s, END_MS);
    double ms = elapsed_ms(t0, cio_now());
    bool still_held = gate_held(&pool_gate);
    let_the_pool_go();
    assert_int_equal(pthread_join(s.thread, NULL), 0);
    if (!returned || !still_held)
        fail_msg("%s returned %s (%.1f ms), not while the pool's lock was held",
                 why == BY_DEADLINE ? "a move into the past" : "a cancel",
                 returned ? "after the lock was let go" : "only once the lock was let go", ms);
    assert_int_equal(s.rc, 0);
    bool ended = wait_until(op_is_done, r, END_MS);
    bool worker_still_held = gate_held(&gate);
    release_gate(&gate);
    assert_true(op_join(r, JOIN_MS + HOLD_MS));
    assert_true(ended);
    if (worker_held && !worker_still_held)
        fail_msg("the read ended only once the worker it was handed to was let go");
    assert_int_equal(r->result, -1);
    assert_int_equal(r->err, why == BY_DEADLINE ? ETIMEDOUT : ECANCELED);
}

/* Rules 3 and 6 while the pool's lock is taken (every op that needs a worker
 * takes it twice, so under saturation a holder preempted keeps a queue of
 * threads behind it for tens of ms).  Two cases, each with a move into the
 * past and with a cancel:
 *   - a read still inside its submit, waiting for pool.mu: it used to hold
 *     its file's lock there, and the stop waited for both;
 *   - a read handed to a worker that has not taken it (the gate holds the
 *     worker): the stop used to take it back under the file's lock, and
 *     waited for pool.mu; now it leaves that to the read's caller.
 * The stop must return while pool.mu is held; the read must end with its
 * reason once it is let go (in the second case, with the worker still
 * held); the worker must come back to the pool, and nothing be lost. */
static void a_stop_does_not_wait_for_the_pool_lock(void **state)
{
    cio__pool_pause_hook = hold_worker; /* before any worker exists */
    assert_int_equal(cio_init(&on_workers), 0);
    read_through_a_worker(); /* one worker, idle */
    cio_stats s0;
    cio_get_stats(&s0);
    for (int handed = 0; handed <= 1; handed++) {
        for (enum reason why = BY_DEADLINE; why <= BY_CANCEL; why++) {
            int p[2];
            assert_int_equal(make_pipe(p), 0);
            cio_file *f = cio_fdopen(p[0]);
            assert_non_null(f);
            uint64_t starts = op_starts();
            if (handed)
                arm_gate(&gate);
            else
                hold_the_pool();
            struct op_thread *r = start_reader(f, 16);
            assert_non_null(r);
            assert_true(wait_op_starts(starts + 1, JOIN_MS));
            if (handed) { /* handed, held before it took the op: lock the pool */
                assert_true(wait_until(gate_held, &gate, JOIN_MS));
                hold_the_pool();
            } else { /* asleep in its submit, on pool.mu */
                assert_true(wait_op_sleeping(r, JOIN_MS));
            }
            stop_while_the_pool_is_locked(f, r, why, handed);
            op_free(r);
            assert_int_equal(cio_close(f), 0);
            close(p[1]);
            read_through_a_worker(); /* the worker came back and works */
        }
    }
    cio_stats s1;
    cio_get_stats(&s1);
    assert_int_equal(s1.ops_started - s0.ops_started, 8);
    assert_int_equal(s1.ops_done - s0.ops_done, 8);
    assert_int_equal(s1.timeouts - s0.timeouts, 2);
    assert_int_equal(s1.cancels - s0.cancels, 2);
    assert_int_equal(s1.threads, s1.threads_idle);
    assert_int_equal(cio_shutdown(), 0);
    cio__pool_pause_hook = NULL;
    assert_no_leaks(state);
}

/* ---- the same windows, at random ---- */

#define RACE_PIPES 6
#define RACE_CAP 3 /* workers: fewer than the readers, so ops queue too */

struct race_pipe {
    int p[2];
    cio_file *f;
    atomic_uint written; /* bytes written to p[1], each the next of a count */
    unsigned got;        /* bytes its reader took, checked in order */
    unsigned stops;      /* reads that ended with a reason */
    int bad;             /* a wrong byte, errno or result */
    atomic_int done;     /* its reader has left */
    pthread_t thread;
};

static struct {
    struct race_pipe pipe[RACE_PIPES];
    atomic_int stop;
} race;

static void *race_reader(void *arg)
{
    struct race_pipe *rp = arg;
    block_cancel_signal_in_this_thread();
    while (!atomic_load(&race.stop) || rp->got < atomic_load(&rp->written)) {
        unsigned char c[4];
        ssize_t n = cio_read(rp->f, c, sizeof c);
        if (n > 0) {
            for (ssize_t i = 0; i < n; i++)
                if (c[i] != (unsigned char)(rp->got++))
                    rp->bad = 1;
        } else if (n < 0 && (errno == ETIMEDOUT || errno == ECANCELED)) {
            rp->stops++;
            if (errno == ETIMEDOUT) /* the next read waits until stopped again */
                cio_set_read_deadline(rp->f, CIO_NO_DEADLINE);
        } else {
            rp->bad = 2;
            break;
        }
    }
    atomic_store(&rp->done, 1);
    return NULL;
}

/* Rules 3 and 6 at random against every window this file's tests open one
 * at a time: reads submitted while pool.mu is held for a few µs, handed to
 * workers or queued behind the cap, stopped by moves into the past and by
 * cancels while pool.mu is free or busy (so that the stop takes the op back
 * itself, or leaves it to its caller, or finds a worker has it).  Every byte
 * written must be read once, in order; every read that fails must fail with
 * a stop's reason; and the pool must end with every op done and every
 * worker idle. */
static void stops_race_submits_and_take_backs(void **state)
{
    cio_options o = {.max_threads = RACE_CAP, .waits = CIO_WAIT_WORKER};
    assert_int_equal(cio_init(&o), 0);
    memset(&race, 0, sizeof race);
    for (int i = 0; i < RACE_PIPES; i++) {
        struct race_pipe *rp = &race.pipe[i];
        assert_int_equal(make_pipe(rp->p), 0);
        rp->f = cio_fdopen(rp->p[0]);
        assert_non_null(rp->f);
        assert_int_equal(pthread_create(&rp->thread, NULL, race_reader, rp), 0);
    }
    struct rng r;
    rng_init(&r, test_seed("stops_race_submits_and_take_backs"));
    cio_time_t end = cio_now() + scaled_ms(1500) * NS_PER_MS;
    unsigned acts = 0;
    while (cio_now() < end) {
        struct race_pipe *rp = &race.pipe[rng_below(&r, RACE_PIPES)];
        switch (rng_below(&r, 5)) {
        case 0:
            assert_int_equal(cio_set_read_deadline(rp->f, cio_now() - 1), 0);
            break;
        case 1:
            assert_int_equal(cio_cancel(rp->f, CIO_READ), 0);
            break;
        case 2: { /* the next byte of its count, counted before it is in */
            unsigned char b = (unsigned char)atomic_fetch_add(&rp->written, 1);
            assert_int_equal(write(rp->p[1], &b, 1), 1);
            break;
        }
        case 3: /* a holder of pool.mu, briefly off its CPU */
            cio__pool_lock_for_fork();
            random_delay_us(&r, 200);
            cio__pool_unlock_after_fork(0);
            break;
        default:
            assert_int_equal(cio_set_read_deadline(rp->f, cio_now() + rng_below(&r, 300) * 1000),
                             0);
        }
        acts++;
        random_delay_us(&r, 300);
    }
    for (int i = 0; i < RACE_PIPES; i++) { /* no more stops: the rest is read */
        struct race_pipe *rp = &race.pipe[i];
        assert_int_equal(cio_set_read_deadline(rp->f, CIO_NO_DEADLINE), 0);
        unsigned char b = (unsigned char)atomic_fetch_add(&rp->written, 1);
        assert_int_equal(write(rp->p[1], &b, 1), 1); /* wakes a read in flight */
    }
    atomic_store(&race.stop, 1); /* after the last count: each reader reads up to it */
    unsigned stops = 0;
    for (int i = 0; i < RACE_PIPES; i++) {
        struct race_pipe *rp = &race.pipe[i];
        cio_time_t give_up = cio_now() + scaled_ms(JOIN_MS) * NS_PER_MS;
        while (!atomic_load(&rp->done) && cio_now() < give_up) {
            assert_int_equal(cio_cancel(rp->f, CIO_READ), 0); /* a read of nothing more */
            sleep_us(1000);
        }
        assert_true(atomic_load(&rp->done));
        assert_int_equal(pthread_join(rp->thread, NULL), 0);
        if (rp->bad)
            fail_msg("pipe %d: %s after %u bytes", i,
                     rp->bad == 1 ? "a byte lost, repeated or out of order"
                                  : "a read failed with no stop's reason",
                     rp->got);
        assert_int_equal(rp->got, atomic_load(&rp->written));
        stops += rp->stops;
        assert_int_equal(cio_close(rp->f), 0);
        close(rp->p[1]);
    }
    unsigned one = 1; /* a worker goes idle just after its caller returns */
    assert_true(wait_until(all_idle, &one, JOIN_MS));
    cio_stats s;
    cio_get_stats(&s);
    assert_int_equal(s.ops_started, s.ops_done);
    assert_true(s.threads <= RACE_CAP);
    assert_true(stops > 0);
    print_message("%u acts, %u reads stopped\n", acts, stops);
    assert_int_equal(cio_shutdown(), 0);
    assert_no_leaks(state);
}

/* ---- a wake-up owed to a worker at shutdown ---- */

static long return_at_once(void *arg)
{
    (void)arg;
    return 0;
}

static long wait_to_be_stopped(void *arg)
{
    (void)arg;
    for (int i = 0; i < 5000; i++) {
        if (cio_interrupted())
            return 1;
        sleep_us(1000);
    }
    return 0;
}

static void *call_on_the_idle_worker(void *arg)
{
    block_cancel_signal_in_this_thread();
    long r = cio_call(wait_to_be_stopped, NULL, 0);
    *(long *)arg = r < 0 && errno != ECANCELED ? -2 : r;
    return NULL;
}

static void *shut_down(void *arg)
{
    block_cancel_signal_in_this_thread();
    *(int *)arg = cio_shutdown();
    return NULL;
}

static bool op_threads_busy(void *arg)
{
    (void)arg;
    cio_stats s;
    cio_get_stats(&s);
    return s.threads == 1 && s.threads_idle == 0;
}

/* A submit wakes the idle worker it handed an op to after the pool's lock
 * is let go, and then counts the wake-up as paid.  If the submitter is
 * preempted between the two, the worker, woken, may run its op, be stopped
 * by cio_shutdown and exit; once joined, it is freed, and the submitter
 * then wrote into freed memory.  The seam holds the submitter there: the
 * shutdown must not return (the worker must wait for the count) until it
 * is let go, and then it must. */
static void a_worker_does_not_exit_while_a_wake_up_is_owed_to_it(void **state)
{
    cio__pool_wake_hook = hold_worker;
    assert_int_equal(cio_init(&on_workers), 0);
    assert_int_equal(cio_call(return_at_once, NULL, 0), 0); /* one worker, soon idle */
    unsigned one = 1;
    assert_true(wait_until(all_idle, &one, JOIN_MS));
    arm_gate(&gate);
    long called = 1;
    pthread_t caller, stopper;
    assert_int_equal(pthread_create(&caller, NULL, call_on_the_idle_worker, &called), 0);
    bool held = wait_until(gate_held, &gate, JOIN_MS); /* signalled, not counted */
    bool running = held && wait_until(op_threads_busy, NULL, JOIN_MS);
    int shut = 1;
    assert_int_equal(pthread_create(&stopper, NULL, shut_down, &shut), 0);
    sleep_us((unsigned)scaled_ms(100) * 1000); /* time enough to stop it and exit */
    bool returned_early = shut == 0;
    release_gate(&gate);
    assert_int_equal(pthread_join(stopper, NULL), 0);
    assert_int_equal(pthread_join(caller, NULL), 0);
    cio__pool_wake_hook = NULL;
    assert_true(held);
    assert_true(running);
    if (returned_early)
        fail_msg("cio_shutdown joined the worker while a wake-up was still owed to it");
    assert_int_equal(shut, 0);
    /* fn saw the shutdown's stop and answered, or the stop came first */
    assert_true(called == 1 || called == -1);
    assert_no_leaks(state);
}

static unsigned heap_timers(void)
{
    cio_stats s;
    cio_get_stats(&s);
    return s.timers;
}

/* Rule 13: a fork that comes while the timer thread has taken a file's
 * deadline out of the heap to fire it, and has not fired it yet (the seam
 * holds it there).  In the child that fire never comes; the file must not
 * go on believing its timer armed: its timer goes back into the heap
 * (one timer more than the parent's heap held without it), where the
 * deadlines set later move it. */
static void a_fork_while_a_deadline_is_being_fired_leaves_the_child_its_timer(void **state)
{
#if defined(CIO_TSAN)
    /* ThreadSanitizer ends a child whose parent had other threads running
     * with "thread leak" (exit 66), whatever the child does. */
    skip();
#endif
    cio__timer_fire_hook = hold_worker;
    assert_int_equal(cio_init(&on_workers), 0);
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    arm_gate(&gate);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(5)), 0);
    bool held = wait_until(gate_held, &gate, JOIN_MS); /* taken out, not fired */
    unsigned without = heap_timers();
    fflush(NULL);
    pid_t pid = held ? fork() : -1;
    if (pid == 0) {
        /* counted at once: the first call that starts the library again
         * starts a timer thread, which may take the timer out to fire it */
        int bad = heap_timers() != without + 1;
        _exit(bad || cio_set_read_deadline(f, cio_after_ms(60000)) != 0);
    }
    release_gate(&gate);
    assert_true(held);
    assert_true(pid > 0);
    int st = child_status_within(pid, (double)scaled_ms(JOIN_MS));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child: wait status %#x (its deadline did not go into the heap)", (unsigned)st);
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
    assert_int_equal(cio_shutdown(), 0);
    cio__timer_fire_hook = NULL;
    assert_no_leaks(state);
}

/* ---- the fork gate ---- */

#define GATE_FILES 16

struct gate_file {
    int p[2];
    cio_file *f;
    struct op_thread *reader;
    pthread_t taker;
    int set_rc, cancel_rc;
};
static struct gate_file gate_files[GATE_FILES];
static atomic_int fork_holds; /* the fork holds every lock: come for them */
static unsigned gate_seen;    /* waiting at the gate, as the fork saw them */

static bool fork_holding(void *arg)
{
    (void)arg;
    return atomic_load(&fork_holds) != 0;
}

/* Comes for its file's lock while the fork holds it: a deadline set, a
 * cancel. */
static void *lock_taker(void *arg)
{
    struct gate_file *g = arg;
    if (!wait_until(fork_holding, NULL, JOIN_MS)) {
        g->set_rc = g->cancel_rc = -2;
        return NULL;
    }
    g->set_rc = cio_set_read_deadline(g->f, cio_after_ms(60000));
    g->cancel_rc = cio_cancel(g->f, CIO_READ);
    return NULL;
}

static bool all_at_gate(void *arg)
{
    return atomic_load(&cio__fork_gate_waiting) >= *(unsigned *)arg;
}

/* The seam: let the takers come, and hold the fork until all of them wait
 * (or JOIN_MS: they wait somewhere else). */
static void hold_fork(void)
{
    unsigned want = GATE_FILES;
    atomic_store(&fork_holds, 1);
    wait_until(all_at_gate, &want, JOIN_MS);
    gate_seen = atomic_load(&cio__fork_gate_waiting);
}

/* Rule 3 around a fork.  A fork holds every file's lock; threads that come
 * for one meanwhile (a deadline moved, a cancel) must wait at the library's
 * one gate, not on the file locks: the fork would hand those over one at a
 * time as it let go of them, and on a loaded machine each hand-off may cost
 * it its CPU (docs/performance.md, sixteenth round).  The seam holds the
 * fork with every lock taken while GATE_FILES threads each set a deadline
 * on a file of their own and cancel its blocked read: all of them must be
 * seen waiting at the gate, and once the fork is over their calls succeed
 * and every read ends ECANCELED; the child's copies of the files work. */
static void a_fork_holds_the_threads_that_come_for_its_locks_at_one_gate(void **state)
{
#if defined(CIO_TSAN)
    skip(); /* a child of a process with threads running: "thread leak" */
#endif
    assert_int_equal(cio_init(&on_workers), 0);
    for (int i = 0; i < GATE_FILES; i++) {
        struct gate_file *g = &gate_files[i];
        *g = (struct gate_file){.set_rc = -1, .cancel_rc = -1};
        assert_int_equal(make_pipe(g->p), 0);
        g->f = cio_fdopen(g->p[0]);
        assert_non_null(g->f);
        g->reader = start_reader(g->f, 1);
        assert_non_null(g->reader);
    }
    for (int i = 0; i < GATE_FILES; i++)
        assert_true(wait_in_syscall_on(gate_files[i].p[0], CIO_READ, 1, JOIN_MS));
    atomic_store(&fork_holds, 0);
    gate_seen = 0;
    for (int i = 0; i < GATE_FILES; i++)
        assert_int_equal(pthread_create(&gate_files[i].taker, NULL, lock_taker, &gate_files[i]), 0);
    cio__fork_hook = hold_fork;
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        /* The child's copy of a file whose read was cancelled in the parent
         * only after the fork: its deadline, set here, holds (rule 13). */
        char c;
        int bad = cio_set_read_deadline(gate_files[0].f, cio_now() - 1) != 0;
        bad = bad || cio_read(gate_files[0].f, &c, 1) != -1 || errno != ETIMEDOUT;
        _exit(bad);
    }
    cio__fork_hook = NULL;
    assert_true(pid > 0);
    int st = child_status_within(pid, (double)scaled_ms(JOIN_MS));
    for (int i = 0; i < GATE_FILES; i++) {
        struct gate_file *g = &gate_files[i];
        assert_int_equal(pthread_join(g->taker, NULL), 0);
        assert_true(op_join(g->reader, JOIN_MS));
    }
    if (gate_seen != GATE_FILES)
        fail_msg("%u of %d threads waited at the gate while the fork held the locks; the others "
                 "waited for a file's lock",
                 gate_seen, GATE_FILES);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child: wait status %#x (its copy of the file did not time out)", (unsigned)st);
    for (int i = 0; i < GATE_FILES; i++) {
        struct gate_file *g = &gate_files[i];
        assert_int_equal(g->set_rc, 0);
        assert_int_equal(g->cancel_rc, 0);
        assert_int_equal(g->reader->result, -1);
        assert_int_equal(g->reader->err, ECANCELED);
        op_free(g->reader);
        assert_int_equal(cio_close(g->f), 0);
        close(g->p[1]);
    }
    assert_int_equal(cio_shutdown(), 0);
    assert_no_leaks(state);
}

int main(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&gate.cv, &a);
    pthread_cond_init(&pool_gate.cv, &a);
    pthread_condattr_destroy(&a);
    block_cancel_signal_in_this_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_stopped_op_does_not_wait_for_the_worker_it_was_handed_to,
                                        fixture_setup_watched, fixture_teardown),
        cmocka_unit_test_setup_teardown(a_released_read_frees_its_worker_without_a_second_signal,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(a_released_write_frees_its_worker_and_writes_nothing,
                                        fixture_setup, fixture_teardown),
        cmocka_unit_test_setup_teardown(a_deadline_holds_while_another_worker_is_being_started,
                                        fixture_setup_watched, fixture_teardown),
        cmocka_unit_test_setup_teardown(a_stop_does_not_wait_for_the_timer_heap,
                                        fixture_setup_watched, fixture_teardown),
        cmocka_unit_test_setup_teardown(a_stop_does_not_wait_for_the_pool_lock,
                                        fixture_setup_watched, fixture_teardown),
        cmocka_unit_test_setup_teardown(stops_race_submits_and_take_backs, fixture_setup_watched,
                                        fixture_teardown),
        cmocka_unit_test_setup_teardown(a_worker_does_not_exit_while_a_wake_up_is_owed_to_it,
                                        fixture_setup_watched, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            a_fork_while_a_deadline_is_being_fired_leaves_the_child_its_timer,
            fixture_setup_watched, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            a_fork_holds_the_threads_that_come_for_its_locks_at_one_gate, fixture_setup_watched,
            fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
