/*
 * cancelio — interruptible blocking I/O with deadlines on any file descriptor.
 *
 * Each blocking operation runs on a worker thread of the library's pool; a
 * deadline, cio_cancel or cio_close interrupts it by sending the cancel
 * signal (SIGUSR1 by default) to that worker, whose handler is installed
 * without SA_RESTART, so the syscall fails with EINTR.  The descriptor stays
 * usable afterwards and no byte is lost or duplicated.
 *
 * Conventions: calls returning int or ssize_t return -1 and set errno on
 * failure (0 on success unless they return a count); calls returning a
 * pointer return NULL and set errno.  Every call is thread-safe.  Times are
 * cio_time_t, signed 64-bit nanoseconds on CLOCK_MONOTONIC; 0 means "no
 * deadline" and any other value not in the future is in the past.
 */
#ifndef CANCELIO_H
#define CANCELIO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#if defined(CANCELIO_STATIC_DEFINE)
#define CIO_API
#elif defined(CANCELIO_BUILDING)
#define CIO_API __attribute__((visibility("default")))
#else
#define CIO_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

typedef int64_t cio_time_t;

#define CIO_NO_DEADLINE ((cio_time_t)0)
#define CIO_READ 1
#define CIO_WRITE 2

#define CIO_TIMER_AUTO 0    /* timerfd where the system has it, else the heap */
#define CIO_TIMER_HEAP 1    /* a thread sleeping on CLOCK_MONOTONIC (portable) */
#define CIO_TIMER_TIMERFD 2 /* a thread blocked on a timerfd (Linux only) */

/* The current CLOCK_MONOTONIC time in nanoseconds.  Never blocks. */
CIO_API cio_time_t cio_now(void);

/* cio_now() + ms milliseconds, saturating instead of overflowing.  Never
 * blocks. */
CIO_API cio_time_t cio_after_ms(int64_t ms);

typedef struct cio_options {
    int signo;            /* cancel signal; 0 = SIGUSR1 */
    unsigned max_threads; /* cap on worker threads; 0 = library default (4096) */
    size_t stack_size;    /* worker stack bytes; 0 = library default (128 KiB) */
    int timer;            /* CIO_TIMER_AUTO (0), CIO_TIMER_HEAP, CIO_TIMER_TIMERFD */
    /* Linux >= 6.16 gives a process a private futex hash sized by its CPUs
     * (16 buckets on 2 CPUs), and every wait and wake of a mutex or condvar
     * walks a bucket's chain: with thousands of threads blocked at once
     * (callers and workers), each wake-up costs tens of microseconds.
     * 0 (the default) leaves the process's setting alone; a power of two
     * >= 2 asks for that many buckets, CIO_FUTEX_HASH_GLOBAL for the
     * kernel's global hash (prctl PR_FUTEX_HASH, process-wide, set by
     * cio_init).  Ignored where the kernel has no such setting. */
    unsigned futex_hash_slots;
    /* Where a blocked cio_read or cio_write waits for a pipe, FIFO or
     * socket (an fd that can be tried without blocking and polled).
     * CIO_WAIT_CALLER (0, the default): on the calling thread itself, in
     * ppoll(2), with the cancel signal unblocked for that wait alone; a
     * cancel or close signals that thread, and a deadline is the wait's
     * own timeout (one wake-up, no worker).  CIO_WAIT_WORKER: on a worker,
     * as every other op does, and the library never signals a thread of
     * the application.  Ops on other fds run on workers either way. */
    int waits;
} cio_options;

#define CIO_FUTEX_HASH_GLOBAL (~0u) /* cio_options.futex_hash_slots */
#define CIO_WAIT_CALLER 0           /* cio_options.waits */
#define CIO_WAIT_WORKER 1

/* Initialise the library with opt (NULL = defaults).  Optional: the first
 * call that needs the library initialises it with the defaults.  Does not
 * block on I/O.
 * Errors: EINVAL  bad signo, timer, waits or stack_size (below
 *                 PTHREAD_STACK_MIN), futex_hash_slots neither 0, a power
 *                 of two >= 2 nor CIO_FUTEX_HASH_GLOBAL, or refused by the
 *                 kernel;
 *         EBUSY   another handler already owns the signal, or the library is
 *                 already initialised with different options;
 *         ENOSYS  CIO_TIMER_TIMERFD asked for where there is no timerfd;
 *         ENOMEM, EAGAIN  out of memory or threads.
 * Calling it again with the same options succeeds and does nothing. */
CIO_API int cio_init(const cio_options *opt);

/* Join every library thread and restore the signal's previous handler.  Ops
 * still in flight are interrupted and fail with ECANCELED; blocks until
 * their workers have left.  An op that begins meanwhile fails with
 * ECANCELED too, once the shutdown is over or 100 ms have passed (inside
 * a cio_call's fn, at once).  Files stay valid: the next call
 * re-initialises the library.
 * Errors: EDEADLK called in a cio_call's fn (or in an atexit handler that
 *         an exit() there runs): it would wait for its own worker to leave,
 *         so it does nothing. */
CIO_API int cio_shutdown(void);

typedef struct cio_file cio_file;

/* Adopt fd; cio_close will close it.  Never blocks.  The fd's flags are never
 * changed.  Errors: EBADF fd is not an open descriptor; ENOMEM. */
CIO_API cio_file *cio_fdopen(int fd);

/* The descriptor of f.  Errors: EINVAL f is NULL. */
CIO_API int cio_fileno(const cio_file *f);

/* Interrupt every pending op on f (they fail with EBADF), wait until none is
 * inside an op, close the fd and free f.  Blocks only until the workers have
 * left, and returns close(2)'s result; except that a read still held in the
 * kernel past its grace (DESIGN rule 15) is left behind: then cio_close
 * returns 0 at once, and its worker closes the fd when it leaves.
 * Errors: EINVAL f is NULL; close's own. */
CIO_API int cio_close(cio_file *f);

/* Like cio_close, but returns the fd, still open, instead of closing it.
 * Errors: EINVAL f is NULL. */
CIO_API int cio_detach(cio_file *f);

/* Read up to n bytes, like read(2), blocking until data, end of file, the
 * read deadline, cio_cancel or cio_close.  n == 0 returns 0 at once.
 * Errors: EINVAL f NULL, or buf NULL with n > 0; ETIMEDOUT the read
 *         deadline passed (nothing was consumed); ECANCELED cio_cancel or
 *         cio_shutdown; EINTR a Plan 9 note (cancelio/plan9.h) was posted to
 *         the calling thread, or was pending when the call began (then the
 *         fd was not touched); EBADF cio_close, or a bad fd; EAGAIN, ENOMEM
 *         no worker thread could be made; EBUSY the library's first use
 *         could not install the cancel signal's handler (see cio_init);
 *         read(2)'s own errors. */
CIO_API ssize_t cio_read(cio_file *f, void *buf, size_t n);

/* Write all n bytes, blocking until they are written or the write deadline,
 * cio_cancel or cio_close cuts it short.  Cut short after some bytes went
 * out, it returns that count; with none written it fails with the reason.
 * n == 0 returns 0 at once.
 * Errors: as cio_read, with the write deadline; write(2)'s own (EPIPE). */
CIO_API ssize_t cio_write(cio_file *f, const void *buf, size_t n);

/* Set the read and write deadlines to t (CIO_NO_DEADLINE clears them).  A
 * blocked op sees the new deadline at once.  Never blocks.
 * Errors: EINVAL f NULL; EBADF f is closing; ENOMEM (nothing changed);
 *         EAGAIN the timer thread could not be made. */
CIO_API int cio_set_deadline(cio_file *f, cio_time_t t);
CIO_API int cio_set_read_deadline(cio_file *f, cio_time_t t);
CIO_API int cio_set_write_deadline(cio_file *f, cio_time_t t);

/* Interrupt every op in the directions of which (CIO_READ | CIO_WRITE) that
 * is blocked or waiting to start; each fails with ECANCELED.  Later ops are
 * not affected.  Never blocks.
 * Errors: EINVAL f NULL, which 0 or with unknown bits. */
CIO_API int cio_cancel(cio_file *f, int which);

typedef struct cio_stats {
    uint64_t ops_started, ops_done, timeouts, cancels;
    /* Every cancel signal sent to a worker: each pthread_kill, and on Linux
     * each one a worker's own kernel timer sends.  The timer's first signal
     * at a deadline is counted when the worker answers it; its repeats when
     * the op ends, reckoned from the timer's schedule: its expiries (no
     * thread sees them sent; one that finds the syscall stuck counts, and
     * so does one the kernel merges into a signal still pending). */
    uint64_t signals_sent;
    /* Of those, the ones beyond the first for one op: the resends that
     * make up for a lost signal (step 5 of docs/protocol.md). */
    uint64_t resignals;
    unsigned threads;      /* worker threads alive now */
    unsigned threads_idle; /* of those, idle now */
    /* Timers in the timer thread's heap now: deadlines armed, a stale one
     * that will find nothing to do, the repeat signal of a read left in the
     * kernel (rule 15). */
    unsigned timers;
    /* Reads and writes waiting now on their callers' own threads
     * (cio_options.waits): not on a worker, not in the pool's queue. */
    unsigned callers_waiting;
} cio_stats;

/* A snapshot of the library's counters.  out NULL does nothing.  It waits
 * for no op (no file's lock, nor the pool's or the timer's). */
CIO_API void cio_get_stats(cio_stats *out);

/* ---- The wider surface: same conventions, same deadline and cancel rules.
 * The read deadline and CIO_READ govern pread, readv, the recv family and
 * accept; the write deadline and CIO_WRITE govern pwrite, writev, the send
 * family and connect.  Each blocks; each can fail with EINVAL (NULL file or
 * buffer), ETIMEDOUT, ECANCELED, EINTR (a Plan 9 note), EBADF (closed),
 * EAGAIN (no worker), EBUSY (as cio_read) and the syscall's own errors. */

/* pread(2)/pwrite(2): not serialised with anything, several may run at once
 * on one file.  cio_pwrite writes all n bytes unless cut short (then the
 * count written).  EINVAL also for a negative off. */
CIO_API ssize_t cio_pread(cio_file *f, void *buf, size_t n, off_t off);
CIO_API ssize_t cio_pwrite(cio_file *f, const void *buf, size_t n, off_t off);

/* readv(2)/writev(2), serialised like cio_read/cio_write; cio_writev writes
 * everything unless cut short.  EINVAL also for iovcnt < 0 or > IOV_MAX, or
 * lengths that add up past SSIZE_MAX. */
CIO_API ssize_t cio_readv(cio_file *f, const struct iovec *iov, int iovcnt);
CIO_API ssize_t cio_writev(cio_file *f, const struct iovec *iov, int iovcnt);

/* accept(2) on a listening socket, under the listener's read deadline; the
 * new socket as a cio_file (flags as accept(2) leaves them). */
CIO_API cio_file *cio_accept(cio_file *listener, struct sockaddr *addr, socklen_t *addrlen);

/* connect(2) under the write deadline.  A stray signal never turns into
 * EALREADY: the call waits for the connection to complete.  After ETIMEDOUT
 * or ECANCELED the attempt may still complete in the kernel: close the
 * socket rather than reuse it. */
CIO_API int cio_connect(cio_file *f, const struct sockaddr *addr, socklen_t addrlen);

/* One recv(2)/send(2) and relatives: the count may be short, as theirs may.
 * The call first tries with MSG_DONTWAIT (never changing the socket's own
 * flags); a zero-length call is passed to the kernel. */
CIO_API ssize_t cio_recv(cio_file *f, void *buf, size_t n, int flags);
CIO_API ssize_t cio_send(cio_file *f, const void *buf, size_t n, int flags);
CIO_API ssize_t cio_recvfrom(cio_file *f, void *buf, size_t n, int flags, struct sockaddr *addr,
                             socklen_t *addrlen);
CIO_API ssize_t cio_sendto(cio_file *f, const void *buf, size_t n, int flags,
                           const struct sockaddr *addr, socklen_t addrlen);
CIO_API ssize_t cio_recvmsg(cio_file *f, struct msghdr *msg, int flags);
CIO_API ssize_t cio_sendmsg(cio_file *f, const struct msghdr *msg, int flags);

/* open(2) on a worker, given up at deadline (0 = none): opening a FIFO
 * blocks until the other end appears.  Only the deadline, or cio_shutdown
 * (ECANCELED), cuts it off.  Errors: EINVAL path NULL; ETIMEDOUT; open's. */
CIO_API cio_file *cio_open(const char *path, int flags, mode_t mode, cio_time_t deadline);

typedef long (*cio_func)(void *arg);

/* Run fn(arg) on a worker with a deadline.  A blocking syscall inside fn
 * fails with EINTR when the deadline passes (or cio_shutdown); fn asks
 * cio_interrupted() whether to stop or retry.  Returns what fn returned,
 * with fn's errno; when fn returns -1 after the deadline passed, fails with
 * ETIMEDOUT; a deadline already past fails at once without running fn.
 * Errors: EINVAL fn NULL; ETIMEDOUT; ECANCELED (cio_shutdown); EAGAIN. */
CIO_API long cio_call(cio_func fn, void *arg, cio_time_t deadline);

/* Inside a cio_call's fn: nonzero once the call must stop.  Elsewhere 0. */
CIO_API int cio_interrupted(void);

/* ---- Helpers for test suites and scripts (DESIGN rule 20).
 * Bytes a helper reads but does not return stay in f ("held") and every
 * later read on f (cio_read, cio_readv, the recv family, the helpers)
 * returns them before it reads the fd again.  A helper holds the read
 * direction from start to end, like one read: the read deadline, cio_cancel
 * (CIO_READ) and cio_close stop it at any point.  Meant for byte streams
 * (pipes, ttys, stream sockets, files), not datagrams. */

/* Read until the dlen bytes of delim have been read (dlen > 0), at most cap
 * bytes, into buf.  Blocks.  Returns the count through the end of the
 * delimiter; bytes read past it stay in f, and the next read on f returns
 * them first.  At end of file before the delimiter: the count read (0 if
 * none), consumed, like getline.  The fd is read in chunks, not byte by
 * byte.
 * Errors (nothing consumed: every byte read stays in f for the next read,
 * and a copy of them is in buf; cio_unread says how many are held):
 *   ETIMEDOUT the read deadline passed; ECANCELED cio_cancel(CIO_READ);
 *   EINTR a Plan 9 note (cancelio/plan9.h) was posted to the thread;
 *   EBADF cio_close, or a bad fd; ENOBUFS cap bytes read (or cap 0) without
 *   the delimiter; read(2)'s own errors; ENOMEM, EAGAIN.
 *   EINVAL f, buf or delim NULL, or dlen 0 (nothing read). */
CIO_API ssize_t cio_read_until(cio_file *f, void *buf, size_t cap, const void *delim, size_t dlen);

/* Read exactly n bytes into buf.  Blocks.  At end of file the count read
 * (short, consumed; 0 if none).  n == 0 returns 0 at once.  Errors as
 * cio_read_until (nothing consumed, a copy in buf), but never ENOBUFS;
 * EINVAL f NULL, or buf NULL with n > 0. */
CIO_API ssize_t cio_read_full(cio_file *f, void *buf, size_t n);

/* The number of bytes held in f that the next read returns before reading
 * the fd (0 for a NULL f).  Never blocks (waits only for f's lock). */
CIO_API size_t cio_unread(const cio_file *f);

/* A child process with pipes, for tests that drive a program. */
typedef struct cio_child cio_child;
#define CIO_STDIN 1  /* flags: which of the child's streams are pipes to us */
#define CIO_STDOUT 2 /* (the others are inherited) */
#define CIO_STDERR 4

/* Start argv[0] (searched in PATH) with argv, through posix_spawnp, with a
 * pipe to us for each stream in flags.  Every pipe end is close-on-exec, so
 * none leaks into this child (beyond its 0-2) or into any other; the child
 * starts with no signal blocked.  Does not wait for the child.
 * Errors: EINVAL argv NULL or empty, or unknown flag bits; posix_spawnp's
 * own, the exec failure included (ENOENT not found, EACCES, ENOEXEC...);
 * EMFILE, ENFILE, ENOMEM. */
CIO_API cio_child *cio_spawn(char *const argv[], int flags);

/* The child's process id.  Errors: EINVAL c NULL (returns -1). */
CIO_API pid_t cio_child_pid(const cio_child *c);

/* Our end of the child's stream which (CIO_STDIN: write to it; CIO_STDOUT,
 * CIO_STDERR: read from it).  Never blocks.  c owns the file: never
 * cio_close it yourself (cio_child_free does; cio_child_close does it early,
 * to send end of file to the child's stdin).  Errors: EINVAL c NULL, which
 * not one stream, or that stream is not a pipe (or was closed). */
CIO_API cio_file *cio_child_file(cio_child *c, int which);

/* Close our end of the child's stream which now (for CIO_STDIN: the child
 * reads end of file); ops on it fail with EBADF, as for cio_close.  Blocks
 * only until they have left.  Errors: as cio_child_file. */
CIO_API int cio_child_close(cio_child *c, int which);

/* Wait until the child has exited, or until deadline (0 = none); store its
 * wait status (as waitpid(2) gives it) in *status if status is not NULL.
 * Blocks.  Only this child is waited for and reaped; once reaped, every
 * later wait returns 0 and the same status at once.  A deadline already
 * past still reports a child that has exited.
 * Errors: EINVAL c NULL; ETIMEDOUT still running at the deadline;
 *         ECANCELED cio_shutdown; ECHILD the system reaped it (SIGCHLD
 *         ignored); EAGAIN no worker thread. */
CIO_API int cio_child_wait(cio_child *c, int *status, cio_time_t deadline);

/* Send signo to the child (0 probes it).  Never blocks.  Never signals a
 * child already reaped, whose pid may belong to another process.  A child
 * that has exited is reaped first and reported gone (ESRCH), not signalled
 * as a zombie; its status stays for cio_child_wait.
 * Errors: EINVAL c NULL or a bad signo; ESRCH the child has exited (reaped
 *         now or before, or by the system). */
CIO_API int cio_child_kill(cio_child *c, int signo);

/* Close c's files, kill the child with SIGKILL if it was not reaped, reap
 * it, and free c.  Blocks until the child is gone (threads inside
 * cio_child_wait on c return first; no other call on c may follow).
 * Errors: EINVAL c NULL. */
CIO_API int cio_child_free(cio_child *c);

/* Tracing: the library's own events, for teaching and debugging.  The
 * callback runs on whichever thread the event happens on (a worker, the
 * timer thread, a caller), many at once and with no lock of the tracer's
 * own, sometimes with internal locks held: it must not call into cancelio,
 * should be short, and does its own synchronisation.  NULL turns tracing off; with no
 * tracer set an event costs one atomic load. */
enum cio_event_type {
    CIO_EV_OP_START = 1, /* a caller handed an op to the pool */
    CIO_EV_OP_RUN,       /* a worker began the syscall */
    CIO_EV_TIMER_FIRE,   /* a deadline passed: a worker's own timer, or (worker 0)
                          * the timer thread or the op's caller */
    CIO_EV_SIGNAL,       /* the cancel signal was sent to a worker */
    CIO_EV_EINTR,        /* a worker's syscall failed with EINTR */
    CIO_EV_OP_DONE       /* the op returned to its caller (result, err) */
};

typedef struct cio_event {
    int type;        /* enum cio_event_type */
    int fd;          /* the file's descriptor, -1 if none */
    int which;       /* CIO_READ or CIO_WRITE, 0 if none */
    unsigned worker; /* serial number of the worker thread, 0 if none */
    long result;     /* CIO_EV_OP_DONE: the op's return value */
    int err;         /* errno for a failed op, or the cancel reason */
    cio_time_t when; /* cio_now() at the event */
} cio_event;

typedef void (*cio_trace_fn)(const cio_event *ev, void *arg);

/* Install fn (with arg) as the tracer; NULL removes it.  Never blocks. */
CIO_API void cio_set_trace(cio_trace_fn fn, void *arg);

/* The library's version, "MAJOR.MINOR.PATCH". */
CIO_API const char *cio_version(void);

#ifdef __cplusplus
}
#endif

#endif
