/*
 * Figure 8: rule 3 under load.  A deadline moved into the past must stop a
 * blocked read at once (DESIGN.md rule 3) on a machine that is busy, not
 * only on a quiet one.
 *
 * N readers loop on cio_read, each on its own empty pipe, with a deadline
 * that is none or 50-550 ms ahead; twice as many threads as CPUs spin; one
 * chaos thread, for D seconds, moves a random reader's deadline into the
 * past, moves one later, cancels one, or writes a few bytes to one, with a
 * random pause of up to 300 us between.  A move is timed from just before
 * cio_set_read_deadline to the read's return with ETIMEDOUT.
 *
 * The floor, in the same process and under the same load: R threads
 * blocked in read(2) on empty pipes, each woken by the same chaos thread
 * with pthread_kill of SIGUSR2 (no SA_RESTART), timed from just before the
 * kill to read's EINTR.  One kill for every eight moves, interleaved.
 *
 * Then a second phase, D/2 seconds, the same with one more thread that
 * forks every 100 ms (the child exits at once): a fork holds every lock of
 * the library, one a file, and threads that come for them wait at its gate
 * meanwhile (docs/model.md, fork).  Its moves and kills are timed apart,
 * with no target: the fork's own time in the kernel counts in them.
 *
 * At the end every byte written must have been read exactly once (rule 4:
 * a timed-out or cancelled read consumed nothing), and no read may end in
 * any other way than data, ETIMEDOUT or ECANCELED.
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
#include <sys/wait.h>
#include <unistd.h>

#define SLOW_NS (100 * NS_PER_MS) /* the stress suite's bound for rule 3 */

typedef struct reader {
    pthread_t th;
    cio_file *f;
    int wfd;
    unsigned seed;
    atomic_llong moved_at; /* when the chaos thread last moved it into the past */
    atomic_llong written, got;
} reader;

typedef struct raw {
    pthread_t th;
    int fd, wfd;
    atomic_llong killed_at;
} raw;

/* Samples: appended by many threads, read once they are joined. */
typedef struct samples {
    ns_t *v;
    size_t cap;
    atomic_size_t n;
} samples;

static struct {
    atomic_int stop, forking;
    samples moves, kills;
    samples fork_moves, fork_kills, forks; /* the second phase's */
    atomic_long timeouts, cancels, reads, bad;
} chaos;

/* The samples of the phase under way. */
static samples *moves_now(void)
{
    return atomic_load(&chaos.forking) ? &chaos.fork_moves : &chaos.moves;
}

static samples *kills_now(void)
{
    return atomic_load(&chaos.forking) ? &chaos.fork_kills : &chaos.kills;
}

static void add_sample(samples *s, ns_t v)
{
    size_t i = atomic_fetch_add(&s->n, 1);
    if (i < s->cap)
        s->v[i] = v;
}

static void *reader_main(void *arg)
{
    reader *r = arg;
    char buf[64];
    while (!atomic_load(&chaos.stop)) {
        int k = rand_r(&r->seed) % 3;
        ns_t ahead = (50 + rand_r(&r->seed) % 500) * NS_PER_MS;
        cio_set_read_deadline(r->f, k == 0 ? CIO_NO_DEADLINE : cio_now() + ahead);
        if (atomic_load(&chaos.stop)) /* after the set: the last move wins */
            break;
        ns_t start = now_ns();
        ssize_t n = cio_read(r->f, buf, sizeof buf);
        ns_t end = now_ns();
        if (n > 0) {
            atomic_fetch_add(&r->got, n);
            atomic_fetch_add(&chaos.reads, 1);
        } else if (n < 0 && errno == ETIMEDOUT) {
            atomic_fetch_add(&chaos.timeouts, 1);
            ns_t moved = atomic_load(&r->moved_at);
            if (moved > start) /* moved while this read was in flight */
                add_sample(moves_now(), end - moved);
        } else if (n < 0 && errno == ECANCELED) {
            atomic_fetch_add(&chaos.cancels, 1);
        } else {
            atomic_fetch_add(&chaos.bad, 1);
        }
    }
    return NULL;
}

static void on_sigusr2(int signo)
{
    (void)signo;
}

static void *raw_main(void *arg)
{
    raw *w = arg;
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR2);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    char c;
    while (!atomic_load(&chaos.stop)) {
        ns_t start = now_ns();
        ssize_t n = read(w->fd, &c, 1);
        ns_t end = now_ns();
        ns_t killed = atomic_load(&w->killed_at);
        if (n < 0 && errno == EINTR && killed > start)
            add_sample(kills_now(), end - killed);
    }
    return NULL;
}

static void *hog_main(void *arg)
{
    (void)arg;
    volatile unsigned long spin = 0;
    while (!atomic_load(&chaos.stop))
        spin++;
    return NULL;
}

static pthread_t start_thread(void *(*fn)(void *), void *arg)
{
    pthread_attr_t a;
    pthread_t th;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, 64 * 1024);
    if (pthread_create(&th, &a, fn, arg) != 0)
        die("pthread_create");
    pthread_attr_destroy(&a);
    return th;
}

/* The chaos thread's one step. */
static void step(reader *rd, int n, raw *rw, int nraw, unsigned *seed)
{
    int k = rand_r(seed) % 16;
    if (k < 2) { /* the floor */
        raw *w = &rw[rand_r(seed) % nraw];
        atomic_store(&w->killed_at, now_ns());
        pthread_kill(w->th, SIGUSR2);
        return;
    }
    reader *r = &rd[rand_r(seed) % n];
    if (k < 10) { /* rule 3: into the past, just past or long past */
        atomic_store(&r->moved_at, now_ns());
        cio_set_read_deadline(r->f, k < 6 ? cio_now() - 1 : -1 - (cio_time_t)(rand_r(seed) % 1000));
    } else if (k < 13) {
        cio_set_read_deadline(r->f, cio_now() + (rand_r(seed) % 200) * NS_PER_MS);
    } else if (k < 14) {
        cio_cancel(r->f, CIO_READ);
    } else {
        char bytes[8] = "chaos!!";
        ssize_t w = write(r->wfd, bytes, 1 + rand_r(seed) % 7);
        if (w > 0)
            atomic_fetch_add(&r->written, w);
    }
}

/* Forks every 100 ms until the second phase ends, timing each fork() in
 * this thread; the child exits at once. */
static void *forker_main(void *arg)
{
    (void)arg;
    do { /* one fork at least, however late this thread first runs */
        ns_t start = now_ns();
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        add_sample(&chaos.forks, now_ns() - start);
        if (pid > 0)
            while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
                ;
        sleep_until_ns(start + 100 * NS_PER_MS);
    } while (atomic_load(&chaos.forking));
    return NULL;
}

/* The chaos thread's steps for d, a random pause of up to 300 us apart. */
static void run_steps(reader *rd, int n, raw *rw, int nraw, unsigned *seed, ns_t d)
{
    for (ns_t end = now_ns() + d; now_ns() < end;) {
        step(rd, n, rw, nraw, seed);
        sleep_for_ns((rand_r(seed) % 300) * NS_PER_US);
    }
}

static size_t taken(samples *s)
{
    size_t n = atomic_load(&s->n);
    return n < s->cap ? n : s->cap;
}

/* run_steps for d, then on, 100 ms at a time and for d more at most, until
 * moves and kills each have a sample: on a machine loaded enough the
 * threads that time them may not have run in d. */
static void run_phase(reader *rd, int n, raw *rw, int nraw, unsigned *seed, ns_t d, samples *moves,
                      samples *kills)
{
    run_steps(rd, n, rw, nraw, seed, d);
    for (ns_t more = 0; (taken(moves) == 0 || taken(kills) == 0) && more < d;
         more += 100 * NS_PER_MS)
        run_steps(rd, n, rw, nraw, seed, 100 * NS_PER_MS);
}

static void report_pair(const char *phase, const char *floor, const char *stat, ns_t cio,
                        ns_t floor_ns, const char *note)
{
    char name[48], base[48];
    snprintf(name, sizeof name, "%s_move_%s", phase, stat);
    snprintf(base, sizeof base, "%s_%s", floor, stat);
    bench_report_one(8, name, "ns", (double)cio, base, (double)floor_ns, TARGET_NONE, 0, note);
}

/* One phase's rows: its samples saved as <phase>_move.txt and
 * <phase>_kill.txt, the moves' p50, p99 and max against the kills' (rows
 * <phase>_move_* against <floor>_*), and the moves over 100 ms, with
 * over_kind their target: TARGET_VALUE_MAX (none may be) or TARGET_NONE. */
static void report_phase(const char *phase, const char *floor, samples *moves, samples *kills,
                         const char *note, const char *while_, int over_kind)
{
    size_t nm = taken(moves), nk = taken(kills);
    char name[48], over_note[128];
    snprintf(name, sizeof name, "%s_move.txt", phase);
    save_samples(name, moves->v, nm);
    snprintf(name, sizeof name, "%s_kill.txt", phase);
    save_samples(name, kills->v, nk);
    size_t slow = nm - count_below(moves->v, nm, SLOW_NS + 1);
    size_t slow_floor = nk - count_below(kills->v, nk, SLOW_NS + 1);
    report_pair(phase, floor, "p50", percentile(moves->v, nm, 50), percentile(kills->v, nk, 50),
                note);
    report_pair(phase, floor, "p99", percentile(moves->v, nm, 99), percentile(kills->v, nk, 99),
                note);
    report_pair(phase, floor, "max", max_of(moves->v, nm), max_of(kills->v, nk), note);
    snprintf(over_note, sizeof over_note,
             "moves that took over 100 ms%s (the floor: %zu of %zu kills)", while_, slow_floor, nk);
    snprintf(name, sizeof name, "%s_move_over_100ms", phase);
    bench_report_one(8, name, "count", (double)slow, "", 0, over_kind, 0, over_note);
}

void fig_chaos(void)
{
    int ncpu = allowed_cpus() > 0 ? allowed_cpus() : 1;
    int n = bench_cfg.quick ? 200 : 2000, nraw = bench_cfg.quick ? 20 : 200, hogs = 2 * ncpu;
    ns_t run = (bench_cfg.quick ? 2 : 10) * NS_PER_S;
    reader *rd = calloc((size_t)n, sizeof *rd);
    raw *rw = calloc((size_t)nraw, sizeof *rw);
    pthread_t *hog = calloc((size_t)hogs, sizeof *hog);
    chaos.moves = (samples){.v = calloc(1 << 20, sizeof(ns_t)), .cap = 1 << 20};
    chaos.kills = (samples){.v = calloc(1 << 18, sizeof(ns_t)), .cap = 1 << 18};
    chaos.fork_moves = (samples){.v = calloc(1 << 19, sizeof(ns_t)), .cap = 1 << 19};
    chaos.fork_kills = (samples){.v = calloc(1 << 17, sizeof(ns_t)), .cap = 1 << 17};
    chaos.forks = (samples){.v = calloc(1 << 10, sizeof(ns_t)), .cap = 1 << 10};
    if (!rd || !rw || !hog || !chaos.moves.v || !chaos.kills.v || !chaos.fork_moves.v ||
        !chaos.fork_kills.v || !chaos.forks.v)
        die("calloc");
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigusr2; /* no SA_RESTART: read fails with EINTR */
    sigaction(SIGUSR2, &sa, NULL);
    bench_lib_start(0, 0);
    for (int i = 0; i < n; i++) {
        int p[2];
        if (pipe(p) < 0 || !(rd[i].f = cio_fdopen(p[0])))
            die("figure 8: pipe");
        rd[i].wfd = p[1];
        rd[i].seed = 7919u * (unsigned)i + 1;
    }
    for (int i = 0; i < nraw; i++) {
        int p[2];
        if (pipe(p) < 0)
            die("figure 8: pipe");
        rw[i].fd = p[0];
        rw[i].wfd = p[1];
    }
    for (int i = 0; i < n; i++)
        rd[i].th = start_thread(reader_main, &rd[i]);
    for (int i = 0; i < nraw; i++)
        rw[i].th = start_thread(raw_main, &rw[i]);
    for (int i = 0; i < hogs; i++)
        hog[i] = start_thread(hog_main, NULL);

    unsigned seed = 42;
    run_phase(rd, n, rw, nraw, &seed, run, &chaos.moves, &chaos.kills);
    fflush(NULL); /* nothing buffered twice by the children */
    atomic_store(&chaos.forking, 1);
    pthread_t forker = start_thread(forker_main, NULL);
    run_phase(rd, n, rw, nraw, &seed, run / 2, &chaos.fork_moves, &chaos.fork_kills);
    atomic_store(&chaos.forking, 0);
    pthread_join(forker, NULL);

    atomic_store(&chaos.stop, 1);
    for (int i = 0; i < hogs; i++)
        pthread_join(hog[i], NULL);
    for (int i = 0; i < n; i++) { /* a past deadline stops the last read too */
        cio_set_read_deadline(rd[i].f, -1);
        pthread_join(rd[i].th, NULL);
    }
    for (int i = 0; i < nraw; i++) { /* a byte ends a read the kill missed */
        pthread_kill(rw[i].th, SIGUSR2);
        if (write(rw[i].wfd, "x", 1) != 1)
            die("figure 8: write");
        pthread_join(rw[i].th, NULL);
        close(rw[i].fd);
        close(rw[i].wfd);
    }
    long long lost = 0;
    for (int i = 0; i < n; i++) { /* every byte written is read once */
        char buf[4096];
        ssize_t got;
        cio_set_read_deadline(rd[i].f, cio_now() + NS_PER_MS);
        while ((got = cio_read(rd[i].f, buf, sizeof buf)) > 0)
            atomic_fetch_add(&rd[i].got, got);
        lost += atomic_load(&rd[i].written) - atomic_load(&rd[i].got);
        cio_close(rd[i].f);
        close(rd[i].wfd);
    }
    bench_lib_stop();
    signal(SIGUSR2, SIG_DFL);

    size_t nm = taken(&chaos.moves), nk = taken(&chaos.kills);
    size_t nfm = taken(&chaos.fork_moves), nfk = taken(&chaos.fork_kills);
    size_t nf = taken(&chaos.forks);
    if (nm == 0 || nk == 0 || nfm == 0 || nfk == 0 || nf == 0) {
        fprintf(stderr,
                "figure 8: nothing timed of one kind: %zu moves, %zu kills; "
                "while forking %zu moves, %zu kills, %zu forks\n",
                nm, nk, nfm, nfk, nf);
        exit(2);
    }
    char note[256];
    snprintf(note, sizeof note,
             "%d readers, %d spinning threads, %.0f s: %zu moves timed, %zu kills; "
             "%ld timeouts, %ld cancels, %ld reads with data",
             n, hogs, (double)run / NS_PER_S, nm, nk, atomic_load(&chaos.timeouts),
             atomic_load(&chaos.cancels), atomic_load(&chaos.reads));
    report_phase("chaos", "kill_eintr_loaded", &chaos.moves, &chaos.kills, note, "",
                 TARGET_VALUE_MAX);
    snprintf(note, sizeof note,
             "the same for %.0f s with a fork every 100 ms: %zu moves timed, %zu kills, %zu forks, "
             "fork() p50 %.1f ms, max %.1f ms",
             (double)run / 2 / NS_PER_S, nfm, nfk, nf,
             (double)percentile(chaos.forks.v, nf, 50) / NS_PER_MS,
             (double)max_of(chaos.forks.v, nf) / NS_PER_MS);
    report_phase("chaos_fork", "kill_eintr_forking", &chaos.fork_moves, &chaos.fork_kills, note,
                 " while forking", TARGET_NONE);
    bench_report_one(8, "chaos_bytes_lost", "count", (double)(lost < 0 ? -lost : lost), "", 0,
                     TARGET_VALUE_MAX, 0, "bytes written but not read once (rule 4)");
    bench_report_one(8, "chaos_bad_results", "count", (double)atomic_load(&chaos.bad), "", 0,
                     TARGET_VALUE_MAX, 0,
                     "reads that ended in anything but data, ETIMEDOUT, ECANCELED");
    free(chaos.moves.v);
    free(chaos.kills.v);
    free(chaos.fork_moves.v);
    free(chaos.fork_kills.v);
    free(chaos.forks.v);
    free(rd);
    free(rw);
    free(hog);
}
