/*
 * Description: the cancel signal, signal masks, fork and fd flags (DESIGN.md
 * Semantics rules 9-11, 13, 14).  cio_init refuses a signal another handler
 * owns and changes nothing; the handler has no SA_RESTART and is restored
 * by cio_shutdown; a custom signal works; library threads block every
 * signal but the cancel signal, and a caller blocking every signal still
 * gets timeouts and cancels; storms of process-directed cancel signals, and
 * unrelated signals, neither fail an op nor lose or duplicate a byte;
 * thousands of cancels and timeouts at random moments never hang (no lost
 * wake-up); the child of a fork can use the library while the parent's ops
 * carry on; and the library never changes an fd's flags.
 */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CIO_TSAN
/* The fork tests' children start library threads, which ThreadSanitizer
 * forbids by default after a fork of a multi-threaded process. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}
#endif

#define JOIN_MS 5000
#define AT_ONCE_MS 500
#define LATE_BOUND_MS 2000

static void write_str(int fd, const char *s)
{
    assert_int_equal(write_all(fd, s, strlen(s)), (ssize_t)strlen(s));
}

static void wait_blocked(struct op_thread *t, uint64_t started_before, int fd, int which)
{
    assert_non_null(t);
    assert_true(wait_op_starts(started_before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(fd, which, 1, JOIN_MS));
}

static bool handler_is_default(int signo)
{
    struct sigaction sa;
    if (sigaction(signo, NULL, &sa) != 0)
        return true; /* a signal no handler can be set for */
    return !(sa.sa_flags & SA_SIGINFO) && sa.sa_handler == SIG_DFL;
}

static atomic_int hits[NSIG];

static void counting_handler(int signo)
{
    atomic_fetch_add(&hits[signo], 1);
}

static void install_counting_handler(int signo)
{
    struct sigaction sa = {.sa_handler = counting_handler}; /* no SA_RESTART */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(signo, &sa, NULL), 0);
    atomic_store(&hits[signo], 0);
}

static void restore_default(int signo)
{
    struct sigaction sa = {.sa_handler = SIG_DFL};
    sigemptyset(&sa.sa_mask);
    sigaction(signo, &sa, NULL);
}

/* One timed-out read on a new pipe, on this thread: -1/ETIMEDOUT, not
 * before the deadline.  Returns 0 or a line number to report. */
static int timed_out_read(int64_t ms)
{
    int p[2];
    char buf[8];
    if (make_pipe(p) != 0)
        return __LINE__;
    cio_file *f = cio_fdopen(p[0]);
    if (!f)
        return __LINE__;
    cio_time_t d = cio_after_ms(ms);
    int bad = cio_set_read_deadline(f, d) != 0 ? __LINE__ : 0;
    ssize_t r = cio_read(f, buf, sizeof buf);
    int err = errno;
    cio_time_t end = cio_now();
    if (!bad && (r != -1 || err != ETIMEDOUT))
        bad = __LINE__;
    if (!bad && (end < d || elapsed_ms(d, end) > (double)scaled_ms(LATE_BOUND_MS)))
        bad = __LINE__;
    if (cio_close(f) != 0 && !bad)
        bad = __LINE__;
    close(p[1]);
    return bad;
}

/* Rule 9: cio_init fails with EBUSY when another handler owns the signal,
 * and changes nothing: that handler stays, no thread starts, SIGUSR1 is
 * untouched; the default signal then still works. */
static void init_fails_with_EBUSY_when_another_handler_owns_the_signal(void **state)
{
    (void)state;
    install_counting_handler(SIGUSR2);
    struct sigaction before, after;
    assert_int_equal(sigaction(SIGUSR2, NULL, &before), 0);
    cio_options opt = {.signo = SIGUSR2};
    assert_int_equal(cio_init(&opt), -1);
    assert_int_equal(errno, EBUSY);
    assert_int_equal(sigaction(SIGUSR2, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, counting_handler);
    assert_int_equal(after.sa_flags, before.sa_flags);
    assert_true(handler_is_default(SIGUSR1));
    cio_stats s;
    cio_get_stats(&s);
    assert_int_equal(s.threads, 0);

    assert_int_equal(cio_init(NULL), 0);
    assert_int_equal(timed_out_read(20), 0);
    assert_int_equal(sigaction(SIGUSR2, NULL, &after), 0);
    assert_ptr_equal(after.sa_handler, counting_handler);
    assert_int_equal(atomic_load(&hits[SIGUSR2]), 0);
    cio_shutdown();
    restore_default(SIGUSR2);
}

/* Rule 9: the cancel signal's handler is installed without SA_RESTART
 * while the library runs, and cio_shutdown restores the default. */
static void the_handler_has_no_SA_RESTART_and_shutdown_restores_the_default(void **state)
{
    (void)state;
    assert_true(handler_is_default(SIGUSR1));
    assert_int_equal(timed_out_read(20), 0);
    struct sigaction sa;
    assert_int_equal(sigaction(SIGUSR1, NULL, &sa), 0);
    assert_true((sa.sa_flags & SA_SIGINFO) ||
                (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN));
    assert_int_equal(sa.sa_flags & SA_RESTART, 0);
    assert_int_equal(cio_shutdown(), 0);
    assert_true(handler_is_default(SIGUSR1));
}

/* Rule 9: a custom cancel signal (SIGUSR2, a real-time one) carries
 * timeouts and cancels, leaves SIGUSR1 alone, and is restored after. */
static void a_custom_cancel_signal_carries_timeouts_and_cancels(void **state)
{
    (void)state;
    const int signos[] = {SIGUSR2, SIGRTMIN + 1};
    for (int i = 0; i < 2; i++) {
        int signo = signos[i];
        assert_true(handler_is_default(signo));
        cio_options opt = {.signo = signo};
        assert_int_equal(cio_init(&opt), 0);
        assert_int_equal(timed_out_read(20), 0);
        struct sigaction sa;
        assert_int_equal(sigaction(signo, NULL, &sa), 0);
        assert_false(handler_is_default(signo));
        assert_int_equal(sa.sa_flags & SA_RESTART, 0);
        assert_true(handler_is_default(SIGUSR1));

        int p[2];
        assert_int_equal(make_pipe(p), 0);
        cio_file *f = cio_fdopen(p[0]);
        assert_non_null(f);
        cio_stats s0, s1;
        cio_get_stats(&s0);
        uint64_t before = op_starts();
        struct op_thread *t = start_reader(f, 8);
        wait_blocked(t, before, p[0], CIO_READ);
        assert_int_equal(cio_cancel(f, CIO_READ), 0);
        assert_true(op_join(t, JOIN_MS));
        assert_int_equal(t->result, -1);
        assert_int_equal(t->err, ECANCELED);
        op_free(t);
        cio_get_stats(&s1);
        assert_true(s1.signals_sent > s0.signals_sent);
        assert_int_equal(cio_close(f), 0);
        close(p[1]);
        assert_int_equal(cio_shutdown(), 0);
        assert_true(handler_is_default(signo));
    }
}

struct all_blocked_run {
    int bad; /* 0 or the line of the first failed check */
};

static void *all_blocked_main(void *arg)
{
    struct all_blocked_run *run = arg;
    block_all_signals_in_this_thread();
    run->bad = timed_out_read(50); /* first library call: starts it here */
    return NULL;
}

/* Rule 10: a caller that blocks every signal (and starts the library from
 * that mask) still gets its timeouts on time and its reads cancelled. */
static void a_caller_blocking_every_signal_gets_timeouts_and_cancels(void **state)
{
    (void)state;
    struct all_blocked_run run = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, all_blocked_main, &run), 0);
    pthread_join(th, NULL);
    if (run.bad)
        fail_msg("timed-out read on an all-blocked thread: check at line %d", run.bad);

    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader_all_blocked(f, 8);
    wait_blocked(t, before, p[0], CIO_READ);
    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, ECANCELED);
    op_free(t);

    cio_time_t d = cio_after_ms(50);
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    t = start_reader_all_blocked(f, 8);
    assert_non_null(t);
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, ETIMEDOUT);
    assert_true(t->end >= d);
    op_free(t);
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

/* The blocked-signal mask of thread tid, from /proc; false if unknown. */
static bool thread_sigblk(const char *tid, uint64_t *mask)
{
    char path[300], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/status", tid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return false;
    bool found = false;
    while (fgets(line, sizeof line, fp))
        if (sscanf(line, "SigBlk: %" SCNx64, mask) == 1) {
            found = true;
            break;
        }
    fclose(fp);
    return found;
}

/* The tids of this process's threads now, into tids[0..max); returns the
 * count. */
static int list_tids(int *tids, int max)
{
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)) && n < max)
        if (e->d_name[0] != '.')
            tids[n++] = atoi(e->d_name);
    if (d)
        closedir(d);
    return n;
}

static bool tid_in(int tid, const int *tids, int n)
{
    for (int i = 0; i < n; i++)
        if (tids[i] == tid)
            return true;
    return false;
}

struct mask_check {
    int before[64], nbefore; /* threads that are not the library's */
    int skip_tid, fd;
    int checked, workers;
    char why[160];
};

/* True when every library thread blocks the application's signals and not
 * the cancel signal, and the worker in read(2) on fd is among them. */
static bool library_masks_are_right(void *arg)
{
    /* (not SIGRTMAX: valgrind keeps it for itself) */
    const int must_block[] = {SIGINT,  SIGTERM,  SIGHUP, SIGUSR2, SIGALRM, SIGCHLD,
                              SIGPIPE, SIGWINCH, SIGURG, SIGQUIT, SIGRTMIN};
    struct mask_check *mc = arg;
    mc->checked = mc->workers = 0;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return false;
    bool ok = true;
    struct dirent *e;
    while (ok && (e = readdir(d))) {
        int tid = atoi(e->d_name);
        uint64_t mask;
        if (e->d_name[0] == '.' || tid == mc->skip_tid || tid_in(tid, mc->before, mc->nbefore) ||
            !thread_sigblk(e->d_name, &mask))
            continue;
        mc->checked++;
        mc->workers += thread_in_syscall_on(tid, mc->fd, CIO_READ);
        if (mask & (1ull << (SIGUSR1 - 1))) {
            snprintf(mc->why, sizeof mc->why, "thread %d blocks the cancel signal", tid);
            ok = false;
        }
        for (size_t i = 0; ok && i < sizeof must_block / sizeof must_block[0]; i++)
            if (!(mask & (1ull << (must_block[i] - 1)))) {
                snprintf(mc->why, sizeof mc->why, "thread %d lets signal %d in", tid,
                         must_block[i]);
                ok = false;
            }
    }
    closedir(d);
    if (ok && mc->workers < 1)
        snprintf(mc->why, sizeof mc->why, "no library thread in read(2)");
    return ok && mc->workers >= 1;
}

/* Rule 10: while a worker is blocked and a deadline is armed, every thread
 * the library started (once it has started up: a thread is born with
 * every signal blocked) blocks every signal but the cancel signal. */
static void library_threads_block_every_signal_but_the_cancel_signal(void **state)
{
    (void)state;
    use_worker_waits();
    struct mask_check mc = {.why = ""};
    mc.nbefore = list_tids(mc.before, 64);
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(60000)), 0);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 8);
    wait_blocked(t, before, p[0], CIO_READ);
    if (threads_in_syscall_on(p[0], CIO_READ) < 0)
        skip();

    mc.skip_tid = atomic_load(&t->tid);
    mc.fd = p[0];
    if (!wait_until(library_masks_are_right, &mc, 2000))
        fail_msg("%s (%d library threads seen)", mc.why, mc.checked);
    assert_true(mc.checked >= 2); /* the worker and the timer */

    assert_int_equal(cio_close(f), 0);
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->err, EBADF);
    op_free(t);
    close(p[1]);
}

/* ---- a byte stream under a storm of process-directed signals ----------- */

struct stream {
    cio_file *rf, *wf;
    size_t total;
    unsigned seed;
    /* written by the reader / writer threads, read after join */
    int bad_line;
    char bad[160];
    size_t got;
    long reads, timeouts, writes;
    atomic_long sent; /* signals the storm has sent */
    atomic_int reader_done;
};

static void stream_fail(struct stream *s, int line, const char *what, long a, long b)
{
    if (!s->bad_line) {
        s->bad_line = line;
        snprintf(s->bad, sizeof s->bad, "%s (%ld, %ld)", what, a, b);
    }
}

static void *stream_writer(void *arg)
{
    struct stream *s = arg;
    block_cancel_signal_in_this_thread();
    struct rng rng;
    rng_init(&rng, s->seed * 2 + 1);
    unsigned char *chunk = malloc(16384);
    size_t off = 0;
    while (chunk && off < s->total) {
        size_t n = 1 + rng_below(&rng, 16384);
        if (n > s->total - off)
            n = s->total - off;
        fill_pattern(chunk, n, off);
        /* pace the stream on the storm, so that signals come all along
         * it even when the storm thread gets little CPU (bounded) */
        cio_time_t until = cio_now() + scaled_ms(20) * NS_PER_MS;
        while (atomic_load(&s->sent) < s->writes && cio_now() < until)
            sleep_us(50);
        ssize_t r = cio_write(s->wf, chunk, n);
        if (r != (ssize_t)n) {
            stream_fail(s, __LINE__, "short or failed write", (long)r, errno);
            break;
        }
        off += n;
        s->writes++;
        if (rng_below(&rng, 2) == 0)
            random_delay_us(&rng, 400); /* so reads block and time out */
    }
    free(chunk);
    cio_close(s->wf); /* EOF for the reader */
    return NULL;
}

static void *stream_reader(void *arg)
{
    struct stream *s = arg;
    block_cancel_signal_in_this_thread();
    struct rng rng;
    rng_init(&rng, s->seed * 2);
    unsigned char *buf = malloc(20000);
    while (buf) {
        size_t n = 1 + rng_below(&rng, 20000);
        cio_time_t d = rng_below(&rng, 2)
                           ? cio_now() + 1000 * (cio_time_t)(100 + rng_below(&rng, 3000))
                           : CIO_NO_DEADLINE;
        cio_set_read_deadline(s->rf, d);
        ssize_t r = cio_read(s->rf, buf, n);
        int err = errno;
        cio_time_t end = cio_now();
        s->reads++;
        if (r == 0)
            break;
        if (r < 0) {
            if (err != ETIMEDOUT || d == CIO_NO_DEADLINE) {
                stream_fail(s, __LINE__, "read failed", err, (long)d);
                break;
            }
            if (end < d) {
                stream_fail(s, __LINE__, "timed out early (ns)", (long)(d - end), 0);
                break;
            }
            s->timeouts++;
            continue;
        }
        size_t m = pattern_mismatch(buf, (size_t)r, s->got);
        if (m != (size_t)r) {
            stream_fail(s, __LINE__, "wrong byte at stream offset", (long)(s->got + m), (long)r);
            break;
        }
        s->got += (size_t)r;
    }
    free(buf);
    atomic_store(&s->reader_done, 1);
    return NULL;
}

struct storm {
    const int *signos;
    int nsig;
    struct stream *s;
};

static void *storm_main(void *arg)
{
    struct storm *st = arg;
    block_cancel_signal_in_this_thread();
    struct rng rng;
    rng_init(&rng, st->s->seed * 3);
    while (!atomic_load(&st->s->reader_done)) {
        kill(getpid(), st->signos[rng_below(&rng, (uint32_t)st->nsig)]);
        atomic_fetch_add(&st->s->sent, 1);
        if (rng_below(&rng, 4) == 0)
            random_delay_us(&rng, 30);
        else
            sched_yield();
    }
    return NULL;
}

/* Run a pattern stream from a cio_write thread to a cio_read thread
 * (random sizes, half the reads with short deadlines) over a pipe while a
 * storm thread sends the given signals to the process and a sentinel read
 * stays blocked on another pipe; assert that every byte arrived once, in
 * order, every failed read was a proper timeout, and the sentinel got its
 * one byte at the end.  Returns how many EINTRs the tracer saw beyond the timeouts. */
static long run_stream_under_storm(const int *signos, int nsig, size_t total)
{
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    struct stream s = {.total = total, .seed = test_seed("stream")};
    s.rf = cio_fdopen(p[0]);
    s.wf = cio_fdopen(p[1]);
    assert_non_null(s.rf);
    assert_non_null(s.wf);
    /* a sentinel read blocked all along, for the storm to land on */
    int q[2];
    assert_int_equal(make_pipe(q), 0);
    cio_file *sf = cio_fdopen(q[0]);
    assert_non_null(sf);
    uint64_t before = op_starts();
    struct op_thread *sentinel = start_reader(sf, 8);
    assert_non_null(sentinel);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(q[0], CIO_READ, 1, JOIN_MS));

    struct storm st = {signos, nsig, &s};
    uint64_t eintr0 = trace_count(CIO_EV_EINTR);
    pthread_t r, w, k;
    assert_int_equal(pthread_create(&r, NULL, stream_reader, &s), 0);
    assert_int_equal(pthread_create(&w, NULL, stream_writer, &s), 0);
    assert_int_equal(pthread_create(&k, NULL, storm_main, &st), 0);
    pthread_join(w, NULL);
    pthread_join(r, NULL);
    pthread_join(k, NULL);
    long eintrs = (long)(trace_count(CIO_EV_EINTR) - eintr0);
    printf("stream: %zu bytes, %ld reads (%ld timeouts), %ld writes, %ld "
           "signals, %ld EINTR\n",
           s.got, s.reads, s.timeouts, s.writes, atomic_load(&s.sent), eintrs);
    if (s.bad_line)
        fail_msg("line %d: %s", s.bad_line, s.bad);
    assert_int_equal(s.got, total);
    assert_true(atomic_load(&s.sent) >= s.writes / 2); /* all along */
    assert_int_equal(cio_close(s.rf), 0);
    assert_false(op_is_done(sentinel));
    write_str(q[1], "s");
    assert_true(op_join(sentinel, JOIN_MS));
    assert_int_equal(sentinel->result, 1);
    assert_int_equal(sentinel->buf[0], 's');
    op_free(sentinel);
    assert_int_equal(cio_close(sf), 0);
    close(q[1]);
    return eintrs - s.timeouts; /* EINTRs that were not timeouts */
}

/* Rules 10, 11: a storm of process-directed cancel signals during reads
 * with and without deadlines, and writes: no op fails spuriously, no
 * timeout comes early, no byte is lost or duplicated. */
static void a_storm_of_process_directed_cancel_signals_disturbs_no_op(void **state)
{
    (void)state;
    const int sig[] = {SIGUSR1};
    /* where the kernel sends each signal is its choice (often the same
     * thread again), so how many land in a syscall is only reported */
    long spurious = run_stream_under_storm(sig, 1, 4u << 20);
    printf("EINTRs that were not timeouts: %ld\n", spurious);

    /* and reads on an empty pipe still time out not before the deadline */
    struct stream s = {.seed = test_seed("empty pipe")};
    struct storm st = {sig, 1, &s};
    pthread_t k;
    assert_int_equal(pthread_create(&k, NULL, storm_main, &st), 0);
    int bad = 0;
    for (int i = 0; i < 20 && !bad; i++)
        bad = timed_out_read(10);
    atomic_store(&s.reader_done, 1);
    pthread_join(k, NULL);
    assert_int_equal(bad, 0);
    assert_true(wait_no_pending(SIGUSR1, JOIN_MS));
}

static bool eintr_count_reached(void *arg)
{
    return trace_count(CIO_EV_EINTR) >= *(uint64_t *)arg;
}

/* The tid of a thread in a read-like syscall on fd, 0 if none. */
static pid_t reader_in_syscall_on(int fd)
{
    int tids[64];
    int n = list_tids(tids, 64);
    for (int i = 0; i < n; i++)
        if (thread_in_syscall_on(tids[i], fd, CIO_READ))
            return tids[i];
    return 0;
}

/* Rule 10 (last sentence): cancel signals sent straight to a worker blocked
 * in read(2), with no cancel asked for, each make the syscall fail with
 * EINTR (the tracer counts them), and the worker retries: the read stays
 * blocked and then returns the data. */
static void stray_cancel_signals_on_a_blocked_worker_are_retried(void **state)
{
    (void)state;
    use_worker_waits();
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 8);
    wait_blocked(t, before, p[0], CIO_READ);
    pid_t worker = reader_in_syscall_on(p[0]);
    if (worker == 0)
        skip(); /* the kernel does not say which thread reads */
    assert_true(worker != atomic_load(&t->tid));

    uint64_t eintr0 = trace_count(CIO_EV_EINTR);
    for (int i = 0; i < 50; i++) {
        assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
        uint64_t seen = trace_count(CIO_EV_EINTR);
        assert_int_equal(syscall(SYS_tgkill, getpid(), worker, SIGUSR1), 0);
        uint64_t want = seen + 1;
        if (!wait_until(eintr_count_reached, &want, JOIN_MS))
            fail_msg("signal %d to the worker gave no EINTR", i);
    }
    assert_true(trace_count(CIO_EV_EINTR) - eintr0 >= 50);
    assert_false(op_is_done(t));
    write_str(p[1], "kept");
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, 4);
    assert_memory_equal(t->buf, "kept", 4);
    op_free(t);
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

/* Rule 10: signals meant for the application (SIGUSR2, SIGWINCH, SIGURG,
 * here with handlers installed without SA_RESTART and blocked in every
 * test thread) never land on a library thread and disturb no op. */
static void unrelated_signals_never_land_on_library_threads(void **state)
{
    (void)state;
    const int sig[] = {SIGUSR2, SIGWINCH, SIGURG};
    for (int i = 0; i < 3; i++)
        install_counting_handler(sig[i]);
    run_stream_under_storm(sig, 3, 2u << 20);
    for (int i = 0; i < 3; i++)
        assert_int_equal(atomic_load(&hits[sig[i]]), 0);

    sigset_t pending, set;
    sigpending(&pending);
    sigemptyset(&set);
    for (int i = 0; i < 3; i++) {
        assert_true(sigismember(&pending, sig[i])); /* still waiting for us */
        sigaddset(&set, sig[i]);
    }
    pthread_sigmask(SIG_UNBLOCK, &set, NULL); /* delivered here, now */
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(atomic_load(&hits[sig[i]]), 1);
        restore_default(sig[i]);
    }
}

/* Rule 11 (no lost wake-up): 2000 reads each cancelled a random 0-200 us
 * after being handed to the pool: every one fails ECANCELED, the worst
 * cancel latency stays under a generous bound, and the stats count the
 * cancels, the signals and no more resignals than signals. */
static void cancels_at_random_moments_never_hang(void **state)
{
    (void)state;
    enum { N = 2000 };
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    cio_stats s0, s1;
    cio_get_stats(&s0);
    double worst_ms = 0;
    for (int i = 0; i < N; i++) {
        uint64_t before = op_starts();
        struct op_thread *t = start_reader(f, 8);
        assert_non_null(t);
        assert_true(wait_op_starts(before + 1, JOIN_MS));
        random_delay_us(&rng, 200);
        cio_time_t c = cio_now();
        assert_int_equal(cio_cancel(f, CIO_READ), 0);
        if (!op_join(t, JOIN_MS))
            fail_msg("iteration %d: cancelled read never returned", i);
        if (t->result != -1 || t->err != ECANCELED)
            fail_msg("iteration %d: read gave %zd errno %d", i, t->result, t->err);
        if (elapsed_ms(c, t->end) > worst_ms)
            worst_ms = elapsed_ms(c, t->end);
        op_free(t);
    }
    cio_get_stats(&s1);
    printf("signals %llu, resignals %llu, cancels %llu, worst latency %.3f ms\n",
           (unsigned long long)(s1.signals_sent - s0.signals_sent),
           (unsigned long long)(s1.resignals - s0.resignals),
           (unsigned long long)(s1.cancels - s0.cancels), worst_ms);
    assert_true(worst_ms < (double)scaled_ms(1000)); /* bounded latency */
    assert_int_equal(s1.cancels - s0.cancels, N);
    assert_true(s1.signals_sent > s0.signals_sent);
    assert_true(s1.resignals - s0.resignals <= s1.signals_sent - s0.signals_sent);
    assert_int_equal(s1.ops_started - s0.ops_started, N);
    assert_int_equal(s1.ops_done - s0.ops_done, N);
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

/* Rule 11: 1000 reads with deadlines a random 0-200 us out (some already
 * past when the read starts, most passing around the syscall's entry) all
 * fail ETIMEDOUT, not before the deadline, none hangs. */
static void deadlines_at_random_moments_never_hang(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    cio_stats s0, s1;
    cio_get_stats(&s0);
    for (int i = 0; i < N; i++) {
        cio_time_t d = cio_now() + 1000 * (cio_time_t)rng_below(&rng, 201);
        assert_int_equal(cio_set_read_deadline(f, d), 0);
        struct op_thread *t = start_reader(f, 8);
        assert_non_null(t);
        if (!op_join(t, JOIN_MS))
            fail_msg("iteration %d: timed read never returned", i);
        if (t->result != -1 || t->err != ETIMEDOUT || t->end < d)
            fail_msg("iteration %d: read gave %zd errno %d, %lld ns early", i, t->result, t->err,
                     (long long)(d - t->end));
        op_free(t);
    }
    cio_get_stats(&s1);
    assert_true(s1.timeouts - s0.timeouts > 0);
    assert_true(s1.timeouts - s0.timeouts <= N);
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

struct started_or_done {
    struct op_thread *t;
    uint64_t starts;
};

/* The op was handed to the pool, or is already over (failed at once). */
static bool started_or_done(void *arg)
{
    struct started_or_done *sd = arg;
    return op_starts() >= sd->starts || op_is_done(sd->t);
}

/* Rules 3, 11: 1000 reads whose deadline, armed a random 0-300 us out or
 * not at all, is moved into the past a random 0-200 us after the read was
 * handed to the pool: each fails ETIMEDOUT, soon after the move. */
static void deadlines_moved_into_the_past_at_random_moments_interrupt_at_once(void **state)
{
    (void)state;
    enum { N = 1000 };
    struct rng rng;
    rng_init(&rng, test_seed(__func__));
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    double worst_ms = 0;
    for (int i = 0; i < N; i++) {
        cio_time_t armed = rng_below(&rng, 2) ? cio_now() + 1000 * (cio_time_t)rng_below(&rng, 301)
                                              : CIO_NO_DEADLINE;
        assert_int_equal(cio_set_read_deadline(f, armed), 0);
        uint64_t before = op_starts();
        struct op_thread *t = start_reader(f, 8);
        assert_non_null(t);
        struct started_or_done sd = {t, before + 1};
        assert_true(wait_until(started_or_done, &sd, JOIN_MS));
        random_delay_us(&rng, 200);
        cio_time_t moved = cio_now();
        assert_int_equal(cio_set_read_deadline(f, moved), 0);
        if (!op_join(t, JOIN_MS))
            fail_msg("iteration %d: read went on after its deadline moved into the past", i);
        if (t->result != -1 || t->err != ETIMEDOUT)
            fail_msg("iteration %d: read gave %zd errno %d", i, t->result, t->err);
        if (elapsed_ms(moved, t->end) > worst_ms)
            worst_ms = elapsed_ms(moved, t->end);
        op_free(t);
    }
    printf("worst latency after the move: %.3f ms\n", worst_ms);
    assert_true(worst_ms < (double)scaled_ms(1000));
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

/* ---- fork --------------------------------------------------------------- */

/* Wait (bounded) for child pid; kill it if it hangs.  Returns its exit
 * status, or -1 if it did not exit normally. */
static int wait_child(pid_t pid)
{
    cio_time_t end = cio_now() + scaled_ms(JOIN_MS) * NS_PER_MS;
    int status;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
        if (r == -1 && errno != EINTR)
            return -1;
        if (cio_now() > end) {
            fprintf(stderr, "child %d hangs: killing it\n", (int)pid);
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return -1;
        }
        sleep_us(1000);
    }
}

/* Fork; the child runs fn(arg), reports its result (0 or the line of the
 * first failed check) on a pipe and exits with 0 or 3.  The parent waits
 * for it (bounded) and fails the test unless it exited 0 reporting 0.
 * Under valgrind the exit status is not the child's own: the leak check
 * runs in a forked child too, and turns its exit status into its
 * --error-exitcode over the parent's threads' memory. */
static void run_in_child(int (*fn)(void *), void *arg)
{
    int rep[2];
    assert_int_equal(make_pipe(rep), 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(rep[0]);
        int line = fn(arg);
        (void)!write(rep[1], &line, sizeof line);
        _exit(line ? 3 : 0);
    }
    close(rep[1]);
    int status = wait_child(pid);
    int line = -1;
    ssize_t n = read(rep[0], &line, sizeof line);
    close(rep[0]);
    if (n != (ssize_t)sizeof line)
        fail_msg("child died before reporting (exit status %d)", status);
    if (line != 0)
        fail_msg("child failed the check at %s:%d", __FILE__, line);
    if (status != 0 && !under_valgrind())
        fail_msg("child reported success but exited with status %d", status);
}

/* In a child: a timed-out read and a cancelled read on new pipes.  Returns
 * 0 or the line of the first failed check. */
static int child_uses_the_library(void *arg)
{
    (void)arg;
    int bad = timed_out_read(50);
    if (bad)
        return bad;
    int p[2];
    if (make_pipe(p) != 0)
        return __LINE__;
    cio_file *f = cio_fdopen(p[0]);
    if (!f)
        return __LINE__;
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 8);
    if (!t || !wait_op_starts(before + 1, JOIN_MS))
        return __LINE__;
    if (!wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS))
        return __LINE__;
    if (cio_cancel(f, CIO_READ) != 0)
        return __LINE__;
    if (!op_join(t, JOIN_MS))
        return __LINE__;
    if (t->result != -1 || t->err != ECANCELED)
        return __LINE__;
    op_free(t);
    write_all(p[1], "c", 1);
    char c;
    if (cio_read(f, &c, 1) != 1 || c != 'c')
        return __LINE__;
    if (cio_close(f) != 0)
        return __LINE__;
    close(p[1]);
    return 0;
}

/* In a child: close the inherited pipe, then use the library anew. */
static int child_closes_then_uses_the_library(void *arg)
{
    int *p = arg;
    close(p[0]);
    close(p[1]);
    return child_uses_the_library(NULL);
}

/* Rule 13: after the library was used, a forked child can use it (its
 * threads are rebuilt): a read times out properly and a cancel works; the
 * parent keeps working too. */
/* ThreadSanitizer cannot follow a child that makes threads after a fork
 * of a process that had others: it ends it with "thread leak" (exit 66)
 * or trips on a thread id reused there ("dup thread with used id").  The
 * other builds, AddressSanitizer's and valgrind's included, keep these
 * tests. */
static void skip_under_tsan(void)
{
#if defined(CIO_TSAN)
    skip();
#endif
}

static void a_forked_child_can_use_the_library(void **state)
{
    skip_under_tsan();
    (void)state;
    assert_int_equal(timed_out_read(10), 0);
    run_in_child(child_uses_the_library, NULL);
    assert_int_equal(timed_out_read(10), 0);
}

/* Rule 13: a fork while a read is blocked in the parent: the child uses
 * the library, and the parent's read then completes with the data written
 * after the fork. */
static void a_fork_during_a_blocked_read_leaves_the_parents_read_intact(void **state)
{
    skip_under_tsan();
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 16);
    wait_blocked(t, before, p[0], CIO_READ);
    run_in_child(child_closes_then_uses_the_library, p);
    assert_false(op_is_done(t));
    write_str(p[1], "after fork");
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, 10);
    assert_memory_equal(t->buf, "after fork", 10);
    op_free(t);
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

/* ---- fork while another thread is inside the library ------------------- */

/* These tests fork while other threads start threads, and the sanitizers
 * of gcc 12 cannot follow: AddressSanitizer does not hold its allocator's
 * lock across fork, so the child's first thread can wait on it for ever
 * (seen in a backtrace: __sanitizer::Mutex::Lock under AsanThread::Init);
 * ThreadSanitizer reports the parent's threads as leaked in the child
 * ("thread leak", exit 66) and trips on reused thread ids.  The plain,
 * portable, clang and musl runs and valgrind's keep them. */
static void skip_under_sanitizers(void)
{
#if defined(CIO_ASAN) || defined(CIO_TSAN)
    skip();
#endif
}

#define FORKS 10
#define FIRST_START_FLAG "--forks-during-the-first-start"

static const char *self_path; /* argv[0]: this test, run again */
static atomic_int first_use_begun;

static void *first_use(void *arg)
{
    (void)arg;
    atomic_store(&first_use_begun, 1);
    return (void *)(intptr_t)cio_init(NULL);
}

/* Fork FORKS times while thread t is in the call that starts the library
 * (or just past it); each child must time a read out (the first starts
 * the library's threads itself, or finds them gone).  The number of
 * children that failed or hung. */
static int fork_children_using_the_library(void)
{
    int bad = 0;
    for (int i = 0; i < FORKS; i++) {
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        if (pid < 0)
            return FORKS;
        if (pid == 0) {
            alarm((unsigned)(scaled_ms(JOIN_MS) / 1000) + 1); /* a hung one ends */
            _exit(timed_out_read(20) ? 3 : 0);
        }
        bad += wait_child(pid) != 0;
    }
    return bad;
}

/* The whole of a process run with FIRST_START_FLAG: nothing in it has
 * touched the library before one thread starts it while this one forks. */
static int forks_during_the_first_start(void)
{
    block_cancel_signal_in_this_thread();
    pthread_t t;
    if (pthread_create(&t, NULL, first_use, NULL) != 0)
        return 2;
    while (!atomic_load(&first_use_begun))
        ;
    int bad = fork_children_using_the_library();
    void *r;
    pthread_join(t, &r);
    if (bad || r)
        fprintf(stderr, "%d of %d children failed or hung; cio_init: %ld\n", bad, FORKS,
                (long)(intptr_t)r);
    return bad || r ? 1 : 0;
}

/* Rule 13: a fork while another thread starts the library (the first use
 * in the process, lazy or cio_init) leaves no lock of it held in the
 * child.  Each try is a new process, since only the first start has the
 * window; a child that hung is killed and counted. */
static void a_fork_during_the_libraries_first_start_leaves_a_usable_child(void **state)
{
    (void)state;
    skip_under_sanitizers();
    for (int i = 0; i < 8; i++) {
        char *argv[] = {(char *)self_path, FIRST_START_FLAG, NULL};
        fflush(stdout);
        fflush(stderr);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            execv(self_path, argv);
            _exit(127);
        }
        int status = wait_child(pid);
        if (status != 0 && !under_valgrind())
            fail_msg("try %d: exit status %d", i, status);
    }
}

static atomic_int calling;

static long short_call(void *arg)
{
    (void)arg;
    return 0;
}

static void *call_in_a_loop(void *arg)
{
    (void)arg;
    while (atomic_load(&calling))
        if (cio_call(short_call, NULL, CIO_NO_DEADLINE) != 0)
            return (void *)1;
    return NULL;
}

/* In a child: a call of its own, then a shutdown, which must not reach
 * the parent's calls that were in flight at the fork. */
static int child_calls_then_shuts_down(void *arg)
{
    (void)arg;
    if (cio_call(short_call, NULL, cio_after_ms(scaled_ms(JOIN_MS))) != 0)
        return __LINE__;
    if (cio_shutdown() != 0)
        return __LINE__;
    return timed_out_read(20);
}

/* Rule 13: forks while other threads make cio_calls one after another:
 * the child makes a call and shuts the library down, and never waits on
 * the parent's calls (they do not exist in the child). */
static void forks_during_calls_in_flight_leave_a_usable_child(void **state)
{
    (void)state;
    skip_under_sanitizers();
    pthread_t t[2];
    atomic_store(&calling, 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, call_in_a_loop, NULL), 0);
    for (int i = 0; i < 20; i++) {
        sleep_us((unsigned)(rand() % 500));
        run_in_child(child_calls_then_shuts_down, NULL);
    }
    atomic_store(&calling, 0);
    for (int i = 0; i < 2; i++) {
        void *r;
        assert_int_equal(pthread_join(t[i], &r), 0);
        assert_null(r);
    }
}

/* ---- forks racing deadline moves, cancels and closes -------------------- */

#define RACE_FILES 6

struct race_file {
    int p[2];
    cio_file *f;
    pthread_t reader;
    uint64_t got;  /* bytes the reader took */
    int bad;       /* the line of the reader's first failed check */
    int bad_errno; /* and its errno */
};

static struct {
    struct race_file files[RACE_FILES];
    atomic_int stop;
    atomic_uint_fast64_t written;
    atomic_int bad; /* the line of a mover's or churner's failed check */
    unsigned seed;
} race;

/* Reads until stopped; every failure but a timeout or a cancel is wrong. */
static void *race_reader(void *arg)
{
    struct race_file *rf = arg;
    char buf[64];
    while (!atomic_load(&race.stop)) {
        ssize_t r = cio_read(rf->f, buf, sizeof buf);
        if (r > 0)
            rf->got += (uint64_t)r;
        else if (r == 0 || (errno != ETIMEDOUT && errno != ECANCELED)) {
            rf->bad = __LINE__;
            rf->bad_errno = r == 0 ? 0 : errno;
            break;
        } else if (errno == ETIMEDOUT)
            sleep_us(200); /* a deadline in the past fails every read at once */
    }
    return NULL;
}

/* Moves the readers' deadlines, cancels them, and writes bytes for them. */
static void *race_mover(void *arg)
{
    struct rng r;
    rng_init(&r, race.seed + (unsigned)(uintptr_t)arg);
    while (!atomic_load(&race.stop) && !atomic_load(&race.bad)) {
        struct race_file *rf = &race.files[rng_below(&r, RACE_FILES)];
        int rc = 0;
        switch (rng_below(&r, 5)) {
        case 0:
            rc = cio_set_read_deadline(rf->f, cio_now() - 1);
            break;
        case 1:
            rc = cio_set_read_deadline(rf->f, cio_now() + rng_below(&r, 2000000));
            break;
        case 2:
            rc = cio_set_read_deadline(rf->f, CIO_NO_DEADLINE);
            break;
        case 3:
            rc = cio_cancel(rf->f, CIO_READ);
            break;
        default:
            if (write(rf->p[1], "b", 1) == 1)
                atomic_fetch_add(&race.written, 1);
            break;
        }
        if (rc != 0)
            atomic_store(&race.bad, __LINE__);
        random_delay_us(&r, 300);
    }
    return NULL;
}

/* Opens, times out a read on and closes files of its own. */
static void *race_churner(void *arg)
{
    (void)arg;
    while (!atomic_load(&race.stop) && !atomic_load(&race.bad)) {
        int bad = timed_out_read(1);
        if (bad)
            atomic_store(&race.bad, bad);
    }
    return NULL;
}

/* In a child forked in the race: the parent's files, copied whatever their
 * threads were doing, take a deadline, a cancel and a close, and a read of
 * its own times out. */
static int child_after_a_racing_fork(void *arg)
{
    (void)arg;
    cio_file *f = race.files[0].f;
    if (cio_set_read_deadline(f, cio_after_ms(1)) != 0)
        return __LINE__;
    if (cio_cancel(f, CIO_READ) != 0)
        return __LINE__;
    int bad = timed_out_read(5);
    if (bad)
        return bad;
    if (cio_close(f) != 0)
        return __LINE__;
    return 0;
}

/* Rule 13 with rules 3 and 6: forks at random moments while readers block,
 * their deadlines move back and forth, cancels land and files open and
 * close, each fork closing the library's gate on threads that come for its
 * locks.  Nothing may hang (a child that does is killed, and fails the
 * test), every child's copy works, and in the parent no byte is lost: what
 * the readers took and what is left in the pipes is what was written. */
static void forks_race_deadline_moves_cancels_and_closes(void **state)
{
    (void)state;
    skip_under_sanitizers();
    race.seed = test_seed("forks_race_deadline_moves_cancels_and_closes");
    atomic_store(&race.stop, 0);
    atomic_store(&race.bad, 0);
    atomic_store(&race.written, 0);
    for (int i = 0; i < RACE_FILES; i++) {
        struct race_file *rf = &race.files[i];
        *rf = (struct race_file){.got = 0};
        assert_int_equal(make_pipe(rf->p), 0);
        rf->f = cio_fdopen(rf->p[0]);
        assert_non_null(rf->f);
        assert_int_equal(pthread_create(&rf->reader, NULL, race_reader, rf), 0);
    }
    pthread_t movers[2], churner;
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&movers[i], NULL, race_mover, (void *)(uintptr_t)i), 0);
    assert_int_equal(pthread_create(&churner, NULL, race_churner, NULL), 0);
    struct rng r;
    rng_init(&r, race.seed);
    int forks = (int)(40 / time_scale());
    if (forks < 8)
        forks = 8;
    for (int i = 0; i < forks && !atomic_load(&race.bad); i++) {
        random_delay_us(&r, 3000);
        run_in_child(child_after_a_racing_fork, NULL);
    }
    atomic_store(&race.stop, 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_join(movers[i], NULL), 0);
    assert_int_equal(pthread_join(churner, NULL), 0);
    uint64_t got = 0, left = 0;
    for (int i = 0; i < RACE_FILES; i++) {
        struct race_file *rf = &race.files[i];
        assert_int_equal(cio_set_read_deadline(rf->f, cio_now() - 1), 0);
        assert_int_equal(pthread_join(rf->reader, NULL), 0);
        if (rf->bad)
            fail_msg("reader %d: check at %s:%d failed (errno %d)", i, __FILE__, rf->bad,
                     rf->bad_errno);
        got += rf->got;
        assert_int_equal(cio_set_read_deadline(rf->f, CIO_NO_DEADLINE), 0);
        left += drain_now(rf->p[0]);
        assert_int_equal(cio_close(rf->f), 0);
        close(rf->p[1]);
    }
    if (atomic_load(&race.bad))
        fail_msg("check at %s:%d failed", __FILE__, atomic_load(&race.bad));
    printf("%d forks, %llu bytes written, %llu read, %llu left in the pipes\n", forks,
           (unsigned long long)atomic_load(&race.written), (unsigned long long)got,
           (unsigned long long)left);
    assert_int_equal(got + left, atomic_load(&race.written));
}

/* A cio_call's fn that forks: the child returns from fn, as code that
 * forks and whose exec failed may (it should _exit). */
static long fork_and_return_in_both(void *arg)
{
    (void)arg;
    fflush(NULL);
    pid_t pid = fork();
    return pid == 0 ? 0 : (long)pid;
}

/* Rule 13 and cio_call(3): a child forked inside fn that returns from it
 * has no caller and no worker to go back to: it exits with status 127, at
 * once, and the parent's call returns the pid as fn said. */
static void a_child_that_returns_from_the_fn_it_was_forked_in_exits_127(void **state)
{
    skip_under_tsan();
    (void)state;
    long pid = cio_call(fork_and_return_in_both, NULL, CIO_NO_DEADLINE);
    assert_true(pid > 0);
    int st = child_status_within((pid_t)pid, (double)scaled_ms(3000));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 127)
        fail_msg("child: wait status %#x", (unsigned)st);
    assert_int_equal(cio_call(short_call, NULL, CIO_NO_DEADLINE), 0);
}

struct fork_in_shutdown {
    atomic_int running;
    int status; /* the child's wait status */
};

/* Wait until cio_shutdown stops this call, then fork; the child checks
 * that its library works (a read times out) and _exits. */
static long fork_once_shutdown_begins(void *arg)
{
    struct fork_in_shutdown *s = arg;
    atomic_store(&s->running, 1);
    while (!cio_interrupted())
        sleep_us(1000);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(timed_out_read(20) == 0 ? 0 : 1);
    s->status = pid < 0 ? -1 : child_status_within(pid, (double)scaled_ms(5000));
    return 0;
}

static void *call_fork_once_shutdown_begins(void *arg)
{
    block_cancel_signal_in_this_thread();
    cio_call(fork_once_shutdown_begins, arg, CIO_NO_DEADLINE);
    return NULL;
}

static bool call_is_running(void *arg)
{
    return atomic_load(&((struct fork_in_shutdown *)arg)->running) != 0;
}

/* Rule 13 with cio_shutdown: a fn that forks while cio_shutdown waits for
 * it (holding the library's own lock) must not deadlock the fork; the
 * child gets a working library, and the shutdown completes. */
static void a_fork_in_a_fn_while_cio_shutdown_waits_for_it_goes_through(void **state)
{
    skip_under_tsan();
    (void)state;
    struct fork_in_shutdown s = {.status = -1};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, call_fork_once_shutdown_begins, &s), 0);
    assert_true(wait_until(call_is_running, &s, JOIN_MS));
    assert_int_equal(cio_shutdown(), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    if (!WIFEXITED(s.status) || WEXITSTATUS(s.status) != 0)
        fail_msg("child: wait status %#x", (unsigned)s.status);
}

/* In a child: the inherited file whose read is in flight in the parent. */
static int child_uses_the_inherited_file(void *arg)
{
    cio_file *f = arg;
    char buf[8];
    cio_stats s;
    cio_get_stats(&s); /* the parent's read is not one of the child's */
    if (s.ops_started != s.ops_done)
        return __LINE__;
    cio_time_t d = cio_after_ms(50);
    if (cio_set_read_deadline(f, d) != 0)
        return __LINE__;
    ssize_t r = cio_read(f, buf, sizeof buf);
    if (r != -1 || errno != ETIMEDOUT || cio_now() < d)
        return __LINE__;
    if (cio_close(f) != 0)
        return __LINE__;
    cio_get_stats(&s);
    if (s.ops_started != s.ops_done)
        return __LINE__;
    return 0;
}

struct line_reader {
    cio_file *f;
    atomic_int tid;
    ssize_t r;
    char buf[8];
    pthread_t thread;
};

static void *read_a_line(void *arg)
{
    struct line_reader *l = arg;
    block_cancel_signal_in_this_thread();
    atomic_store(&l->tid, (int)current_tid());
    l->r = cio_read_until(l->f, l->buf, sizeof l->buf, "\n", 1);
    return NULL;
}

/* Rule 13: ops in flight in the parent do not exist in the child: the
 * child's own read on the same file is not held up by the parent's (it
 * times out on its deadline), its cio_close does not wait for it, and its
 * stats do not count it as started, nor a read helper that waits for its
 * turn behind it. */
static void ops_in_flight_in_the_parent_do_not_exist_in_the_child(void **state)
{
    skip_under_tsan();
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct op_thread *t = start_reader(f, 16);
    wait_blocked(t, before, p[0], CIO_READ);
    struct line_reader l = {.f = f};
    assert_int_equal(pthread_create(&l.thread, NULL, read_a_line, &l), 0);
    while (!atomic_load(&l.tid))
        sleep_us(100);
    assert_true(wait_thread_sleeping(atomic_load(&l.tid), JOIN_MS)); /* behind t */
    run_in_child(child_uses_the_inherited_file, f);
    assert_false(op_is_done(t));
    write_str(p[1], "parent's");
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, 8);
    assert_memory_equal(t->buf, "parent's", 8);
    op_free(t);
    write_str(p[1], "h\n");
    assert_int_equal(pthread_join(l.thread, NULL), 0);
    assert_int_equal(l.r, 2);
    assert_int_equal(cio_close(f), 0);
    close(p[1]);
}

/* ---- fd flags ----------------------------------------------------------- */

struct flags {
    int fl, fd;
};

static struct flags flags_of(int fd)
{
    struct flags f = {fcntl(fd, F_GETFL), fcntl(fd, F_GETFD)};
    return f;
}

static void assert_flags(int fd, struct flags want)
{
    struct flags got = flags_of(fd);
    assert_int_equal(got.fl, want.fl);
    assert_int_equal(got.fd, want.fd);
}

/* Rule 14: the fd's status and descriptor flags (and so O_NONBLOCK seen by
 * another holder of the same open file description, a dup here) are the
 * same before and after cio_fdopen, reads, a timeout, a cancel, during a
 * blocked read, and after cio_detach; with and without O_NONBLOCK and
 * FD_CLOEXEC set by the owner (a non-blocking fd gives EAGAIN). */
static void the_library_never_changes_the_fds_flags(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++) {
        int p[2];
        char buf[8];
        assert_int_equal(make_pipe(p), 0);
        if (variant == 1) {
            assert_int_equal(fcntl(p[0], F_SETFL, O_NONBLOCK), 0);
            assert_int_equal(fcntl(p[0], F_SETFD, FD_CLOEXEC), 0);
        }
        int other = dup(p[0]);
        assert_true(other >= 0);
        struct flags want = flags_of(p[0]), want_other = flags_of(other);
        cio_file *f = cio_fdopen(p[0]);
        assert_non_null(f);
        assert_flags(p[0], want);

        write_str(p[1], "ab");
        assert_int_equal(cio_read(f, buf, 1), 1);
        assert_flags(p[0], want);
        assert_flags(other, want_other);
        /* long enough for a worker to run the ready read on a loaded
         * machine (where the system has no try, one does) */
        cio_time_t d = cio_after_ms(scaled_ms(300));
        assert_int_equal(cio_set_read_deadline(f, d), 0);
        assert_int_equal(cio_read(f, buf, 1), 1);
        assert_flags(p[0], want);
        ssize_t r = cio_read(f, buf, 1); /* empty now */
        assert_int_equal(r, -1);
        assert_int_equal(errno, ETIMEDOUT); /* O_NONBLOCK or not: it waited */
        assert_flags(p[0], want);
        assert_flags(other, want_other);

        if (variant == 0) {
            assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
            uint64_t before = op_starts();
            struct op_thread *t = start_reader(f, 8);
            wait_blocked(t, before, p[0], CIO_READ);
            assert_flags(other, want_other); /* during the blocked read */
            assert_int_equal(cio_cancel(f, CIO_READ), 0);
            assert_true(op_join(t, JOIN_MS));
            assert_int_equal(t->err, ECANCELED);
            op_free(t);
            assert_flags(p[0], want);
        }
        assert_int_equal(cio_detach(f), p[0]);
        assert_flags(p[0], want);
        assert_flags(other, want_other);
        close(p[0]);
        close(p[1]);
        close(other);
    }
}

static void set_nonblock(int fd)
{
    assert_int_equal(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* Rules 5, 14: an fd that another holder made O_NONBLOCK still blocks in
 * every call, until ready, its deadline, a cancel (the worker waits in
 * poll(2), which the signal interrupts); cio_write still writes all n
 * bytes; a non-blocking connect still connects; only MSG_DONTWAIT, asked
 * for, gives EAGAIN.  The flag itself is never touched. */
static void an_O_NONBLOCK_fd_blocks_like_any_other(void **state)
{
    (void)state;
    int p[2];
    char buf[8];
    assert_int_equal(make_pipe(p), 0);
    set_nonblock(p[0]);
    set_nonblock(p[1]);
    struct flags want_r = flags_of(p[0]), want_w = flags_of(p[1]);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);

    struct op_thread *t = start_reader(f, 8); /* no deadline: waits */
    assert_true(wait_op_sleeping(t, JOIN_MS));
    wait_for_time(cio_now() + scaled_ms(50) * NS_PER_MS);
    assert_false(op_is_done(t));
    write_str(p[1], "xy");
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->result, 2);
    assert_memory_equal(t->buf, "xy", 2);
    op_free(t);

    cio_time_t d = cio_after_ms(100);
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    assert_int_equal(cio_read(f, buf, 1), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(cio_now() >= d);
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);

    t = start_reader(f, 8);
    assert_true(wait_op_sleeping(t, JOIN_MS));
    wait_for_time(cio_now() + scaled_ms(20) * NS_PER_MS);
    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    assert_true(op_join(t, JOIN_MS));
    assert_int_equal(t->err, ECANCELED);
    op_free(t);
    assert_flags(p[0], want_r);

    /* A write of more than the pipe holds, its reader late: all of it. */
    const size_t total = 200000;
    unsigned char *data = malloc(total);
    assert_non_null(data);
    fill_pattern(data, total, 0);
    cio_file *w = cio_fdopen(p[1]);
    assert_non_null(w);
    assert_int_equal(cio_detach(f), p[0]);
    /* the raw reader's read(2) must block: only the write end stays O_NONBLOCK */
    assert_int_equal(fcntl(p[0], F_SETFL, fcntl(p[0], F_GETFL) & ~O_NONBLOCK), 0);
    struct op_thread *wt = start_writer(w, data, total);
    assert_true(wait_op_sleeping(wt, JOIN_MS));
    struct raw_reader *rr = start_raw_reader(p[0], total);
    assert_non_null(rr);
    assert_true(op_join(wt, JOIN_MS));
    assert_int_equal(wt->result, (ssize_t)total);
    op_free(wt);
    assert_true(raw_reader_join(rr, JOIN_MS));
    assert_int_equal(rr->got, total);
    assert_int_equal(pattern_mismatch(rr->buf, total, 0), total);
    raw_reader_free(rr);
    free(data);
    assert_flags(p[1], want_w);
    assert_int_equal(cio_detach(w), p[1]);
    close(p[0]);
    close(p[1]);

    /* A socket: MSG_DONTWAIT is the caller's own ask; connect blocks. */
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
    set_nonblock(sv[0]);
    cio_file *s = cio_fdopen(sv[0]);
    assert_non_null(s);
    assert_int_equal(cio_recv(s, buf, 1, MSG_DONTWAIT), -1);
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    assert_int_equal(cio_close(s), 0);
    close(sv[1]);
    struct sockaddr_in a;
    int l = loopback_listener(&a);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c >= 0);
    set_nonblock(c);
    cio_file *cf = cio_fdopen(c);
    assert_non_null(cf);
    assert_int_equal(cio_set_write_deadline(cf, cio_after_ms(scaled_ms(JOIN_MS))), 0);
    assert_int_equal(cio_connect(cf, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(cio_close(cf), 0);
    close(l);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup_watched, fixture_teardown)

int main(int argc, char **argv)
{
    self_path = argv[0];
    if (argc == 2 && strcmp(argv[1], FIRST_START_FLAG) == 0)
        return forks_during_the_first_start();
    block_cancel_signal_in_this_thread();
    const struct CMUnitTest tests[] = {
        T(init_fails_with_EBUSY_when_another_handler_owns_the_signal),
        T(the_handler_has_no_SA_RESTART_and_shutdown_restores_the_default),
        T(a_custom_cancel_signal_carries_timeouts_and_cancels),
        T(a_caller_blocking_every_signal_gets_timeouts_and_cancels),
        T(library_threads_block_every_signal_but_the_cancel_signal),
        T(stray_cancel_signals_on_a_blocked_worker_are_retried),
        T(a_storm_of_process_directed_cancel_signals_disturbs_no_op),
        T(unrelated_signals_never_land_on_library_threads),
        T(cancels_at_random_moments_never_hang),
        T(deadlines_at_random_moments_never_hang),
        T(deadlines_moved_into_the_past_at_random_moments_interrupt_at_once),
        T(a_forked_child_can_use_the_library),
        T(a_fork_during_a_blocked_read_leaves_the_parents_read_intact),
        T(ops_in_flight_in_the_parent_do_not_exist_in_the_child),
        T(a_fork_during_the_libraries_first_start_leaves_a_usable_child),
        T(forks_during_calls_in_flight_leave_a_usable_child),
        T(forks_race_deadline_moves_cancels_and_closes),
        T(a_child_that_returns_from_the_fn_it_was_forked_in_exits_127),
        T(a_fork_in_a_fn_while_cio_shutdown_waits_for_it_goes_through),
        T(the_library_never_changes_the_fds_flags),
        T(an_O_NONBLOCK_fd_blocks_like_any_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
