/*
 * Description: helpers for the cancelio tests — scaled bounded waits, fd and
 * thread counting, pipes and byte patterns, signal masks, seeded random
 * timing, an op run on its own thread, and ways to see from outside the
 * library that an op is blocked (the stats counters and the syscall a
 * thread is sleeping in, from /proc/self/task/<tid>/syscall).
 */
#include "support.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- time ---------------------------------------------------------------- */

static double the_scale = 1;

static void read_scale(void)
{
    const char *s = getenv("CIO_TEST_TIME_SCALE");
    double v = s ? strtod(s, NULL) : 1;
    the_scale = v >= 1 ? v : 1;
}

double time_scale(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, read_scale);
    return the_scale;
}

int64_t scaled_ms(int64_t ms)
{
    return (int64_t)((double)ms * time_scale());
}

double elapsed_ms(cio_time_t a, cio_time_t b)
{
    return (double)(b - a) / 1e6;
}

void sleep_us(unsigned us)
{
    struct timespec ts = {us / 1000000, (long)(us % 1000000) * 1000};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Busy-wait us microseconds: finer than a sleep, for tight races. */
static void spin_us(unsigned us)
{
    cio_time_t end = cio_now() + (cio_time_t)us * 1000;
    while (cio_now() < end)
        ;
}

int child_status_within(pid_t pid, double ms)
{
    cio_time_t end = cio_now() + (cio_time_t)(ms * 1e6);
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r == -1 && errno != EINTR)
            return -1;
        if (cio_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_us(2000);
    }
}

bool under_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    return p && strstr(p, "vgpreload");
}

bool wait_until(bool (*pred)(void *), void *arg, int64_t timeout_ms)
{
    cio_time_t end = cio_now() + scaled_ms(timeout_ms) * NS_PER_MS;
    unsigned nap = 20;
    for (;;) {
        if (pred(arg))
            return true;
        if (cio_now() >= end)
            return pred(arg);
        sleep_us(nap);
        if (nap < 1000)
            nap *= 2;
    }
}

void wait_for_time(cio_time_t t)
{
    cio_time_t now;
    while ((now = cio_now()) < t) {
        cio_time_t left = t - now;
        sleep_us(left > 1000000 ? 1000 : (unsigned)(left / 1000) + 1);
    }
}

/* ---- process resources -------------------------------------------------- */

static int count_dir(const char *path)
{
    DIR *d = opendir(path);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - (strcmp(path, "/proc/self/fd") == 0); /* opendir's own fd */
}

int fd_count(void)
{
    int n = count_dir("/proc/self/fd");
    if (n >= 0)
        return n;
    long max = sysconf(_SC_OPEN_MAX);
    n = 0;
    for (int fd = 0; fd < (max > 0 && max < 65536 ? max : 65536); fd++)
        n += fd_is_open(fd);
    return n;
}

int thread_count(void)
{
    return count_dir("/proc/self/task");
}

bool fd_is_open(int fd)
{
    return fcntl(fd, F_GETFD) != -1;
}

pid_t current_tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* ---- pipes and byte patterns -------------------------------------------- */

int make_pipe(int fds[2])
{
    return pipe(fds);
}

bool open_pty(int *master, int *slave)
{
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) != 0 || unlockpt(m) != 0) {
        if (m >= 0)
            close(m);
        return false;
    }
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    assert_true(s >= 0);
    *master = m;
    *slave = s;
    return true;
}

int pipe_capacity(int fd)
{
#ifdef F_GETPIPE_SZ
    return fcntl(fd, F_GETPIPE_SZ);
#else
    (void)fd;
    return -1;
#endif
}

unsigned char pattern_byte(size_t pos)
{
    /* 251 is prime, so the pattern does not repeat with any power of two:
     * a chunk read twice or skipped shows up as a mismatch. */
    return (unsigned char)((pos * 7 + pos / 251 + 3) % 251);
}

void fill_pattern(unsigned char *buf, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = pattern_byte(off + i);
}

size_t pattern_mismatch(const unsigned char *buf, size_t n, size_t off)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pattern_byte(off + i))
            return i;
    return n;
}

bool fd_readable_now(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    int r;
    while ((r = poll(&p, 1, 0)) == -1 && errno == EINTR)
        ;
    return r == 1 && (p.revents & (POLLIN | POLLHUP));
}

ssize_t write_all(int fd, const void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = write(fd, (const char *)buf + done, n - done);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            return done ? (ssize_t)done : -1;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

ssize_t read_full(int fd, void *buf, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t r = read(fd, (char *)buf + done, n - done);
        if (r == -1 && errno == EINTR)
            continue;
        if (r < 0)
            return done ? (ssize_t)done : -1;
        if (r == 0)
            break;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

size_t drain_now(int fd)
{
    char buf[4096];
    size_t total = 0;
    while (fd_readable_now(fd)) {
        ssize_t r = read(fd, buf, sizeof buf);
        if (r <= 0)
            break;
        total += (size_t)r;
    }
    return total;
}

/* ---- signals ------------------------------------------------------------ */

void block_cancel_signal_in_this_thread(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    sigaddset(&set, SIGWINCH);
    sigaddset(&set, SIGURG);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

void block_all_signals_in_this_thread(void)
{
    sigset_t set;
    sigfillset(&set);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static bool no_pending_pred(void *arg)
{
    sigset_t set;
    sigpending(&set);
    return !sigismember(&set, *(int *)arg);
}

bool wait_no_pending(int signo, int64_t timeout_ms)
{
    return wait_until(no_pending_pred, &signo, timeout_ms);
}

void time_out_one_read(cio_file *f)
{
    char c;
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(5)), 0);
    assert_int_equal(cio_read(f, &c, 1), -1);
    assert_int_equal(errno, ETIMEDOUT);
}

/* ---- randomness --------------------------------------------------------- */

unsigned test_seed(const char *what)
{
    const char *s = getenv("CIO_TEST_SEED");
    unsigned seed =
        s ? (unsigned)strtoul(s, NULL, 0) : (unsigned)(cio_now() ^ ((cio_time_t)getpid() << 16));
    printf("[ SEED     ] %s: CIO_TEST_SEED=%u\n", what, seed);
    fflush(stdout);
    return seed;
}

void rng_init(struct rng *r, unsigned seed)
{
    r->s = ((uint64_t)seed << 1) ^ 0x9E3779B97F4A7C15ull;
    if (r->s == 0)
        r->s = 1;
}

uint32_t rng_next(struct rng *r)
{
    uint64_t x = r->s; /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1Dull) >> 32);
}

uint32_t rng_below(struct rng *r, uint32_t n)
{
    return n ? rng_next(r) % n : 0;
}

void random_delay_us(struct rng *r, unsigned max_us)
{
    unsigned us = rng_below(r, max_us + 1);
    if (us == 0)
        return;
    if (rng_next(r) & 1)
        sleep_us(us);
    else
        spin_us(us);
}

/* ---- one act on a pipe, a little later ---------------------------------- */

static void *late_act_main(void *arg)
{
    struct late_act *a = arg;
    block_cancel_signal_in_this_thread();
    if (a->spin)
        spin_us(a->delay_us);
    else
        sleep_us(a->delay_us);
    if (a->drain) {
        char buf[65536];
        while ((a->result = read(a->fd, buf, sizeof buf)) == (ssize_t)sizeof buf)
            ;
    } else {
        a->result = write(a->fd, &a->byte, 1);
    }
    return NULL;
}

void late_act_start(struct late_act *a)
{
    a->result = -1;
    assert_int_equal(pthread_create(&a->thread, NULL, late_act_main, a), 0);
}

ssize_t late_act_join(struct late_act *a)
{
    assert_int_equal(pthread_join(a->thread, NULL), 0);
    return a->result;
}

/* ---- an op on its own thread -------------------------------------------- */

static void *op_main(void *arg)
{
    struct op_thread *t = arg;
    if (t->block_all)
        block_all_signals_in_this_thread();
    else
        block_cancel_signal_in_this_thread();
    atomic_store(&t->tid, (int)current_tid());
    t->start = cio_now();
    t->result = t->kind == OP_READ ? cio_read(t->f, t->buf, t->n) : cio_write(t->f, t->buf, t->n);
    t->err = t->result < 0 ? errno : 0;
    t->end = cio_now();
    atomic_store(&t->done, 1);
    return NULL;
}

static struct op_thread *op_start(enum op_kind kind, cio_file *f, const void *src, size_t n,
                                  bool block_all)
{
    struct op_thread *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->kind = kind;
    t->f = f;
    t->n = n;
    t->block_all = block_all;
    t->buf = malloc(n ? n : 1);
    if (!t->buf) {
        free(t);
        return NULL;
    }
    if (src)
        memcpy(t->buf, src, n);
    else
        memset(t->buf, 0xEE, n);
    if (pthread_create(&t->thread, NULL, op_main, t) != 0) {
        free(t->buf);
        free(t);
        return NULL;
    }
    return t;
}

struct op_thread *start_reader(cio_file *f, size_t n)
{
    return op_start(OP_READ, f, NULL, n, false);
}

struct op_thread *start_writer(cio_file *f, const void *buf, size_t n)
{
    return op_start(OP_WRITE, f, buf, n, false);
}

struct op_thread *start_reader_all_blocked(cio_file *f, size_t n)
{
    return op_start(OP_READ, f, NULL, n, true);
}

bool op_is_done(void *op)
{
    return atomic_load(&((struct op_thread *)op)->done) != 0;
}

bool op_join(struct op_thread *t, int64_t timeout_ms)
{
    if (!wait_until(op_is_done, t, timeout_ms)) {
        fprintf(stderr, "op thread (%s) still running after %lld ms\n",
                t->kind == OP_READ ? "read" : "write", (long long)scaled_ms(timeout_ms));
        return false;
    }
    pthread_join(t->thread, NULL);
    return true;
}

void op_free(struct op_thread *t)
{
    if (t) {
        free(t->buf);
        free(t);
    }
}

/* ---- a plain read(2) loop on its own thread ---------------------------- */

static void *raw_read_main(void *arg)
{
    struct raw_reader *rr = arg;
    block_cancel_signal_in_this_thread();
    while (rr->got < rr->cap) {
        ssize_t r = read(rr->fd, rr->buf + rr->got, rr->cap - rr->got);
        if (r == -1 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        rr->got += (size_t)r;
    }
    atomic_store(&rr->done, 1);
    return NULL;
}

struct raw_reader *start_raw_reader(int fd, size_t cap)
{
    struct raw_reader *rr = calloc(1, sizeof *rr);
    if (!rr)
        return NULL;
    rr->fd = fd;
    rr->cap = cap;
    rr->buf = calloc(1, cap ? cap : 1);
    if (!rr->buf || pthread_create(&rr->thread, NULL, raw_read_main, rr)) {
        free(rr->buf);
        free(rr);
        return NULL;
    }
    return rr;
}

static bool raw_is_done(void *arg)
{
    return atomic_load(&((struct raw_reader *)arg)->done) != 0;
}

bool raw_reader_join(struct raw_reader *rr, int64_t timeout_ms)
{
    if (!wait_until(raw_is_done, rr, timeout_ms)) {
        fprintf(stderr, "raw reader of fd %d stuck at %zu of %zu bytes\n", rr->fd, rr->got,
                rr->cap);
        return false;
    }
    pthread_join(rr->thread, NULL);
    return true;
}

void raw_reader_free(struct raw_reader *rr)
{
    if (rr) {
        free(rr->buf);
        free(rr);
    }
}

/* ---- observing the library from outside --------------------------------- */

static atomic_uint_fast64_t event_counts[CIO_EV_OP_DONE + 1];

static void count_event(const cio_event *ev, void *arg)
{
    (void)arg;
    if (ev->type > 0 && ev->type <= CIO_EV_OP_DONE)
        atomic_fetch_add(&event_counts[ev->type], 1);
}

void trace_counter_install(void)
{
    cio_set_trace(count_event, NULL);
}

uint64_t trace_count(int type)
{
    return type > 0 && type <= CIO_EV_OP_DONE ? atomic_load(&event_counts[type]) : 0;
}

uint64_t op_starts(void)
{
    return trace_count(CIO_EV_OP_START);
}

static bool starts_at_least(void *arg)
{
    return op_starts() >= *(uint64_t *)arg;
}

bool wait_op_starts(uint64_t n, int64_t timeout_ms)
{
    if (!wait_until(starts_at_least, &n, timeout_ms)) {
        fprintf(stderr, "no op handed to the pool (OP_START %llu < %llu)\n",
                (unsigned long long)op_starts(), (unsigned long long)n);
        return false;
    }
    return true;
}

static bool is_read_syscall(long nr)
{
    return nr == SYS_read || nr == SYS_readv || nr == SYS_pread64 || nr == SYS_preadv ||
           nr == SYS_recvfrom || nr == SYS_recvmsg
#ifdef SYS_preadv2
           || nr == SYS_preadv2
#endif
        ;
}

static bool is_write_syscall(long nr)
{
    return nr == SYS_write || nr == SYS_writev || nr == SYS_pwrite64 || nr == SYS_pwritev ||
           nr == SYS_sendto || nr == SYS_sendmsg
#ifdef SYS_pwritev2
           || nr == SYS_pwritev2
#endif
        ;
}

/* A worker whose read found nothing parks in ppoll(2) on its fd (its
 * pollfd is on its stack: read with process_vm_readv, which fails rather
 * than faults if the thread has just gone). */
static bool is_poll_syscall(long nr)
{
#ifdef SYS_poll
    if (nr == SYS_poll)
        return true;
#endif
    return nr == SYS_ppoll;
}

static bool polls_for(unsigned long addr, int fd, int which)
{
    struct pollfd p;
    struct iovec local = {&p, sizeof p}, remote = {(void *)addr, sizeof p};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)sizeof p)
        return false;
    return p.fd == fd && (p.events & (which == CIO_READ ? POLLIN : POLLOUT));
}

/* 1 if thread tid sleeps in a read-/write-like syscall on fd (or a poll for
 * it), 0 if not, -1
 * if the kernel does not say. */
static int task_in_syscall_on(const char *tid, int fd, int which)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/syscall", tid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return errno == ENOENT ? 0 : -1; /* ENOENT: the thread just left */
    char *got = fgets(line, sizeof line, fp);
    fclose(fp);
    if (!got)
        return 0;
    long nr;
    unsigned long arg0, arg1;
    if (sscanf(line, "%ld 0x%lx 0x%lx", &nr, &arg0, &arg1) != 3)
        return 0; /* "running" */
    if (is_poll_syscall(nr))
        return arg1 == 1 && polls_for(arg0, fd, which);
    if ((int)arg0 != fd)
        return 0;
    return which == CIO_READ ? is_read_syscall(nr) : is_write_syscall(nr);
}

bool thread_in_syscall_on(pid_t tid, int fd, int which)
{
    char name[24];
    snprintf(name, sizeof name, "%d", (int)tid);
    return task_in_syscall_on(name, fd, which) == 1;
}

int threads_in_syscall_on(int fd, int which)
{
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return -1;
    int n = 0, unknown = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int r = task_in_syscall_on(e->d_name, fd, which);
        if (r < 0)
            unknown = 1;
        else
            n += r;
    }
    closedir(d);
    return unknown && n == 0 ? -1 : n;
}

struct in_syscall {
    int fd, which, count;
};

static bool in_syscall_pred(void *arg)
{
    struct in_syscall *s = arg;
    int n = threads_in_syscall_on(s->fd, s->which);
    return n < 0 || n >= s->count;
}

bool wait_in_syscall_on(int fd, int which, int count, int64_t timeout_ms)
{
    struct in_syscall s = {fd, which, count};
    if (!wait_until(in_syscall_pred, &s, timeout_ms)) {
        fprintf(stderr, "no %d thread(s) in a %s syscall on fd %d\n", count,
                which == CIO_READ ? "read" : "write", fd);
        return false;
    }
    return true;
}

static char thread_state(pid_t tid)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return '?';
    char *got = fgets(line, sizeof line, fp);
    fclose(fp);
    char *paren = got ? strrchr(line, ')') : NULL;
    return paren && paren[1] == ' ' ? paren[2] : '?';
}

static bool sleeping_twice(void *arg)
{
    pid_t tid = *(pid_t *)arg;
    char a = thread_state(tid);
    if (a == '?')
        return true; /* no /proc: the callers waited for op_starts */
    if (a != 'S' && a != 'D')
        return false;
    sleep_us(2000);
    char b = thread_state(tid);
    return b == 'S' || b == 'D';
}

bool wait_thread_sleeping(pid_t tid, int64_t timeout_ms)
{
    if (!wait_until(sleeping_twice, &tid, timeout_ms)) {
        fprintf(stderr, "thread %d never went to sleep\n", (int)tid);
        return false;
    }
    return true;
}

static bool has_tid(void *arg)
{
    return atomic_load(&((struct op_thread *)arg)->tid) != 0;
}

bool wait_op_sleeping(struct op_thread *t, int64_t timeout_ms)
{
    return t && wait_until(has_tid, t, timeout_ms) &&
           wait_thread_sleeping(atomic_load(&t->tid), timeout_ms);
}

/* ---- per-test fixture --------------------------------------------------- */

struct baseline {
    int fds, threads;
};

static struct baseline the_baseline;

/* The watchdog: a test still running WATCHDOG_S (scaled) seconds after its
 * setup is hung; say so and exit, rather than wait for ctest's timeout
 * with no word of which test it was. */
#define WATCHDOG_S 30

static atomic_llong watchdog_deadline; /* 0: no test running */

static void *watchdog_main(void *arg)
{
    (void)arg;
    block_all_signals_in_this_thread();
    for (;;) {
        sleep_us(100000);
        long long d = atomic_load(&watchdog_deadline);
        if (d && cio_now() > d) {
            fprintf(stderr,
                    "watchdog: the test has run for more than %lld ms: "
                    "hung\n",
                    (long long)scaled_ms(WATCHDOG_S * 1000));
            _exit(99);
        }
    }
    return NULL;
}

static void watchdog_arm(void)
{
    static bool started; /* only the test thread gets here */
    pthread_t th;
    if (!started && pthread_create(&th, NULL, watchdog_main, NULL) == 0) {
        pthread_detach(th);
        started = true;
    }
    atomic_store(&watchdog_deadline, cio_now() + scaled_ms(WATCHDOG_S * 1000) * NS_PER_MS);
}

int fixture_setup_watched(void **state)
{
    watchdog_arm();
    return fixture_setup(state);
}

void use_worker_waits(void)
{
    cio_shutdown();
    cio_options o = {.waits = CIO_WAIT_WORKER};
    assert_int_equal(cio_init(&o), 0);
}

int fixture_setup(void **state)
{
    trace_counter_install();
    the_baseline.fds = fd_count();
    the_baseline.threads = thread_count();
    *state = &the_baseline;
    return 0;
}

static bool back_to_baseline(void *arg)
{
    struct baseline *b = arg;
    return fd_count() == b->fds && thread_count() == b->threads;
}

static int check_leaks(struct baseline *b)
{
    cio_shutdown();
    cio_stats s;
    cio_get_stats(&s);
    int bad = 0;
    if (s.threads != 0) {
        fprintf(stderr, "leak: %u library threads after cio_shutdown\n", s.threads);
        bad = 1;
    }
    if (!wait_until(back_to_baseline, b, 2000)) {
        fprintf(stderr, "leak: %d fds (was %d), %d threads (was %d)\n", fd_count(), b->fds,
                thread_count(), b->threads);
        bad = 1;
    }
    return bad ? -1 : 0;
}

int fixture_teardown(void **state)
{
    int r = check_leaks(*state ? *state : &the_baseline);
    atomic_store(&watchdog_deadline, 0);
    return r;
}

void assert_no_leaks(void **state)
{
    assert_int_equal(check_leaks(*state ? *state : &the_baseline), 0);
}

int loopback_listener(struct sockaddr_in *addr)
{
    int l = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(l >= 0);
    *addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof *addr;
    assert_int_equal(bind(l, (struct sockaddr *)addr, sizeof *addr), 0);
    assert_int_equal(listen(l, 4), 0);
    assert_int_equal(getsockname(l, (struct sockaddr *)addr, &alen), 0);
    return l;
}
