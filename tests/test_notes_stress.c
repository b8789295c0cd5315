/*
 * Description: notes posted by many threads at random moments to threads
 * that read a stream, with short deadlines and cio_calls mixed in (rules
 * 16-19 as invariants).  Every note that cio_postnote accepted is delivered
 * exactly once, on its thread; every byte of each stream is read once, in
 * order; each op fails only with EINTR or ETIMEDOUT; once the readers have
 * exited their procs answer ESRCH.  CIO_NOTES_STRESS_SECONDS sets the
 * duration (default 4).
 */
#include "support.h"

#include "cancelio/plan9.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define NREADERS 4
#define NPOSTERS 3
#define JOIN_MS 20000

struct reader {
    int index;
    int p[2];
    cio_file *f;
    pthread_t thread, feeder;
    _Atomic(cio_proc *) proc;
    atomic_ullong accepted;  /* posts that returned 0 */
    atomic_ullong delivered; /* notes its handler took */
    atomic_int feeding;
    size_t fed, got;
    unsigned long eintr, timeouts, calls, bad; /* bad: an unexpected result */
    atomic_int done;
};

static struct reader readers[NREADERS];
static _Thread_local struct reader *me;
static atomic_int posting;

static int count_note(void *arg, char *note)
{
    (void)arg;
    if (note[0] != 'n')
        me->bad++;
    atomic_fetch_add(&me->delivered, 1);
    return 1;
}

static long nothing(void *arg)
{
    (void)arg;
    return 0;
}

static void read_some(struct reader *r, struct rng *g)
{
    unsigned char buf[512];
    if (rng_below(g, 4) == 0)
        cio_set_read_deadline(r->f, cio_now() + (cio_time_t)rng_below(g, 2000) * 1000);
    else
        cio_set_read_deadline(r->f, CIO_NO_DEADLINE);
    ssize_t n = cio_read(r->f, buf, 1 + rng_below(g, sizeof buf));
    if (n > 0) {
        r->bad += pattern_mismatch(buf, (size_t)n, r->got) != (size_t)n;
        r->got += (size_t)n;
    } else if (n < 0 && errno == EINTR) {
        r->eintr++;
    } else if (n < 0 && errno == ETIMEDOUT) {
        r->timeouts++;
    } else if (n < 0) {
        r->bad++;
    } else {
        atomic_store(&r->done, 1); /* end of stream */
    }
}

static void *reader_main(void *arg)
{
    struct reader *r = me = arg;
    struct rng g;
    block_cancel_signal_in_this_thread();
    rng_init(&g, 7919u * (unsigned)r->index + 1);
    atomic_store(&r->proc, cio_proc_self());
    cio_atnotify(count_note, 1);
    while (!atomic_load(&r->done)) {
        if (rng_below(&g, 8) == 0) {
            long c = cio_call(nothing, NULL, CIO_NO_DEADLINE);
            r->calls++;
            r->bad += c != 0 && !(c == -1 && errno == EINTR);
        } else {
            read_some(r, &g);
        }
    }
    cio_set_read_deadline(r->f, CIO_NO_DEADLINE);
    cio_call(nothing, NULL, CIO_NO_DEADLINE); /* a note still queued is delivered */
    return NULL;
}

static void *feeder_main(void *arg)
{
    struct reader *r = arg;
    struct rng g;
    unsigned char buf[700];
    block_cancel_signal_in_this_thread();
    rng_init(&g, 104729u * (unsigned)r->index + 3);
    while (atomic_load(&r->feeding)) {
        size_t n = 1 + rng_below(&g, sizeof buf);
        fill_pattern(buf, n, r->fed);
        if (write_all(r->p[1], buf, n) != (ssize_t)n)
            break;
        r->fed += n;
        random_delay_us(&g, 300);
    }
    close(r->p[1]);
    return NULL;
}

static void *poster_main(void *arg)
{
    struct rng g;
    char note[16];
    block_cancel_signal_in_this_thread();
    rng_init(&g, (unsigned)(uintptr_t)arg * 31u + 11u);
    while (atomic_load(&posting)) {
        struct reader *r = &readers[rng_below(&g, NREADERS)];
        snprintf(note, sizeof note, "n%u", rng_below(&g, 1000));
        cio_proc *p = atomic_load(&r->proc);
        if (p && cio_postnote(p, note) == 0)
            atomic_fetch_add(&r->accepted, 1);
        random_delay_us(&g, 400);
    }
    return NULL;
}

static unsigned seconds(void)
{
    const char *s = getenv("CIO_NOTES_STRESS_SECONDS");
    return s && atoi(s) > 0 ? (unsigned)atoi(s) : 4u;
}

static bool all_done(void *arg)
{
    (void)arg;
    for (int i = 0; i < NREADERS; i++)
        if (!atomic_load(&readers[i].done))
            return false;
    return true;
}

/* Notes from many threads at random moments, against reads, deadlines and
 * calls: each accepted note delivered once, each byte read once. */
static void notes_from_many_threads_are_each_delivered_once_and_lose_no_byte(void **state)
{
    (void)state;
    pthread_t posters[NPOSTERS];
    for (int i = 0; i < NREADERS; i++) {
        struct reader *r = &readers[i];
        r->index = i;
        assert_int_equal(make_pipe(r->p), 0);
        r->f = cio_fdopen(r->p[0]);
        assert_non_null(r->f);
        atomic_store(&r->feeding, 1);
        assert_int_equal(pthread_create(&r->thread, NULL, reader_main, r), 0);
        assert_int_equal(pthread_create(&r->feeder, NULL, feeder_main, r), 0);
    }
    atomic_store(&posting, 1);
    for (uintptr_t i = 0; i < NPOSTERS; i++)
        assert_int_equal(pthread_create(&posters[i], NULL, poster_main, (void *)i), 0);
    sleep_us(seconds() * 1000000u);
    atomic_store(&posting, 0);
    for (int i = 0; i < NPOSTERS; i++)
        assert_int_equal(pthread_join(posters[i], NULL), 0);
    for (int i = 0; i < NREADERS; i++) {
        atomic_store(&readers[i].feeding, 0);
        assert_int_equal(pthread_join(readers[i].feeder, NULL), 0);
    }
    assert_true(wait_until(all_done, NULL, JOIN_MS));
    unsigned long long notes = 0;
    for (int i = 0; i < NREADERS; i++) {
        struct reader *r = &readers[i];
        assert_int_equal(pthread_join(r->thread, NULL), 0);
        print_message("reader %d: %zu bytes, %llu notes, %lu EINTR, %lu timeouts, %lu calls\n", i,
                      r->got, (unsigned long long)atomic_load(&r->accepted), r->eintr, r->timeouts,
                      r->calls);
        assert_int_equal(r->bad, 0);
        assert_int_equal(r->got, r->fed);
        assert_int_equal(atomic_load(&r->delivered), atomic_load(&r->accepted));
        assert_true(r->eintr <= atomic_load(&r->accepted));
        errno = 0;
        assert_int_equal(cio_postnote(atomic_load(&r->proc), "late"), -1);
        assert_int_equal(errno, ESRCH);
        notes += atomic_load(&r->accepted);
        assert_int_equal(cio_close(r->f), 0);
    }
    assert_true(notes >= 1000);
}

int main(void)
{
    block_cancel_signal_in_this_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            notes_from_many_threads_are_each_delivered_once_and_lose_no_byte, fixture_setup_watched,
            fixture_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
