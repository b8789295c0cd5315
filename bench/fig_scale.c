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
 * that, the write sides are made in batches, each batch handed to a child
 * process that only holds them (so that the reads still block) and closed
 * here: one descriptor per pipe in this process, and the note says so.
 * (Reopening each read side O_RDWR through /proc would also keep one fd a
 * pipe, but that opens it as a FIFO is opened, and Linux has no
 * non-blocking try (RWF_NOWAIT) for a FIFO: its reads would be another
 * case, the one that always needs a worker.)
 */
#include "bench.h"

#include <cancelio.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define CALLER_STACK ((size_t)64 * 1024)
#define SPREAD (100 * NS_PER_MS)

typedef struct caller {
    pthread_t th;
    cio_file *f; /* NULL: a baseline thread */
    int bare;    /* a baseline thread whose read is the model bare's */
    bare_job job;
    ns_t deadline;
    ns_t returned;
    int err;
} caller;

/* The start line is a condvar; the finish line is sigwait(2) for SIGUSR2,
 * blocked in every caller, which the main thread sends each of them at the
 * end.  A caller that has returned must wait outside every shared kernel
 * structure: on a condvar, up to 10,000 finished threads would sit on one
 * futex, in one bucket of the process's futex hash, and every later futex
 * wake-up that hashes there (the library's, on the side measured against a
 * floor that has none) would walk them all; in read(2) on one pipe, each
 * arrival would spin on the pipe's lock. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int phase;                 /* 0 wait, 1 go */
    unsigned ready;            /* threads at the start line */
    _Atomic unsigned finished; /* threads done */
} gate = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0};

typedef struct scale_run {
    unsigned n;
    const char *kind;     /* "" for figure 4; "spread" or "instant" for figure 7 */
    ns_t spread;          /* deadlines over this span; 0: all at one instant */
    unsigned max_threads; /* cio_options.max_threads (0: the library's) */
    int *fds;             /* the read side (or the O_RDWR fd) of each pipe */
    int *wfds;            /* the write sides, -1 where a holder has them */
    int reopened;         /* the write sides are held by children */
    pid_t holders[8];     /* those children */
    int nholders;
    caller *c;
    ns_t base; /* first deadline after start */
} scale_run;

static void gate_reset(void)
{
    gate.phase = 0;
    gate.ready = 0;
    atomic_store(&gate.finished, 0);
}

static void gate_set(int phase)
{
    pthread_mutex_lock(&gate.mu);
    gate.phase = phase;
    pthread_cond_broadcast(&gate.cv);
    pthread_mutex_unlock(&gate.mu);
}

static void finish_line(sigset_t *set)
{
    sigemptyset(set);
    sigaddset(set, SIGUSR2);
}

/* Let the k callers past the finish line, and join them. */
static void release_and_join(scale_run *s, unsigned k)
{
    for (unsigned i = 0; i < k; i++)
        pthread_kill(s->c[i].th, SIGUSR2);
    for (unsigned i = 0; i < k; i++)
        pthread_join(s->c[i].th, NULL);
}

static unsigned ready_count(void)
{
    pthread_mutex_lock(&gate.mu);
    unsigned v = gate.ready;
    pthread_mutex_unlock(&gate.mu);
    return v;
}

/* Wait until count() reaches n or until limit; its value. */
static unsigned gate_wait(unsigned (*count)(void), unsigned n, ns_t limit)
{
    unsigned v;
    while ((v = count()) < n && now_ns() < limit)
        sleep_for_ns(NS_PER_MS);
    return v;
}

static unsigned finished_count(void)
{
    return atomic_load(&gate.finished);
}

/* The CPU time of the whole process so far (user and system). */
static ns_t process_cpu(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (ns_t)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * NS_PER_S +
           (ns_t)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) * NS_PER_US;
}

/* Wait until k callers have finished, or until limit; how many did.  From
 * just before the first deadline on, it measures the process's CPU time:
 * *cpu gets it per expiry (what the deadlines cost, every thread, the
 * kernel's work for them included). */
static unsigned wait_window(unsigned k, ns_t first, ns_t limit, double *cpu)
{
    sleep_until_ns(first - 5 * NS_PER_MS);
    ns_t c0 = process_cpu();
    unsigned fin = gate_wait(finished_count, k, limit);
    *cpu = (double)(process_cpu() - c0) / (double)(k ? k : 1);
    return fin;
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
    sigset_t line;
    finish_line(&line);
    pthread_sigmask(SIG_BLOCK, &line, NULL);
    pthread_mutex_lock(&gate.mu);
    gate.ready++;
    wait_phase(1);
    pthread_mutex_unlock(&gate.mu);
    if (c->f) {
        ssize_t r = cio_read(c->f, &byte, 1); /* the bench sets its deadline */
        c->err = r < 0 ? errno : 0;
    } else if (c->bare) {
        bare_wait(&c->job);
        c->err = ETIMEDOUT;
    } else {
        sleep_until_ns(c->deadline);
        c->err = ETIMEDOUT;
    }
    c->returned = now_ns();
    atomic_fetch_add(&gate.finished, 1);
    /* It stays until all are done: threads exiting meanwhile (stacks
     * unmapped, TLB shootdowns) would slow the others down, on either side. */
    int sig;
    while (sigwait(&line, &sig) != 0)
        continue;
    return NULL;
}

/* Start the callers (with files, for the model bare, or sleeping); how
 * many started. */
static unsigned spawn(scale_run *s, cio_file **files, int bare)
{
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, CALLER_STACK);
    unsigned k = 0;
    for (; k < s->n; k++) {
        s->c[k] = (caller){.f = files ? files[k] : NULL, .bare = bare};
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
        s->c[i].deadline = first + (ns_t)i * (s->spread / s->n);
    return first;
}

typedef struct late_stats {
    ns_t p50, p99, max;
} late_stats;

/* How late the returns were; counts the bad ones in *bad.  The lateness of
 * each, in deadline order, goes to the samples file. */
static late_stats lateness(const scale_run *s, unsigned k, unsigned *bad, const char *what)
{
    late_stats l = {0, 0, 0};
    ns_t *v = calloc(k ? k : 1, sizeof *v);
    *bad = s->n - k;
    for (unsigned i = 0; i < k; i++) {
        ns_t late = v[i] = s->c[i].returned - s->c[i].deadline;
        *bad += late < 0 || s->c[i].err != ETIMEDOUT;
    }
    char name[64];
    snprintf(name, sizeof name, "scale_%s%s%s_%u.txt", s->kind, s->kind[0] ? "_" : "", what, s->n);
    save_samples(name, v, k);
    l.max = max_of(v, k);
    l.p99 = percentile(v, k, 99);
    l.p50 = percentile(v, k, 50);
    free(v);
    return l;
}

/* A child that keeps the write sides open meanwhile (it inherits every fd
 * of this process at the fork) until the bench kills it. */
static int hold_write_sides(scale_run *s, unsigned from, unsigned to)
{
    if (s->nholders == (int)(sizeof s->holders / sizeof s->holders[0]))
        return -1;
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        for (;;)
            pause();
    }
    s->holders[s->nholders++] = pid;
    for (unsigned i = from; i < to; i++) {
        close(s->wfds[i]);
        s->wfds[i] = -1;
    }
    return 0;
}

static void let_go_of_holders(scale_run *s)
{
    for (int i = 0; i < s->nholders; i++) {
        kill(s->holders[i], SIGKILL);
        waitpid(s->holders[i], NULL, 0);
    }
    s->nholders = 0;
}

static int open_pipes(scale_run *s)
{
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    s->reopened = (rlim_t)s->n * 2 + 64 > rl.rlim_cur;
    if ((rlim_t)s->n + s->n / 8 + 64 > rl.rlim_cur)
        return -1; /* more than 8 holders */
    /* with holders, this process has the read sides so far and one batch
     * of write sides at a time */
    unsigned batch = s->reopened ? (unsigned)(rl.rlim_cur - 64 - s->n) : s->n, first = 0;
    for (unsigned i = 0; i < s->n; i++) {
        int p[2];
        if (pipe(p) < 0)
            return -1;
        s->fds[i] = p[0];
        s->wfds[i] = p[1];
        if (s->reopened && (i + 1 - first == batch || i + 1 == s->n)) {
            if (hold_write_sides(s, first, i + 1) < 0)
                return -1;
            first = i + 1;
        }
    }
    return 0;
}

/* A run of the library closed the read sides: a fresh set of pipes. */
static int reopen_pipes(scale_run *s)
{
    for (unsigned i = 0; i < s->n; i++) {
        if (s->wfds[i] >= 0)
            close(s->wfds[i]);
        s->fds[i] = s->wfds[i] = -1;
    }
    let_go_of_holders(s);
    return open_pipes(s);
}

typedef struct baseline {
    double kib_per_thread;
    late_stats late;
    double cpu; /* per expiry */
    ns_t teardown;
} baseline;

static baseline run_baseline(scale_run *s)
{
    baseline b;
    gate_reset();
    long rss0 = proc_status_kib("VmRSS");
    unsigned k = spawn(s, NULL, 0);
    gate_wait(ready_count, k, now_ns() + 60 * NS_PER_S);
    b.kib_per_thread = (double)(proc_status_kib("VmRSS") - rss0) / (double)k;
    ns_t first = stagger(s, k);
    gate_set(1);
    wait_window(k, first, first + s->spread + 60 * NS_PER_S, &b.cpu);
    unsigned bad;
    b.late = lateness(s, k, &bad, "nanosleep");
    ns_t t = now_ns();
    release_and_join(s, k);
    b.teardown = now_ns() - t;
    return b;
}

static void report4(const scale_run *s, const char *what, const char *unit, double v,
                    const char *base, double bv, int kind, double target, const char *note)
{
    int mass = s->kind[0] != '\0';
    char name[48], base_name[48] = "";
    if (mass)
        snprintf(name, sizeof name, "%s_%u_%s", s->kind, s->n, what);
    else
        snprintf(name, sizeof name, "scale_%u_%s", s->n, what);
    if (base[0])
        snprintf(base_name, sizeof base_name, "%s_%u", base, s->n);
    bench_report_one(mass ? 7 : 4, name, unit, v, base_name, bv, kind, target, note);
}

/* What one cancelio run measured. */
typedef struct cio_result {
    unsigned bad;
    late_stats late;
    double cpu; /* per expiry */
    double gross_kib, kstack_kib;
    int hwm_ok, slots;
    long threads;
    unsigned workers, on_callers;
    ns_t all_in, set, teardown;
} cio_result;

/* The library's thread cap in this run (4,096 is its default). */
static unsigned thread_cap(const scale_run *s)
{
    return s->max_threads ? s->max_threads : 4096;
}

static unsigned callers_waiting(void)
{
    cio_stats st;
    cio_get_stats(&st);
    return st.callers_waiting;
}

/* Start the reads with no deadline and wait until every one that can have a
 * worker has one (the RSS peak), the others in the library's queue; or
 * until every one waits on its caller (cio_options.waits). */
static unsigned block_all(scale_run *s, cio_file **files, cio_result *out)
{
    unsigned k = spawn(s, files, 0);
    gate_wait(ready_count, k, now_ns() + 60 * NS_PER_S);
    unsigned cap = thread_cap(s);
    long want = proc_status_kib("Threads") + (k < cap ? k : cap);
    ns_t start = now_ns();
    gate_set(1);
    /* every read on a worker (or in the queue), or on its caller */
    while (proc_status_kib("Threads") < want && callers_waiting() < k &&
           now_ns() < start + 60 * NS_PER_S)
        sleep_for_ns(NS_PER_MS);
    out->all_in = now_ns() - start;
    sleep_for_ns(20 * NS_PER_MS); /* the last ones get into read(2) */
    return k;
}

static cio_result run_cio(scale_run *s)
{
    cio_result o = {0};
    bench_lib_start(s->max_threads, 0);
    gate_reset();
    long rss0 = proc_status_kib("VmRSS"), kstack0 = meminfo_kib("KernelStack");
    o.hwm_ok = reset_peak_rss() == 0;
    cio_file **files = calloc(s->n, sizeof *files);
    for (unsigned i = 0; i < s->n; i++)
        if (!(files[i] = cio_fdopen(s->fds[i])))
            die("cio_fdopen");
    unsigned k = block_all(s, files, &o);
    long rss = proc_status_kib("VmRSS");
    o.threads = proc_status_kib("Threads");
    o.kstack_kib = (double)(meminfo_kib("KernelStack") - kstack0) / (2.0 * (double)k);
    o.slots = bench_futex_hash_slots();
    cio_stats st;
    cio_get_stats(&st);
    o.workers = st.threads;
    o.on_callers = st.callers_waiting;
    /* Rule 3: a deadline set while the op is blocked governs it. */
    ns_t first = stagger(s, k);
    for (unsigned i = 0; i < k; i++)
        cio_set_read_deadline(files[i], s->c[i].deadline);
    o.set = now_ns() - (first - s->base);
    unsigned fin = wait_window(k, first, first + s->spread + 30 * NS_PER_S, &o.cpu);
    for (unsigned i = 0; fin < k && i < k; i++)
        cio_cancel(files[i], CIO_READ); /* a read that never timed out */
    long hwm = o.hwm_ok ? proc_status_kib("VmHWM") : rss;
    o.gross_kib = (double)((hwm > rss ? hwm : rss) - rss0) / (double)k;
    o.late = lateness(s, k, &o.bad, "cio");
    release_and_join(s, k);
    ns_t t = now_ns();
    for (unsigned i = 0; i < s->n; i++)
        cio_close(files[i]);
    bench_lib_stop();
    o.teardown = now_ns() - t;
    free(files);
    return o;
}

static void report_bad(const scale_run *s, const cio_result *o)
{
    char note[160];
    snprintf(note, sizeof note,
             "%u of %u timed out on time; %s; all blocked in %.0f ms; deadlines set in %.1f ms",
             s->n - o->bad, s->n,
             s->reopened ? "1 fd a pipe (write sides held by children)" : "2 fds a pipe",
             (double)o->all_in / NS_PER_MS, (double)o->set / NS_PER_MS);
    report4(s, "bad_timeouts", "count", o->bad, "", 0, TARGET_VALUE_MAX, 0, note);
}

static void futex_note(char *note, size_t size, const char *what, int slots)
{
    if (slots > 0)
        snprintf(note, size, "%s; futex hash %d slots", what, slots);
    else
        snprintf(note, size, "%s; %s futex hash", what, slots == 0 ? "global" : "unknown");
}

static void report_scale(const scale_run *s, const baseline *b, const cio_result *o)
{
    char note[160];
    report_bad(s, o);
    futex_note(note, sizeof note, "latest return after its deadline", o->slots);
    report4(s, "late_max", "ns", (double)o->late.max, "nanosleep_late_max", (double)b->late.max,
            TARGET_NONE, 0, note);
    snprintf(note, sizeof note,
             "net of the callers; gross %.1f KiB%s; kernel stacks (not RSS) %.1f KiB a thread",
             o->gross_kib, o->hwm_ok ? "" : " (VmHWM not resettable: sampled)", o->kstack_kib);
    report4(s, "rss_per_op", "KiB", o->gross_kib - b->kib_per_thread, "condvar_thread_rss",
            b->kib_per_thread, s->n >= 10000 ? TARGET_VALUE_MAX : TARGET_NONE, 16, note);
    snprintf(note, sizeof note, "library workers at peak; process threads %ld", o->threads);
    report4(s, "threads", "threads", o->workers, "blocked_reads", s->n, TARGET_NONE, 0, note);
    report4(s, "teardown", "ns", (double)o->teardown, "join_threads", (double)b->teardown,
            TARGET_NONE, 0, "cio_close of every file + cio_shutdown");
}

/* The model bare's run (bare_model.c): ok, or errno when it could not run. */
typedef struct bare_result {
    int ok, err;
    late_stats late;
    double cpu; /* per expiry */
} bare_result;

/* The same callers as the floor's, each waiting for a worker of a pool as
 * large as the library's thread cap to time its read out. */
static bare_result run_bare(scale_run *s)
{
    bare_result r = {0};
    unsigned cap = thread_cap(s);
    gate_reset();
    unsigned k = spawn(s, NULL, 1);
    gate_wait(ready_count, k, now_ns() + 60 * NS_PER_S);
    bare_job **jobs = calloc(k, sizeof *jobs);
    if (!jobs || bare_open(s->fds, k < cap ? k : cap) < 0) {
        r.err = jobs ? errno : ENOMEM;
        for (unsigned i = 0; i < k; i++)
            atomic_store(&s->c[i].job.done, 1); /* nothing to wait for */
        gate_set(1);
        gate_wait(finished_count, k, now_ns() + 60 * NS_PER_S);
        release_and_join(s, k);
        free(jobs);
        return r;
    }
    ns_t first = stagger(s, k);
    for (unsigned i = 0; i < k; i++) {
        s->c[i].job.deadline = s->c[i].deadline;
        jobs[i] = &s->c[i].job;
    }
    gate_set(1);
    bare_serve(jobs, k);
    if (wait_window(k, first, first + s->spread + 30 * NS_PER_S, &r.cpu) < k)
        die("figure 7: a read of the model bare never timed out");
    unsigned bad;
    r.late = lateness(s, k, &bad, "bare");
    bare_close();
    release_and_join(s, k);
    free(jobs);
    r.ok = 1;
    return r;
}

/* Figure 7: lateness percentiles against the same percentiles of the floor;
 * p99 has the target (20x spread, 3x at one instant).  Against the model
 * bare, and the CPU an expiry, with no target: they say how much of the
 * distance to the floor the model itself costs on this machine. */
static void report_mass(const scale_run *s, const baseline *b, const bare_result *bare,
                        const cio_result *o, double target, int runs, const char *all)
{
    char what[192], note[256];
    report_bad(s, o);
    unsigned placed = o->workers + o->on_callers;
    snprintf(what, sizeof what,
             "%u on their callers, %u on workers, %u queued; median of %d runs by p99 ratio (%s)",
             o->on_callers, o->workers, s->n > placed ? s->n - placed : 0, runs, all);
    futex_note(note, sizeof note, what, o->slots);
    report4(s, "late_p50", "ns", (double)o->late.p50, "nanosleep_late_p50", (double)b->late.p50,
            TARGET_NONE, 0, note);
    report4(s, "late_p99", "ns", (double)o->late.p99, "nanosleep_late_p99", (double)b->late.p99,
            TARGET_RATIO_MAX, target, note);
    report4(s, "late_max", "ns", (double)o->late.max, "nanosleep_late_max", (double)b->late.max,
            TARGET_NONE, 0, note);
    if (bare->ok) {
        snprintf(note, sizeof note,
                 "the model with no library: a worker thread per read, its own POSIX timer, a "
                 "futex wake (bench/bare_model.c); same run");
        report4(s, "late_p50_vs_bare", "ns", (double)o->late.p50, "bare_model_late_p50",
                (double)bare->late.p50, TARGET_NONE, 0, note);
        report4(s, "late_p99_vs_bare", "ns", (double)o->late.p99, "bare_model_late_p99",
                (double)bare->late.p99, TARGET_NONE, 0, note);
        snprintf(note, sizeof note,
                 "process CPU (getrusage) from 5 ms before the first deadline to the last "
                 "return, an expiry; the model bare: %.1f us (%.2fx the floor)",
                 bare->cpu / NS_PER_US, bare->cpu / (b->cpu > 0 ? b->cpu : 1));
    } else {
        snprintf(note, sizeof note,
                 "process CPU (getrusage) from 5 ms before the first deadline to the last "
                 "return, an expiry; the model bare could not run here: %s",
                 strerror(bare->err));
    }
    report4(s, "cpu_per_expiry", "ns", o->cpu, "nanosleep_cpu_per_expiry", b->cpu, TARGET_NONE, 0,
            note);
}

/* Figure 7 runs each case this many times, the floor, the model bare and
 * the library in turn, and reports the run whose p99 ratio (library over
 * floor) is the median: on a shared machine one run's floor or its library
 * side can be hit by a burst of load, and a single run then says more about
 * the neighbours than about either. */
#define MASS_RUNS 3

typedef struct mass_run {
    baseline b;
    bare_result bare;
    cio_result o;
    double ratio; /* p99 of the library over p99 of the floor */
} mass_run;

static int by_ratio(const void *a, const void *b)
{
    double x = ((const mass_run *)a)->ratio, y = ((const mass_run *)b)->ratio;
    return (x > y) - (x < y);
}

/* The floor, the model bare and the library, runs times; the median run,
 * and every run's ratio in *all (in run order). */
static mass_run median_run(scale_run *s, int runs, char *all, size_t size)
{
    mass_run r[MASS_RUNS];
    size_t used = 0;
    all[0] = '\0';
    int done = 0;
    for (int i = 0; i < runs; i++, done++) {
        if (i > 0 && reopen_pipes(s) < 0)
            break; /* the runs so far */
        r[i].b = run_baseline(s);
        r[i].bare = run_bare(s);
        r[i].o = run_cio(s);
        r[i].ratio = (double)r[i].o.late.p99 / (double)(r[i].b.late.p99 > 0 ? r[i].b.late.p99 : 1);
        used += (size_t)snprintf(all + used, size - used, "%s%.3g", i ? ", " : "", r[i].ratio);
        if (used >= size)
            used = size - 1;
    }
    qsort(r, (size_t)done, sizeof r[0], by_ratio);
    return r[done / 2];
}

/* Open the pipes, run the floor and cancelio, report. */
static void run_case(scale_run *s, double target)
{
    unsigned n = s->n;
    s->fds = calloc(n, sizeof *s->fds);
    s->wfds = calloc(n, sizeof *s->wfds);
    s->c = calloc(n, sizeof *s->c);
    for (unsigned i = 0; i < n; i++)
        s->fds[i] = s->wfds[i] = -1;
    if (open_pipes(s) < 0) {
        char note[160];
        snprintf(note, sizeof note, "cannot open %u pipes (RLIMIT_NOFILE): skipped", n);
        report4(s, "bad_timeouts", "count", n, "", 0, TARGET_VALUE_MAX, 0, note);
        for (unsigned i = 0; i < n; i++)
            if (s->fds[i] >= 0)
                close(s->fds[i]);
    } else {
        if (s->kind[0]) {
            char all[96];
            int runs = bench_cfg.quick ? 1 : MASS_RUNS;
            mass_run m = median_run(s, runs, all, sizeof all);
            report_mass(s, &m.b, &m.bare, &m.o, target, runs, all);
        } else {
            baseline b = run_baseline(s);
            cio_result o = run_cio(s);
            report_scale(s, &b, &o);
        }
    }
    for (unsigned i = 0; i < n; i++)
        if (s->wfds[i] >= 0)
            close(s->wfds[i]);
    let_go_of_holders(s);
    free(s->fds);
    free(s->wfds);
    free(s->c);
}

void fig_scale(void)
{
    static const unsigned full[] = {10, 100, 1000, 10000};
    size_t count = bench_cfg.quick ? 3 : 4;
    for (size_t i = 0; i < count; i++) {
        fprintf(stderr, "cio_bench:   N = %u\n", full[i]);
        /* a worker for every read: this figure is about their memory */
        scale_run s = {.n = full[i], .kind = "", .spread = SPREAD, .base = 200 * NS_PER_MS};
        s.max_threads = full[i] + 2000;
        run_case(&s, 0);
    }
}

/* Figure 7: mass expiry with the library's default thread cap (4,096), so
 * that the reads beyond it wait in its queue.  Spread: deadlines over
 * 100 ms; instant: every deadline at one moment.  --quick keeps them small
 * (with a cap of 100, so the queue is still exercised).  Besides the floor
 * (plain threads in clock_nanosleep, the target's), each run times the
 * model bare (bare_model.c): as many workers as the cap, each read timed
 * out by its worker's own POSIX timer and handed back through a futex, with
 * no library; and the process's CPU an expiry for all three. */
void fig_mass(void)
{
    unsigned n_spread = bench_cfg.quick ? 400 : 10000, n_instant = bench_cfg.quick ? 300 : 9000;
    unsigned cap = bench_cfg.quick ? 100 : 0;
    fprintf(stderr, "cio_bench:   spread, N = %u\n", n_spread);
    scale_run a = {.n = n_spread, .kind = "spread", .spread = SPREAD, .max_threads = cap};
    a.base = 300 * NS_PER_MS;
    run_case(&a, 20);
    fprintf(stderr, "cio_bench:   instant, N = %u\n", n_instant);
    scale_run b = {.n = n_instant, .kind = "instant", .spread = 0, .max_threads = cap};
    b.base = 400 * NS_PER_MS;
    run_case(&b, 3);
}
