/*
 * Figures 2 and 3: how late a deadline fires, how fast a cancel lands.
 *
 * Figure 2 times out a 1-byte read on an empty pipe, D ms after it starts,
 * and measures how late it returns; the floors are clock_nanosleep to the
 * same kind of absolute deadline (the machine's own timer lateness) and
 * poll() with the same timeout.  The three alternate, trial by trial.
 *
 * Figure 3 cancels a cio_read blocked on an empty pipe and measures from
 * cio_cancel to the read's return; the floor is pthread_kill of SIGUSR2
 * (handler without SA_RESTART) to a thread blocked in read(), until read()
 * fails with EINTR.  Before each trial the bench waits until the thread
 * that will be interrupted really is inside read (/proc/self/task/TID/
 * syscall), so both sides measure the same thing: a wake-up from the
 * kernel's wait, not a race with its start.  On a small VM the cost of a
 * wake-up depends most on whether it crosses CPUs, so figure 3 pins its
 * threads, both ways: the canceller on one CPU, the blocked callers (and
 * so the workers they create, which inherit their affinity) on the same
 * CPU or on another.
 */
#include "bench.h"

#include <cancelio.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define D_NS (10 * NS_PER_MS)

static void empty_pipe(int fds[2])
{
    if (pipe(fds) < 0)
        die("pipe");
}

/* ---- figure 2 ---- */

static ns_t late_cio(cio_file *f)
{
    char c;
    cio_time_t dl = cio_now() + D_NS;
    cio_set_read_deadline(f, dl);
    ssize_t r = cio_read(f, &c, 1);
    ns_t t = cio_now();
    if (r != -1 || errno != ETIMEDOUT)
        die("figure 2: a read on an empty pipe did not time out");
    return t - dl;
}

static ns_t late_sleep(void)
{
    ns_t dl = now_ns() + D_NS;
    sleep_until_ns(dl);
    return now_ns() - dl;
}

static ns_t late_poll(int fd)
{
    struct pollfd p = {fd, POLLIN, 0};
    char c;
    ns_t dl = now_ns() + D_NS;
    if (poll(&p, 1, (int)(D_NS / NS_PER_MS)) > 0 && read(fd, &c, 1) < 0)
        die("read");
    return now_ns() - dl;
}

typedef struct lateness {
    ns_t p50, p99, max;
    size_t early;
} lateness;

static lateness summarise(ns_t *v, size_t n, const char *samples)
{
    save_samples(samples, v, n);
    lateness l = {.early = count_below(v, n, 0), .max = max_of(v, n)};
    l.p99 = percentile(v, n, 99);
    l.p50 = percentile(v, n, 50);
    return l;
}

static void run_trials(size_t n, lateness out[3], int only_cio)
{
    int fds[2];
    empty_pipe(fds);
    cio_file *f = cio_fdopen(fds[0]);
    ns_t *v[3];
    for (int m = 0; m < 3; m++)
        v[m] = calloc(n, sizeof *v[m]);
    late_cio(f); /* warm-up: a worker and the timer thread exist */
    for (size_t i = 0; i < n; i++) {
        for (int j = 0; j < (only_cio ? 1 : 3); j++) {
            int m = only_cio ? 0 : (int)(i + (size_t)j) % 3;
            v[m][i] = m == 0 ? late_cio(f) : m == 1 ? late_sleep() : late_poll(fds[0]);
        }
    }
    out[0] = summarise(v[0], n, only_cio ? "deadline_cio_heap.txt" : "deadline_cio.txt");
    if (!only_cio) {
        out[1] = summarise(v[1], n, "deadline_nanosleep.txt");
        out[2] = summarise(v[2], n, "deadline_poll.txt");
    }
    for (int m = 0; m < 3; m++)
        free(v[m]);
    cio_close(f);
    close(fds[1]);
}

void fig_deadline(void)
{
    size_t n = bench_cfg.quick ? 40 : 1000;
    lateness l[3], heap[3];
    char note[160];
    snprintf(note, sizeof note, "%zu trials, %lld ms deadline, timerfd backend", n,
             (long long)(D_NS / NS_PER_MS));
    bench_lib_start(0, CIO_TIMER_AUTO);
    run_trials(n, l, 0);
    bench_lib_stop();
    bench_lib_start(0, CIO_TIMER_HEAP);
    run_trials(n / 2, heap, 1);
    bench_lib_stop();

    bench_report_one(2, "deadline_late_p50", "ns", (double)l[0].p50, "nanosleep_late_p50",
                     (double)l[1].p50, TARGET_RATIO_MAX, 1.5, note);
    bench_report_one(2, "deadline_late_p99", "ns", (double)l[0].p99, "nanosleep_late_p99",
                     (double)l[1].p99, TARGET_RATIO_MAX, 1.5, note);
    bench_report_one(2, "deadline_late_max", "ns", (double)l[0].max, "nanosleep_late_max",
                     (double)l[1].max, TARGET_NONE, 0, note);
    bench_report_one(2, "deadline_early", "count", (double)l[0].early, "nanosleep_early",
                     (double)l[1].early, TARGET_VALUE_MAX, 0,
                     "timeouts that returned before the deadline");
    bench_report_one(2, "deadline_late_p50_vs_poll", "ns", (double)l[0].p50, "poll_late_p50",
                     (double)l[2].p50, TARGET_RATIO_MAX, 1.0, "better than poll() with a timeout");
    bench_report_one(2, "deadline_late_p99_vs_poll", "ns", (double)l[0].p99, "poll_late_p99",
                     (double)l[2].p99, TARGET_RATIO_MAX, 1.0, "better than poll() with a timeout");
    snprintf(note, sizeof note, "%zu trials, heap backend (condvar)", n / 2);
    bench_report_one(2, "deadline_heap_late_p50", "ns", (double)heap[0].p50, "nanosleep_late_p50",
                     (double)l[1].p50, TARGET_NONE, 0, note);
    bench_report_one(2, "deadline_heap_late_p99", "ns", (double)heap[0].p99, "nanosleep_late_p99",
                     (double)l[1].p99, TARGET_NONE, 0, note);
}

/* ---- figure 3 ---- */

/* A thread that, each time it is told, blocks in one read until stopped. */
typedef struct blocker {
    pthread_t th;
    int raw; /* read(2) woken by SIGUSR2, or cio_read woken by cio_cancel */
    int fd;
    cio_file *f;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned go, done; /* mu: trials asked for, trials finished */
    int quit;          /* mu */
    atomic_long tid;
    atomic_int entered; /* set just before the read */
    int cpu;            /* the CPU (index among the allowed) it is pinned to */
    ns_t returned;      /* mu: when the read returned */
    int err;            /* mu: its errno */
} blocker;

static void on_sigusr2(int signo)
{
    (void)signo;
}

static void *blocker_main(void *arg)
{
    blocker *b = arg;
    char c;
    pin_self(b->cpu);
    atomic_store(&b->tid, current_tid());
    if (b->raw) {
        sigset_t s;
        sigemptyset(&s);
        sigaddset(&s, SIGUSR2);
        pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    }
    pthread_mutex_lock(&b->mu);
    for (;;) {
        while (b->go == b->done && !b->quit)
            pthread_cond_wait(&b->cv, &b->mu);
        if (b->quit)
            break;
        pthread_mutex_unlock(&b->mu);
        atomic_store(&b->entered, 1);
        ssize_t r = b->raw ? read(b->fd, &c, 1) : cio_read(b->f, &c, 1);
        ns_t t = now_ns();
        int e = r < 0 ? errno : 0;
        pthread_mutex_lock(&b->mu);
        b->returned = t;
        b->err = e;
        b->done++;
        pthread_cond_broadcast(&b->cv);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

static void blocker_start(blocker *b, int raw, int fd, cio_file *f, int cpu)
{
    memset(b, 0, sizeof *b);
    b->cpu = cpu;
    b->raw = raw;
    b->fd = fd;
    b->f = f;
    pthread_mutex_init(&b->mu, NULL);
    pthread_cond_init(&b->cv, NULL);
    if (pthread_create(&b->th, NULL, blocker_main, b) != 0)
        die("pthread_create");
    while (!atomic_load(&b->tid))
        sleep_for_ns(10 * NS_PER_US);
}

static void blocker_stop(blocker *b)
{
    pthread_mutex_lock(&b->mu);
    b->quit = 1;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
    pthread_join(b->th, NULL);
}

static void blocker_go(blocker *b)
{
    atomic_store(&b->entered, 0);
    pthread_mutex_lock(&b->mu);
    b->go++;
    pthread_cond_broadcast(&b->cv);
    pthread_mutex_unlock(&b->mu);
}

/* Wait for the trial to end; the time from t0 to the read's return. */
static ns_t blocker_wait(blocker *b, ns_t t0, int want_errno)
{
    pthread_mutex_lock(&b->mu);
    while (b->done != b->go)
        pthread_cond_wait(&b->cv, &b->mu);
    ns_t dt = b->returned - t0;
    int e = b->err;
    pthread_mutex_unlock(&b->mu);
    if (e != want_errno) {
        fprintf(stderr, "figure 3: read ended with errno %d, not %d\n", e, want_errno);
        exit(2);
    }
    return dt;
}

static atomic_long worker_tid;
static int traced_fd = -1;

/* The run of cancel_trials under way.  Unpinned, the scheduler places
 * every thread, and each trial starts after the process has slept GAP_NS,
 * as in a program that cancels a read now and then.  near[0] and near[1]
 * count the trials in which the thread to interrupt (the floor's reader,
 * cancelio's worker) had last run on the canceller's CPU: the rest pay for
 * waking another, idle, CPU. */
#define GAP_NS (2 * NS_PER_MS)
static struct trial_run {
    int unpinned;
    size_t near[2];
} trial;

static void before_trial(long tid, int which)
{
    if (!trial.unpinned)
        return;
    sleep_for_ns(GAP_NS);
    trial.near[which] += last_cpu(tid) == sched_getcpu();
}

static void on_event(const cio_event *ev, void *arg)
{
    (void)arg;
    if (ev->type == CIO_EV_OP_RUN && ev->fd == traced_fd)
        atomic_store(&worker_tid, current_tid());
}

static ns_t cancel_raw(blocker *b)
{
    blocker_go(b);
    while (!atomic_load(&b->entered))
        sleep_for_ns(10 * NS_PER_US); /* it may share this CPU: do not spin */
    if (!wait_blocked_in(atomic_load(&b->tid), SYS_read, NS_PER_S))
        die("figure 3: the raw reader never blocked");
    before_trial(atomic_load(&b->tid), 0);
    ns_t t0 = now_ns();
    pthread_kill(b->th, SIGUSR2);
    return blocker_wait(b, t0, EINTR);
}

/* One cancel; *signals gets how many cancel signals it took. */
static ns_t cancel_cio(blocker *b, uint64_t *signals)
{
    atomic_store(&worker_tid, 0);
    cio_set_trace(on_event, NULL);
    blocker_go(b);
    ns_t limit = now_ns() + NS_PER_S;
    while (!atomic_load(&worker_tid) && now_ns() < limit)
        sleep_for_ns(10 * NS_PER_US);
    if (!wait_blocked_in(atomic_load(&worker_tid), SYS_read, NS_PER_S))
        die("figure 3: the worker never blocked in read");
    cio_set_trace(NULL, NULL);                            /* no tracing cost in what is timed */
    if (atomic_load(&worker_tid) != atomic_load(&b->tid)) /* else the caller waits itself */
        wait_blocked_in(atomic_load(&b->tid), SYS_futex, NS_PER_S);
    cio_stats before, after;
    cio_get_stats(&before);
    before_trial(atomic_load(&worker_tid), 1);
    ns_t t0 = now_ns();
    cio_cancel(b->f, CIO_READ);
    ns_t dt = blocker_wait(b, t0, ECANCELED);
    cio_get_stats(&after);
    *signals = after.signals_sent - before.signals_sent;
    return dt;
}

/* Wait until both blocked threads sleep between trials; their sleeps so far. */
static void sleeps(blocker *b, long out[2])
{
    for (int i = 0; i < 2; i++) {
        wait_blocked_in(atomic_load(&b[i].tid), SYS_futex, NS_PER_S);
        out[i] = voluntary_switches(atomic_load(&b[i].tid));
    }
}

static void report_cancel(const char *where, ns_t *vc, ns_t *vr, size_t n, const double *slept)
{
    char name[48], base[48], note[256];
    const char *stat[3] = {"p50", "p99", "max"};
    ns_t c[3] = {0, 0, max_of(vc, n)}, r[3] = {0, 0, max_of(vr, n)};
    c[1] = percentile(vc, n, 99);
    r[1] = percentile(vr, n, 99);
    c[0] = percentile(vc, n, 50);
    r[0] = percentile(vr, n, 50);
    int pinned = !trial.unpinned;
    if (pinned)
        snprintf(note, sizeof note,
                 "%zu trials, blocked thread pinned to %s CPU as the canceller; "
                 "the caller slept %.2f times a trial (floor %.2f)",
                 n, strcmp(where, "same") == 0 ? "the same" : "another", slept[1], slept[0]);
    else
        snprintf(note, sizeof note,
                 "%zu trials, nothing pinned, %lld ms asleep before each; the thread to "
                 "interrupt had last run on the canceller's CPU in %.0f%% (floor: %.0f%%)",
                 n, (long long)(GAP_NS / NS_PER_MS), 100.0 * (double)trial.near[1] / (double)n,
                 100.0 * (double)trial.near[0] / (double)n);
    for (int i = 0; i < 3; i++) {
        snprintf(name, sizeof name, "cancel_%s%s_%s", where, pinned ? "_cpu" : "", stat[i]);
        snprintf(base, sizeof base, "kill_eintr_%s%s_%s", where, pinned ? "_cpu" : "", stat[i]);
        bench_report_one(3, name, "ns", (double)c[i], base, (double)r[i],
                         pinned && i < 2 ? TARGET_RATIO_MAX : TARGET_NONE, 1.5, note);
    }
}

/* n trials of each, alternating, with the blocked threads on CPU cpu (the
 * canceller is on CPU 0), or nothing pinned if cpu < 0; how many cancels
 * took more than one signal. */
static size_t cancel_trials(int cpu, size_t n)
{
    trial = (struct trial_run){.unpinned = cpu < 0};
    bench_lib_start(0, 0); /* fresh workers: made by the pinned callers */
    int a[2], b[2];
    empty_pipe(a);
    empty_pipe(b);
    cio_file *f = cio_fdopen(a[0]);
    traced_fd = a[0];
    blocker bl[2]; /* the floor's reader, cancelio's caller */
    blocker_start(&bl[0], 1, b[0], NULL, cpu);
    blocker_start(&bl[1], 0, -1, f, cpu);
    ns_t *vr = calloc(n, sizeof *vr), *vc = calloc(n, sizeof *vc);
    uint64_t signals;
    size_t multi = 0;
    long s0[2], s1[2];
    sleeps(bl, s0);
    for (size_t i = 0; i < n; i++) {
        if (i % 2) {
            vr[i] = cancel_raw(&bl[0]);
            vc[i] = cancel_cio(&bl[1], &signals);
        } else {
            vc[i] = cancel_cio(&bl[1], &signals);
            vr[i] = cancel_raw(&bl[0]);
        }
        multi += signals > 1;
    }
    sleeps(bl, s1);
    double slept[2] = {(double)(s1[0] - s0[0]) / (double)n, (double)(s1[1] - s0[1]) / (double)n};
    blocker_stop(&bl[0]);
    blocker_stop(&bl[1]);
    const char *where = cpu < 0 ? "unpinned" : cpu == 0 ? "same" : "cross";
    char name[64];
    snprintf(name, sizeof name, "cancel_cio_%s.txt", where);
    save_samples(name, vc, n);
    snprintf(name, sizeof name, "cancel_raw_%s.txt", where);
    save_samples(name, vr, n);
    report_cancel(where, vc, vr, n, slept);
    free(vr);
    free(vc);
    cio_close(f);
    close(a[1]);
    close(b[0]);
    close(b[1]);
    bench_lib_stop();
    return multi;
}

void fig_cancel(void)
{
    size_t n = bench_cfg.quick ? 100 : 2000, multi = 0, total = 0;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr2; /* no SA_RESTART: read fails with EINTR */
    sigaction(SIGUSR2, &sa, NULL);
    pin_self(0);
    for (int cpu = allowed_cpus() > 1 ? 1 : 0; cpu >= 0; cpu--, total += n)
        multi += cancel_trials(cpu, n);
    pin_self(-1);
    /* What a program that does not pin its threads sees (no target: where
     * the scheduler puts the worker, and whether that CPU is asleep, decide
     * it more than the library does; docs/performance.md, sixth round). */
    multi += cancel_trials(-1, n / 2);
    total += n / 2;
    char note[160];
    snprintf(note, sizeof note, "%.2f%% of %zu cancels needed a second signal",
             100.0 * (double)multi / (double)total, total);
    bench_report_one(3, "cancel_resignalled", "count", (double)multi, "", 0, TARGET_NONE, 0, note);
    signal(SIGUSR2, SIG_DFL);
}
