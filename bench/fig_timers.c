/*
 * Figure 5: the cost of a deadline change with 100,000 deadlines armed.
 *
 * 100,000 descriptors would be too many, but a deadline needs a file, not
 * a distinct fd: the bench adopts one descriptor 100,000 times (cio_fdopen
 * only checks that it is open) and hands it back with cio_detach, so it is
 * closed once.  Every file gets a read deadline an hour away, then the bench
 * times, in batches, clearing and re-arming deadlines at that size, and
 * moving them: later each time (the idle-timeout idiom) and to random
 * places.  The floor is what any such call must do at least: two mutex
 * lock/unlock pairs and a clock read.
 */
#include "bench.h"

#include <cancelio.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#define N_FILES 100000
#define SLICE 1000  /* files cleared then re-armed, one batch */
#define BATCH 10000 /* moves, one batch */
#define HOUR ((cio_time_t)3600 * NS_PER_S)

static cio_file **files;
static unsigned *order; /* a random permutation of the files */
static uint64_t seed = 0x9e3779b97f4a7c15u;

static unsigned rnd(unsigned n)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (unsigned)(seed % n);
}

static void set(unsigned i, cio_time_t t)
{
    if (cio_set_read_deadline(files[i], t) < 0)
        die("cio_set_read_deadline");
}

/* Clear, then re-arm, slices of the permutation; ns per change (median). */
static void arm_clear(size_t rounds, cio_time_t far, double *arm, double *clear)
{
    double *va = calloc(rounds, sizeof *va), *vc = calloc(rounds, sizeof *vc);
    for (size_t r = 0; r < rounds; r++) {
        const unsigned *s = order + (r * SLICE) % (N_FILES - SLICE);
        ns_t t = now_ns();
        for (unsigned i = 0; i < SLICE; i++)
            set(s[i], CIO_NO_DEADLINE);
        ns_t t2 = now_ns();
        for (unsigned i = 0; i < SLICE; i++)
            set(s[i], far + (cio_time_t)rnd(N_FILES) * 1000);
        vc[r] = (double)(t2 - t) / SLICE;
        va[r] = (double)(now_ns() - t2) / SLICE;
    }
    *arm = median_d(va, rounds);
    *clear = median_d(vc, rounds);
    free(va);
    free(vc);
}

/* Move deadlines of random files: to ever later times, or anywhere. */
static double moves(size_t batches, cio_time_t far, int later)
{
    static unsigned idx[BATCH];
    static cio_time_t when[BATCH];
    static cio_time_t latest;
    double *v = calloc(batches, sizeof *v);
    latest = latest ? latest : far + HOUR;
    for (size_t b = 0; b < batches; b++) {
        for (unsigned i = 0; i < BATCH; i++) {
            idx[i] = rnd(N_FILES);
            when[i] = later ? ++latest : far + (cio_time_t)rnd(N_FILES) * 1000;
        }
        ns_t t = now_ns();
        for (unsigned i = 0; i < BATCH; i++)
            set(idx[i], when[i]);
        v[b] = (double)(now_ns() - t) / BATCH;
    }
    double m = median_d(v, batches);
    free(v);
    return m;
}

/* Two lock/unlock pairs and a clock read, as a deadline change needs. */
static double floor_cost(size_t n)
{
    static pthread_mutex_t a = PTHREAD_MUTEX_INITIALIZER, b = PTHREAD_MUTEX_INITIALIZER;
    struct timespec ts;
    double v[9];
    for (int r = 0; r < 9; r++) {
        ns_t t = now_ns();
        for (size_t i = 0; i < n; i++) {
            pthread_mutex_lock(&a);
            clock_gettime(CLOCK_MONOTONIC, &ts);
            pthread_mutex_lock(&b);
            pthread_mutex_unlock(&b);
            pthread_mutex_unlock(&a);
        }
        v[r] = (double)(now_ns() - t) / (double)n;
    }
    return median_d(v, 9);
}

static void report5(const char *name, double v, double floor, int target, const char *note)
{
    bench_report_one(5, name, "ns", v, "two_locks_and_clock", floor,
                     target ? TARGET_VALUE_MAX : TARGET_NONE, target ? 200 : 0, note);
}

void fig_timers(void)
{
    bench_lib_start(0, 0);
    size_t batches = bench_cfg.quick ? 20 : 100, rounds = bench_cfg.quick ? 50 : 300;
    int fd = open("/dev/null", O_RDONLY);
    files = calloc(N_FILES, sizeof *files);
    order = calloc(N_FILES, sizeof *order);
    if (fd < 0 || !files || !order)
        die("figure 5 set-up");
    for (unsigned i = 0; i < N_FILES; i++) {
        if (!(files[i] = cio_fdopen(fd)))
            die("cio_fdopen");
        order[i] = i;
    }
    for (unsigned i = N_FILES - 1; i > 0; i--) {
        unsigned j = rnd(i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    cio_time_t far = cio_now() + HOUR;
    ns_t t = now_ns();
    for (unsigned i = 0; i < N_FILES; i++)
        set(order[i], far + (cio_time_t)rnd(N_FILES) * 1000);
    double fill = (double)(now_ns() - t) / N_FILES;
    cio_stats st;
    cio_get_stats(&st);
    char note[160];
    snprintf(note, sizeof note, "%u deadlines armed", st.timers);

    double arm, clear;
    arm_clear(rounds, far, &arm, &clear);
    double later = moves(batches, far, 1), random = moves(batches, far, 0);
    double floor = floor_cost(BATCH * 10);
    report5("timer_arm_fill", fill, floor, 0, "arming 0 -> 100000, mean");
    report5("timer_arm", arm, floor, 0, note);
    report5("timer_clear", clear, floor, 0, note);
    report5("timer_move_later", later, floor, 1, "idle-timeout idiom: each move the latest");
    report5("timer_move_random", random, floor, 1, note);

    for (unsigned i = 0; i < N_FILES; i++)
        cio_detach(files[i]);
    close(fd);
    free(files);
    free(order);
    bench_lib_stop();
}
