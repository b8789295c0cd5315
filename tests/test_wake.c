/*
 * Description: a file op's wake-up, src/core/platform/wake_*.c, the one the
 * build chose and its fallback, white-box (each is compiled into its own
 * test).  What the op protocol needs of it (docs/protocol.md, step 6):
 * a timed wait sleeps until its deadline and not much past it; a deadline
 * already due returns at once; a post wakes an untimed wait; a post whose
 * late half comes after the unlock is never lost, however the two threads
 * interleave (many rounds, random delays); the late half is owed only to a
 * waiter that sleeps (a caller that finishes its own op makes no system
 * call); and the late half names no memory that the waiter may already
 * have freed with its op (under AddressSanitizer a touch would be a
 * use-after-free report, under Valgrind a futex on a freed word is one
 * too).
 */
#include "support.h"

#include <cmocka.h>
#include <sched.h>
#include <semaphore.h>
#include <stdlib.h>

#include "internal.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static cio__wake wk;
static int flag; /* mu */

static int setup(void **state)
{
    (void)state;
    flag = 0;
    return cio__wake_init(&wk) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    cio__wake_destroy(&wk);
    return 0;
}

static void a_timed_wait_ends_not_before_its_deadline_and_without_spinning(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        cio_time_t t = cio_now() + 150 * NS_PER_MS;
        int waits = 0;
        pthread_mutex_lock(&mu);
        while (cio_now() < t) {
            cio__wake_wait_until(&wk, &mu, t);
            waits++;
        }
        pthread_mutex_unlock(&mu);
        cio_time_t end = cio_now();
        assert_true(elapsed_ms(t, end) < (double)scaled_ms(500));
        assert_in_range(waits, 1, 20);
    }
}

static void a_deadline_already_due_returns_at_once(void **state)
{
    (void)state;
    const cio_time_t past[] = {cio_now() - 1, 1, INT64_MIN + 1};
    for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
        cio_time_t start = cio_now();
        pthread_mutex_lock(&mu);
        cio__wake_wait_until(&wk, &mu, past[i]);
        pthread_mutex_unlock(&mu);
        assert_true(elapsed_ms(start, cio_now()) < (double)scaled_ms(100));
    }
}

/* The worker's way (op.c: cio__op_execute): the flag and the early half
 * under mu, the late half after the unlock. */
static void post_after_unlock(cio__wake *w, int *what)
{
    pthread_mutex_lock(&mu);
    *what = 1;
    void *token = cio__wake_post_early(w);
    pthread_mutex_unlock(&mu);
    cio__wake_post_late(token);
}

static unsigned raise_delay_us; /* set before the thread starts */
static struct rng raise_rng;    /* the raiser's own */

static void *raise_flag(void *arg)
{
    (void)arg;
    if (raise_delay_us)
        random_delay_us(&raise_rng, raise_delay_us);
    post_after_unlock(&wk, &flag);
    return NULL;
}

/* Until the flag is up, waiting until t (as wait_done_locked loops). */
static int wait_flag(cio_time_t t)
{
    int waits = 0;
    pthread_mutex_lock(&mu);
    while (!flag) {
        cio__wake_wait_until(&wk, &mu, t);
        waits++;
    }
    pthread_mutex_unlock(&mu);
    return waits;
}

static void a_post_wakes_an_untimed_wait_and_one_on_the_farthest_deadline(void **state)
{
    (void)state;
    const cio_time_t until[] = {CIO_NO_DEADLINE, INT64_MAX};
    for (size_t i = 0; i < 2; i++) {
        flag = 0;
        raise_delay_us = 0;
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, raise_flag, NULL), 0);
        cio_time_t start = cio_now();
        int waits = wait_flag(until[i]);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(elapsed_ms(start, cio_now()) < (double)scaled_ms(2000));
        assert_in_range(waits, 0, 20); /* 0: the flag rose first */
    }
}

/* A lost wake-up leaves the waiter asleep until its deadline, 5 s (scaled)
 * away: a round that long is the failure. */
static void no_post_is_lost_whatever_the_interleaving(void **state)
{
    (void)state;
    struct rng r;
    unsigned seed = test_seed(CIO_TEST_WAKE_NAME);
    rng_init(&r, seed);
    rng_init(&raise_rng, seed ^ 0x9e3779b9u);
    cio_time_t start = cio_now();
    for (int round = 0; round < 3000; round++) {
        flag = 0;
        raise_delay_us = rng_below(&r, 4) == 0 ? 0 : 200;
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, raise_flag, NULL), 0);
        random_delay_us(&r, 200);
        cio_time_t begin = cio_now();
        wait_flag(begin + scaled_ms(5000) * NS_PER_MS);
        assert_true(elapsed_ms(begin, cio_now()) < (double)scaled_ms(2500));
        assert_int_equal(pthread_join(t, NULL), 0);
    }
    assert_true(elapsed_ms(start, cio_now()) < (double)scaled_ms(60000));
}

/* A post under mu while the waiter is awake (it holds mu itself: a caller
 * that stops its own op, by its deadline or its own cancel) leaves nothing
 * for after the unlock, and the waiter then does not sleep at all. */
static void a_post_to_a_waiter_that_is_awake_leaves_no_late_half(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        pthread_mutex_lock(&mu);
        flag = 1;
        void *token = cio__wake_post_early(&wk);
        pthread_mutex_unlock(&mu);
        assert_null(token);
        cio__wake_post_late(token); /* does nothing */
        cio_time_t start = cio_now();
        int waits = wait_flag(start + scaled_ms(5000) * NS_PER_MS);
        assert_int_equal(waits, 0);
        flag = 0;
    }
}

/* The waiter frees its wake-up as soon as it sees the flag, as a caller
 * returns from its op; the poster's late half comes after that.  The
 * waiter sleeps when the poster posts (it owes it a late half), and wakes
 * by its own short deadline, not by the post. */
typedef struct owned {
    cio__wake w;
    int done;   /* mu */
    sem_t gone; /* the waiter freed o->w */
} owned;

static void *waiter_that_frees(void *arg)
{
    owned *o = arg;
    pthread_mutex_lock(&mu);
    while (!o->done)
        cio__wake_wait_until(&o->w, &mu, cio_now() + 2 * NS_PER_MS);
    pthread_mutex_unlock(&mu);
    cio__wake_destroy(&o->w);
    sem_post(&o->gone);
    return NULL;
}

static void the_late_half_names_no_freed_memory(void **state)
{
    (void)state;
    int late_halves = 0;
    for (int i = 0; i < 100; i++) {
        owned *o = malloc(sizeof *o);
        assert_non_null(o);
        assert_int_equal(cio__wake_init(&o->w), 0);
        assert_int_equal(sem_init(&o->gone, 0, 0), 0);
        o->done = 0;
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, waiter_that_frees, o), 0);
        pthread_mutex_lock(&mu);
        while (!o->w.sleeping) { /* until the waiter is asleep */
            pthread_mutex_unlock(&mu);
            sched_yield();
            pthread_mutex_lock(&mu);
        }
        o->done = 1;
        void *token = cio__wake_post_early(&o->w);
        pthread_mutex_unlock(&mu);
        late_halves += token != NULL;
        while (sem_wait(&o->gone) != 0)
            ;
        assert_int_equal(pthread_join(t, NULL), 0);
        sem_destroy(&o->gone);
        free(o);
        cio__wake_post_late(token); /* the poster, late */
    }
#ifdef CIO_TEST_WAKE_LATE
    assert_int_equal(late_halves, 100); /* each was owed to a sleeper */
#else
    assert_int_equal(late_halves, 0); /* signalled under the lock */
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_timed_wait_ends_not_before_its_deadline_and_without_spinning, setup, teardown),
        cmocka_unit_test_setup_teardown(a_deadline_already_due_returns_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_post_wakes_an_untimed_wait_and_one_on_the_farthest_deadline, setup, teardown),
        cmocka_unit_test_setup_teardown(no_post_is_lost_whatever_the_interleaving, setup, teardown),
        cmocka_unit_test_setup_teardown(a_post_to_a_waiter_that_is_awake_leaves_no_late_half, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(the_late_half_names_no_freed_memory, setup, teardown),
    };
    return cmocka_run_group_tests_name(CIO_TEST_WAKE_NAME, tests, NULL, NULL);
}
