/*
 * cio_bench: what every figure of the benchmark shares.
 *
 * Each figure measures cancelio and, in the same run and on the same
 * machine, a floor made of plain system calls, and reports the ratio (see
 * docs/performance.md).  Results are collected with bench_report and
 * printed at the end, as a table for people and as one BENCH line each.
 */
#ifndef CIO_BENCH_H
#define CIO_BENCH_H

#include <stddef.h>
#include <stdint.h>

typedef int64_t ns_t;

#define NS_PER_US ((ns_t)1000)
#define NS_PER_MS ((ns_t)1000000)
#define NS_PER_S ((ns_t)1000000000)

/* How this run was asked for (cio_bench.c fills it from the flags). */
typedef struct bench_config {
    int quick;               /* --quick: small counts, CI smoke check */
    const char *samples_dir; /* --samples DIR: write raw latency samples */
    unsigned futex_slots;    /* --futex-hash-slots N: cio_options.futex_hash_slots */
    int waits;               /* --waits caller|worker: cio_options.waits */
} bench_config;

extern bench_config bench_cfg;

/* ---- time ---- */

ns_t now_ns(void);           /* CLOCK_MONOTONIC */
void sleep_until_ns(ns_t t); /* clock_nanosleep(TIMER_ABSTIME), EINTR retried */
void sleep_for_ns(ns_t d);

/* ---- statistics (stats.c) ---- */

/* The p-th percentile (0 <= p <= 100, nearest rank) of v; sorts v. */
ns_t percentile(ns_t *v, size_t n, double p);
double median_d(double *v, size_t n); /* sorts v */
ns_t max_of(const ns_t *v, size_t n);
size_t count_below(const ns_t *v, size_t n, ns_t limit);
/* Write v, one value a line, to DIR/name when --samples was given. */
void save_samples(const char *name, const ns_t *v, size_t n);

/* ---- the process (stats.c) ---- */

long proc_status_kib(const char *key); /* "VmRSS", "VmHWM", "Threads": -1 if absent */
long meminfo_kib(const char *key);     /* /proc/meminfo (whole machine): "KernelStack" */
int reset_peak_rss(void);              /* 0 if VmHWM could be reset */
/* Wait up to limit for thread tid to block in syscall nr (per
 * /proc/self/task/tid/syscall, else its state 'S'); 1 when it did. */
int wait_blocked_in(long tid, long nr, ns_t limit);
long current_tid(void);
long voluntary_switches(long tid); /* times thread tid went to sleep, -1 if unknown */
int last_cpu(long tid);            /* the CPU thread tid last ran on, -1 if unknown */
int allowed_cpus(void);            /* CPUs the process could run on at start */
/* Pin the calling thread to the i-th of those CPUs; i < 0: to all of them. */
void pin_self(int i);
void die(const char *what); /* perror and exit(2): the bench cannot go on */

/* ---- results (stats.c) ---- */

enum target_kind {
    TARGET_NONE,      /* informational */
    TARGET_RATIO_MAX, /* ratio = value / baseline must be <= target */
    TARGET_VALUE_MAX  /* value must be <= target (in the figure's unit) */
};

typedef struct bench_result {
    int figure;
    char name[48];
    const char *unit; /* "ns", "KiB", "count", "GiB/s", "ms", "threads" */
    double value;
    char baseline[48]; /* "" when there is none */
    double baseline_value;
    int target_kind;
    double target;
    char note[256];
} bench_result;

void bench_report(const bench_result *r);
/* The same, from its parts; base "" when there is no floor. */
void bench_report_one(int fig, const char *name, const char *unit, double v, const char *base,
                      double bv, int kind, double target, const char *note);
void bench_print_all(void);
int bench_missed(void); /* number of results with a target not met */

/* ---- the figures ---- */

void fig_ops(void);        /* 1: op cost on ready data */
void fig_deadline(void);   /* 2: deadline accuracy */
void fig_cancel(void);     /* 3: cancel latency */
void fig_scale(void);      /* 4: many reads blocked at once */
void fig_timers(void);     /* 5: arming, moving, clearing deadlines */
void fig_throughput(void); /* 6: streaming with the idle-timeout idiom */
void fig_mass(void);       /* 7: thousands of deadlines due together */
void fig_chaos(void);      /* 8: deadlines moved into the past under load */

/* The slots of the process's futex hash (Linux >= 6.16; 0 = the global
 * hash, -1 = not known). */
int bench_futex_hash_slots(void);

/* cio_init with the bench's options (NULL-safe defaults) or die. */
void bench_lib_start(unsigned max_threads, int timer);
void bench_lib_stop(void);

/* ---- the model bare (bare_model.c), for figure 7 ---- */

/* A blocking read's stand-in: its deadline, and the word its caller waits
 * on until a worker has timed it out. */
typedef struct bare_job {
    ns_t deadline;
    _Atomic unsigned done;
} bare_job;

/* Start n workers, the i-th reading fds[i] (an empty pipe), each with its
 * own POSIX timer; 0, or -1 with errno (ENOSYS where there is no
 * SIGEV_THREAD_ID).  bare_serve lets them take jobs[0..n) in order, with
 * their deadlines already set; bare_wait waits for one; bare_close stops
 * and joins the workers. */
int bare_open(const int *fds, unsigned n);
void bare_serve(bare_job **jobs, unsigned n);
void bare_wait(bare_job *j);
void bare_close(void);

#endif
