/*
 * A read or write parked on its caller's own thread (protocol steps 3c and
 * 4c, cio_options.waits = CIO_WAIT_CALLER, the default): a pipe's read
 * waits in ppoll on the thread that called cio_read, and a stop signals
 * that thread.  What the caller must find when the call returns: its
 * signal mask as it was, no cancel signal left pending, its own signals'
 * handlers run as they came, thread cancellation acted on only once the
 * op has ended; and a shutdown that finds callers parked stops them
 * without the signal ever meeting its default action.
 */
#include "support.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define JOIN_MS 5000
#define AT_ONCE_MS 500

/* ---- a caller with a mask of the test's choosing ---- */

enum stop { BY_CANCEL, BY_MOVE, BY_DEADLINE, BY_DATA, BY_NUDGE_THEN_DATA, N_STOPS };

struct caller {
    cio_file *f;
    int block_cancel; /* the caller's own mask blocks the cancel signal */
    pthread_t th;
    atomic_int tid, done;
    ssize_t result;
    int err;
    char byte;
    int mask_kept, pending_left;
};

static void *caller_main(void *arg)
{
    struct caller *c = arg;
    sigset_t set, before, after, pending;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(c->block_cancel ? SIG_BLOCK : SIG_UNBLOCK, &set, NULL);
    pthread_sigmask(SIG_SETMASK, NULL, &before);
    atomic_store(&c->tid, (int)current_tid());
    c->result = cio_read(c->f, &c->byte, 1);
    c->err = errno;
    pthread_sigmask(SIG_SETMASK, NULL, &after);
    sigpending(&pending);
    c->mask_kept = 1;
    for (int s = 1; s < 32; s++)
        if (sigismember(&before, s) != sigismember(&after, s))
            c->mask_kept = 0;
    c->pending_left = sigismember(&pending, SIGUSR1);
    atomic_store(&c->done, 1);
    return NULL;
}

static bool caller_done(void *arg)
{
    return atomic_load(&((struct caller *)arg)->done) != 0;
}

static void caller_start(struct caller *c, cio_file *f, int block_cancel)
{
    *c = (struct caller){.f = f, .block_cancel = block_cancel};
    assert_int_equal(pthread_create(&c->th, NULL, caller_main, c), 0);
}

static void caller_join(struct caller *c)
{
    assert_true(wait_until(caller_done, c, JOIN_MS));
    pthread_join(c->th, NULL);
}

/* Its read waits in a syscall on the caller's own thread, or has ended. */
static bool parked_or_done(void *arg)
{
    struct caller *c = arg;
    int tid = atomic_load(&c->tid);
    return atomic_load(&c->done) || (tid && thread_in_syscall_on(tid, cio_fileno(c->f), CIO_READ));
}

/* The caller itself waits in ppoll on its fd: no worker took its read. */
static bool caller_parked(struct caller *c)
{
    return wait_until(parked_or_done, c, JOIN_MS) && !atomic_load(&c->done);
}

/* Steps 3c and 4c at random moments: every way a parked read ends (a
 * cancel, a deadline moved into the past, one that passes, data, a
 * deadline moved earlier and then data), with the caller's mask blocking
 * the cancel signal or not.  Each time the caller gets its byte or the
 * stop's errno, finds its mask as it was and no cancel signal pending, and
 * no worker was needed.  Bytes are read once, in order. */
static void a_parked_caller_gets_back_its_mask_and_no_pending_signal(void **state)
{
    (void)state;
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    int iters = under_valgrind() ? 60 : 400, parked = 0, got = 0;
    unsigned char wrote = 0, next = 0;
    for (int i = 0; i < iters; i++) {
        enum stop how = (enum stop)rng_below(&rng, N_STOPS);
        cio_time_t d =
            how == BY_DEADLINE ? cio_now() + rng_below(&rng, 2000) * 1000 + 1 : CIO_NO_DEADLINE;
        assert_int_equal(cio_set_read_deadline(f, d), 0);
        struct caller c;
        uint64_t before = op_starts();
        caller_start(&c, f, (int)rng_below(&rng, 2));
        if (how == BY_CANCEL) /* a cancel stops ops in flight, not the next */
            assert_true(wait_op_starts(before + 1, JOIN_MS));
        if (rng_below(&rng, 2) && how != BY_DEADLINE)
            parked += caller_parked(&c);
        else
            random_delay_us(&rng, 500);
        switch (how) {
        case BY_CANCEL:
            assert_int_equal(cio_cancel(f, CIO_READ), 0);
            break;
        case BY_MOVE:
            assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
            break;
        case BY_NUDGE_THEN_DATA:
            assert_int_equal(cio_set_read_deadline(f, cio_after_ms(60000)), 0);
            random_delay_us(&rng, 200);
            /* fall through */
        case BY_DATA:
            assert_int_equal(write(p[1], &wrote, 1), 1);
            wrote++;
            break;
        default:
            break;
        }
        caller_join(&c);
        assert_true(c.mask_kept);
        assert_false(c.pending_left);
        if (c.result == 1) {
            assert_int_equal((unsigned char)c.byte, next);
            next++;
            got++;
        } else {
            static const int expect[] = {ECANCELED, ETIMEDOUT, ETIMEDOUT};
            assert_int_equal(c.result, -1);
            assert_true(how < BY_DATA);
            assert_int_equal(c.err, expect[how]);
        }
        assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
        while (next != wrote) { /* a byte that came after its read was stopped */
            char b;
            assert_int_equal(cio_read(f, &b, 1), 1);
            assert_int_equal((unsigned char)b, next);
            next++;
        }
    }
    cio_stats s;
    cio_get_stats(&s);
    printf("%d reads, %d seen parked on their callers, %d got a byte\n", iters, parked, got);
    assert_int_equal(s.threads, 0); /* no read needed a worker */
    assert_int_equal(s.callers_waiting, 0);
    assert_true(parked > 0);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 3 on a parked caller: its wait ends at the deadline it had when it
 * began, so a deadline moved earlier must wake it (the setter signals it,
 * and it waits again until the new one), and one moved later must not end
 * it at the old one.  callers_waiting counts it meanwhile. */
static void a_deadline_moved_while_a_caller_is_parked_is_obeyed(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);

    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(60000)), 0);
    struct caller c;
    caller_start(&c, f, 0);
    assert_true(caller_parked(&c));
    cio_stats s;
    cio_get_stats(&s);
    assert_int_equal(s.callers_waiting, 1);
    cio_time_t d = cio_after_ms(50);
    assert_int_equal(cio_set_read_deadline(f, d), 0); /* earlier: it must wake */
    caller_join(&c);
    assert_int_equal(c.result, -1);
    assert_int_equal(c.err, ETIMEDOUT);
    assert_true(cio_now() >= d);
    assert_true(elapsed_ms(d, cio_now()) < (double)scaled_ms(JOIN_MS));

    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(40)), 0);
    caller_start(&c, f, 1);
    assert_true(caller_parked(&c));
    d = cio_after_ms(250);
    assert_int_equal(cio_set_read_deadline(f, d), 0); /* later: not at the old one */
    caller_join(&c);
    assert_int_equal(c.result, -1);
    assert_int_equal(c.err, ETIMEDOUT);
    assert_true(cio_now() >= d);
    assert_true(c.mask_kept);
    assert_false(c.pending_left);
    cio_get_stats(&s);
    assert_int_equal(s.callers_waiting, 0);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* The caller's own signals while it is parked: a handler of the
 * application runs (the wait is interrupted as a read(2) would be, and
 * waits again), and a cancel signal that no stop sent (another process's
 * kill) changes nothing: the read goes on and gets its byte. */
static atomic_int usr2_seen;

static void on_usr2(int signo)
{
    (void)signo;
    atomic_fetch_add(&usr2_seen, 1);
}

static void the_callers_own_signals_do_not_end_a_parked_read(void **state)
{
    (void)state;
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr2;
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR2, &sa, &old), 0);
    atomic_store(&usr2_seen, 0);
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    struct caller c;
    caller_start(&c, f, 0);
    assert_true(caller_parked(&c));
    for (int i = 0; i < 20; i++) {
        pthread_kill(c.th, i & 1 ? SIGUSR1 : SIGUSR2);
        sleep_us(2000);
        assert_false(atomic_load(&c.done));
    }
    assert_true(caller_parked(&c));
    assert_int_equal(write(p[1], "k", 1), 1);
    caller_join(&c);
    assert_int_equal(c.result, 1);
    assert_int_equal(c.byte, 'k');
    assert_true(c.mask_kept);
    assert_false(c.pending_left);
    assert_int_equal(atomic_load(&usr2_seen), 10);
    assert_int_equal(sigaction(SIGUSR2, &old, NULL), 0);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* ppoll is a cancellation point; the op must still end in order (its file
 * counts it, its park word is its stopper's until GONE).  So a
 * pthread_cancel of a parked caller is acted on once cio_read has
 * returned, at the thread's next cancellation point: the byte that ended
 * the read is the read's, and the file closes. */
struct cancellable {
    cio_file *f;
    atomic_int tid;
    atomic_long result;
};

static void *cancellable_main(void *arg)
{
    struct cancellable *c = arg;
    char b;
    atomic_store(&c->tid, (int)current_tid());
    atomic_store(&c->result, (long)cio_read(c->f, &b, 1));
    for (;;)
        pause(); /* a cancellation point */
    return NULL;
}

static bool cancellable_returned(void *arg)
{
    return atomic_load(&((struct cancellable *)arg)->result) != -2;
}

static void thread_cancellation_waits_for_a_parked_read_to_end(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    struct cancellable c = {.f = f};
    atomic_store(&c.result, -2);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, cancellable_main, &c), 0);
    assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
    assert_int_equal(pthread_cancel(th), 0);
    sleep_us(50 * 1000);
    assert_int_equal(atomic_load(&c.result), -2); /* still in its read */
    assert_int_equal(threads_in_syscall_on(p[0], CIO_READ), 1);
    assert_int_equal(write(p[1], "c", 1), 1);
    assert_true(wait_until(cancellable_returned, &c, JOIN_MS));
    assert_int_equal(atomic_load(&c.result), 1);
    void *ret;
    assert_int_equal(pthread_join(th, &ret), 0);
    assert_true(ret == PTHREAD_CANCELED);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* cio_shutdown with callers parked on their own threads, at random moments
 * around their parking: each read fails with ECANCELED (or got its byte,
 * or had not begun and waits, then runs on the restarted library), and the
 * shutdown restores the signal's disposition only after every parked
 * caller has taken its signal: one that came after would end the process
 * (the default action of SIGUSR1). */
static void a_shutdown_stops_parked_callers_before_it_lets_go_of_the_signal(void **state)
{
    (void)state;
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    enum { N = 6 };
    int rounds = under_valgrind() ? 10 : 60, cancelled = 0;
    for (int r = 0; r < rounds; r++) {
        int p[N][2];
        cio_file *f[N];
        struct caller c[N];
        for (int i = 0; i < N; i++) {
            assert_int_equal(make_pipe(p[i]), 0);
            f[i] = cio_fdopen(p[i][0]);
            assert_non_null(f[i]);
            caller_start(&c[i], f[i], (int)rng_below(&rng, 2));
        }
        random_delay_us(&rng, 3000);
        assert_int_equal(cio_shutdown(), 0);
        for (int i = 0; i < N; i++) {
            if (!wait_until(caller_done, &c[i], 300)) /* not begun: runs after */
                assert_int_equal(write(p[i][1], "s", 1), 1);
            caller_join(&c[i]);
            assert_true(c[i].result == 1 || (c[i].result == -1 && c[i].err == ECANCELED));
            cancelled += c[i].result == -1;
            assert_true(c[i].mask_kept);
            assert_false(c[i].pending_left);
            assert_int_equal(cio_close(f[i]), 0);
            assert_int_equal(close(p[i][1]), 0);
        }
    }
    printf("%d rounds of %d parked callers: %d cancelled by the shutdown\n", rounds, N, cancelled);
    assert_true(cancelled > 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup_watched, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(a_parked_caller_gets_back_its_mask_and_no_pending_signal),
        T(a_deadline_moved_while_a_caller_is_parked_is_obeyed),
        T(the_callers_own_signals_do_not_end_a_parked_read),
        T(thread_cancellation_waits_for_a_parked_read_to_end),
        T(a_shutdown_stops_parked_callers_before_it_lets_go_of_the_signal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
