/*
 * Figure 4: N reads blocked at once on N empty pipes, with staggered
 * deadlines (the i-th at start + 200 ms + i * 100 ms / N); all must time out.
 *
 * A blocking cio_read needs a calling thread, so the bench starts N callers
 * (64 KiB stacks) and the library N workers.  The reads start with no
 * deadline; once every worker exists (the RSS peak) the bench sets the
 * staggered deadlines on the blocked reads (rule 3), so that the lateness
 * measures the timers and not how long 10,000 threads take to start.
 * The callers' own cost is
 * measured first, in the same run: N plain threads of the same stack size
 * blocked on a condvar (their RSS), then sleeping with clock_nanosleep to
 * the same staggered deadlines (their lateness), then woken and joined
 * (their tear-down).  cancelio's RSS per op is reported net of the callers.
 *
 * 10,000 pipes are 20,000 descriptors; where RLIMIT_NOFILE cannot hold
 * that, each pipe is reopened O_RDWR through /proc/self/fd (Linux: a fd
 * that is both the pipe's reader and writer, so a read still blocks), one
 * descriptor per pipe, and the note says so.
 */
#include "bench.h"

#include <cancelio.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define CALLER_STACK ((size_t)64 * 1024)
#define SPREAD (100 * NS_PER_MS)

typedef struct caller {
    pthread_t th;
    cio_file *f; /* NULL: a baseline thread */
    ns_t deadline;
    ns_t returned;
    int err;
} caller;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int phase;                /* 0 wait, 1 go, 2 exit */
    unsigned ready, finished; /* threads at the start line, threads done */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

typedef struct scale_run {
    unsigned n;
    int *fds;     /* the read side (or the O_RDWR fd) of each pipe */
    int *wfds;    /* the write sides, -1 in reopen mode */
    int reopened; /* one O_RDWR fd per pipe */
    caller *c;
    ns_t base; /* first deadline after start */
} scale_run;

static void gate_reset(void)
{
    gate.phase = 0;
    gate.ready = gate.finished = 0;
}

static void gate_set(int phase)
{
    pthread_mutex_lock(&gate.mu);
    gate.phase = phase;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

/* Wait until the counter reaches n or until limit; its value. */
static unsigned gate_wait(unsigned *counter, unsigned n, ns_t limit)
{
    pthread_mutex_lock(&gate.mu);
    while (*counter < n && now_ns() < limit) {
        pthread_mutex_unlock(&gate.mu);
        sleep_for_ns(NS_PER_MS);
        pthread_mutex_lock(&gate.mu);
    }
    unsigned v = *counter;
    pthread_mutex_unlock(&gate.mu);
    return v;
}

static void wait_phase(int phase)
{
    while (gate.phase < phase)
        pthread_cond_wait(&gate.cv, &gate.mu);
}

static void *caller_main(void *arg)
{
    caller *c = arg;
    char byte;
    pthread_mutex_lock(&gate.mu);
    gate.ready++;
    wait_phase(1);
    pthread_mutex_unlock(&gate.mu);
    if (c->f) {
        ssize_t r = cio_read(c->f, &byte, 1); /* the bench sets its deadline */
        c->err = r < 0 ? errno : 0;
    } else {
        sleep_until_ns(c->deadline);
        c->err = ETIMEDOUT;
    }
    c->returned = now_ns();
    pthread_mutex_lock(&gate.mu);
    gate.finished++;
    if (!c->f)
        wait_phase(2); /* the baseline stays, to be woken and joined */
    pthread_mutex_unlock(&gate.mu);
    return NULL;
}

/* Start the callers (with files or not); how many started. */
static unsigned spawn(scale_run *s, cio_file **files)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, CALLER_STACK);
    unsigned k = 0;
    for (; k < s->n; k++) {
        s->c[k] = (caller){.f = files ? files[k] : NULL};
        if (pthread_create(&s->c[k].th, &a, caller_main, &s->c[k]) != 0)
            break;
    }
    pthread_attr_destroy(&a);
    if (k == 0)
        die("figure 4: pthread_create");
    return k;
}

/* Staggered deadlines from now on, the first one base away; the first. */
static ns_t stagger(scale_run *s, unsigned k)
{
    ns_t first = now_ns() + s->base;
    for (unsigned i = 0; i < k; i++)
        s->c[i].deadline = first + (ns_t)i * (SPREAD / s->n);
    return first;
}

/* The latest return after its deadline; counts the bad ones in *bad.
 * The lateness of each, in deadline order, goes to the samples file. */
static ns_t max_late(const scale_run *s, unsigned k, unsigned *bad, const char *what)
{
    ns_t m = 0, *v = calloc(k ? k : 1, sizeof *v);
    *bad = s->n - k;
    for (unsigned i = 0; i < k; i++) {
        ns_t late = v[i] = s->c[i].returned - s->c[i].deadline;
        m = late > m ? late : m;
        *bad += late < 0 || s->c[i].err != ETIMEDOUT;
    }
    char name[64];
    snprintf(name, sizeof name, "scale_%s_%u.txt", what, s->n);
    save_samples(name, v, k);
    free(v);
    return m;
}

static int open_pipes(scale_run *s)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    s->reopened = (rlim_t)s->n * 2 + 64 > rl.rlim_cur;
    if ((rlim_t)s->n + 64 > rl.rlim_cur)
        return -1;
    for (unsigned i = 0; i < s->n; i++) {
        int p[2];
        if (pipe(p) < 0)
            return -1;
        s->fds[i] = p[0];
        s->wfds[i] = p[1];
        if (s->reopened) {
            char path[64];
            snprintf(path, sizeof path, "/proc/self/fd/%d", p[0]);
            s->fds[i] = open(path, O_RDWR);
            close(p[0]);
            close(p[1]);
            s->wfds[i] = -1;
            if (s->fds[i] < 0)
                return -1;
        }
    }
    return 0;
}

typedef struct baseline {
    double kib_per_thread;
    ns_t late_max, teardown;
} baseline;

static baseline run_baseline(scale_run *s)
{
    baseline b;
    gate_reset();
    long rss0 = proc_status_kib("VmRSS");
    unsigned k = spawn(s, NULL);
    gate_wait(&gate.ready, k, now_ns() + 60 * NS_PER_S);
    b.kib_per_thread = (double)(proc_status_kib("VmRSS") - rss0) / (double)k;
    stagger(s, k);
    gate_set(1);
    gate_wait(&gate.finished, k, now_ns() + s->base + SPREAD + 60 * NS_PER_S);
    unsigned bad;
    b.late_max = max_late(s, k, &bad, "nanosleep");
    ns_t t = now_ns();
    gate_set(2);
    for (unsigned i = 0; i < k; i++)
        pthread_join(s->c[i].th, NULL);
    b.teardown = now_ns() - t;
    return b;
}

static void report4(const scale_run *s, const char *what, const char *unit, double v,
                    const char *base, double bv, int kind, double target, const char *note)
{
    bench_result r = {.figure = 4, .unit = unit, .value = v, .baseline_value = bv};
    r.target_kind = kind;
    r.target = target;
    snprintf(r.name, sizeof r.name, "scale_%u_%s", s->n, what);
    if (base[0])
        snprintf(r.baseline, sizeof r.baseline, "%s_%u", base, s->n);
    snprintf(r.note, sizeof r.note, "%s", note);
    bench_report(&r);
}

static void run_cio(scale_run *s, const baseline *b)
{
    bench_lib_start(s->n + 2000, 0);
    gate_reset();
    long rss0 = proc_status_kib("VmRSS"), kstack0 = meminfo_kib("KernelStack");
    int hwm_ok = reset_peak_rss() == 0;
    cio_file **files = calloc(s->n, sizeof *files);
    for (unsigned i = 0; i < s->n; i++)
        if (!(files[i] = cio_fdopen(s->fds[i])))
            die("cio_fdopen");
    unsigned k = spawn(s, files);
    gate_wait(&gate.ready, k, now_ns() + 60 * NS_PER_S);
    /* Let every read block (no deadline yet): peak, every worker exists. */
    long want = proc_status_kib("Threads") + k;
    ns_t start = now_ns();
    gate_set(1);
    while (proc_status_kib("Threads") < want && now_ns() < start + 60 * NS_PER_S)
        sleep_for_ns(NS_PER_MS);
    ns_t all_in = now_ns();
    sleep_for_ns(20 * NS_PER_MS); /* the last ones get into read(2) */
    long rss = proc_status_kib("VmRSS"), threads = proc_status_kib("Threads");
    long kstack = meminfo_kib("KernelStack") - kstack0;
    int slots = bench_futex_hash_slots();
    cio_stats st;
    cio_get_stats(&st);
    /* Rule 3: a deadline set while the op is blocked governs it. */
    ns_t first = stagger(s, k);
    for (unsigned i = 0; i < k; i++)
        cio_set_read_deadline(files[i], s->c[i].deadline);
    ns_t set_ms = now_ns() - (first - s->base);
    unsigned fin = gate_wait(&gate.finished, k, first + SPREAD + 30 * NS_PER_S);
    for (unsigned i = 0; fin < k && i < k; i++)
        cio_cancel(files[i], CIO_READ); /* a read that never timed out */
    long hwm = hwm_ok ? proc_status_kib("VmHWM") : rss;
    double gross = (double)((hwm > rss ? hwm : rss) - rss0) / (double)k;
    unsigned bad;
    ns_t late = max_late(s, k, &bad, "cio");
    for (unsigned i = 0; i < k; i++)
        pthread_join(s->c[i].th, NULL);
    ns_t t = now_ns();
    for (unsigned i = 0; i < s->n; i++)
        cio_close(files[i]);
    bench_lib_stop();
    ns_t teardown = now_ns() - t;
    free(files);

    char note[160];
    snprintf(note, sizeof note,
             "%u of %u timed out on time; %s; all blocked in %.0f ms; deadlines set in %.1f ms",
             s->n - bad, s->n, s->reopened ? "1 fd a pipe (O_RDWR reopen)" : "2 fds a pipe",
             (double)(all_in - start) / NS_PER_MS, (double)set_ms / NS_PER_MS);
    report4(s, "bad_timeouts", "count", bad, "", 0, TARGET_VALUE_MAX, 0, note);
    if (slots > 0)
        snprintf(note, sizeof note, "latest return after its deadline; futex hash %d slots", slots);
    else
        snprintf(note, sizeof note, "latest return after its deadline; %s futex hash",
                 slots == 0 ? "global" : "unknown");
    report4(s, "late_max", "ns", (double)late, "nanosleep_late_max", (double)b->late_max,
            TARGET_NONE, 0, note);
    snprintf(note, sizeof note,
             "net of the callers; gross %.1f KiB%s; kernel stacks (not RSS) %.1f KiB a thread",
             gross, hwm_ok ? "" : " (VmHWM not resettable: sampled)",
             (double)kstack / (2.0 * (double)k));
    report4(s, "rss_per_op", "KiB", gross - b->kib_per_thread, "condvar_thread_rss",
            b->kib_per_thread, s->n >= 10000 ? TARGET_VALUE_MAX : TARGET_NONE, 16, note);
    snprintf(note, sizeof note, "library workers at peak; process threads %ld", threads);
    report4(s, "threads", "threads", st.threads, "blocked_reads", s->n, TARGET_NONE, 0, note);
    report4(s, "teardown", "ns", (double)teardown, "join_threads", (double)b->teardown, TARGET_NONE,
            0, "cio_close of every file + cio_shutdown");
}

static void run_n(unsigned n)
{
    scale_run s = {.n = n, .base = 200 * NS_PER_MS};
    s.fds = calloc(n, sizeof *s.fds);
    s.wfds = calloc(n, sizeof *s.wfds);
    s.c = calloc(n, sizeof *s.c);
    for (unsigned i = 0; i < n; i++)
        s.fds[i] = s.wfds[i] = -1;
    if (open_pipes(&s) < 0) {
        char note[160];
        snprintf(note, sizeof note, "cannot open %u pipes (RLIMIT_NOFILE): skipped", n);
        report4(&s, "bad_timeouts", "count", n, "", 0, TARGET_VALUE_MAX, 0, note);
        for (unsigned i = 0; i < n; i++)
            if (s.fds[i] >= 0)
                close(s.fds[i]);
    } else {
        baseline b = run_baseline(&s);
        run_cio(&s, &b); /* closes fds */
    }
    for (unsigned i = 0; i < n; i++)
        if (s.wfds[i] >= 0)
            close(s.wfds[i]);
    free(s.fds);
    free(s.wfds);
    free(s.c);
}

void fig_scale(void)
{
    static const unsigned full[] = {10, 100, 1000, 10000};
    size_t count = bench_cfg.quick ? 3 : 4;
    for (size_t i = 0; i < count; i++) {
        fprintf(stderr, "cio_bench:   N = %u\n", full[i]);
        run_n(full[i]);
    }
}
