/*
 * cio_bench: cancelio's costs, each as a ratio against a floor of plain
 * system calls measured in the same run (docs/performance.md).
 *
 *   cio_bench                  every figure (a few minutes)
 *   cio_bench --quick          small counts, < 20 s: the CI smoke check
 *   cio_bench --only NAME      one figure: ops deadline cancel scale timers
 *                              throughput mass chaos (or 1..8); may be repeated
 *   cio_bench --samples DIR    also write the latency samples to DIR, for
 *                              scripts/bench-plot.sh
 *   cio_bench --futex-hash-slots N
 *                              cio_init with cio_options.futex_hash_slots = N
 *                              (a power of two; Linux >= 6.16)
 *   cio_bench --global-futex-hash
 *                              Linux >= 6.16: use the kernel's global futex
 *                              hash instead of the process's own (sized by
 *                              CPUs, not threads: see docs/performance.md)
 *   cio_bench --waits worker   cio_init with cio_options.waits =
 *                              CIO_WAIT_WORKER: blocked reads and writes on
 *                              pipes and sockets wait on workers
 *
 * It exits 0 when it ran, whether or not the targets were met (the table
 * says which); 2 when it could not set up, 3 when a figure hung.
 */
#include "bench.h"

#include <cancelio.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <unistd.h>

#define TUNABLE "glibc.pthread.stack_cache_size=0"
#ifndef PR_FUTEX_HASH /* Linux 6.16; older headers lack it */
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#define PR_FUTEX_HASH_GET_SLOTS 2
#endif

bench_config bench_cfg;

static const struct figure {
    const char *name;
    void (*run)(void);
} figures[] = {
    {"ops", fig_ops},     {"deadline", fig_deadline}, {"cancel", fig_cancel},
    {"scale", fig_scale}, {"timers", fig_timers},     {"throughput", fig_throughput},
    {"mass", fig_mass},   {"chaos", fig_chaos},
};
#define N_FIGURES (sizeof figures / sizeof figures[0])

static int selected[N_FIGURES];
static int global_futex_hash;
static _Atomic(const char *) running = "setup";

void bench_lib_start(unsigned max_threads, int timer)
{
    cio_options o = {.max_threads = max_threads,
                     .timer = timer,
                     .futex_hash_slots = bench_cfg.futex_slots,
                     .waits = bench_cfg.waits};
    if (cio_init(&o) < 0)
        die("cio_init");
}

void bench_lib_stop(void)
{
    cio_shutdown();
}

static void usage(FILE *out)
{
    fprintf(out, "usage: cio_bench [--quick] [--only NAME]... [--samples DIR] "
                 "[--global-futex-hash] [--futex-hash-slots N] [--waits caller|worker]\n"
                 "  NAME: ops deadline cancel scale timers throughput mass chaos, or 1..8\n");
}

static int figure_index(const char *name)
{
    for (size_t i = 0; i < N_FIGURES; i++) {
        if (strcmp(name, figures[i].name) == 0)
            return (int)i;
    }
    int n = atoi(name);
    return n >= 1 && n <= (int)N_FIGURES ? n - 1 : -1;
}

static void parse(int argc, char **argv)
{
    int any = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--quick") == 0) {
            bench_cfg.quick = 1;
        } else if (strcmp(a, "--only") == 0 && i + 1 < argc && figure_index(argv[i + 1]) >= 0) {
            selected[figure_index(argv[++i])] = any = 1;
        } else if (strcmp(a, "--global-futex-hash") == 0) {
            global_futex_hash = 1;
        } else if (strcmp(a, "--futex-hash-slots") == 0 && i + 1 < argc) {
            bench_cfg.futex_slots = (unsigned)strtoul(argv[++i], NULL, 0);
        } else if (strcmp(a, "--waits") == 0 && i + 1 < argc &&
                   (strcmp(argv[i + 1], "caller") == 0 || strcmp(argv[i + 1], "worker") == 0)) {
            bench_cfg.waits = strcmp(argv[++i], "worker") == 0 ? CIO_WAIT_WORKER : CIO_WAIT_CALLER;
        } else if (strcmp(a, "--samples") == 0 && i + 1 < argc) {
            bench_cfg.samples_dir = argv[++i];
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else {
            usage(stderr);
            exit(2);
        }
    }
    for (size_t i = 0; i < N_FIGURES && !any; i++)
        selected[i] = 1;
}

/* glibc keeps up to 40 MiB of dead threads' stacks, resident, for reuse;
 * that would hide the stacks of one run of figure 4 in the RSS of the one
 * before.  Run with the cache off: re-exec once with the tunable set. */
static void without_stack_cache(char **argv)
{
    const char *old = getenv("GLIBC_TUNABLES");
    if (getenv("CIO_BENCH_REEXEC") || (old && strstr(old, "stack_cache_size")))
        return;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s%s", old ? old : "", old ? ":" : "", TUNABLE);
    setenv("GLIBC_TUNABLES", buf, 1);
    setenv("CIO_BENCH_REEXEC", "1", 1);
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return;
    self[n] = '\0'; /* by its own name, so that ps and perf say cio_bench */
    execv(self, argv);
    /* No /proc: go on with the cache, figure 4's RSS is then less exact. */
}

/* A figure that hangs is a failure, not a CI job that never ends. */
static void *watchdog(void *arg)
{
    ns_t limit = (ns_t)(intptr_t)arg * NS_PER_S;
    sleep_for_ns(limit);
    fprintf(stderr, "cio_bench: figure '%s' still running after %lld s: giving up\n",
            atomic_load(&running), (long long)(limit / NS_PER_S));
    _exit(3);
}

static void setup(void)
{
    /* cancelio owns SIGUSR1: the bench's own threads never take it. */
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1);
    sigaddset(&s, SIGUSR2); /* only the cancel floor's reader takes SIGUSR2 */
    pthread_sigmask(SIG_BLOCK, &s, NULL);

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    allowed_cpus(); /* remembers the mask before any figure pins a thread */

    if (global_futex_hash && prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, 0, 0, 0) != 0)
        perror("cio_bench: --global-futex-hash");

    pthread_t t;
    intptr_t limit = bench_cfg.quick ? 120 : 1800;
    if (pthread_create(&t, NULL, watchdog, (void *)limit) != 0)
        die("pthread_create");
    pthread_detach(t);
}

int bench_futex_hash_slots(void)
{
    return prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_GET_SLOTS, 0, 0, 0);
}

/* The 1-minute load average: others' work on a shared machine. */
static double load(void)
{
    double l = -1;
    FILE *in = fopen("/proc/loadavg", "r");
    if (in && fscanf(in, "%lf", &l) != 1)
        l = -1;
    if (in)
        fclose(in);
    return l;
}

static void print_header(void)
{
    struct utsname u;
    uname(&u);
    printf("cio_bench: cancelio %s, %s mode, %ld CPUs, %s %s %s, stack cache %s\n", cio_version(),
           bench_cfg.quick ? "quick" : "full", sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release,
           u.machine, getenv("CIO_BENCH_REEXEC") ? "off" : "on");
    printf("load average %.2f at start; futex hash: %s; blocked pipe and socket ops wait on %s\n",
           load(), global_futex_hash ? "global" : "the process's own (default)",
           bench_cfg.waits == CIO_WAIT_WORKER ? "workers (--waits worker)"
                                              : "their callers (default)");
    printf("every figure is a ratio against a floor measured in this run (docs/performance.md)\n");
}

int main(int argc, char **argv)
{
    parse(argc, argv);
    without_stack_cache(argv);
    setup();
    print_header();
    ns_t t0 = now_ns();
    for (size_t i = 0; i < N_FIGURES; i++) {
        if (!selected[i])
            continue;
        atomic_store(&running, figures[i].name);
        fprintf(stderr, "cio_bench: figure %zu (%s)...\n", i + 1, figures[i].name);
        ns_t t = now_ns();
        figures[i].run();
        fprintf(stderr, "cio_bench: figure %zu (%s) took %.1f s\n", i + 1, figures[i].name,
                (double)(now_ns() - t) / NS_PER_S);
    }
    bench_print_all();
    printf("cio_bench: %d target(s) missed, %.1f s in all, load average %.2f at the end\n",
           bench_missed(), (double)(now_ns() - t0) / NS_PER_S, load());
    return 0;
}
