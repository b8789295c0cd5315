/*
 * cio_bench: percentiles, /proc readings, and the results table.
 */
#include "bench.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_RESULTS 128

static bench_result results[MAX_RESULTS];
static size_t n_results;

ns_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (ns_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

void sleep_until_ns(ns_t t)
{
    struct timespec ts = {(time_t)(t / NS_PER_S), (long)(t % NS_PER_S)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

void sleep_for_ns(ns_t d)
{
    sleep_until_ns(now_ns() + d);
}

static int cmp_ns(const void *a, const void *b)
{
    ns_t x = *(const ns_t *)a, y = *(const ns_t *)b;
    return (x > y) - (x < y);
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

ns_t percentile(ns_t *v, size_t n, double p)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_ns);
    size_t rank = (size_t)(p / 100.0 * (double)n + 0.999999); /* nearest rank */
    if (rank < 1)
        rank = 1;
    return v[(rank > n ? n : rank) - 1];
}

double median_d(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

ns_t max_of(const ns_t *v, size_t n)
{
    ns_t m = n ? v[0] : 0;
    for (size_t i = 1; i < n; i++)
        m = v[i] > m ? v[i] : m;
    return m;
}

size_t count_below(const ns_t *v, size_t n, ns_t limit)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += v[i] < limit;
    return c;
}

void save_samples(const char *name, const ns_t *v, size_t n)
{
    if (!bench_cfg.samples_dir)
        return;
    char path[512];
    snprintf(path, sizeof path, "%s/%s", bench_cfg.samples_dir, name);
    FILE *out = fopen(path, "w");
    if (!out) {
        perror(path);
        return;
    }
    for (size_t i = 0; i < n; i++)
        fprintf(out, "%lld\n", (long long)v[i]);
    fclose(out);
}

static long kib_in(const char *file, const char *key)
{
    FILE *in = fopen(file, "r");
    if (!in)
        return -1;
    char line[256];
    size_t k = strlen(key);
    long v = -1;
    while (fgets(line, sizeof line, in)) {
        if (strncmp(line, key, k) == 0 && line[k] == ':') {
            v = strtol(line + k + 1, NULL, 10);
            break;
        }
    }
    fclose(in);
    return v;
}

long proc_status_kib(const char *key)
{
    return kib_in("/proc/self/status", key);
}

long meminfo_kib(const char *key)
{
    return kib_in("/proc/meminfo", key);
}

int reset_peak_rss(void)
{
    FILE *out = fopen("/proc/self/clear_refs", "w");
    if (!out)
        return -1;
    int ok = fputs("5", out) >= 0;
    return fclose(out) == 0 && ok ? 0 : -1;
}

static cpu_set_t start_mask;
static int start_mask_known;

static void know_start_mask(void)
{
    if (!start_mask_known && sched_getaffinity(0, sizeof start_mask, &start_mask) == 0)
        start_mask_known = 1;
}

int allowed_cpus(void)
{
    know_start_mask();
    return start_mask_known ? CPU_COUNT(&start_mask) : 1;
}

void pin_self(int i)
{
    know_start_mask();
    if (!start_mask_known)
        return;
    cpu_set_t one;
    CPU_ZERO(&one);
    for (int cpu = 0, seen = 0; i >= 0 && cpu < CPU_SETSIZE; cpu++) {
        if (CPU_ISSET(cpu, &start_mask) && seen++ == i) {
            CPU_SET(cpu, &one);
            break;
        }
    }
    sched_setaffinity(0, sizeof one, i < 0 ? &start_mask : &one);
}

long current_tid(void)
{
    return (long)syscall(SYS_gettid);
}

/* The syscall number tid is blocked in, -1 if running, -2 if unknown. */
static long blocked_syscall(long tid)
{
    char path[64], buf[128];
    snprintf(path, sizeof path, "/proc/self/task/%ld/syscall", tid);
    FILE *in = fopen(path, "r");
    if (!in)
        return -2;
    long nr = -2;
    if (fgets(buf, sizeof buf, in))
        nr = strncmp(buf, "running", 7) == 0 ? -1 : strtol(buf, NULL, 10);
    fclose(in);
    return nr;
}

long voluntary_switches(long tid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%ld/status", tid);
    FILE *in = fopen(path, "r");
    if (!in)
        return -1;
    long v = -1;
    while (v < 0 && fgets(line, sizeof line, in)) {
        if (strncmp(line, "voluntary_ctxt_switches:", 24) == 0)
            v = strtol(line + 24, NULL, 10);
    }
    fclose(in);
    return v;
}

/* Field k (3 = state) of /proc/self/task/tid/stat into out; 0 if unknown. */
static int stat_field(long tid, int k, char *out, size_t size)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/self/task/%ld/stat", tid);
    FILE *in = fopen(path, "r");
    if (!in)
        return 0;
    int ok = 0;
    if (fgets(buf, sizeof buf, in)) {
        char *p = strrchr(buf, ')'); /* the name may hold spaces */
        for (int f = 2; p && f < k; f++)
            p = strchr(p + 1, ' ');
        if (p && *++p) {
            size_t n = strcspn(p, " \n");
            n = n < size - 1 ? n : size - 1;
            memcpy(out, p, n);
            out[n] = '\0';
            ok = 1;
        }
    }
    fclose(in);
    return ok;
}

static int is_sleeping(long tid)
{
    char state[8];
    return stat_field(tid, 3, state, sizeof state) && state[0] == 'S';
}

int last_cpu(long tid)
{
    char cpu[16];
    return stat_field(tid, 39, cpu, sizeof cpu) ? atoi(cpu) : -1;
}

int wait_blocked_in(long tid, long nr, ns_t limit)
{
    ns_t end = now_ns() + limit;
    while (now_ns() < end) {
        long cur = blocked_syscall(tid);
        /* a read that found nothing waits for its fd in ppoll (on its
         * caller, or on its worker) */
        int alike = nr == SYS_read && cur == SYS_ppoll;
        if (cur == nr || alike || (cur == -2 && is_sleeping(tid)))
            return 1;
        sleep_for_ns(20 * NS_PER_US);
    }
    return 0;
}

void die(const char *what)
{
    perror(what);
    exit(2);
}

void bench_report(const bench_result *r)
{
    if (n_results < MAX_RESULTS)
        results[n_results++] = *r;
}

static double ratio_of(const bench_result *r)
{
    return r->baseline[0] && r->baseline_value != 0 ? r->value / r->baseline_value : 0;
}

/* "yes", "no", or "-" when the figure has no target. */
static const char *met(const bench_result *r)
{
    switch (r->target_kind) {
    case TARGET_RATIO_MAX:
        return r->baseline_value > 0 && ratio_of(r) <= r->target ? "yes" : "no";
    case TARGET_VALUE_MAX:
        return r->value <= r->target ? "yes" : "no";
    default:
        return "-";
    }
}

/* A value for people: ns scaled to us or ms, others as they are. */
static void human(char *out, size_t size, double v, const char *unit)
{
    if (strcmp(unit, "ns") != 0)
        snprintf(out, size, "%.4g %s", v, unit);
    else if (v >= 10 * NS_PER_MS || v <= -10 * NS_PER_MS)
        snprintf(out, size, "%.1f ms", v / NS_PER_MS);
    else if (v >= 10 * NS_PER_US || v <= -10 * NS_PER_US)
        snprintf(out, size, "%.1f us", v / NS_PER_US);
    else
        snprintf(out, size, "%.0f ns", v);
}

static void target_text(char *out, size_t size, const bench_result *r)
{
    if (r->target_kind == TARGET_RATIO_MAX)
        snprintf(out, size, "<= %gx", r->target);
    else if (r->target_kind == TARGET_VALUE_MAX)
        snprintf(out, size, "<= %g %s", r->target, r->unit);
    else
        snprintf(out, size, "-");
}

static void print_row(const bench_result *r)
{
    char v[32], b[32] = "", t[32], ratio[16] = "-";
    human(v, sizeof v, r->value, r->unit);
    if (r->baseline[0])
        human(b, sizeof b, r->baseline_value, r->unit);
    if (r->baseline[0] && r->baseline_value != 0)
        snprintf(ratio, sizeof ratio, "%.3gx", ratio_of(r));
    target_text(t, sizeof t, r);
    printf("%-3d %-28s %12s  %-22s %12s %8s %10s %-4s %s\n", r->figure, r->name, v,
           r->baseline[0] ? r->baseline : "-", b, ratio, t, met(r), r->note);
}

/* The unit as a key suffix: value_ns=, value_kib=, value_gibps= ... */
static const char *key_unit(const char *unit)
{
    if (strcmp(unit, "GiB/s") == 0)
        return "gibps";
    if (strcmp(unit, "KiB") == 0)
        return "kib";
    return unit;
}

static void print_line(const bench_result *r)
{
    const char *u = key_unit(r->unit);
    printf("BENCH fig=%d name=%s value_%s=%.6g", r->figure, r->name, u, r->value);
    if (r->baseline[0])
        printf(" baseline=%s baseline_%s=%.6g", r->baseline, u, r->baseline_value);
    if (r->baseline[0] && r->baseline_value != 0)
        printf(" ratio=%.4g", ratio_of(r));
    if (r->target_kind == TARGET_RATIO_MAX)
        printf(" target_ratio=%g", r->target);
    else if (r->target_kind == TARGET_VALUE_MAX)
        printf(" target_%s=%g", u, r->target);
    printf(" met=%s", strcmp(met(r), "-") == 0 ? "n/a" : met(r));
    if (r->note[0])
        printf(" note=%s", r->note); /* the last field: the rest of the line */
    putchar('\n');
}

void bench_print_all(void)
{
    printf("\n%-3s %-28s %12s  %-22s %12s %8s %10s %-4s %s\n", "fig", "name", "value", "baseline",
           "baseline", "ratio", "target", "met", "note");
    for (size_t i = 0; i < n_results; i++)
        print_row(&results[i]);
    printf("\n");
    for (size_t i = 0; i < n_results; i++)
        print_line(&results[i]);
    fflush(stdout);
}

int bench_missed(void)
{
    int n = 0;
    for (size_t i = 0; i < n_results; i++)
        n += strcmp(met(&results[i]), "no") == 0;
    return n;
}

void bench_report_one(int fig, const char *name, const char *unit, double v, const char *base,
                      double bv, int kind, double target, const char *note)
{
    bench_result r = {.figure = fig, .unit = unit, .value = v, .baseline_value = bv};
    r.target_kind = kind;
    r.target = target;
    snprintf(r.name, sizeof r.name, "%s", name);
    snprintf(r.baseline, sizeof r.baseline, "%s", base);
    snprintf(r.note, sizeof r.note, "%s", note);
    bench_report(&r);
}
