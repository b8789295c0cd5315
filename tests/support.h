/*
 * Helpers shared by the cancelio test programs.
 *
 * Everything here may be called from any thread unless it says "test thread
 * only" (those use CMocka asserts, which in CMocka 1.1.5 must never run on
 * another thread).  Waits are bounded and scaled by CIO_TEST_TIME_SCALE
 * (default 1) so sanitizer runs can stretch them; they return false on
 * timeout and the caller asserts, so a hang fails loudly instead of hanging.
 */
#ifndef CIO_TEST_SUPPORT_H
#define CIO_TEST_SUPPORT_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/types.h>

#include "cancelio.h"

/* CIO_ASAN: built with AddressSanitizer, likewise. */
#if defined(__SANITIZE_ADDRESS__)
#define CIO_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define CIO_ASAN 1
#endif
#endif

/* CIO_TSAN: built with ThreadSanitizer (gcc says so one way, clang the other). */
#if defined(__SANITIZE_THREAD__)
#define CIO_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define CIO_TSAN 1
#endif
#endif

/* CIO_TEST_ON_VALGRIND(): nonzero under valgrind, which runs one thread
 * at a time and keeps an address space of its own. */
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define CIO_TEST_ON_VALGRIND() RUNNING_ON_VALGRIND
#endif
#endif
#ifndef CIO_TEST_ON_VALGRIND
#define CIO_TEST_ON_VALGRIND() 0
#endif

/* Whether valgrind runs this process, without its header: its preload
 * library is in LD_PRELOAD, which it sets for the program it starts (and a
 * forked child keeps).  The library decides the same way whether its
 * workers may have timers (platform/wtimer_thread.c). */
bool under_valgrind(void);

#define NS_PER_MS ((cio_time_t)1000000)

/* ---- time ---------------------------------------------------------------- */

/* CIO_TEST_TIME_SCALE as a number >= 1 (default 1). */
double time_scale(void);

/* ms multiplied by the time scale. */
int64_t scaled_ms(int64_t ms);

/* Milliseconds elapsed from a to b (both cio_now() values). */
double elapsed_ms(cio_time_t a, cio_time_t b);

/* Sleep us microseconds; only ever used to randomise timing, never to order
 * events.  Restarts after EINTR. */
void sleep_us(unsigned us);

/* Reap child pid within ms (not scaled here): its wait status, or -1
 * when it has not exited by then (it is killed and reaped) or cannot be
 * waited for. */
int child_status_within(pid_t pid, double ms);

/* Poll pred(arg) with tiny sleeps until it is true or timeout_ms (scaled)
 * has passed.  Returns the last value of pred. */
bool wait_until(bool (*pred)(void *), void *arg, int64_t timeout_ms);

/* Wait until cio_now() >= t (used only to let time pass beyond a deadline
 * in checks that nothing happened, never to order two threads). */
void wait_for_time(cio_time_t t);

/* ---- process resources -------------------------------------------------- */

int fd_count(void);      /* open descriptors of this process */
int thread_count(void);  /* threads of this process (/proc/self/task) */
bool fd_is_open(int fd); /* fcntl(fd, F_GETFD) succeeds */
pid_t current_tid(void);

/* ---- pipes and byte patterns -------------------------------------------- */

/* pipe(2) that returns 0 or -1, for asserting at the call site. */
int make_pipe(int fds[2]);

/* A pseudo-terminal: its master and its slave (asserted open), neither the
 * process's controlling terminal.  false when the system gives none: the
 * caller skips. */
bool open_pty(int *master, int *slave);

/* A TCP socket listening on 127.0.0.1 at a port of the kernel's choice,
 * written to *addr (asserted). */
struct sockaddr_in;
int loopback_listener(struct sockaddr_in *addr);

/* call must fail with -1 and errno want (errno is cleared first). */
#define EXPECT_FAIL(call, want)                                                                    \
    do {                                                                                           \
        errno = 0;                                                                                 \
        long r_ = (long)(call);                                                                    \
        int e_ = errno;                                                                            \
        if (r_ != -1 || e_ != (want))                                                              \
            fail_msg("%s gave %ld errno %d (%s), want -1 errno %d", #call, r_, e_, strerror(e_),   \
                     (want));                                                                      \
    } while (0)

/* The capacity in bytes of the pipe fd belongs to (F_GETPIPE_SZ), -1 if
 * unknown. */
int pipe_capacity(int fd);

/* Fill buf with the pattern byte of stream positions off .. off+n-1. */
void fill_pattern(unsigned char *buf, size_t n, size_t off);

/* Index of the first byte of buf that is not the pattern at off, or n. */
size_t pattern_mismatch(const unsigned char *buf, size_t n, size_t off);

/* The pattern byte at stream position pos. */
unsigned char pattern_byte(size_t pos);

/* poll(2) with timeout 0: fd has data (or EOF) to read right now. */
bool fd_readable_now(int fd);

/* write(2)/read(2) in a loop until n bytes or an error/EOF; returns bytes
 * moved (or -1 if the first call failed). */
ssize_t write_all(int fd, const void *buf, size_t n);
ssize_t read_full(int fd, void *buf, size_t n);

/* Read and discard whatever fd has right now (never blocks, uses poll). */
size_t drain_now(int fd);

/* ---- signals ------------------------------------------------------------ */

/* Block in the calling thread the library's cancel signal (SIGUSR1) and the
 * other signals the tests send on purpose (SIGUSR2, SIGWINCH, SIGURG), so a
 * process-directed signal can never land on a test thread. */
void block_cancel_signal_in_this_thread(void);

/* Block every signal in the calling thread. */
void block_all_signals_in_this_thread(void);

/* ---- randomness --------------------------------------------------------- */

struct rng {
    uint64_t s;
};

/* The seed for this run: CIO_TEST_SEED if set, else from the clock; printed
 * once with the test's name so a failure can be replayed. */
unsigned test_seed(const char *what);
void rng_init(struct rng *r, unsigned seed);
uint32_t rng_next(struct rng *r);
uint32_t rng_below(struct rng *r, uint32_t n); /* 0 .. n-1 */

/* Wait a random 0..max_us microseconds: a short busy spin or a nanosleep. */
void random_delay_us(struct rng *r, unsigned max_us);

/* ---- an op on its own thread -------------------------------------------- */

enum op_kind { OP_READ, OP_WRITE };

/* One cio_read or cio_write run on a thread of its own.  The thread blocks
 * the test signals (or every signal) first, records the result, errno and
 * cio_now() before and after, then sets done.  Allocated on the heap and
 * owning its buffer, so a test that fails while the op is still running
 * leaves no dangling pointer into its stack. */
struct op_thread {
    enum op_kind kind;
    cio_file *f;
    unsigned char *buf;
    size_t n;
    bool block_all;
    pthread_t thread;
    atomic_int tid;  /* the op thread's tid, once it runs */
    atomic_int done; /* set after result/err/end are written */
    ssize_t result;
    int err;
    cio_time_t start, end;
};

/* Start a cio_read of up to n bytes into the op's own buffer.  NULL only if
 * the thread could not be made. */
struct op_thread *start_reader(cio_file *f, size_t n);
/* Start a cio_write of a copy of buf[0..n). */
struct op_thread *start_writer(cio_file *f, const void *buf, size_t n);
/* As start_reader, on a thread that blocks every signal. */
struct op_thread *start_reader_all_blocked(cio_file *f, size_t n);

bool op_is_done(void *op); /* a wait_until predicate for struct op_thread */

/* Wait (bounded, scaled) until the op is done, then join its thread.
 * Returns false, and leaves the thread running, on timeout. */
bool op_join(struct op_thread *t, int64_t timeout_ms);
void op_free(struct op_thread *t);

/* ---- a plain read(2) loop on its own thread ---------------------------- */

/* Reads fd with read(2) into its own buffer until cap bytes, EOF or an
 * error: the other end of what a test writes with cio_write. */
struct raw_reader {
    int fd;
    unsigned char *buf;
    size_t cap, got;
    pthread_t thread;
    atomic_int done;
};

struct raw_reader *start_raw_reader(int fd, size_t cap);
bool raw_reader_join(struct raw_reader *rr, int64_t timeout_ms);
void raw_reader_free(struct raw_reader *rr);

/* ---- one act on a pipe, a little later ---------------------------------- */

/* A thread that waits delay_us (to vary the timing, never to order two
 * threads; busy, not asleep, when spin is set), then writes the one byte
 * `byte` to fd or, with drain set, reads fd (a full pipe) until a read
 * comes back short.  It blocks the test signals first.  result is what its
 * last write or read returned. */
struct late_act {
    int fd;
    unsigned delay_us;
    bool spin;
    bool drain;
    char byte;
    ssize_t result;
    pthread_t thread;
};

/* Start the act (test thread only: asserts that the thread was made). */
void late_act_start(struct late_act *a);
/* Join it (test thread only) and return its result. */
ssize_t late_act_join(struct late_act *a);

/* ---- observing the library from outside --------------------------------- */

/* A tracer that counts the library's events by type; fixture_setup
 * installs it for every test (a test that installs its own tracer replaces
 * it until the next test).  It never asserts: it runs on library threads. */
void trace_counter_install(void);
uint64_t trace_count(int type);

/* The number of CIO_EV_OP_START events so far: an op counted here has been
 * handed to the pool, so it is pending — a cancel, a deadline or a close
 * from now on must stop it. */
uint64_t op_starts(void);

/* Wait until op_starts() >= n. */
bool wait_op_starts(uint64_t n, int64_t timeout_ms);

/* How many threads of this process are inside a read-like (which ==
 * CIO_READ) or write-like (CIO_WRITE) syscall on fd right now, from
 * /proc/self/task/<tid>/syscall; -1 where that file cannot be read. */
int threads_in_syscall_on(int fd, int which);

/* Whether thread tid is in such a syscall on fd right now (false if the
 * kernel does not tell). */
bool thread_in_syscall_on(pid_t tid, int fd, int which);

/* Wait until at least count threads are in such a syscall on fd.  Where the
 * kernel does not tell, returns true at once (the callers have already
 * waited for op_starts). */
bool wait_in_syscall_on(int fd, int which, int count, int64_t timeout_ms);

/* Wait until thread tid is asleep in the kernel (state S or D) on two
 * consecutive polls: a caller waiting for its op or for its turn. */
bool wait_thread_sleeping(pid_t tid, int64_t timeout_ms);

/* Wait until op thread t has started and sleeps in the kernel (its caller
 * waits for its op or for its turn). */
bool wait_op_sleeping(struct op_thread *t, int64_t timeout_ms);

/* Wait until no signal in set is pending for the process or this thread. */
bool wait_no_pending(int signo, int64_t timeout_ms);

/* One read on f, an empty pipe's read end, that times out 5 ms from now
 * (asserted): a worker has run, and got its kernel timer or not. */
void time_out_one_read(cio_file *f);

/* ---- per-test fixture --------------------------------------------------- */

/* setup: install the counting tracer and remember the fd and thread
 * counts.  teardown: cio_shutdown(), then check stats.threads == 0 and that
 * the fd and thread counts are back to what setup saw (a leak fails the
 * test); it also disarms the watchdog. */
/* Restart the library with cio_options.waits = CIO_WAIT_WORKER: a blocked
 * read or write on a pipe or socket then waits on a worker, as an op on
 * any other fd does (for the tests of the worker's side). */
void use_worker_waits(void);
int fixture_setup(void **state);
int fixture_teardown(void **state);

/* fixture_setup, and a watchdog first: if the test still runs 30 s
 * (scaled) later it is hung, and the process says so and exits 99 instead
 * of waiting for ctest's timeout.  Its thread is made on the first call,
 * before the baseline is taken.  For tests that are short by design. */
int fixture_setup_watched(void **state);

/* The checks of fixture_teardown, callable inside a test (test thread
 * only). */
void assert_no_leaks(void **state);

#endif
