/*
 * Description: DESIGN rule 15, deadlines that hold where a signal cannot
 * reach.  A read of a regular file can sit in the kernel in a wait that no
 * signal interrupts (a disk, an NFS hard mount, a FUSE daemon that ignores
 * FUSE_INTERRUPT).  This machine gives no such file to a test (mounting FUSE
 * needs privileges CI may not have), so the test builds one at the syscall
 * layer: link-time interposition (ld --wrap) of read, readv, pread and
 * preadv2 makes the calls that the static library makes on one chosen fd stall,
 * ignoring every signal, until the test releases them.  preadv2 (the
 * library's non-blocking try) answers EAGAIN for that fd, as it does for
 * uncached pages, so the read goes to a worker and stalls there.
 *
 * What is checked: the caller gets ETIMEDOUT (or ECANCELED, or EBADF) on
 * time, within the documented grace, although the worker is still stuck;
 * the bytes the stuck read brings in later are handed whole to the next
 * reads, in order, and the file offset is right (a readv's too, scattered
 * over the next readv's buffers); a read started while the orphan still runs waits for it under its
 * own deadline; cio_close returns without waiting and the fd number stays reserved (open) until the
 * worker leaves, then it is closed; cio_detach waits and seeks back over unread pending bytes; a
 * pread orphan's bytes are dropped with no offset moved.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "support.h"

#include <cancelio.h>

/* ---- the stall double ---------------------------------------------------- */

ssize_t __real_read(int fd, void *buf, size_t n);
ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __real_readv(int fd, const struct iovec *iov, int cnt);
ssize_t __wrap_read(int fd, void *buf, size_t n);
ssize_t __wrap_readv(int fd, const struct iovec *iov, int cnt);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off);

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;        /* the fd whose reads stall; -1 for none */
    int stalled;   /* readers stuck now */
    int release;   /* let them go */
    int then_wait; /* released, wait in an interruptible read before failing */
    int waiting;   /* inside that interruptible read now */
    int idle[2];   /* a pipe nobody writes: the interruptible wait */
} stall = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, -1, 0, 0, 0, 0, {-1, -1}};

/* Block like an uninterruptible kernel wait: a condvar wait does not return
 * on a signal, so the library's EINTR never comes.  Returns -1 (errno
 * EINTR) when, once released, it was told to go on waiting in a read that
 * a signal does interrupt: an op whose every signal so far was lost. */
static int maybe_stall(int fd)
{
    int interrupted = 0;
    pthread_mutex_lock(&stall.mu);
    if (fd == stall.fd) {
        stall.stalled++;
        pthread_cond_broadcast(&stall.cv);
        while (!stall.release)
            pthread_cond_wait(&stall.cv, &stall.mu);
        if (stall.then_wait) {
            stall.waiting++;
            pthread_mutex_unlock(&stall.mu);
            char c;
            interrupted = __real_read(stall.idle[0], &c, 1) < 0 && errno == EINTR;
            pthread_mutex_lock(&stall.mu);
            stall.waiting--;
        }
        stall.stalled--;
        pthread_cond_broadcast(&stall.cv);
    }
    pthread_mutex_unlock(&stall.mu);
    if (interrupted)
        errno = EINTR;
    return interrupted ? -1 : 0;
}

ssize_t __wrap_read(int fd, void *buf, size_t n)
{
    if (maybe_stall(fd) < 0)
        return -1;
    return __real_read(fd, buf, n);
}

ssize_t __wrap_readv(int fd, const struct iovec *iov, int cnt)
{
    if (maybe_stall(fd) < 0)
        return -1;
    return __real_readv(fd, iov, cnt);
}

ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off)
{
    if (maybe_stall(fd) < 0)
        return -1;
    return __real_pread(fd, buf, n, off);
}

/* Only where the library's try is preadv2 (CIO_TEST_RWF_NOWAIT, from the
 * build's platform probe); elsewhere a regular file has no try at all. */
#if CIO_TEST_RWF_NOWAIT
ssize_t __real_preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags);
ssize_t __wrap_preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags);

ssize_t __wrap_preadv2(int fd, const struct iovec *iov, int cnt, off_t off, int flags)
{
    pthread_mutex_lock(&stall.mu);
    int stalls = fd == stall.fd;
    pthread_mutex_unlock(&stall.mu);
    if (stalls) {
        errno = EAGAIN; /* as for pages not in the cache */
        return -1;
    }
    return __real_preadv2(fd, iov, cnt, off, flags);
}
#endif

static long noop(void *arg)
{
    (void)arg;
    return 0;
}

/* The read must reach a worker before its deadline, or the deadline takes
 * it back and no worker is ever stuck: keep one idle and ready, and give
 * the deadlines room for a slow (sanitized, loaded) hand-off. */
static void stall_arm(int fd)
{
    assert_int_equal(cio_call(noop, NULL, CIO_NO_DEADLINE), 0);
    pthread_mutex_lock(&stall.mu);
    stall.fd = fd;
    stall.release = 0;
    stall.then_wait = 0;
    pthread_mutex_unlock(&stall.mu);
}

static int stalled_now(void)
{
    pthread_mutex_lock(&stall.mu);
    int n = stall.stalled;
    pthread_mutex_unlock(&stall.mu);
    return n;
}

static bool one_stalled(void *arg)
{
    (void)arg;
    return stalled_now() == 1;
}

static bool none_stalled(void *arg)
{
    (void)arg;
    return stalled_now() == 0;
}

static void stall_release(void)
{
    pthread_mutex_lock(&stall.mu);
    stall.release = 1;
    stall.fd = -1;
    pthread_cond_broadcast(&stall.cv);
    pthread_mutex_unlock(&stall.mu);
}

/* ---- helpers ---------------------------------------------------------- */

static const char text[] = "0123456789abcdefghijklmnopqrstuvwxyz";

/* A regular file holding text, open for reading at offset 0. */
static int text_file(void)
{
    char path[] = "/tmp/cio-orphan-XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    assert_int_equal(write(fd, text, sizeof text - 1), (ssize_t)(sizeof text - 1));
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

/* r, a read's result, is a timeout on time: not before deadline d, and
 * within a bound generous for a loaded machine (the grace is 10 ms). */
static void assert_timed_out_on_time(long r, cio_time_t d)
{
    int err = errno;
    cio_time_t t = cio_now();
    assert_int_equal(r, -1);
    assert_int_equal(err, ETIMEDOUT);
    assert_true(t >= d);
    assert_true(elapsed_ms(d, t) < (double)scaled_ms(1000));
}

static bool fd_closed(void *arg)
{
    return !fd_is_open(*(int *)arg);
}

/* ---- tests ------------------------------------------------------------ */

/* Rule 15: the deadline holds although the worker's read cannot be
 * interrupted, and the bytes it reads later go, whole and in order, to the
 * next reads; the offset ends where plain reads would have left it. */
static void a_stuck_read_times_out_on_time_and_its_bytes_go_to_the_next_read(void **state)
{
    (void)state;
    int fd = text_file();
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    stall_arm(fd);
    char buf[64];
    cio_time_t d = cio_after_ms(scaled_ms(50));
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    assert_timed_out_on_time(cio_read(f, buf, 10), d);
    assert_int_equal(stalled_now(), 1); /* the worker really is still stuck */

    stall_release();
    assert_true(wait_until(none_stalled, NULL, scaled_ms(5000)));
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    /* the orphan read 10 bytes; they come first, then the rest of the file */
    memset(buf, 0, sizeof buf);
    assert_int_equal(cio_read(f, buf, 4), 4);
    assert_memory_equal(buf, "0123", 4);
    assert_int_equal(cio_read(f, buf, 64), 6);
    assert_memory_equal(buf, "456789", 6);
    assert_int_equal(cio_read(f, buf, 64), (ssize_t)(sizeof text - 11));
    assert_memory_equal(buf, text + 10, sizeof text - 11);
    assert_int_equal(cio_read(f, buf, 64), 0);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)(sizeof text - 1));
    assert_int_equal(cio_close(f), 0);
}

/* Rule 15 with rule 6: a cancel also lets the caller go on time. */
static void a_stuck_read_is_cancelled_on_time(void **state)
{
    (void)state;
    int fd = text_file();
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    stall_arm(fd);
    struct op_thread *t = start_reader(f, 8);
    assert_non_null(t);
    assert_true(wait_until(one_stalled, NULL, scaled_ms(5000)));
    cio_time_t c = cio_now();
    assert_int_equal(cio_cancel(f, CIO_READ), 0);
    assert_true(op_join(t, scaled_ms(2000)));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, ECANCELED);
    assert_true(elapsed_ms(c, t->end) < (double)scaled_ms(1000));
    op_free(t);
    stall_release();
    assert_true(wait_until(none_stalled, NULL, scaled_ms(5000)));
    char buf[64];
    assert_int_equal(cio_read(f, buf, 64), 8); /* the orphan's 8 bytes */
    assert_memory_equal(buf, text, 8);
    assert_int_equal(cio_read(f, buf, 4), 4);
    assert_memory_equal(buf, text + 8, 4);
    assert_int_equal(cio_close(f), 0);
}

/* Rule 15: a read that starts while the orphan still runs waits for it,
 * under its own deadline, and consumes nothing when that passes. */
static void a_read_behind_a_stuck_orphan_honours_its_own_deadline(void **state)
{
    (void)state;
    int fd = text_file();
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    stall_arm(fd);
    char buf[64];
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(30))), 0);
    assert_int_equal(cio_read(f, buf, 5), -1);
    assert_int_equal(errno, ETIMEDOUT);
    cio_time_t d = cio_after_ms(scaled_ms(40));
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    assert_int_equal(cio_read(f, buf, 5), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(cio_now() >= d);
    assert_int_equal(stalled_now(), 1);
    stall_release();
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_read(f, buf, 64), 5); /* waits for the orphan */
    assert_memory_equal(buf, text, 5);
    assert_int_equal(cio_close(f), 0);
}

/* Rule 15 with rule 7: cio_close returns without waiting on the kernel;
 * the fd number stays open (reserved) until the stuck worker leaves, and
 * is closed then. */
static void close_returns_at_once_and_the_fd_stays_reserved_until_the_worker_leaves(void **state)
{
    (void)state;
    int fd = text_file();
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    stall_arm(fd);
    struct op_thread *t = start_reader(f, 8);
    assert_non_null(t);
    assert_true(wait_until(one_stalled, NULL, scaled_ms(5000)));
    cio_time_t c = cio_now();
    assert_int_equal(cio_close(f), 0);
    assert_true(elapsed_ms(c, cio_now()) < (double)scaled_ms(1000));
    assert_true(op_join(t, scaled_ms(2000)));
    assert_int_equal(t->result, -1);
    assert_int_equal(t->err, EBADF);
    op_free(t);
    assert_true(fd_is_open(fd)); /* not reusable while the worker is inside */
    assert_int_equal(stalled_now(), 1);
    stall_release();
    assert_true(wait_until(fd_closed, &fd, scaled_ms(5000)));
}

/* Rule 15 with cio_detach: it waits for the orphan, then hands the fd back
 * positioned after the bytes the caller really got. */
static void detach_waits_for_the_orphan_and_seeks_back_over_unread_bytes(void **state)
{
    (void)state;
    int fd = text_file();
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    stall_arm(fd);
    char buf[64];
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(20))), 0);
    assert_int_equal(cio_read(f, buf, 12), -1);
    assert_int_equal(errno, ETIMEDOUT);
    stall_release();
    assert_true(wait_until(none_stalled, NULL, scaled_ms(5000)));
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_read(f, buf, 2), 2); /* 10 of the 12 stay pending */
    assert_int_equal(cio_detach(f), fd);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 2);
    assert_int_equal(read(fd, buf, 3), 3);
    assert_memory_equal(buf, text + 2, 3);
    close(fd);
}

/* Rule 15 for pread: the caller goes on time, and since pread moves no
 * offset the orphan's bytes are simply dropped. */
static void a_stuck_pread_times_out_and_moves_nothing(void **state)
{
    (void)state;
    int fd = text_file();
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    stall_arm(fd);
    char buf[16];
    cio_time_t d = cio_after_ms(scaled_ms(30));
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    assert_int_equal(cio_pread(f, buf, 6, 3), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_true(cio_now() >= d);
    stall_release();
    assert_true(wait_until(none_stalled, NULL, scaled_ms(5000)));
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    assert_int_equal(cio_pread(f, buf, 6, 3), 6);
    assert_memory_equal(buf, text + 3, 6);
    assert_int_equal(cio_read(f, buf, 4), 4); /* the offset never moved */
    assert_memory_equal(buf, text, 4);
    assert_int_equal(cio_close(f), 0);
}

static void *release_after(void *arg)
{
    sleep_us((unsigned)(intptr_t)arg * 1000u);
    stall_release();
    return NULL;
}

/* A thread that frees the stalled read after 3 s: a call that waited for
 * the kernel returns then, and fails its timing check instead of hanging. */
static pthread_t release_later(void)
{
    pthread_t rel;
    intptr_t later = (intptr_t)scaled_ms(3000);
    assert_int_equal(pthread_create(&rel, NULL, release_after, (void *)later), 0);
    return rel;
}

/* Rule 15 for cio_readv: its deadline holds too, and the bytes the stuck
 * read brings in later are scattered over the next readv's buffers, then
 * the rest of the file follows.  (If the readv waited for the kernel, a
 * thread frees it after 3 s, and the timing check fails.) */
static void a_stuck_readv_times_out_on_time_and_its_bytes_go_to_the_next_readv(void **state)
{
    (void)state;
    int fd = text_file();
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    stall_arm(fd);
    pthread_t rel = release_later();
    char a[4], b[64];
    struct iovec iov[2] = {{a, 4}, {b, 6}};
    cio_time_t d = cio_after_ms(scaled_ms(50));
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    assert_timed_out_on_time(cio_readv(f, iov, 2), d);
    assert_int_equal(pthread_join(rel, NULL), 0);
    assert_true(wait_until(none_stalled, NULL, scaled_ms(5000)));
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    memset(a, 0, sizeof a);
    memset(b, 0, sizeof b);
    struct iovec next[2] = {{a, 3}, {b, sizeof b}};
    assert_int_equal(cio_readv(f, next, 2), 10); /* what the orphan read */
    assert_memory_equal(a, "012", 3);
    assert_memory_equal(b, "3456789", 7);
    assert_int_equal(cio_readv(f, next, 2), (ssize_t)(sizeof text - 11));
    assert_memory_equal(a, text + 10, 3);
    assert_memory_equal(b, text + 13, sizeof text - 14);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), (off_t)(sizeof text - 1));
    assert_int_equal(cio_close(f), 0);
}

/* Rule 15 on a tty: Linux's n_tty_read waits for the tty's input work
 * (flush_work) before it looks for a pending signal, and that wait is
 * uninterruptible; with both CPUs busy it lasted seconds, the cancel signal
 * pending all along (docs/guarantees.md).  So a read of a character device
 * may outlive its caller as a disk read may: the deadline holds, and the
 * bytes the read brings in later go to the next read.  Here the stall is
 * the seam's, on a pty master; the fd's flags stay as they were.  (If the
 * read waited for the kernel, a thread frees it after 3 s, and the timing
 * check fails.) */
static void a_stuck_tty_read_times_out_on_time_and_its_bytes_go_to_the_next_read(void **state)
{
    (void)state;
    int m, s;
    if (!open_pty(&m, &s))
        skip(); /* no pseudo-terminals here */
    int flags = fcntl(m, F_GETFL);
    cio_file *f = cio_fdopen(m);
    assert_non_null(f);
    stall_arm(m);
    pthread_t rel = release_later();
    char buf[16];
    cio_time_t d = cio_after_ms(scaled_ms(50));
    assert_int_equal(cio_set_read_deadline(f, d), 0);
    assert_timed_out_on_time(cio_read(f, buf, sizeof buf), d);
    assert_int_equal(write(s, "tty!", 4), 4); /* for the stuck read, once freed */
    assert_int_equal(pthread_join(rel, NULL), 0);
    assert_true(wait_until(none_stalled, NULL, scaled_ms(5000)));
    assert_int_equal(cio_set_read_deadline(f, CIO_NO_DEADLINE), 0);
    memset(buf, 0, sizeof buf);
    assert_int_equal(cio_read(f, buf, sizeof buf), 4); /* what the orphan read */
    assert_memory_equal(buf, "tty!", 4);
    assert_int_equal(fcntl(m, F_GETFL), flags);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(s), 0);
}

/* Rule 15 with rule 11: an orphan whose signals were all lost (it was not
 * yet in an interruptible wait) still gets signalled once it is, with no
 * caller left to re-send: it leaves, and the fd that cio_close left to it
 * is closed. */
static void an_orphan_whose_signals_were_lost_is_signalled_again(void **state)
{
    (void)state;
    int fd = text_file();
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    assert_int_equal(pipe(stall.idle), 0);
    stall_arm(fd);
    pthread_mutex_lock(&stall.mu);
    stall.then_wait = 1;
    pthread_mutex_unlock(&stall.mu);
    char buf[8];
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(20))), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(cio_close(f), 0);
    assert_true(fd_is_open(fd));
    /* now the worker blocks where a signal does reach it: only the
     * library's re-sending can get it out */
    stall_release();
    assert_true(wait_until(none_stalled, NULL, scaled_ms(5000)));
    assert_true(wait_until(fd_closed, &fd, scaled_ms(5000)));
    close(stall.idle[0]);
    close(stall.idle[1]);
    stall.idle[0] = stall.idle[1] = -1;
}

/* In a child forked while it ran: a read on a fresh pipe that must time
 * out; 0 when all is as rule 13 says. */
static int child_after_fork(int closed_fd)
{
    stall.fd = -1; /* the pipe below may get its number: no stall here */
    int p[2];
    if (pipe(p) != 0)
        return 2;
    cio_file *g = cio_fdopen(p[0]);
    if (!g)
        return 3;
    char c;
    cio_time_t d = cio_after_ms(50);
    if (cio_set_read_deadline(g, d) != 0)
        return 4;
    if (cio_read(g, &c, 1) != -1 || errno != ETIMEDOUT || cio_now() < d)
        return 5;
    if (cio_close(g) != 0 || cio_shutdown() != 0)
        return 6;
    if (fd_is_open(closed_fd))
        return 1; /* the program closed it: the child must not keep it */
    return 0;
}

/* Rules 13 and 15: a fork while a closed file's orphan is stuck.  The
 * child has no orphan and no worker: nothing of the parent's may be
 * signalled or touched there (the timer that re-signals orphans), the fd
 * the program closed is closed in the child, and the library works.  The
 * parent's orphan still closes the fd once it is let go. */
static void a_fork_while_a_closed_file_has_an_orphan_leaves_a_working_child(void **state)
{
#if defined(CIO_TSAN)
    /* ThreadSanitizer ends a child whose parent had other threads running
     * with "thread leak" (exit 66), whatever the child does. */
    skip();
#endif
    (void)state;
    int fd = text_file();
    cio_file *f = cio_fdopen(fd);
    assert_non_null(f);
    stall_arm(fd);
    char buf[8];
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(20))), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(stalled_now(), 1);
    assert_int_equal(cio_close(f), 0);
    assert_true(fd_is_open(fd)); /* reserved for the orphan */
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_after_fork(fd));
    int st = child_status_within(pid, (double)scaled_ms(10000));
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("child: wait status %#x", (unsigned)st);
    stall_release();
    assert_true(wait_until(none_stalled, NULL, scaled_ms(5000)));
    assert_true(wait_until(fd_closed, &fd, scaled_ms(5000)));
}

static int teardown(void **state)
{
    stall_release();
    if (stall.idle[1] >= 0 && write(stall.idle[1], "x", 1) != 1) /* free a waiter */
        return -1;
    wait_until(none_stalled, NULL, scaled_ms(5000));
    return fixture_teardown(state);
}

static void *nothing(void *arg)
{
    return arg;
}

int main(void)
{
    /* ThreadSanitizer starts a thread of its own with the first thread made:
     * make one now, so the fixtures' thread counts start after it. */
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) == 0)
        pthread_join(t, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            a_stuck_read_times_out_on_time_and_its_bytes_go_to_the_next_read, fixture_setup,
            teardown),
        cmocka_unit_test_setup_teardown(a_stuck_read_is_cancelled_on_time, fixture_setup, teardown),
        cmocka_unit_test_setup_teardown(a_read_behind_a_stuck_orphan_honours_its_own_deadline,
                                        fixture_setup, teardown),
        cmocka_unit_test_setup_teardown(
            close_returns_at_once_and_the_fd_stays_reserved_until_the_worker_leaves, fixture_setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            detach_waits_for_the_orphan_and_seeks_back_over_unread_bytes, fixture_setup, teardown),
        cmocka_unit_test_setup_teardown(a_stuck_pread_times_out_and_moves_nothing, fixture_setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            a_stuck_readv_times_out_on_time_and_its_bytes_go_to_the_next_readv, fixture_setup,
            teardown),
        cmocka_unit_test_setup_teardown(
            a_stuck_tty_read_times_out_on_time_and_its_bytes_go_to_the_next_read, fixture_setup,
            teardown),
        cmocka_unit_test_setup_teardown(an_orphan_whose_signals_were_lost_is_signalled_again,
                                        fixture_setup, teardown),
        cmocka_unit_test_setup_teardown(
            a_fork_while_a_closed_file_has_an_orphan_leaves_a_working_child, fixture_setup,
            teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
