/*
 * Description: a program with a large static thread-local block still gets
 * its workers, each with the stack it asked for.  glibc takes a thread's
 * static TLS out of its stack: with 256 KiB of `_Thread_local` data a
 * 128 KiB worker stack could not be made (every blocking op failed with
 * EAGAIN), and 120 KiB would have left a worker 8 KiB to run on.
 */
#include "support.h"

#include <cmocka.h>

#include <errno.h>
#include <unistd.h>

#define BIG_TLS (256 * 1024)
#define DEEP (64 * 1024) /* of the default 128 KiB stack: half */

static _Thread_local volatile char big[BIG_TLS];

static void a_read_with_a_deadline_times_out_rather_than_failing_to_start(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(50)), 0);
    char c;
    EXPECT_FAIL(cio_read(f, &c, 1), ETIMEDOUT);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_read(f, &c, 1), 1);
    assert_int_equal(c, 'x');
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

/* Runs on a worker: uses half its stack, every page of it. */
static long deep(void *arg)
{
    volatile char frame[DEEP];
    for (size_t i = 0; i < sizeof frame; i += 512)
        frame[i] = (char)(i / 512);
    big[0] = 1; /* the worker's own copy of the block */
    (void)arg;
    return frame[512] + big[0];
}

static void a_worker_still_has_the_stack_asked_for(void **state)
{
    (void)state;
    assert_int_equal(cio_call(deep, NULL, cio_after_ms(scaled_ms(5000))), 2);
}

int main(void)
{
    big[BIG_TLS - 1] = 1; /* the block is the program's, used */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_read_with_a_deadline_times_out_rather_than_failing_to_start),
        cmocka_unit_test(a_worker_still_has_the_stack_asked_for),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
