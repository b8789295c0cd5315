/*
 * Description: the wider surface without sockets (DESIGN.md "The wider
 * surface" and its rules): cio_pread and cio_pwrite, cio_readv and
 * cio_writev, cio_open, cio_call and cio_interrupted.  Each call is checked
 * for success, its deadline (ETIMEDOUT not before the deadline and within a
 * generous bound after; what arrives later is read whole by the next call),
 * cio_cancel of its own direction (ECANCELED) and of the other one (no
 * effect), cio_close while it is pending (EBADF), bad input (EINVAL,
 * nothing changed), and the syscall's own errors unchanged.  pread and
 * pwrite never block on a regular file, so their deadline, cancel and close
 * are checked while they wait for a worker (the pool capped at one thread,
 * that thread blocked in a read); on a pipe they fail with ESPIPE at once,
 * which also shows that they are not serialised behind a blocked read or
 * write.  cio_call is driven through waitpid, flock, sem_wait and a stray
 * signal storm; cio_open through a FIFO.  The last test checks that the
 * counters balance and that no thread or fd outlives the suite.
 */
#include "support.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#ifdef CIO_TSAN
/* A test's child uses the library, which starts threads there: allowed
 * after a fork of a multi-threaded process only with this. */
const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
    return "die_after_fork=0";
}
#endif

#define JOIN_MS 5000
#define AT_ONCE_MS 500
#define DEADLINE_MS 200
#define LATE_MS 1000 /* a timed-out call returns within this after its deadline */
#define QUIET_MS 100 /* how long "still blocked" is watched */

/* ---- a call on a thread of its own ------------------------------------- */

struct job;
typedef long (*job_fn)(struct job *j);

/* One call run on its own thread, which blocks the test signals first and
 * records result, errno and the times around the call.  It owns its
 * buffers, so a test that fails while it still runs leaves no dangling
 * pointer (such a job is leaked on purpose, never freed). */
struct job {
    job_fn run;
    cio_file *f;
    size_t n;
    off_t off;
    int iovcnt;
    int flags;
    cio_time_t deadline;
    cio_func fn;
    void *arg;
    char path[256];
    unsigned char data[4096];
    struct iovec iov[4];
    cio_file *opened; /* cio_open's result */
    pthread_t thread;
    atomic_int tid, done;
    long result;
    int err;
    cio_time_t start, end;
};

static void *job_main(void *arg)
{
    struct job *j = arg;
    block_cancel_signal_in_this_thread();
    atomic_store(&j->tid, (int)current_tid());
    j->start = cio_now();
    errno = 0;
    j->result = j->run(j);
    j->err = errno;
    j->end = cio_now();
    atomic_store(&j->done, 1);
    return NULL;
}

static struct job *job_new(job_fn run, cio_file *f)
{
    struct job *j = calloc(1, sizeof *j);
    assert_non_null(j);
    j->run = run;
    j->f = f;
    memset(j->data, 0xEE, sizeof j->data);
    return j;
}

static void job_start(struct job *j)
{
    assert_int_equal(pthread_create(&j->thread, NULL, job_main, j), 0);
}

static bool job_is_done(void *j)
{
    return atomic_load(&((struct job *)j)->done) != 0;
}

/* Wait (bounded) for j to finish and join it; false if it still runs. */
static bool job_join(struct job *j, int64_t timeout_ms)
{
    if (!wait_until(job_is_done, j, timeout_ms)) {
        fprintf(stderr, "job still running after %lld ms\n", (long long)scaled_ms(timeout_ms));
        return false;
    }
    pthread_join(j->thread, NULL);
    return true;
}

static long run_pread(struct job *j)
{
    return cio_pread(j->f, j->data, j->n, j->off);
}

static long run_pwrite(struct job *j)
{
    return cio_pwrite(j->f, j->data, j->n, j->off);
}

static long run_readv(struct job *j)
{
    return cio_readv(j->f, j->iov, j->iovcnt);
}

static long run_writev(struct job *j)
{
    return cio_writev(j->f, j->iov, j->iovcnt);
}

static long run_open(struct job *j)
{
    j->opened = cio_open(j->path, j->flags, 0600, j->deadline);
    return j->opened ? 0 : -1;
}

static long run_call(struct job *j)
{
    return cio_call(j->fn, j->arg, j->deadline);
}

/* Run j on its own thread to its end (bounded: a call that hangs fails the
 * test instead of the whole process). */
static void run_job(struct job *j)
{
    job_start(j);
    assert_true(job_join(j, JOIN_MS));
}

/* j->iov as two halves of j->data: [0, a) and [a, a + b). */
static void job_split_iov(struct job *j, size_t a, size_t b)
{
    j->iov[0] = (struct iovec){j->data, a};
    j->iov[1] = (struct iovec){j->data + a, b};
    j->iovcnt = 2;
}

/* ---- checks ----------------------------------------------------------- */

/* Let a little time pass and check j is still blocked (a check that
 * nothing happens, never an ordering). */
static void assert_still_running(struct job *j)
{
    wait_for_time(cio_now() + scaled_ms(QUIET_MS) * NS_PER_MS);
    assert_false(job_is_done(j));
}

/* j failed with ETIMEDOUT, not before deadline and not long after. */
static void assert_timed_out_on_time(const struct job *j, cio_time_t deadline)
{
    assert_int_equal(j->result, -1);
    assert_int_equal(j->err, ETIMEDOUT);
    assert_true(j->end >= deadline);
    assert_true(elapsed_ms(deadline, j->end) < (double)scaled_ms(LATE_MS));
}

/* j is pending on f in direction which: a cancel of the other direction
 * leaves it alone, a cancel of its own fails it at once with ECANCELED. */
static void assert_only_its_own_cancel_stops(cio_file *f, struct job *j, int which)
{
    assert_int_equal(cio_cancel(f, which == CIO_READ ? CIO_WRITE : CIO_READ), 0);
    assert_still_running(j);
    cio_time_t c = cio_now();
    assert_int_equal(cio_cancel(f, which), 0);
    assert_true(job_join(j, JOIN_MS));
    assert_int_equal(j->result, -1);
    assert_int_equal(j->err, ECANCELED);
    assert_true(elapsed_ms(c, j->end) < (double)scaled_ms(AT_ONCE_MS));
}

/* ---- seeing a thread blocked in a given syscall ------------------------- */

/* 1 if /proc/self/task/<tid>/syscall shows one of nrs (with first argument
 * fd, unless fd < 0), 0 if not, -1 if the kernel does not say. */
static int task_in(const char *tid, const long *nrs, int count, long fd)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/self/task/%s/syscall", tid);
    FILE *fp = fopen(path, "r");
    if (!fp)
        return errno == ENOENT ? 0 : -1;
    char *got = fgets(line, sizeof line, fp);
    fclose(fp);
    long nr;
    unsigned long arg0;
    if (!got || sscanf(line, "%ld 0x%lx", &nr, &arg0) != 2)
        return 0;
    for (int k = 0; k < count; k++)
        if (nr == nrs[k] && (fd < 0 || (int)arg0 == fd))
            return 1;
    return 0;
}

struct in_syscall {
    const long *nrs;
    int count;
    long fd;
};

static bool in_syscall_pred(void *arg)
{
    const struct in_syscall *s = arg;
    DIR *d = opendir("/proc/self/task");
    if (!d)
        return true; /* no /proc: the callers waited for op_starts */
    int n = 0, unknown = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        int r = task_in(e->d_name, s->nrs, s->count, s->fd);
        unknown |= r < 0;
        n += r > 0;
    }
    closedir(d);
    return n > 0 || unknown;
}

/* Wait until some thread sleeps in one of the syscalls nrs on fd. */
static bool wait_in_syscall(const long *nrs, int count, long fd, int64_t timeout_ms)
{
    struct in_syscall s = {nrs, count, fd};
    if (!wait_until(in_syscall_pred, &s, timeout_ms)) {
        fprintf(stderr, "no thread in syscall %ld on fd %ld\n", nrs[0], fd);
        return false;
    }
    return true;
}

static const long open_syscalls[] = {
    SYS_openat,
#ifdef SYS_open
    SYS_open,
#endif
};

/* Wait until the worker of a cio_open sits in open(2). */
static void wait_in_open(uint64_t starts_before)
{
    assert_true(wait_op_starts(starts_before + 1, JOIN_MS));
    assert_true(wait_in_syscall(open_syscalls, sizeof open_syscalls / sizeof open_syscalls[0], -1,
                                JOIN_MS));
}

/* ---- files, pipes, FIFOs and children ----------------------------------- */

/* An unlinked regular file in /tmp holding n pattern bytes; offset 0. */
static int pattern_file(size_t n)
{
    char path[] = "/tmp/cio-calls-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(unlink(path), 0);
    unsigned char *b = malloc(n ? n : 1);
    assert_non_null(b);
    fill_pattern(b, n, 0);
    assert_int_equal(write_all(fd, b, n), (ssize_t)n);
    free(b);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

static int bytes_in_pipe(int fd)
{
    int n = -1;
    return ioctl(fd, FIONREAD, &n) == 0 ? n : -1;
}

/* Fill the pipe of write end fd; its capacity (the test is skipped where
 * the kernel does not say). */
static size_t fill_pipe(int fd)
{
    int cap = pipe_capacity(fd);
    if (cap <= 0)
        skip();
    unsigned char *b = calloc(1, (size_t)cap);
    assert_non_null(b);
    assert_int_equal(write_all(fd, b, (size_t)cap), cap);
    free(b);
    return (size_t)cap;
}

struct tempdir {
    char dir[64];
    char path[128]; /* dir/name */
};

static void tempdir_make(struct tempdir *t, const char *name)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/cio-calls-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/%s", t->dir, name);
}

static void tempdir_remove(struct tempdir *t)
{
    unlink(t->path);
    assert_int_equal(rmdir(t->dir), 0);
}

/* Children the test forked, killed by the teardown if a test failed
 * before it could kill them itself. */
static pid_t children[4];

static pid_t fork_child(void (*body)(void *), void *arg)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (body)
            body(arg);
        for (;;)
            pause();
    }
    for (int k = 0; k < 4; k++)
        if (!children[k]) {
            children[k] = pid;
            break;
        }
    return pid;
}

static int kill_child(pid_t pid)
{
    int status;
    kill(pid, SIGKILL);
    pid_t r;
    while ((r = waitpid(pid, &status, 0)) == -1 && errno == EINTR)
        ;
    for (int k = 0; k < 4; k++)
        if (children[k] == pid)
            children[k] = 0;
    return r == pid && WIFSIGNALED(status) ? 0 : -1;
}

static int calls_teardown(void **state)
{
    for (int k = 0; k < 4; k++)
        if (children[k])
            kill_child(children[k]);
    return fixture_teardown(state);
}

/* Cap the pool at one worker and block that worker in a cio_read of an
 * empty pipe, so that the next op waits for a worker.  release_worker
 * lets it go. */
struct busy_worker {
    int p[2];
    cio_file *f;
    struct op_thread *reader;
};

static void occupy_the_only_worker(struct busy_worker *b)
{
    cio_shutdown();
    cio_options opt = {.max_threads = 1, .waits = CIO_WAIT_WORKER}; /* the read holds it */
    assert_int_equal(cio_init(&opt), 0);
    assert_int_equal(make_pipe(b->p), 0);
    b->f = cio_fdopen(b->p[0]);
    assert_non_null(b->f);
    uint64_t before = op_starts();
    b->reader = start_reader(b->f, 1);
    assert_non_null(b->reader);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(b->p[0], CIO_READ, 1, JOIN_MS));
}

static void release_worker(struct busy_worker *b)
{
    assert_int_equal(write(b->p[1], "x", 1), 1);
    assert_true(op_join(b->reader, JOIN_MS));
    assert_int_equal(b->reader->result, 1);
    op_free(b->reader);
    assert_int_equal(cio_close(b->f), 0);
    assert_int_equal(close(b->p[1]), 0);
}

/* ---- cio_pread / cio_pwrite --------------------------------------------- */

/* pread(2) semantics: data at the offset, a short count at the end of the
 * file, 0 past it, and the file offset never moves. */
static void pread_reads_at_offsets_and_leaves_the_file_offset_alone(void **state)
{
    (void)state;
    enum { SIZE = 65536 };
    int fd = pattern_file(SIZE);
    assert_int_equal(lseek(fd, 100, SEEK_SET), 100);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    unsigned char buf[4096];
    const off_t offs[] = {0, 1, 4095, 4096, 30001, SIZE - 4096};
    for (size_t k = 0; k < sizeof offs / sizeof offs[0]; k++) {
        memset(buf, 0, sizeof buf);
        assert_int_equal(cio_pread(f, buf, sizeof buf, offs[k]), (ssize_t)sizeof buf);
        assert_int_equal(pattern_mismatch(buf, sizeof buf, (size_t)offs[k]), sizeof buf);
    }
    assert_int_equal(cio_pread(f, buf, sizeof buf, SIZE - 6), 6);
    assert_int_equal(pattern_mismatch(buf, 6, SIZE - 6), 6);
    assert_int_equal(cio_pread(f, buf, sizeof buf, SIZE), 0);
    assert_int_equal(cio_pread(f, buf, sizeof buf, (off_t)SIZE * 1000), 0);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 100);
    assert_int_equal(cio_close(f), 0);
}

/* pwrite(2) semantics, all n bytes: at the offset, past the end (a hole of
 * zeros), and the file offset never moves. */
static void pwrite_writes_at_offsets_and_leaves_the_file_offset_alone(void **state)
{
    (void)state;
    int fd = pattern_file(8192);
    assert_int_equal(lseek(fd, 77, SEEK_SET), 77);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    unsigned char src[3000], got[3000];
    fill_pattern(src, sizeof src, 500000);
    assert_int_equal(cio_pwrite(f, src, sizeof src, 1000), (ssize_t)sizeof src);
    assert_int_equal(cio_pwrite(f, src, 10, 20000), 10);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 77);

    assert_int_equal(pread(fd, got, sizeof got, 1000), (ssize_t)sizeof got);
    assert_memory_equal(got, src, sizeof src);
    assert_int_equal(pread(fd, got, 1000, 0), 1000); /* before: untouched */
    assert_int_equal(pattern_mismatch(got, 1000, 0), 1000);
    assert_int_equal(pread(fd, got, 100, 8192), 100); /* the hole */
    for (int k = 0; k < 100; k++)
        assert_int_equal(got[k], 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 20010);
    assert_int_equal(cio_close(f), 0);
}

/* Rule 8: the syscall's own error comes back unchanged. */
static void pread_and_pwrite_on_a_pipe_fail_with_ESPIPE(void **state)
{
    (void)state;
    int p[2];
    char buf[8] = "abc";
    assert_int_equal(make_pipe(p), 0);
    cio_file *r = cio_fdopen(p[0]), *w = cio_fdopen(p[1]);
    assert_non_null(r);
    assert_non_null(w);
    assert_int_equal(cio_pwrite(w, buf, 3, 0), -1);
    assert_int_equal(errno, ESPIPE);
    assert_int_equal(write(p[1], "x", 1), 1);
    assert_int_equal(cio_pread(r, buf, sizeof buf, 0), -1);
    assert_int_equal(errno, ESPIPE);
    assert_true(fd_readable_now(p[0])); /* nothing consumed */
    assert_int_equal(cio_close(r), 0);
    assert_int_equal(cio_close(w), 0);
}

/* "cio_pread and cio_pwrite are not serialised with anything": with a
 * cio_read blocked on a pipe, a cio_pread of the same file does not wait
 * its turn (it fails with ESPIPE at once), and likewise a cio_pwrite next
 * to a blocked cio_write; the blocked ops carry on. */
static void pread_and_pwrite_are_not_serialised_behind_a_blocked_read_or_write(void **state)
{
    (void)state;
    int p[2];
    char buf[8];
    assert_int_equal(make_pipe(p), 0);
    cio_file *r = cio_fdopen(p[0]), *w = cio_fdopen(p[1]);
    assert_non_null(r);
    assert_non_null(w);
    size_t cap = fill_pipe(p[1]);

    uint64_t before = op_starts();
    struct op_thread *writer = start_writer(w, "tail", 4);
    assert_non_null(writer);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(p[1], CIO_WRITE, 1, JOIN_MS));
    struct job *pw = job_new(run_pwrite, w);
    pw->n = 2;
    job_start(pw);
    assert_true(job_join(pw, AT_ONCE_MS));
    assert_int_equal(pw->result, -1);
    assert_int_equal(pw->err, ESPIPE);
    free(pw);
    assert_false(op_is_done(writer));
    unsigned char *held = malloc(cap);
    assert_non_null(held);
    assert_int_equal(read_full(p[0], held, cap), (ssize_t)cap);
    free(held);
    assert_true(op_join(writer, JOIN_MS));
    assert_int_equal(writer->result, 4);
    op_free(writer);
    assert_int_equal(read_full(p[0], buf, 4), 4);
    assert_memory_equal(buf, "tail", 4);

    before = op_starts();
    struct op_thread *reader = start_reader(r, 8);
    assert_non_null(reader);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
    struct job *pr = job_new(run_pread, r);
    pr->n = 8;
    job_start(pr);
    assert_true(job_join(pr, AT_ONCE_MS));
    assert_int_equal(pr->result, -1);
    assert_int_equal(pr->err, ESPIPE);
    free(pr);
    assert_false(op_is_done(reader));
    assert_int_equal(write(p[1], "late", 4), 4);
    assert_true(op_join(reader, JOIN_MS));
    assert_int_equal(reader->result, 4);
    assert_memory_equal(reader->buf, "late", 4);
    op_free(reader);
    assert_int_equal(cio_close(r), 0);
    assert_int_equal(cio_close(w), 0);
}

#define PAR_THREADS 8
#define PAR_OPS 150
#define PAR_SIZE ((size_t)PAR_THREADS * 32768)

struct par {
    cio_file *f;
    int index;
    unsigned seed;
    int failures; /* recorded here, asserted after join */
    int phase;    /* 0: pwrite own region, 1: pread anywhere */
};

static void *par_main(void *arg)
{
    struct par *p = arg;
    struct rng rng;
    unsigned char buf[8192];
    block_cancel_signal_in_this_thread();
    rng_init(&rng, p->seed);
    size_t region = PAR_SIZE / PAR_THREADS, base = region * (size_t)p->index;
    for (size_t done = 0; p->phase == 0 && done < region;) {
        size_t n = 1 + rng_below(&rng, 4096);
        n = n > region - done ? region - done : n;
        fill_pattern(buf, n, base + done);
        p->failures += cio_pwrite(p->f, buf, n, (off_t)(base + done)) != (ssize_t)n;
        done += n;
    }
    for (int k = 0; p->phase == 1 && k < PAR_OPS; k++) {
        size_t n = 1 + rng_below(&rng, sizeof buf);
        size_t off = rng_below(&rng, (uint32_t)(PAR_SIZE - n));
        ssize_t r = cio_pread(p->f, buf, n, (off_t)off);
        p->failures += r != (ssize_t)n || pattern_mismatch(buf, n, off) != n;
    }
    return NULL;
}

static void run_par(cio_file *f, int phase, unsigned seed)
{
    pthread_t th[PAR_THREADS];
    struct par ps[PAR_THREADS];
    for (int k = 0; k < PAR_THREADS; k++) {
        ps[k] = (struct par){f, k, seed + (unsigned)k, 0, phase};
        assert_int_equal(pthread_create(&th[k], NULL, par_main, &ps[k]), 0);
    }
    int failures = 0;
    for (int k = 0; k < PAR_THREADS; k++) {
        pthread_join(th[k], NULL);
        failures += ps[k].failures;
    }
    assert_int_equal(failures, 0);
}

/* Several cio_pwrite and then several cio_pread at once on one regular
 * file, from many threads at random offsets: every one lands whole, the
 * file ends up exactly the pattern, and the offset never moves. */
static void many_preads_and_pwrites_at_once_on_one_file_all_land(void **state)
{
    (void)state;
    char path[] = "/tmp/cio-calls-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(lseek(fd, 5, SEEK_SET), 5);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    unsigned seed = test_seed(__func__);
    run_par(f, 0, seed);
    run_par(f, 1, seed + 1000);
    unsigned char *all = malloc(PAR_SIZE);
    assert_non_null(all);
    assert_int_equal(pread(fd, all, PAR_SIZE, 0), (ssize_t)PAR_SIZE);
    assert_int_equal(pattern_mismatch(all, PAR_SIZE, 0), PAR_SIZE);
    free(all);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 5);
    assert_int_equal(cio_close(f), 0);
}

/* The read deadline governs cio_pread and the write deadline cio_pwrite:
 * each, with its own deadline past, fails at once with ETIMEDOUT without
 * touching the buffer or the file; with only the other direction's
 * deadline past it works. */
static void pread_and_pwrite_obey_only_their_own_deadline_already_past(void **state)
{
    (void)state;
    int fd = pattern_file(4096);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    unsigned char buf[64], src[64];
    memset(src, 'W', sizeof src);

    assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
    memset(buf, 0xEE, sizeof buf);
    assert_int_equal(cio_pread(f, buf, sizeof buf, 0), -1);
    assert_int_equal(errno, ETIMEDOUT);
    for (size_t k = 0; k < sizeof buf; k++)
        assert_int_equal(buf[k], 0xEE);
    assert_int_equal(cio_pwrite(f, src, sizeof src, 100), (ssize_t)sizeof src);

    assert_int_equal(cio_set_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_set_write_deadline(f, -5), 0); /* negative: past */
    assert_int_equal(cio_pwrite(f, src, sizeof src, 0), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(cio_pread(f, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    assert_int_equal(pattern_mismatch(buf, sizeof buf, 0), sizeof buf); /* not written */
    assert_int_equal(cio_pread(f, buf, sizeof buf, 100), (ssize_t)sizeof buf);
    assert_memory_equal(buf, src, sizeof src);
    assert_int_equal(cio_close(f), 0);
}

/* Rules 2, 4: a cio_pread waiting for a worker fails with ETIMEDOUT when
 * its read deadline passes (not before); once the deadline is cleared and
 * a worker is free, the next pread reads the data whole.  The same for
 * cio_pwrite and its write deadline. */
static void pread_and_pwrite_waiting_for_a_worker_time_out_on_their_deadline(void **state)
{
    (void)state;
    struct busy_worker b;
    occupy_the_only_worker(&b);
    int fd = pattern_file(8192);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);

    cio_time_t deadline = cio_after_ms(DEADLINE_MS);
    assert_int_equal(cio_set_read_deadline(f, deadline), 0);
    struct job *r = job_new(run_pread, f);
    r->n = 4096;
    r->off = 1000;
    job_start(r);
    assert_true(job_join(r, JOIN_MS));
    assert_timed_out_on_time(r, deadline);
    free(r);

    deadline = cio_after_ms(DEADLINE_MS);
    assert_int_equal(cio_set_write_deadline(f, deadline), 0);
    struct job *w = job_new(run_pwrite, f);
    w->n = 100;
    w->off = 0;
    memset(w->data, 'W', w->n);
    job_start(w);
    assert_true(job_join(w, JOIN_MS));
    assert_timed_out_on_time(w, deadline);
    free(w);

    assert_int_equal(cio_set_deadline(f, CIO_NO_DEADLINE), 0);
    release_worker(&b);
    unsigned char buf[4096];
    assert_int_equal(cio_pread(f, buf, sizeof buf, 1000), (ssize_t)sizeof buf);
    assert_int_equal(pattern_mismatch(buf, sizeof buf, 1000), sizeof buf);
    assert_int_equal(cio_pread(f, buf, 100, 0), 100);
    assert_int_equal(pattern_mismatch(buf, 100, 0), 100); /* the pwrite wrote nothing */
    assert_int_equal(cio_close(f), 0);
}

/* Rule 6: a cio_pread waiting for a worker fails with ECANCELED on
 * cio_cancel(CIO_READ) and not on CIO_WRITE; a cio_pwrite the other way
 * round; neither touched the file. */
static void pread_and_pwrite_waiting_for_a_worker_obey_their_own_cancel(void **state)
{
    (void)state;
    struct busy_worker b;
    occupy_the_only_worker(&b);
    int fd = pattern_file(8192);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);

    uint64_t before = op_starts();
    struct job *r = job_new(run_pread, f);
    r->n = 64;
    job_start(r);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_only_its_own_cancel_stops(f, r, CIO_READ);
    for (size_t k = 0; k < r->n; k++)
        assert_int_equal(r->data[k], 0xEE);
    free(r);

    before = op_starts();
    struct job *w = job_new(run_pwrite, f);
    w->n = 64;
    memset(w->data, 'W', w->n);
    job_start(w);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_only_its_own_cancel_stops(f, w, CIO_WRITE);
    free(w);

    release_worker(&b);
    unsigned char buf[64];
    assert_int_equal(cio_pread(f, buf, sizeof buf, 0), (ssize_t)sizeof buf);
    assert_int_equal(pattern_mismatch(buf, sizeof buf, 0), sizeof buf);
    assert_int_equal(cio_close(f), 0);
}

/* Rule 7: cio_close fails a pending cio_pread and cio_pwrite with EBADF
 * and closes the fd. */
static void close_fails_a_pending_pread_and_pwrite_with_EBADF(void **state)
{
    (void)state;
    struct busy_worker b;
    occupy_the_only_worker(&b);
    int fd = pattern_file(8192);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    uint64_t before = op_starts();
    struct job *r = job_new(run_pread, f), *w = job_new(run_pwrite, f);
    r->n = w->n = 64;
    job_start(r);
    job_start(w);
    assert_true(wait_op_starts(before + 2, JOIN_MS));
    assert_int_equal(cio_close(f), 0);
    assert_true(job_join(r, JOIN_MS));
    assert_true(job_join(w, JOIN_MS));
    assert_int_equal(r->result, -1);
    assert_int_equal(r->err, EBADF);
    assert_int_equal(w->result, -1);
    assert_int_equal(w->err, EBADF);
    assert_false(fd_is_open(fd));
    free(r);
    free(w);
    release_worker(&b);
}

/* Rule 12: NULL file or buffer and a negative offset fail with EINVAL and
 * change nothing; n == 0 returns 0 at once. */
static void pread_and_pwrite_reject_bad_input_with_EINVAL(void **state)
{
    (void)state;
    int fd = pattern_file(4096);
    assert_int_equal(lseek(fd, 9, SEEK_SET), 9);
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    unsigned char buf[16];
    errno = 0;
    assert_int_equal(cio_pread(NULL, buf, sizeof buf, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_pread(f, NULL, sizeof buf, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_pread(f, buf, sizeof buf, -1), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_pwrite(NULL, buf, sizeof buf, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_pwrite(f, NULL, sizeof buf, 0), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_pwrite(f, "xxxxxxxxxxxxxxxx", sizeof buf, -4096), -1);
    assert_int_equal(errno, EINVAL);
    assert_int_equal(cio_pread(f, buf, 0, 0), 0);
    assert_int_equal(cio_pwrite(f, buf, 0, 0), 0);

    unsigned char all[4096];
    assert_int_equal(pread(fd, all, sizeof all, 0), (ssize_t)sizeof all);
    assert_int_equal(pattern_mismatch(all, sizeof all, 0), sizeof all);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    assert_int_equal(st.st_size, 4096);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 9);
    assert_int_equal(cio_close(f), 0);
}

/* ---- cio_readv / cio_writev ----------------------------------------------- */

/* writev gathers (a zero-length buffer among them), readv scatters: the
 * bytes land in order across the buffers. */
static void readv_scatters_and_writev_gathers_on_a_pipe(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *r = cio_fdopen(p[0]), *w = cio_fdopen(p[1]);
    assert_non_null(r);
    assert_non_null(w);
    struct iovec out[4] = {{"ab", 2}, {"", 0}, {"cdefg", 5}, {"h", 1}};
    assert_int_equal(cio_writev(w, out, 4), 8);
    char a[3], b[1], c[8];
    memset(c, 0, sizeof c);
    struct iovec in[3] = {{a, sizeof a}, {b, 0}, {c, sizeof c}};
    assert_int_equal(cio_readv(r, in, 3), 8);
    assert_memory_equal(a, "abc", 3);
    assert_memory_equal(c, "defgh", 5);
    assert_false(fd_readable_now(p[0]));
    assert_int_equal(cio_close(r), 0);
    assert_int_equal(cio_close(w), 0);
}

/* The boundary: IOV_MAX buffers are accepted both ways. */
static void readv_and_writev_take_IOV_MAX_buffers(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *r = cio_fdopen(p[0]), *w = cio_fdopen(p[1]);
    assert_non_null(r);
    assert_non_null(w);
    static unsigned char src[IOV_MAX], dst[IOV_MAX];
    static struct iovec iov[IOV_MAX];
    fill_pattern(src, IOV_MAX, 0);
    memset(dst, 0, sizeof dst);
    for (int k = 0; k < IOV_MAX; k++)
        iov[k] = (struct iovec){src + k, 1};
    assert_int_equal(cio_writev(w, iov, IOV_MAX), IOV_MAX);
    for (int k = 0; k < IOV_MAX; k++)
        iov[k] = (struct iovec){dst + k, 1};
    assert_int_equal(cio_readv(r, iov, IOV_MAX), IOV_MAX);
    assert_int_equal(pattern_mismatch(dst, IOV_MAX, 0), IOV_MAX);
    assert_int_equal(cio_close(r), 0);
    assert_int_equal(cio_close(w), 0);
}

/* Rules 2, 4: a readv blocked on an empty pipe fails with ETIMEDOUT at its
 * read deadline, not before; the data written afterwards is read whole,
 * across both buffers, by the next readv. */
static void readv_times_out_on_an_empty_pipe_and_the_data_survives(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *r = cio_fdopen(p[0]);
    assert_non_null(r);
    cio_time_t deadline = cio_after_ms(DEADLINE_MS);
    assert_int_equal(cio_set_read_deadline(r, deadline), 0);
    struct job *j = job_new(run_readv, r);
    job_split_iov(j, 8, 8);
    job_start(j);
    assert_true(job_join(j, JOIN_MS));
    assert_timed_out_on_time(j, deadline);
    free(j);

    unsigned char src[12], a[8], b[8];
    fill_pattern(src, sizeof src, 0);
    assert_int_equal(write_all(p[1], src, sizeof src), (ssize_t)sizeof src);
    assert_int_equal(cio_set_read_deadline(r, cio_after_ms(scaled_ms(JOIN_MS))), 0);
    struct iovec in[2] = {{a, sizeof a}, {b, sizeof b}};
    assert_int_equal(cio_readv(r, in, 2), 12);
    assert_memory_equal(a, src, 8);
    assert_memory_equal(b, src + 8, 4);
    assert_int_equal(cio_close(r), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 5 for cio_writev: more than the pipe holds, with no reader, comes
 * back at the write deadline as the partial count; the next writev fails
 * with ETIMEDOUT and writes nothing (the deadline is still past); with the
 * deadline cleared and a reader draining, the rest goes out, and the
 * reader gets every byte exactly once, in order. */
static void writev_cut_by_its_deadline_returns_the_count_and_the_rest_goes_out_once(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    int cap = pipe_capacity(p[1]);
    if (cap <= 0)
        skip();
    size_t total = 2 * (size_t)cap + 1000;
    unsigned char *src = malloc(total);
    assert_non_null(src);
    fill_pattern(src, total, 0);
    const size_t cuts[5] = {0, 1000, (size_t)cap - 7, (size_t)cap + 5000, total};
    struct iovec iov[4];
    for (int k = 0; k < 4; k++)
        iov[k] = (struct iovec){src + cuts[k], cuts[k + 1] - cuts[k]};
    cio_file *w = cio_fdopen(p[1]);
    assert_non_null(w);

    cio_time_t deadline = cio_after_ms(DEADLINE_MS);
    assert_int_equal(cio_set_write_deadline(w, deadline), 0);
    struct job *j = job_new(run_writev, w);
    memcpy(j->iov, iov, sizeof iov);
    j->iovcnt = 4;
    run_job(j);
    ssize_t sent = j->result;
    assert_true(sent > 0 && (size_t)sent < total);
    assert_true(j->end >= deadline);
    assert_true(elapsed_ms(deadline, j->end) < (double)scaled_ms(LATE_MS));
    free(j);
    assert_int_equal(bytes_in_pipe(p[0]), sent);
    assert_int_equal(cio_writev(w, iov, 4), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(bytes_in_pipe(p[0]), sent);

    assert_int_equal(cio_set_write_deadline(w, CIO_NO_DEADLINE), 0);
    struct raw_reader *rr = start_raw_reader(p[0], total);
    assert_non_null(rr);
    struct iovec rest[4];
    int n = 0;
    for (int k = 0; k < 4; k++) {
        size_t lo = cuts[k] > (size_t)sent ? cuts[k] : (size_t)sent;
        if (lo < cuts[k + 1])
            rest[n++] = (struct iovec){src + lo, cuts[k + 1] - lo};
    }
    assert_int_equal(cio_writev(w, rest, n), (ssize_t)(total - (size_t)sent));
    assert_true(raw_reader_join(rr, JOIN_MS));
    assert_int_equal(rr->got, total);
    assert_int_equal(pattern_mismatch(rr->buf, total, 0), total);
    raw_reader_free(rr);
    free(src);
    assert_int_equal(cio_close(w), 0);
    assert_int_equal(close(p[0]), 0);
}

/* Rule 6: a blocked readv fails with ECANCELED on CIO_READ only, a writev
 * blocked on a full pipe on CIO_WRITE only (having written nothing: the
 * pipe holds exactly what it held); the next writev runs normally. */
static void readv_and_writev_obey_only_their_own_cancel(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *r = cio_fdopen(p[0]), *w = cio_fdopen(p[1]);
    assert_non_null(r);
    assert_non_null(w);

    uint64_t before = op_starts();
    struct job *rj = job_new(run_readv, r);
    job_split_iov(rj, 4, 4);
    job_start(rj);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
    assert_only_its_own_cancel_stops(r, rj, CIO_READ);
    free(rj);

    size_t cap = fill_pipe(p[1]);
    before = op_starts();
    struct job *wj = job_new(run_writev, w);
    job_split_iov(wj, 3, 5);
    memcpy(wj->data, "abcdefgh", 8);
    job_start(wj);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(p[1], CIO_WRITE, 1, JOIN_MS));
    assert_only_its_own_cancel_stops(w, wj, CIO_WRITE);
    free(wj);
    assert_int_equal(bytes_in_pipe(p[0]), (int)cap);

    assert_int_equal(drain_now(p[0]), cap);
    struct iovec out[2] = {{"abc", 3}, {"defgh", 5}};
    assert_int_equal(cio_writev(w, out, 2), 8);
    char buf[8];
    struct iovec in[1] = {{buf, sizeof buf}};
    assert_int_equal(cio_readv(r, in, 1), 8);
    assert_memory_equal(buf, "abcdefgh", 8);
    assert_int_equal(cio_close(r), 0);
    assert_int_equal(cio_close(w), 0);
}

/* Rule 7: cio_close fails a blocked readv and a blocked writev with EBADF
 * and closes their fds. */
static void close_fails_a_blocked_readv_and_writev_with_EBADF(void **state)
{
    (void)state;
    int p[2], q[2];
    assert_int_equal(make_pipe(p), 0);
    assert_int_equal(make_pipe(q), 0);
    fill_pipe(q[1]);
    cio_file *r = cio_fdopen(p[0]), *w = cio_fdopen(q[1]);
    assert_non_null(r);
    assert_non_null(w);
    uint64_t before = op_starts();
    struct job *rj = job_new(run_readv, r), *wj = job_new(run_writev, w);
    job_split_iov(rj, 4, 4);
    job_split_iov(wj, 4, 4);
    job_start(rj);
    job_start(wj);
    assert_true(wait_op_starts(before + 2, JOIN_MS));
    assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
    assert_true(wait_in_syscall_on(q[1], CIO_WRITE, 1, JOIN_MS));
    assert_int_equal(cio_close(r), 0);
    assert_int_equal(cio_close(w), 0);
    assert_true(job_join(rj, JOIN_MS));
    assert_true(job_join(wj, JOIN_MS));
    assert_int_equal(rj->result, -1);
    assert_int_equal(rj->err, EBADF);
    assert_int_equal(wj->result, -1);
    assert_int_equal(wj->err, EBADF);
    assert_false(fd_is_open(p[0]));
    assert_false(fd_is_open(q[1]));
    free(rj);
    free(wj);
    assert_int_equal(close(p[1]), 0);
    assert_int_equal(close(q[0]), 0);
}

/* Rule 12 for the vector calls: NULL file, NULL iov with a count, iovcnt
 * < 0 or > IOV_MAX, a NULL buffer with a length, lengths adding up past
 * SSIZE_MAX: EINVAL, and the pipe keeps its data.  iovcnt 0 returns 0 at
 * once even on an empty pipe. */
static void readv_and_writev_reject_bad_input_with_EINVAL(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *r = cio_fdopen(p[0]), *w = cio_fdopen(p[1]);
    assert_non_null(r);
    assert_non_null(w);
    char buf[8];
    struct iovec one[1] = {{buf, sizeof buf}};
    struct iovec null_base[2] = {{buf, 1}, {NULL, 4}};
    struct iovec huge[2] = {{buf, (size_t)SSIZE_MAX / 2 + 1}, {buf, (size_t)SSIZE_MAX / 2 + 1}};
    static struct iovec many[IOV_MAX + 1];
    for (int k = 0; k <= IOV_MAX; k++)
        many[k] = (struct iovec){buf, 0};

    assert_int_equal(cio_readv(r, one, 0), 0); /* empty pipe: at once */
    assert_int_equal(cio_writev(w, one, 0), 0);
    assert_int_equal(write(p[1], "keep", 4), 4);
    ssize_t (*const calls[2])(cio_file *, const struct iovec *, int) = {cio_readv, cio_writev};
    cio_file *files[2] = {r, w};
    for (int k = 0; k < 2; k++) {
        cio_file *f = files[k];
        errno = 0;
        assert_int_equal(calls[k](NULL, one, 1), -1);
        assert_int_equal(errno, EINVAL);
        errno = 0;
        assert_int_equal(calls[k](f, NULL, 1), -1);
        assert_int_equal(errno, EINVAL);
        errno = 0;
        assert_int_equal(calls[k](f, one, -1), -1);
        assert_int_equal(errno, EINVAL);
        errno = 0;
        assert_int_equal(calls[k](f, many, IOV_MAX + 1), -1);
        assert_int_equal(errno, EINVAL);
        errno = 0;
        assert_int_equal(calls[k](f, null_base, 2), -1);
        assert_int_equal(errno, EINVAL);
        errno = 0;
        assert_int_equal(calls[k](f, huge, 2), -1);
        assert_int_equal(errno, EINVAL);
    }
    assert_int_equal(bytes_in_pipe(p[0]), 4);
    assert_int_equal(read_full(p[0], buf, 4), 4);
    assert_memory_equal(buf, "keep", 4);
    assert_int_equal(cio_close(r), 0);
    assert_int_equal(cio_close(w), 0);
}

/* ---- cio_open ----------------------------------------------------------- */

/* A regular file opens at once, with the flags and mode given; a missing
 * one fails with ENOENT unchanged. */
static void open_opens_a_regular_file_at_once_and_reports_ENOENT_unchanged(void **state)
{
    (void)state;
    struct tempdir t;
    tempdir_make(&t, "plain");
    cio_time_t start = cio_now();
    cio_file *f = cio_open(t.path, O_RDWR | O_CREAT | O_EXCL, 0640, cio_after_ms(JOIN_MS));
    assert_non_null(f);
    assert_true(elapsed_ms(start, cio_now()) < (double)scaled_ms(AT_ONCE_MS));
    struct stat st;
    assert_int_equal(fstat(cio_fileno(f), &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(cio_write(f, "data", 4), 4);
    assert_int_equal(cio_close(f), 0);

    f = cio_open(t.path, O_RDONLY, 0, CIO_NO_DEADLINE);
    assert_non_null(f);
    char buf[8];
    assert_int_equal(cio_read(f, buf, sizeof buf), 4);
    assert_memory_equal(buf, "data", 4);
    assert_int_equal(cio_close(f), 0);

    char missing[160];
    snprintf(missing, sizeof missing, "%s/missing", t.dir);
    errno = 0;
    assert_null(cio_open(missing, O_RDONLY, 0, cio_after_ms(JOIN_MS)));
    assert_int_equal(errno, ENOENT);
    errno = 0;
    assert_null(cio_open(NULL, O_RDONLY, 0, CIO_NO_DEADLINE));
    assert_int_equal(errno, EINVAL);
    tempdir_remove(&t);
}

/* An open that the system refuses with EAGAIN (O_NONBLOCK against a lease
 * this process holds, where Linux has leases) fails at once with it: an
 * open has no fd to wait on, and O_NONBLOCK was the caller's own ask. */
static void open_refused_with_EAGAIN_fails_at_once_with_it(void **state)
{
    (void)state;
#ifdef F_SETLEASE
    struct tempdir t;
    tempdir_make(&t, "leased");
    int fd = open(t.path, O_RDWR | O_CREAT | O_EXCL, 0640);
    assert_true(fd >= 0);
    close(fd);
    fd = open(t.path, O_RDONLY);
    assert_true(fd >= 0);
    void (*old)(int) = signal(SIGIO, SIG_IGN); /* the lease's break notice */
    if (fcntl(fd, F_SETLEASE, F_RDLCK) != 0) {
        signal(SIGIO, old);
        close(fd);
        tempdir_remove(&t);
        skip();
    }
    cio_time_t start = cio_now();
    errno = 0;
    assert_null(cio_open(t.path, O_WRONLY | O_NONBLOCK, 0, cio_after_ms(JOIN_MS)));
    assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
    assert_true(elapsed_ms(start, cio_now()) < (double)scaled_ms(AT_ONCE_MS));
    assert_int_equal(fcntl(fd, F_SETLEASE, F_UNLCK), 0);
    close(fd);
    signal(SIGIO, old);
    tempdir_remove(&t);
#else
    skip();
#endif
}

/* Opening a FIFO with no writer blocks; at the deadline cio_open fails with
 * ETIMEDOUT, not before, and leaves no fd open; the FIFO can be opened
 * again afterwards. */
static void open_of_a_fifo_with_no_writer_times_out_at_its_deadline(void **state)
{
    (void)state;
    struct tempdir t;
    tempdir_make(&t, "fifo");
    assert_int_equal(mkfifo(t.path, 0600), 0);
    assert_int_equal(cio_init(NULL), 0); /* its own fds are open from here on */
    int fds = fd_count();
    struct job *j = job_new(run_open, NULL);
    snprintf(j->path, sizeof j->path, "%s", t.path);
    j->flags = O_RDONLY;
    j->deadline = cio_after_ms(DEADLINE_MS);
    run_job(j);
    assert_null(j->opened);
    assert_timed_out_on_time(j, j->deadline);
    free(j);
    assert_int_equal(fd_count(), fds);

    int w = open(t.path, O_WRONLY | O_NONBLOCK); /* no reader left behind */
    assert_int_equal(w, -1);
    assert_int_equal(errno, ENXIO);
    tempdir_remove(&t);
}

/* A cio_open of a FIFO blocked for a writer succeeds as soon as another
 * thread opens the FIFO for writing, well before its deadline; the two
 * ends talk. */
static void open_of_a_fifo_succeeds_when_a_writer_appears(void **state)
{
    (void)state;
    struct tempdir t;
    tempdir_make(&t, "fifo");
    assert_int_equal(mkfifo(t.path, 0600), 0);
    uint64_t before = op_starts();
    struct job *j = job_new(run_open, NULL);
    snprintf(j->path, sizeof j->path, "%s", t.path);
    j->flags = O_RDONLY;
    j->deadline = cio_after_ms(scaled_ms(JOIN_MS) * 2);
    job_start(j);
    wait_in_open(before);
    assert_false(job_is_done(j));

    int w = open(t.path, O_WRONLY);
    assert_true(w >= 0);
    assert_true(job_join(j, JOIN_MS));
    assert_int_equal(j->result, 0);
    assert_non_null(j->opened);
    assert_true(j->end < j->deadline);
    assert_int_equal(write(w, "hello", 5), 5);
    char buf[8];
    assert_int_equal(cio_read(j->opened, buf, sizeof buf), 5);
    assert_memory_equal(buf, "hello", 5);
    assert_int_equal(cio_close(j->opened), 0);
    assert_int_equal(close(w), 0);
    free(j);
    tempdir_remove(&t);
}

/* A deadline already past (now, a moment ago, or negative) fails with
 * ETIMEDOUT without opening anything: an existing file is not opened and
 * O_CREAT creates nothing. */
static void open_with_a_deadline_already_past_fails_without_opening(void **state)
{
    (void)state;
    struct tempdir t;
    tempdir_make(&t, "new");
    char existing[160];
    snprintf(existing, sizeof existing, "%s/existing", t.dir);
    int fd = open(existing, O_RDWR | O_CREAT | O_EXCL, 0600);
    assert_true(fd >= 0);
    assert_int_equal(cio_init(NULL), 0); /* its own fds are open from here on */
    int fds = fd_count();
    uint64_t before = op_starts();
    const cio_time_t past[3] = {cio_now(), cio_now() - 1000, -1};
    for (int k = 0; k < 3; k++) {
        errno = 0;
        assert_null(cio_open(existing, O_RDONLY, 0, past[k]));
        assert_int_equal(errno, ETIMEDOUT);
        errno = 0;
        assert_null(cio_open(t.path, O_WRONLY | O_CREAT | O_EXCL, 0600, past[k]));
        assert_int_equal(errno, ETIMEDOUT);
    }
    assert_int_equal(op_starts(), before); /* nothing went to a worker */
    assert_int_equal(fd_count(), fds);
    struct stat st;
    assert_int_equal(stat(t.path, &st), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(close(fd), 0);
    assert_int_equal(unlink(existing), 0);
    tempdir_remove(&t);
}

/* Only the deadline or cio_shutdown cuts cio_open off: a FIFO open with no
 * deadline, blocked for a writer, fails with ECANCELED when another thread
 * calls cio_shutdown. */
static void shutdown_fails_a_blocked_open_with_ECANCELED(void **state)
{
    (void)state;
    struct tempdir t;
    tempdir_make(&t, "fifo");
    assert_int_equal(mkfifo(t.path, 0600), 0);
    uint64_t before = op_starts();
    struct job *j = job_new(run_open, NULL);
    snprintf(j->path, sizeof j->path, "%s", t.path);
    j->flags = O_RDONLY;
    j->deadline = CIO_NO_DEADLINE;
    job_start(j);
    wait_in_open(before);
    assert_still_running(j);
    cio_time_t s = cio_now();
    assert_int_equal(cio_shutdown(), 0);
    assert_true(job_join(j, JOIN_MS));
    assert_int_equal(j->result, -1);
    assert_null(j->opened);
    assert_int_equal(j->err, ECANCELED);
    assert_true(elapsed_ms(s, j->end) < (double)scaled_ms(AT_ONCE_MS));
    free(j);
    tempdir_remove(&t);
}

/* ---- cio_call / cio_interrupted ------------------------------------------- */

struct fn_arg {
    atomic_int ran;
    atomic_int entered;
    atomic_int tid;
    int in_call_before; /* cio_interrupted() on entry */
    int in_call_after;  /* cio_interrupted() after the blocking call */
    int syscall_errno;  /* errno of the blocking call's first failure */
    atomic_int stray;   /* EINTRs retried because cio_interrupted() said go on */
    long value;
    int set_errno;
    pid_t child;
    int fd;
    sem_t sem;
};

static void enter(struct fn_arg *a)
{
    atomic_store(&a->ran, 1);
    a->in_call_before = cio_interrupted() != 0;
    atomic_store(&a->tid, (int)current_tid());
    atomic_store(&a->entered, 1);
}

static long value_fn(void *arg)
{
    struct fn_arg *a = arg;
    enter(a);
    errno = a->set_errno;
    return a->value;
}

static long open_missing_fn(void *arg)
{
    enter(arg);
    return open("/nonexistent/cio-calls", O_RDONLY);
}

/* One waitpid: what a plain fn that does not retry looks like. */
static long waitpid_fn(void *arg)
{
    struct fn_arg *a = arg;
    int status;
    enter(a);
    pid_t r = waitpid(a->child, &status, 0);
    a->syscall_errno = r < 0 ? errno : 0;
    a->in_call_after = cio_interrupted() != 0;
    errno = a->syscall_errno;
    return r;
}

/* The pattern the header recommends: retry EINTR until told to stop. */
static long flock_fn(void *arg)
{
    struct fn_arg *a = arg;
    enter(a);
    for (;;) {
        if (flock(a->fd, LOCK_EX) == 0)
            return 0;
        a->syscall_errno = errno;
        if (errno != EINTR)
            return -1;
        if (cio_interrupted()) {
            a->in_call_after = 1;
            return -1;
        }
        atomic_fetch_add(&a->stray, 1);
    }
}

static long sem_wait_fn(void *arg)
{
    struct fn_arg *a = arg;
    enter(a);
    for (;;) {
        if (sem_wait(&a->sem) == 0)
            return 0;
        a->syscall_errno = errno;
        if (errno != EINTR)
            return -1;
        if (cio_interrupted()) {
            a->in_call_after = 1;
            return -1;
        }
        atomic_fetch_add(&a->stray, 1);
    }
}

static bool fn_entered(void *arg)
{
    return atomic_load(&((struct fn_arg *)arg)->entered) != 0;
}

/* Wait until fn runs on a worker and that worker sleeps in the kernel. */
static void wait_fn_blocked(struct fn_arg *a)
{
    assert_true(wait_until(fn_entered, a, JOIN_MS));
    assert_true(wait_thread_sleeping(atomic_load(&a->tid), JOIN_MS));
}

/* After a cio_call cut off at its deadline: if fn ran at all (on a loaded
 * machine the worker may start only after the deadline, and then fn never
 * runs), its blocking call failed with EINTR and cio_interrupted() then
 * said stop: the re-signalling (step 5) reaches even a worker that entered
 * the syscall after the deadline. */
static void assert_fn_was_interrupted_if_it_ran(const struct fn_arg *a)
{
    if (!atomic_load(&a->ran)) {
        printf("fn never ran: the worker started after the deadline\n");
        return;
    }
    assert_int_equal(a->syscall_errno, EINTR);
    assert_int_equal(a->in_call_after, 1);
}

/* cio_call returns what fn returned, with fn's errno, whether or not it
 * has a deadline; fn runs on a worker, not on the caller. */
static void call_returns_what_fn_returned_with_fns_errno(void **state)
{
    (void)state;
    struct fn_arg a = {.value = 42};
    errno = EBADF;
    assert_int_equal(cio_call(value_fn, &a, CIO_NO_DEADLINE), 42);
    assert_true(atomic_load(&a.ran));
    assert_true(atomic_load(&a.tid) != current_tid());

    struct fn_arg b = {.value = 7, .set_errno = EDOM};
    assert_int_equal(cio_call(value_fn, &b, cio_after_ms(JOIN_MS)), 7);
    assert_int_equal(errno, EDOM);

    struct fn_arg c = {.value = LONG_MIN, .set_errno = ERANGE};
    assert_true(cio_call(value_fn, &c, CIO_NO_DEADLINE) == LONG_MIN);
    assert_int_equal(errno, ERANGE);

    struct fn_arg d = {0};
    errno = 0;
    assert_int_equal(cio_call(open_missing_fn, &d, cio_after_ms(JOIN_MS)), -1);
    assert_int_equal(errno, ENOENT); /* fn's -1 before its deadline: fn's errno */
}

struct late_arg {
    cio_time_t deadline;
    long value;
    atomic_int ran; /* fn started: a loaded machine may start it too late */
};

/* Busy until the deadline has passed (no syscall: nothing to interrupt),
 * then fail with EIO, or return value if it is not -1. */
static long late_fn(void *arg)
{
    struct late_arg *a = arg;
    atomic_store(&a->ran, 1);
    while (cio_now() < a->deadline)
        ;
    errno = EIO;
    return a->value;
}

/* "When fn returns -1 after its deadline passed, cio_call fails with
 * ETIMEDOUT" even if fn was not in a syscall the signal could cut, and
 * however fast fn returns after the deadline (before the caller has
 * noticed it); any other value fn returns late is returned as it is. */
static void call_fails_with_ETIMEDOUT_whenever_fn_returns_minus_1_after_its_deadline(void **state)
{
    (void)state;
    int eio = 0, other = 0;
    for (int k = 0; k < 20; k++) {
        struct late_arg a = {cio_after_ms(2), -1, 0};
        errno = 0;
        long r = cio_call(late_fn, &a, a.deadline);
        int e = errno;
        eio += r == -1 && e == EIO;
        other += r != -1 || (e != EIO && e != ETIMEDOUT);
    }
    printf("fn returned -1 just after its deadline: %d of 20 came back as EIO\n", eio);
    assert_int_equal(other, 0);
    assert_int_equal(eio, 0);
    struct late_arg b = {cio_after_ms(2), 5, 0};
    long r = cio_call(late_fn, &b, b.deadline);
    int e = errno;
    if (atomic_load(&b.ran)) { /* fn ran: its value, with its errno */
        assert_int_equal(r, 5);
        assert_int_equal(e, EIO);
    } else { /* the deadline passed before a worker took it */
        assert_int_equal(r, -1);
        assert_int_equal(e, ETIMEDOUT);
    }
}

/* cio_interrupted() is 0 outside a cio_call (on the caller's thread,
 * before and after calls), 0 inside fn before the deadline, and nothing of
 * a call that was cut off sticks to the worker that ran it. */
static void interrupted_is_0_outside_a_call_and_before_the_deadline(void **state)
{
    (void)state;
    assert_int_equal(cio_interrupted(), 0);
    struct fn_arg a = {.value = 1};
    a.in_call_before = -1;
    assert_int_equal(cio_call(value_fn, &a, cio_after_ms(JOIN_MS)), 1);
    assert_int_equal(a.in_call_before, 0);
    assert_int_equal(cio_interrupted(), 0);

    struct fn_arg b = {.value = 1};
    b.in_call_before = -1;
    assert_int_equal(cio_call(value_fn, &b, CIO_NO_DEADLINE), 1);
    assert_int_equal(b.in_call_before, 0);

    struct fn_arg c = {0};
    assert_int_equal(sem_init(&c.sem, 0, 0), 0);
    struct job *j = job_new(run_call, NULL);
    j->fn = sem_wait_fn;
    j->arg = &c;
    j->deadline = cio_after_ms(50);
    run_job(j);
    assert_int_equal(j->result, -1);
    assert_int_equal(j->err, ETIMEDOUT);
    free(j);
    assert_int_equal(cio_interrupted(), 0);
    struct fn_arg d = {.value = 5};
    d.in_call_before = -1;
    assert_int_equal(cio_call(value_fn, &d, CIO_NO_DEADLINE), 5);
    assert_int_equal(d.in_call_before, 0);
    sem_destroy(&c.sem);
}

/* A deadline already past (now, a moment ago, negative) fails at once with
 * ETIMEDOUT without running fn; fn NULL fails with EINVAL. */
static void call_with_a_deadline_already_past_fails_at_once_without_running_fn(void **state)
{
    (void)state;
    uint64_t before = op_starts();
    const cio_time_t past[3] = {cio_now(), cio_now() - 1000000, -1};
    for (int k = 0; k < 3; k++) {
        struct fn_arg a = {.value = 9};
        cio_time_t start = cio_now();
        errno = 0;
        assert_int_equal(cio_call(value_fn, &a, past[k]), -1);
        assert_int_equal(errno, ETIMEDOUT);
        assert_false(atomic_load(&a.ran));
        assert_true(elapsed_ms(start, cio_now()) < (double)scaled_ms(AT_ONCE_MS));
    }
    assert_int_equal(op_starts(), before);
    errno = 0;
    assert_int_equal(cio_call(NULL, NULL, CIO_NO_DEADLINE), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_call(NULL, NULL, cio_after_ms(100)), -1);
    assert_int_equal(errno, EINVAL);
}

/* A waitpid on a child that never exits fails with EINTR inside fn when the
 * deadline passes (cio_interrupted() then says stop), and cio_call fails
 * with ETIMEDOUT, not before the deadline; the child was not reaped. */
static void call_cuts_off_waitpid_at_its_deadline(void **state)
{
    (void)state;
    struct fn_arg a = {0};
    a.child = fork_child(NULL, NULL);
    struct job *j = job_new(run_call, NULL);
    j->fn = waitpid_fn;
    j->arg = &a;
    j->deadline = cio_after_ms(DEADLINE_MS);
    job_start(j);
    assert_true(job_join(j, JOIN_MS));
    assert_timed_out_on_time(j, j->deadline);
    assert_fn_was_interrupted_if_it_ran(&a);
    free(j);
    assert_int_equal(kill_child(a.child), 0);
}

/* The fn that retries EINTR while cio_interrupted() says go on: a storm of
 * process-directed cancel signals makes its sem_wait fail with EINTR many
 * times, fn retries each, and only the deadline stops it: ETIMEDOUT, not
 * before the deadline. */
struct storm {
    atomic_int stop;
    atomic_int sent;
};

static void *storm_main(void *arg)
{
    struct storm *s = arg;
    block_all_signals_in_this_thread();
    while (!atomic_load(&s->stop)) {
        kill(getpid(), SIGUSR1);
        atomic_fetch_add(&s->sent, 1);
        sleep_us(200);
    }
    return NULL;
}

static bool fn_entered_or_done(void *arg)
{
    const struct job *j = arg;
    return fn_entered(j->arg) || atomic_load(&j->done);
}

static void call_retries_stray_EINTR_until_cio_interrupted_says_stop(void **state)
{
    (void)state;
    struct fn_arg a = {0};
    assert_int_equal(sem_init(&a.sem, 0, 0), 0);
    struct job *j = job_new(run_call, NULL);
    j->fn = sem_wait_fn;
    j->arg = &a;
    j->deadline = cio_after_ms(3 * DEADLINE_MS);
    job_start(j);
    assert_true(wait_until(fn_entered_or_done, j, JOIN_MS));
    if (!atomic_load(&a.ran)) {
        assert_true(job_join(j, JOIN_MS));
        assert_timed_out_on_time(j, j->deadline);
        free(j);
        sem_destroy(&a.sem);
        skip(); /* the worker started after the deadline: nothing to storm */
    }
    assert_true(wait_thread_sleeping(atomic_load(&a.tid), JOIN_MS));

    struct storm s = {0};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, storm_main, &s), 0);
    bool joined = job_join(j, JOIN_MS);
    atomic_store(&s.stop, 1);
    pthread_join(th, NULL);
    assert_true(wait_no_pending(SIGUSR1, JOIN_MS));
    assert_true(joined);
    assert_timed_out_on_time(j, j->deadline);
    printf("storm: %d signals sent, fn retried %d stray EINTRs\n", atomic_load(&s.sent),
           atomic_load(&a.stray));
    assert_true(atomic_load(&a.stray) > 0);
    assert_int_equal(a.in_call_after, 1);
    free(j);
    sem_destroy(&a.sem);
}

struct lock_holder {
    const char *path;
    int report; /* write end of a pipe: 'L' once the lock is held */
};

static void hold_flock(void *arg)
{
    const struct lock_holder *h = arg;
    int fd = open(h->path, O_RDWR);
    int ok = fd >= 0 && flock(fd, LOCK_EX) == 0;
    (void)!write(h->report, ok ? "L" : "E", 1);
}

/* flock(LOCK_EX) on a file another process holds locked: cut off at the
 * deadline (ETIMEDOUT, not before); once that process is gone the same
 * call takes the lock. */
static void call_cuts_off_flock_on_a_file_another_process_holds(void **state)
{
    (void)state;
    struct tempdir t;
    tempdir_make(&t, "lock");
    int fd = open(t.path, O_RDWR | O_CREAT, 0600);
    assert_true(fd >= 0);
    int report[2];
    assert_int_equal(make_pipe(report), 0);
    struct lock_holder h = {t.path, report[1]};
    pid_t child = fork_child(hold_flock, &h);
    assert_int_equal(close(report[1]), 0);
    struct pollfd pf = {report[0], POLLIN, 0};
    assert_int_equal(poll(&pf, 1, (int)scaled_ms(JOIN_MS)), 1);
    char c = 0;
    assert_int_equal(read(report[0], &c, 1), 1);
    assert_int_equal(c, 'L');
    assert_int_equal(close(report[0]), 0);

    struct fn_arg a = {.fd = fd};
    struct job *j = job_new(run_call, NULL);
    j->fn = flock_fn;
    j->arg = &a;
    j->deadline = cio_after_ms(DEADLINE_MS);
    run_job(j);
    assert_timed_out_on_time(j, j->deadline);
    assert_fn_was_interrupted_if_it_ran(&a);
    free(j);

    assert_int_equal(kill_child(child), 0);
    struct fn_arg b = {.fd = fd};
    assert_int_equal(cio_call(flock_fn, &b, cio_after_ms(scaled_ms(JOIN_MS))), 0);
    assert_int_equal(flock(fd, LOCK_UN), 0);
    assert_int_equal(close(fd), 0);
    tempdir_remove(&t);
}

/* sem_wait on an unnamed semaphore: with nobody posting it is cut off at
 * the deadline (ETIMEDOUT, not before); a sem_post before the deadline
 * makes the next call succeed, early. */
static void call_cuts_off_sem_wait_and_a_post_before_the_deadline_lets_it_succeed(void **state)
{
    (void)state;
    struct fn_arg a = {0};
    assert_int_equal(sem_init(&a.sem, 0, 0), 0);
    struct job *j = job_new(run_call, NULL);
    j->fn = sem_wait_fn;
    j->arg = &a;
    j->deadline = cio_after_ms(DEADLINE_MS);
    run_job(j);
    assert_timed_out_on_time(j, j->deadline);
    assert_fn_was_interrupted_if_it_ran(&a);
    free(j);

    struct fn_arg b = {0};
    assert_int_equal(sem_init(&b.sem, 0, 0), 0);
    j = job_new(run_call, NULL);
    j->fn = sem_wait_fn;
    j->arg = &b;
    j->deadline = cio_after_ms(scaled_ms(JOIN_MS) * 2);
    job_start(j);
    wait_fn_blocked(&b);
    assert_false(job_is_done(j));
    assert_int_equal(sem_post(&b.sem), 0);
    assert_true(job_join(j, JOIN_MS));
    assert_int_equal(j->result, 0);
    assert_true(j->end < j->deadline);
    int v = -1;
    assert_int_equal(sem_getvalue(&b.sem, &v), 0);
    assert_int_equal(v, 0); /* consumed exactly once */
    free(j);
    sem_destroy(&a.sem);
    sem_destroy(&b.sem);
}

/* Only the deadline or cio_shutdown cuts cio_call off: a call with no
 * deadline blocked in sem_wait fails with ECANCELED when another thread
 * calls cio_shutdown, and fn saw cio_interrupted() say stop. */
static void shutdown_fails_a_blocked_call_with_ECANCELED(void **state)
{
    (void)state;
    struct fn_arg a = {0};
    assert_int_equal(sem_init(&a.sem, 0, 0), 0);
    struct job *j = job_new(run_call, NULL);
    j->fn = sem_wait_fn;
    j->arg = &a;
    j->deadline = CIO_NO_DEADLINE;
    job_start(j);
    wait_fn_blocked(&a);
    assert_still_running(j);
    cio_time_t s = cio_now();
    assert_int_equal(cio_shutdown(), 0);
    assert_true(job_join(j, JOIN_MS));
    assert_int_equal(j->result, -1);
    assert_int_equal(j->err, ECANCELED);
    assert_int_equal(a.in_call_after, 1);
    assert_true(elapsed_ms(s, j->end) < (double)scaled_ms(AT_ONCE_MS));
    free(j);
    sem_destroy(&a.sem);
}

/* A fn that goes on past its deadline for HOLD_MS, counting the EINTRs
 * its sleeps get meanwhile: each is a cancel signal resent to it. */
#define HOLD_MS 150

static long hold_fn(void *arg)
{
    atomic_int *eintrs = arg;
    cio_time_t until = 0;
    while (!until || cio_now() < until) {
        struct timespec ts = {0, 1000000};
        if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
            atomic_fetch_add(eintrs, 1);
        if (!until && cio_interrupted())
            until = cio_after_ms(HOLD_MS);
    }
    return 1;
}

/* Rule 11, measured: every resend of the cancel signal is counted in
 * signals_sent and resignals, whoever sends it (the caller, or on Linux
 * the worker's own kernel timer). */
static void every_resent_signal_is_counted(void **state)
{
    (void)state;
    atomic_int eintrs = 0;
    cio_stats before, after;
    struct fn_arg warm = {.value = 0};
    assert_int_equal(cio_call(value_fn, &warm, CIO_NO_DEADLINE), 0); /* a worker, idle */
    long r = -1;
    for (int try = 0; try < 3 && r != 1; try++) { /* a slow start may miss the deadline */
        atomic_store(&eintrs, 0);
        cio_get_stats(&before);
        r = cio_call(hold_fn, &eintrs, cio_after_ms(scaled_ms(50)));
        cio_get_stats(&after);
    }
    assert_int_equal(r, 1);
    int seen = atomic_load(&eintrs);
    uint64_t sent = after.signals_sent - before.signals_sent;
    uint64_t resent = after.resignals - before.resignals;
    print_message("fn saw %d EINTRs; counted %llu sent, %llu resent\n", seen,
                  (unsigned long long)sent, (unsigned long long)resent);
    assert_true(seen >= 3); /* a resend after 10 ms at the latest, then every 2-64 ms */
    assert_true(resent + 1 >= (uint64_t)seen / 2);
    assert_true(sent >= resent + 1);
}

/* ---- user code on a worker ------------------------------------------------ */

struct shutdown_arg {
    int result, err;
};

static long shutdown_fn(void *arg)
{
    struct shutdown_arg *a = arg;
    errno = 0;
    a->result = cio_shutdown();
    a->err = errno;
    return 5;
}

/* cio_shutdown waits for every library thread: inside fn, on one, it fails
 * with EDEADLK and stops nothing; the call and the library go on. */
static void shutdown_inside_fn_fails_with_EDEADLK_and_stops_nothing(void **state)
{
    (void)state;
    struct shutdown_arg a = {0, 0};
    assert_int_equal(cio_call(shutdown_fn, &a, cio_after_ms(scaled_ms(5000))), 5);
    assert_int_equal(a.result, -1);
    assert_int_equal(a.err, EDEADLK);
    struct fn_arg v = {.value = 9};
    assert_int_equal(cio_call(value_fn, &v, CIO_NO_DEADLINE), 9);
}

struct init_arg {
    atomic_int entered;
    int result, err;
};

/* Waits until a cio_shutdown has stopped its call (the shutdown then holds
 * the library while it waits for this worker), then calls cio_init. */
static long init_while_shutting_down_fn(void *arg)
{
    struct init_arg *a = arg;
    atomic_store(&a->entered, 1);
    while (!cio_interrupted())
        sleep_us(100);
    errno = 0;
    a->result = cio_init(NULL);
    a->err = errno;
    return 0;
}

static void *call_init_main(void *arg)
{
    cio_call(init_while_shutting_down_fn, arg, CIO_NO_DEADLINE);
    return NULL;
}

/* A cio_shutdown while a call's fn runs, and fn then calls cio_init (a
 * component that makes sure the library is up): both return (they waited
 * for each other for ever), cio_init with 0, its options being the
 * library's.  In a child, so that a hang is the child's alone. */
static void init_inside_fn_during_shutdown_returns(void **state)
{
    (void)state;
#if defined(CIO_TSAN)
    skip(); /* a child that makes threads after a fork (see test_signals) */
#endif
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (cio_shutdown() != 0 || cio_init(NULL) != 0)
            _exit(10);
        struct init_arg a = {.result = -2};
        pthread_t t;
        if (pthread_create(&t, NULL, call_init_main, &a) != 0)
            _exit(11);
        while (!atomic_load(&a.entered))
            sleep_us(100);
        if (cio_shutdown() != 0)
            _exit(12);
        pthread_join(t, NULL);
        _exit(a.result == 0 ? 0 : 13);
    }
    int status = child_status_within(pid, (double)scaled_ms(10000));
    if (status == -1)
        fail_msg("cio_shutdown and cio_init inside fn waited for each other");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void shutdown_at_exit(void)
{
    cio_shutdown();
}

static long exit_fn(void *arg)
{
    (void)arg;
    exit(3);
}

/* A fn that gives up with exit() in a program whose atexit handler shuts
 * the library down: the process exits, with fn's status. */
static void exit_inside_fn_with_an_atexit_shutdown_ends_the_process(void **state)
{
    (void)state;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        atexit(shutdown_at_exit);
        cio_call(exit_fn, NULL, cio_after_ms(1000));
        _exit(99); /* not reached */
    }
    int status = child_status_within(pid, (double)scaled_ms(10000));
    if (status == -1)
        fail_msg("the process did not exit: cio_shutdown waited for its own worker");
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 3);
}

static long change_mask_fn(void *arg)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGUSR1); /* the cancel signal (the default) */
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    sigaddset(&s, SIGTERM);
    sigdelset(&s, SIGUSR1);
    pthread_sigmask(SIG_UNBLOCK, &s, NULL);
    (void)arg;
    return 0;
}

/* 1 when this thread's mask is the library's: the cancel signal open,
 * every other (SIGTERM, say) blocked. */
static long mask_is_the_librarys_fn(void *arg)
{
    (void)arg;
    sigset_t s;
    pthread_sigmask(SIG_SETMASK, NULL, &s);
    return !sigismember(&s, SIGUSR1) && sigismember(&s, SIGTERM);
}

/* Rule 10 after user code: a fn that blocked the cancel signal and opened
 * another leaves its worker as the library made it; the next op on it, a
 * read with a deadline, times out. */
static void a_fn_that_changes_its_mask_leaves_the_worker_as_it_was(void **state)
{
    (void)state;
    cio_shutdown();
    cio_options opt = {.max_threads = 1}; /* every op on the one worker */
    assert_int_equal(cio_init(&opt), 0);
    assert_int_equal(cio_call(change_mask_fn, NULL, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_call(mask_is_the_librarys_fn, NULL, CIO_NO_DEADLINE), 1);
    assert_int_equal(cio_call(change_mask_fn, NULL, CIO_NO_DEADLINE), 0);
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(50)), 0);
    struct op_thread *t = start_reader(f, 1);
    assert_non_null(t);
    if (!op_join(t, scaled_ms(JOIN_MS))) {
        assert_int_equal(cio_close(f), 0); /* close's signal is lost too */
        assert_int_equal(write(p[1], "x", 1), 1);
        assert_true(op_join(t, JOIN_MS));
        op_free(t);
        fail_msg("a read on the worker ignored its deadline");
    }
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, ETIMEDOUT);
    op_free(t);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* ---- the end of the suite ------------------------------------------------ */

static struct {
    int fds, threads;
} suite_baseline;

static bool back_to_suite_baseline(void *arg)
{
    (void)arg;
    return fd_count() == suite_baseline.fds && thread_count() == suite_baseline.threads;
}

/* Every op started was done, the counters moved, and after cio_shutdown
 * the process has the threads and fds it had after the first shutdown
 * (under ThreadSanitizer that baseline includes its background thread). */
static void the_counters_balance_and_nothing_outlives_the_suite(void **state)
{
    (void)state;
    int p[2];
    char buf[4];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[0]);
    assert_non_null(f);
    cio_stats s0, s1;
    cio_get_stats(&s0);
    assert_int_equal(cio_set_read_deadline(f, cio_now() - 1), 0);
    struct iovec iov[1] = {{buf, sizeof buf}};
    assert_int_equal(cio_readv(f, iov, 1), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
    cio_get_stats(&s1);
    assert_true(s1.ops_started > s0.ops_started);
    assert_true(s1.timeouts > s0.timeouts);
    assert_true(s1.cancels > 0);
    assert_true(s1.ops_started == s1.ops_done);
    printf("stats: %llu ops started, %llu done, %llu timeouts, %llu cancels\n",
           (unsigned long long)s1.ops_started, (unsigned long long)s1.ops_done,
           (unsigned long long)s1.timeouts, (unsigned long long)s1.cancels);

    assert_int_equal(cio_shutdown(), 0);
    cio_get_stats(&s1);
    assert_int_equal(s1.threads, 0);
    if (!wait_until(back_to_suite_baseline, NULL, 2000))
        fprintf(stderr, "leak: %d fds (was %d), %d threads (was %d)\n", fd_count(),
                suite_baseline.fds, thread_count(), suite_baseline.threads);
    assert_int_equal(fd_count(), suite_baseline.fds);
    assert_int_equal(thread_count(), suite_baseline.threads);
}

/* Start every kind of library thread once and shut them down, so that the
 * baseline taken after includes whatever the runtime (a sanitizer) keeps. */
static int take_suite_baseline(void)
{
    void *st = NULL;
    fixture_setup_watched(&st); /* the watchdog thread exists from here on */
    struct fn_arg a = {.value = 1};
    int p[2];
    char c;
    if (cio_call(value_fn, &a, cio_after_ms(1000)) != 1 || make_pipe(p) != 0)
        return -1;
    cio_file *f = cio_fdopen(p[0]);
    cio_set_read_deadline(f, cio_after_ms(10));
    cio_read(f, &c, 1);
    cio_close(f);
    close(p[1]);
    cio_shutdown();
    suite_baseline.fds = fd_count();
    suite_baseline.threads = thread_count();
    return fixture_teardown(&st);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup_watched, calls_teardown)

int main(void)
{
    block_cancel_signal_in_this_thread();
    if (take_suite_baseline() != 0) {
        fprintf(stderr, "could not take the suite's baseline\n");
        return 1;
    }
    const struct CMUnitTest tests[] = {
        T(pread_reads_at_offsets_and_leaves_the_file_offset_alone),
        T(pwrite_writes_at_offsets_and_leaves_the_file_offset_alone),
        T(pread_and_pwrite_on_a_pipe_fail_with_ESPIPE),
        T(pread_and_pwrite_are_not_serialised_behind_a_blocked_read_or_write),
        T(many_preads_and_pwrites_at_once_on_one_file_all_land),
        T(pread_and_pwrite_obey_only_their_own_deadline_already_past),
        T(pread_and_pwrite_waiting_for_a_worker_time_out_on_their_deadline),
        T(pread_and_pwrite_waiting_for_a_worker_obey_their_own_cancel),
        T(close_fails_a_pending_pread_and_pwrite_with_EBADF),
        T(pread_and_pwrite_reject_bad_input_with_EINVAL),
        T(readv_scatters_and_writev_gathers_on_a_pipe),
        T(readv_and_writev_take_IOV_MAX_buffers),
        T(readv_times_out_on_an_empty_pipe_and_the_data_survives),
        T(writev_cut_by_its_deadline_returns_the_count_and_the_rest_goes_out_once),
        T(readv_and_writev_obey_only_their_own_cancel),
        T(close_fails_a_blocked_readv_and_writev_with_EBADF),
        T(readv_and_writev_reject_bad_input_with_EINVAL),
        T(open_opens_a_regular_file_at_once_and_reports_ENOENT_unchanged),
        T(open_refused_with_EAGAIN_fails_at_once_with_it),
        T(open_of_a_fifo_with_no_writer_times_out_at_its_deadline),
        T(open_of_a_fifo_succeeds_when_a_writer_appears),
        T(open_with_a_deadline_already_past_fails_without_opening),
        T(shutdown_fails_a_blocked_open_with_ECANCELED),
        T(call_returns_what_fn_returned_with_fns_errno),
        T(call_fails_with_ETIMEDOUT_whenever_fn_returns_minus_1_after_its_deadline),
        T(interrupted_is_0_outside_a_call_and_before_the_deadline),
        T(call_with_a_deadline_already_past_fails_at_once_without_running_fn),
        T(call_cuts_off_waitpid_at_its_deadline),
        T(call_retries_stray_EINTR_until_cio_interrupted_says_stop),
        T(call_cuts_off_flock_on_a_file_another_process_holds),
        T(call_cuts_off_sem_wait_and_a_post_before_the_deadline_lets_it_succeed),
        T(shutdown_fails_a_blocked_call_with_ECANCELED),
        T(every_resent_signal_is_counted),
        T(shutdown_inside_fn_fails_with_EDEADLK_and_stops_nothing),
        T(init_inside_fn_during_shutdown_returns),
        T(exit_inside_fn_with_an_atexit_shutdown_ends_the_process),
        T(a_fn_that_changes_its_mask_leaves_the_worker_as_it_was),
        cmocka_unit_test(the_counters_balance_and_nothing_outlives_the_suite),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
