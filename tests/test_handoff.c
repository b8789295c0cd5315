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
#include <stdint.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

/* The library's seams (src/internal.h); NULL in normal use. */
extern void (*cio__pool_pause_hook)(void);
extern void (*cio__pool_spawn_hook)(void);
extern void (*cio__timer_fire_hook)(void);
/* The heap's lock, as the library takes it around fork (src/internal.h). */
void cio__timer_lock_for_fork(void);
void cio__timer_unlock_after_fork(int child);

#define JOIN_MS 5000
/* How long the seam holds a worker at most: far beyond any bound below. */
#define HOLD_MS 3000
/* The op must end this soon after its reason, while the worker is held. */
#define END_MS 1000

/* The gate: holds the next thread that reaches hold_worker once it is
 * armed (a worker handed an op, a worker's start, the timer heap's
 * holder), until released or for HOLD_MS. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int armed, held, release;
} gate = {.mu = PTHREAD_MUTEX_INITIALIZER}; /* cv: on CLOCK_MONOTONIC, made in main */

static void hold_worker(void)
{
    pthread_mutex_lock(&gate.mu);
    if (gate.armed) {
        gate.armed = 0;
        gate.held = 1;
        pthread_cond_broadcast(&gate.cv);
        cio_time_t until = cio_now() + scaled_ms(HOLD_MS) * NS_PER_MS;
        while (!gate.release && cio_now() < until) {
            struct timespec ts = {(time_t)(until / 1000000000), (long)(until % 1000000000)};
            pthread_cond_timedwait(&gate.cv, &gate.mu, &ts);
        }
        gate.held = 0;
        gate.release = 0;
    }
    pthread_mutex_unlock(&gate.mu);
}

static bool gate_held(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&gate.mu);
    bool held = gate.held;
    pthread_mutex_unlock(&gate.mu);
    return held;
}

static void arm_gate(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.armed = 1;
    gate.release = 0;
    pthread_mutex_unlock(&gate.mu);
}

static void release_gate(void)
{
    pthread_mutex_lock(&gate.mu);
    gate.armed = 0;
    gate.release = 1;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
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
    arm_gate();
    struct op_thread *r = start_reader(f, 16);
    assert_non_null(r);
    bool held = wait_until(gate_held, NULL, JOIN_MS);
    cio_time_t t0 = cio_now();
    if (held)
        stop_read(f, why);
    bool ended = wait_until(op_is_done, r, END_MS);
    double ms = elapsed_ms(t0, cio_now());
    bool still_held = gate_held(NULL);
    release_gate();
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
    assert_int_equal(cio_init(NULL), 0);
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
    assert_int_equal(cio_init(NULL), 0);
    int a[2], b[2];
    assert_int_equal(make_pipe(a), 0);
    assert_int_equal(make_pipe(b), 0);
    cio_file *fa = cio_fdopen(a[0]), *fb = cio_fdopen(b[0]);
    assert_non_null(fa);
    assert_non_null(fb);
    arm_gate();
    struct op_thread *ra = start_reader(fa, 16); /* its worker's start is held */
    assert_non_null(ra);
    bool held = wait_until(gate_held, NULL, JOIN_MS);
    assert_int_equal(cio_set_read_deadline(fb, cio_after_ms(50)), 0);
    cio_time_t t0 = cio_now();
    struct op_thread *rb = start_reader(fb, 16);
    assert_non_null(rb);
    bool ended = wait_until(op_is_done, rb, END_MS);
    double ms = elapsed_ms(t0, cio_now());
    bool still_held = gate_held(NULL);
    release_gate();
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
    arm_gate();
    pthread_t holder, closer;
    assert_int_equal(pthread_create(&holder, NULL, hold_heap_lock, NULL), 0);
    bool held = wait_until(gate_held, NULL, JOIN_MS);
    cio_time_t t0 = cio_now();
    if (held && why == BY_DEADLINE)
        assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
    else if (held) /* cio_close returns once the timers are out: not yet */
        assert_int_equal(pthread_create(&closer, NULL, close_file, f), 0);
    bool ended = wait_until(op_is_done, r, END_MS);
    double ms = elapsed_ms(t0, cio_now());
    bool still_held = gate_held(NULL);
    release_gate();
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
    assert_int_equal(cio_init(NULL), 0);
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    arm_gate();
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(5)), 0);
    bool held = wait_until(gate_held, NULL, JOIN_MS); /* taken out, not fired */
    unsigned without = heap_timers();
    fflush(NULL);
    pid_t pid = held ? fork() : -1;
    if (pid == 0) {
        /* counted at once: the first call that starts the library again
         * starts a timer thread, which may take the timer out to fire it */
        int bad = heap_timers() != without + 1;
        _exit(bad || cio_set_read_deadline(f, cio_after_ms(60000)) != 0);
    }
    release_gate();
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

int main(void)
{
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    pthread_cond_init(&gate.cv, &a);
    pthread_condattr_destroy(&a);
    block_cancel_signal_in_this_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(a_stopped_op_does_not_wait_for_the_worker_it_was_handed_to,
                                        fixture_setup_watched, fixture_teardown),
        cmocka_unit_test_setup_teardown(a_deadline_holds_while_another_worker_is_being_started,
                                        fixture_setup_watched, fixture_teardown),
        cmocka_unit_test_setup_teardown(a_stop_does_not_wait_for_the_timer_heap,
                                        fixture_setup_watched, fixture_teardown),
        cmocka_unit_test_setup_teardown(
            a_fork_while_a_deadline_is_being_fired_leaves_the_child_its_timer,
            fixture_setup_watched, fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
