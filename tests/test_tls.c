/*
 * Description: a program with a large static thread-local block still gets
 * its workers, each with the stack it asked for.  glibc takes a thread's
 * static TLS out of its stack: with 256 KiB of `_Thread_local` data a
 * 128 KiB worker stack could not be made (every blocking op failed with
 * EAGAIN), and 120 KiB would have left a worker 8 KiB to run on.  The same
 * with a block aligned to 32 KiB (glibc rounds the stack to it), and with
 * a large reserve for libraries loaded later (a glibc tunable): the test
 * runs itself again with that tunable set.
 */
#include "support.h"

#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define BIG_TLS (256 * 1024)
#define DEEP (96 * 1024) /* of the default 128 KiB stack: three quarters */
#define AGAIN "--with-a-large-reserve"
#define RESERVE "glibc.rtld.optional_static_tls=131072"

static _Thread_local volatile char big[BIG_TLS];
static _Thread_local _Alignas(32768) volatile char aligned[64];
static const char *self; /* argv[0] */

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

/* Runs on a worker: uses most of its stack, every page of it. */
static long deep(void *arg)
{
    volatile char frame[DEEP];
    for (size_t i = 0; i < sizeof frame; i += 512)
        frame[i] = (char)(i / 512);
    big[0] = 1; /* the worker's own copies of the blocks */
    aligned[0] = 1;
    (void)arg;
    return frame[512] + big[0] + aligned[0];
}

static void a_worker_still_has_the_stack_asked_for(void **state)
{
    (void)state;
    assert_int_equal(cio_call(deep, NULL, cio_after_ms(scaled_ms(5000))), 3);
}

/* The two checks above again, in a process whose glibc keeps a 128 KiB
 * reserve of static TLS for libraries loaded later. */
static void the_same_with_a_large_reserve_for_libraries_loaded_later(void **state)
{
    (void)state;
#ifndef __GLIBC__
    skip(); /* the tunable is glibc's */
#endif
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("GLIBC_TUNABLES", RESERVE, 1);
        execl(self, self, AGAIN, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

int main(int argc, char **argv)
{
    self = argv[0];
    big[BIG_TLS - 1] = 1; /* the blocks are the program's, used */
    aligned[1] = 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(a_read_with_a_deadline_times_out_rather_than_failing_to_start),
        cmocka_unit_test(a_worker_still_has_the_stack_asked_for),
        cmocka_unit_test(the_same_with_a_large_reserve_for_libraries_loaded_later),
    };
    size_t n = sizeof tests / sizeof tests[0];
    if (argc > 1 && strcmp(argv[1], AGAIN) == 0)
        n--; /* the run again: the first two */
    return _cmocka_run_group_tests("test_tls", tests, n, NULL, NULL);
}
