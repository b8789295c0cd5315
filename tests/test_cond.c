/*
 * Description: the timed condvar waits of src/core/platform/cond_*.c, the
 * one the build chose and its fallback, white-box (each is compiled into
 * its own test).  Callers re-check after every return, so a wait may end
 * early; what must hold is that a caller looping as they do ends not
 * before its monotonic deadline, soon after it, and without spinning (each
 * wait really sleeps: a deadline converted to the wrong clock, or in the
 * wrong unit, ends at once every time, or far too late); that a deadline
 * already due returns at once; that a signal wakes an untimed wait and a
 * wait on the farthest deadline (no overflow in the conversion).
 */
#include "support.h"

#include <cmocka.h>

#include "internal.h"

#define WAIT_MS 150

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static int flag; /* mu */

static int setup(void **state)
{
    (void)state;
    flag = 0;
    return cio__cond_init(&cv) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    return pthread_cond_destroy(&cv);
}

/* Loop as the library's callers do; returns the number of waits. */
static int wait_out(cio_time_t t)
{
    int waits = 0;
    pthread_mutex_lock(&mu);
    while (cio_now() < t) {
        cio__cond_wait_until(&cv, &mu, t);
        waits++;
    }
    pthread_mutex_unlock(&mu);
    return waits;
}

static void a_timed_wait_ends_not_before_its_deadline_soon_after_and_without_spinning(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        cio_time_t start = cio_now(), t = start + WAIT_MS * NS_PER_MS;
        int waits = wait_out(t);
        cio_time_t end = cio_now();
        assert_true(end >= t);
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
        cio__cond_wait_until(&cv, &mu, past[i]);
        pthread_mutex_unlock(&mu);
        assert_true(elapsed_ms(start, cio_now()) < (double)scaled_ms(100));
    }
}

static void *raise_flag(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    flag = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    return NULL;
}

/* Until the flag is up, waiting until t; the number of waits. */
static int wait_flag(cio_time_t t)
{
    int waits = 0;
    pthread_mutex_lock(&mu);
    while (!flag) {
        cio__cond_wait_until(&cv, &mu, t);
        waits++;
    }
    pthread_mutex_unlock(&mu);
    return waits;
}

static void a_signal_wakes_an_untimed_wait_and_one_on_the_farthest_deadline(void **state)
{
    (void)state;
    const cio_time_t until[] = {CIO_NO_DEADLINE, INT64_MAX};
    for (size_t i = 0; i < 2; i++) {
        flag = 0;
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, raise_flag, NULL), 0);
        cio_time_t start = cio_now();
        int waits = wait_flag(until[i]);
        assert_int_equal(pthread_join(t, NULL), 0);
        assert_true(elapsed_ms(start, cio_now()) < (double)scaled_ms(2000));
        assert_in_range(waits, 0, 20); /* 0: the flag rose first */
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_timed_wait_ends_not_before_its_deadline_soon_after_and_without_spinning, setup,
            teardown),
        cmocka_unit_test_setup_teardown(a_deadline_already_due_returns_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_signal_wakes_an_untimed_wait_and_one_on_the_farthest_deadline, setup, teardown),
    };
    return cmocka_run_group_tests_name(CIO_TEST_COND_NAME, tests, NULL, NULL);
}
