/*
 * cancelio's internal interfaces, one section a module.
 *
 * Inside the library errors are negative errno values; the public calls
 * convert them once, with cio__fail.
 *
 * Lock order (a thread holding one may take those below it, never above):
 *   1. lib.mu          (lib.c: init, shutdown)
 *   2. files.mu        (file.c: the registry of live files), calls.mu (call.c)
 *   3. proc->mu        (plan9/note.c: a thread's notes; cio_postnote holds it
 *                      while it takes the lock of the op that thread is in)
 *   4. file->mu        (file.c: a file's state, and the ops in flight on it),
 *                      or a call's mu (call.c), never both
 *   5. timer.mu        (timer.c: the heap) and pool.mu (pool.c); never both
 * procs.mu (plan9/note.c: the list of every cio_proc) is taken alone.
 * No thread waits for another thread while it holds timer.mu or pool.mu,
 * nor makes a blocking syscall there, with one exception: the timer
 * thread is created under timer.mu, the first time a deadline is armed
 * (and again after a shutdown or a fork).  file->mu is held across
 * pthread_kill and pthread_create, never across I/O.  A thread in an op never takes its
 * proc->mu while it holds the op's lock (see cio__watcher below).
 */
#ifndef CIO_INTERNAL_H
#define CIO_INTERNAL_H

#include "cancelio.h"
#include "core/heap.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>

#define CIO__R 0 /* index of the read direction */
#define CIO__W 1 /* index of the write direction */

/* ---- errors and time ---- */

long cio__fail(long neg_errno); /* sets errno = -neg_errno, returns -1 */
struct timespec cio__timespec(cio_time_t t);

/* ---- intrusive lists ----
 * A doubly linked list threaded through a pair of fields of its elements,
 * which the caller names (an element on two lists has a pair for each);
 * head is the first element, or NULL.  Push at the head, unlink from
 * anywhere, both O(1).  Arguments are evaluated more than once: plain
 * names only. */
#define CIO__LIST_PUSH(head, x, prev, next)                                                        \
    do {                                                                                           \
        (x)->prev = NULL;                                                                          \
        (x)->next = (head);                                                                        \
        if ((x)->next)                                                                             \
            (x)->next->prev = (x);                                                                 \
        (head) = (x);                                                                              \
    } while (0)

#define CIO__LIST_UNLINK(head, x, prev, next)                                                      \
    do {                                                                                           \
        if ((x)->prev)                                                                             \
            (x)->prev->next = (x)->next;                                                           \
        else                                                                                       \
            (head) = (x)->next;                                                                    \
        if ((x)->next)                                                                             \
            (x)->next->prev = (x)->prev;                                                           \
    } while (0)

/* ---- platform/cond_*.c: timed waits with deadlines on CLOCK_MONOTONIC ---- */

int cio__cond_init(pthread_cond_t *cv); /* 0 or -errno */
/* Wait on cv until woken or until t (0 = no limit); mu must be held.  It
 * may return early (as any condvar wait may): callers re-check. */
void cio__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, cio_time_t t);

/* ---- platform/wake_*.c: where a file op's caller waits for its op ---- */

typedef struct cio__wake {
    void *word;        /* the waiting thread's futex word (wake_futex.c) */
    int sleeping;      /* mu: its waiter is between unlock and relock */
    pthread_cond_t cv; /* or a condvar of its own (wake_cond.c) */
} cio__wake;
/* On the thread that will wait on it; 0 or -errno. */
int cio__wake_init(cio__wake *w);
void cio__wake_destroy(cio__wake *w);
/* Wait until posted or until t (0 = no limit); mu held, released while
 * waiting.  It may return early: callers re-check. */
void cio__wake_wait_until(cio__wake *w, pthread_mutex_t *mu, cio_time_t t);
/* A post in two halves: the early one with mu held, the late one with the
 * token it returned, after mu is unlocked (where w may already be freed:
 * only the late half may run then).  Early then late, both under mu, is a
 * plain post. */
void *cio__wake_post_early(cio__wake *w);
void cio__wake_post_late(void *token);

/* ---- signal.c: the cancel signal ---- */

int cio__signal_install(int signo); /* 0, -EBUSY, -EINVAL */
int cio__signal_valid(int signo);   /* one the library can take (not a fault's) */
void cio__signal_restore(void);
int cio__signal_number(void);
/* The mask of every library thread: everything blocked but the signal. */
void cio__signal_worker_mask(sigset_t *set);
/* Put the calling library thread's mask back to the one above (after user
 * code ran on it, a cio_call's fn, which may have changed it). */
void cio__signal_worker_mask_restore(void);

/* A one-time set-up (pthread_once) also run as the library is loaded,
 * before the program's threads can fork while it runs: on a C library
 * whose pthread_once does not reset in a child one that another thread had
 * under way (musl), the child's first call would wait for it for ever.
 * Where the compiler has no load-time hook the lazy call alone remains. */
#if defined(__GNUC__) || defined(__clang__)
#define CIO__AT_LOAD(name, once, fn)                                                               \
    __attribute__((constructor)) static void name(void)                                            \
    {                                                                                              \
        pthread_once(&(once), (fn));                                                               \
    }
#else
#define CIO__AT_LOAD(name, once, fn)
#endif

/* ---- op.c: one blocking operation and the cancel protocol ---- */

enum { CIO__OP_NEW, CIO__OP_QUEUED, CIO__OP_RUNNING, CIO__OP_DONE };

struct cio__worker;
struct cio__op;
typedef long (*cio__thunk)(struct cio__op *op);

typedef struct cio__op {
    cio__thunk run; /* the syscall, run on a worker; result or -errno */
    cio__thunk try; /* the same without blocking, on the caller; may be NULL */
    int fd;         /* set by the caller before start, read-only after */
    int which;      /* CIO__R or CIO__W, for events */
    void *buf;      /* the thunk's arguments */
    size_t n;
    size_t done;        /* bytes moved so far (a write resumes from here) */
    void *arg;          /* a call's further arguments (flags, ...) */
    off_t off;          /* pread, pwrite: in the op, which may outlive its caller */
    int parallel;       /* not serialised with its direction (pread, pwrite) */
    int whole;          /* goes on until all n bytes are out (the writes but
                           send): fewer means it was cut */
    int err;            /* cio_call: fn's errno */
    int started;        /* the owner's lock: a worker ran it (step 2 passed) */
    void *user_buf;     /* where a read's bytes go: buf, unless buf is a bounce
                           buffer that a worker may fill after the caller left */
    int may_orphan;     /* the caller may give up on it (DESIGN rule 15) */
    int orphaned;       /* the owner's lock: the caller gave up; see adopt */
    cio_time_t stop_at; /* the owner's lock: when the reason was set */
    /* An orphan finished: called on the worker with the owner's lock held;
     * it must unlock it, and it owns op from then on. */
    void (*adopt)(struct cio__op *op);
    void *owner;
    int *gone; /* set to 1 (by the caller's own thread) when orphaned */
    /* Put len bytes from src where the caller wants them (read: memcpy to
     * user_buf; readv: scatter); for bounced and pending bytes. */
    void (*deliver)(struct cio__op *op, const char *src, size_t len);
    int raise_sigpipe; /* the worker's write met EPIPE and took its SIGPIPE */
    int peek;          /* MSG_PEEK: held bytes are copied, not taken */
    int spanned;       /* a read helper already holds the direction (scan.c) */
    int dontwait;      /* EAGAIN is the answer (MSG_DONTWAIT; open): no wait */
    int parkable;      /* the caller's try said EAGAIN: its worker may park (3p) */
    int fn_answers;    /* cio_call: fn's result stands, even once it is stopped */
    int fn_stop;       /* cio_call: the reason to stop as fn returned (the worker's) */
    /* A release (4p), under mu: the owner counts the worker, still in its
     * wait on fd, and holds what left_parked needs; the worker calls
     * left_parked(that) once out of it.  NULL: nothing to count. */
    void *(*hold_parked)(struct cio__op *op);
    void (*left_parked)(void *held);

    pthread_mutex_t *mu; /* the owner's lock: guards the op's state (all but
                            the thunk's arguments above and the atomics) */
    pthread_cond_t *cv;  /* where its caller waits: the owner's, or NULL: */
    cio__wake own_wake;  /* a file op's own: one caller, woken once */
    /* The deadline that governs it now (0 = none); the owner keeps it
     * current under mu, the worker reads it without a lock after EINTR. */
    _Atomic cio_time_t due;
    int ktimer;                    /* the worker's kernel timer is armed for it: */
    int ktimer_due;                /* at its deadline (else to repeat a stop) */
    cio_time_t ktimer_at;          /* from then on, every KICK_EVERY */
    int due_counted;               /* step 3a counted the deadline's signal */
    int self_timed;                /* QUEUED, its caller stops it at its deadline */
    int took_back;                 /* its caller tried to take it back (step 4) */
    cio_time_t wake_at;            /* its caller sleeps until then (0 = until woken) */
    int state;                     /* CIO__OP_* */
    struct cio__worker *worker;    /* inside the op while RUNNING, else NULL */
    long result;                   /* valid once DONE */
    atomic_int reason;             /* 0, or why it must stop; first one wins */
    unsigned signals;              /* cancel signals sent for this op */
    cio_time_t next_kick;          /* when to re-signal if still RUNNING */
    cio_time_t backoff;            /* the next re-signal interval */
    struct cio__op *qnext, *qprev; /* pool.mu: the pool's queue of waiting ops */
    int queued;                    /* pool.mu: in that queue now */
    struct cio__worker *handed;    /* pool.mu: handed to, not yet taken by */
    /* owner's lock: on its direction's list of ops in flight, or, once
     * orphaned (its caller gone), on the list of orphans instead */
    struct cio__op *fnext, *fprev;

    /* Step 3c: the same wait on the caller's own thread (io.c), no worker:
     * its result, or CIO__TO_WORKER to hand the op to a worker after all.
     * NULL: the op has none (it parks on a worker, if at all). */
    cio__thunk park;
    /* Step 3c: RUNNING on its caller's own thread (the owner's lock), that
     * thread, its park word (NONE, IN, RELEASED, GONE as a worker's) and
     * the deadline its wait ends at (a setter moving it earlier wakes it). */
    int on_caller;
    pthread_t caller;
    atomic_int park_word;
    _Atomic cio_time_t park_due;
} cio__op;

/* Whether a note (its reason, EINTR) is what ended op with result r; mu
 * held.  Rule 16's two outcomes: r is -EINTR, or a write that goes on until
 * all is out was cut short (its count); a cio_call whose fn returned -1
 * with the note's reason set as it returned (the call fails with EINTR).  An op
 * whose data came first, or whose earlier reason stood, was not ended by
 * the note: that note waits for the next op, as if it came after. */
int cio__op_noted_locked(const cio__op *op, long r);
/* Make op ready to run on the caller's thread (state NEW); mu held. */
void cio__op_prepare_locked(cio__op *op);
/* Hand op to a worker and wait until it is DONE; mu held.  Returns result. */
long cio__op_run_locked(cio__op *op, cio_time_t deadline);
/* How long a caller waits for a worker that does not answer the signal
 * before it gives up on an op that may be orphaned. */
#define CIO__ORPHAN_GRACE ((cio_time_t)10 * 1000 * 1000) /* 10 ms */

/* The result of an op stopped by reason: a write that had moved bytes
 * (op->done: the caller's try's, or its parked worker's) reports them. */
long cio__op_cut_result(const cio__op *op, int reason);
/* Make op stop with reason (-errno never: a positive errno); mu held.  A
 * parked read is finished here (step 4p); what that owes (the caller's
 * wake-up, the worker's signal) is paid at once, or, between
 * cio__op_defer_begin and cio__op_defer_end (called once mu is let go),
 * at the end. */
void cio__op_interrupt_locked(cio__op *op, int reason);
void cio__op_defer_begin(void);
void cio__op_defer_end(void);
/* Step 3p, on the worker of a RUNNING op: park (before its wait), and take
 * the park back after it: 0 when a stop released the op meanwhile, which
 * the worker must then neither touch nor finish: its run returns at once
 * (any value), and cio__op_execute sees the release in the park word. */
void cio__op_park(struct cio__worker *w);
int cio__op_unpark(struct cio__worker *w);
/* Step 3c, a RUNNING op parked on its caller's own thread.  Begin and end
 * under mu; in between, with mu let go, the caller parks (0, and *due is
 * the deadline its wait ends at; or the reason to stop, the op not parked)
 * and takes the park back after its wait (when a stop or a setter released
 * it meanwhile, it has then taken the signal that release sent). */
#define CIO__TO_WORKER LONG_MIN
void cio__op_caller_begin_locked(cio__op *op);
void cio__op_caller_end_locked(cio__op *op);
struct cio__park_caller;
int cio__op_caller_park(cio__op *op, cio_time_t *due, struct cio__park_caller *pc);
void cio__op_caller_unpark(cio__op *op, struct cio__park_caller *pc);
/* Step 5 for an op whose caller has gone (an orphan): re-send the signal
 * if it is due; returns when the next one is due.  mu held. */
cio_time_t cio__op_kick_if_due_locked(cio__op *op, cio_time_t now);
/* Called by the pool on the worker: runs op through to DONE. */
void cio__op_execute(cio__op *op, struct cio__worker *w);
/* Finish op, QUEUED and taken out of the pool, that no worker could be made
 * for: with its reason to stop, or its deadline if that passed, else with
 * error e (written bytes, if its try wrote some).  Takes op->mu. */
void cio__op_fail_unstarted(cio__op *op, int e);
/* The reason to stop, or 0. */
int cio__op_stop_reason(cio__op *op);
/* On the worker after EINTR, or a write that a signal made short (step 3):
 * the reason to stop, or 0 to retry.
 * A deadline that has passed is a reason even before anyone set it (the
 * worker's own timer sent the signal). */
int cio__op_eintr_reason(cio__op *op);
/* The same where no signal came (nothing is counted or traced as one). */
int cio__op_stop_or_due(cio__op *op);
/* Its deadline moved to t (0 = none, or later than now); mu held. */
void cio__op_set_due_locked(cio__op *op, cio_time_t t);
/* The timer thread found op's deadline passed: 1 when it needs nothing
 * from it (its worker's timer, or its caller, stops it on time). */
int cio__op_expires_itself_locked(const cio__op *op);

/* ---- io.c ---- */

/* A syscall's result as the library speaks: r, or -errno when r < 0. */
long cio__sys(long r);
/* Step 3 on the worker: run once (one syscall; its result or -errno) again
 * after every EINTR for which op has no reason to stop.  The result, or
 * -reason. */
long cio__retry(cio__op *op, cio__thunk once);
/* What iovcnt buffers hold in all; -too_many_err for more than IOV_MAX
 * (readv(2) says EINVAL, recvmsg(2) EMSGSIZE), -EINVAL for a NULL array or
 * base with a length or a sum past SSIZE_MAX (a cio_readv or a recvmsg
 * whose bytes may come from the held ones, rule 20, never reaches the
 * kernel that would say so). */
long cio__iov_total(const struct iovec *iov, size_t iovcnt, int too_many_err);
/* cio_read inside a read helper's span (scan.c): the count or -errno. */
long cio__read_spanned(cio_file *f, void *buf, size_t n);

/* After EPIPE on a worker: take the SIGPIPE that write(2) raised there. */
void cio__take_sigpipe(cio__op *op);
/* Raise in the caller what the worker took, as the syscall would have. */
void cio__give_sigpipe(const cio__op *op);

/* ---- platform/nowait_*.c: one read or write that never blocks ---- */

/* The count, or -EAGAIN when it would block, or -EOPNOTSUPP when the fd (or
 * the system) cannot say; never changes the fd's flags. */
long cio__nowait_read(int fd, void *buf, size_t n);
long cio__nowait_write(int fd, const void *buf, size_t n);

/* ---- platform/msg_*.c: per-call socket flags, 0 where the system has none ---- */

extern const int cio__msg_dontwait; /* a recv or send that never blocks */
extern const int cio__msg_nosignal; /* a send that raises no SIGPIPE */

/* ---- platform/pipe_cloexec_*.c ---- */

/* pipe(2) with both ends close-on-exec; 0 or -errno. */
int cio__pipe_cloexec(int fds[2]);

/* ---- platform/stacktls_*.c ---- */

/* What the C library takes out of a thread's stack for the program's
 * static thread-local storage, to add to the size asked (0 where it takes
 * none). */
size_t cio__stack_tls_bytes(void);
/* The stack size to ask for a library thread that is to run on want bytes
 * (cio_options.stack_size): at least PTHREAD_STACK_MIN, plus the static
 * TLS the C library takes from it.  The timer thread gets the workers'
 * size, not RLIMIT_STACK's (which a NULL attr would give it). */
size_t cio__thread_stack(size_t want);

/* ---- platform/wtimer_*.c: a timer that signals one worker ---- */

typedef struct cio__wtimer {
    int ok;                           /* it exists */
    _Alignas(8) unsigned char id[16]; /* the system's timer id, kept by the platform file */
} cio__wtimer;
/* On the worker's own thread: a timer that sends it the cancel signal.
 * 0, or -errno where the system has none or it failed (t->ok stays 0, and
 * the caller re-signals instead).  No allocation. */
int cio__wtimer_open(cio__wtimer *t);
/* Send the signal at `at` (absolute), then every `every` ns; at = 0
 * disarms.  Called under the lock of the op the worker runs. */
void cio__wtimer_set(cio__wtimer *t, cio_time_t at, cio_time_t every);
void cio__wtimer_close(cio__wtimer *t); /* on the worker, as it exits */

/* ---- platform/park_*.c: a worker parked until its fd is ready ---- */

/* 1 where a worker can wait for its fd with the cancel signal unblocked for
 * that wait alone (ppoll), so that a signal sent before the wait is pending,
 * not lost; 0 where it cannot (the read then never parks). */
extern const int cio__can_park;
/* On a worker: block the cancel signal until cio__park_unmask (which lets
 * a pending one run its handler: a late signal). */
void cio__park_mask(void);
void cio__park_unmask(void);
/* Wait until fd is ready for events, the signal unblocked for the wait
 * alone: 0 when ready (or its poll says so), -EINTR on a signal. */
long cio__park_wait(int fd, short events);
/* Step 3c, on a caller: block the cancel signal (and thread cancellation:
 * ppoll is a cancellation point, and the op must end in order) until
 * leave, which first takes a signal that a stop sent it and that is still
 * pending (signalled), then gives the thread back its mask. */
typedef struct cio__park_caller {
    sigset_t saved, open;
    int cancel_state;
    sig_atomic_t seen; /* cio__signal_seen as its last park began */
} cio__park_caller;
void cio__park_caller_enter(cio__park_caller *pc);
void cio__park_caller_leave(cio__park_caller *pc);
/* A stop released the caller (4c) and said GONE: the signal it sends next
 * is this thread's to take before it goes on (unless the handler took one
 * in its last wait). */
void cio__park_caller_settle(cio__park_caller *pc);
/* Thread-local storage that a signal handler may touch: the initial-exec
 * model, never allocated lazily (as a dlopen'ed library's dynamic TLS is). */
#if defined(__GNUC__) || defined(__clang__)
#define CIO__TLS_IE _Thread_local __attribute__((tls_model("initial-exec")))
#else
#define CIO__TLS_IE _Thread_local
#endif
/* Cancel signals this thread's handler ran for that a thread of this
 * process sent it (signal.c), and that test. */
extern CIO__TLS_IE volatile sig_atomic_t cio__signal_seen;
int cio__signal_from_this_process(const siginfo_t *si);
/* Wait until fd is ready for events, or until due (0: no deadline), the
 * cancel signal unblocked for the wait alone: 1 ready, 0 timed out, or
 * -errno (-EINTR on a signal). */
long cio__park_caller_wait(int fd, short events, cio_time_t due, cio__park_caller *pc);

/* ---- platform/futexhash_*.c: the process's futex hash ---- */

/* cio_options.futex_hash_slots: 0 does nothing; else 0 or -EINVAL (the
 * kernel refused it).  A kernel without the setting: 0, nothing done. */
int cio__futex_hash_set(unsigned slots);
/* What cio__cond_init makes every condvar, and cio_fdopen a file's lock:
 * process-shared where that keeps the library's waiters out of a small
 * per-process futex hash. */
extern const int cio__futex_pshared;

/* ---- pool.c: worker threads ---- */

typedef struct cio__pool_config {
    unsigned max_threads;
    size_t stack_size;
} cio__pool_config;

int cio__pool_start(const cio__pool_config *cfg);
void cio__pool_quiesce(void); /* from now on submit fails with ECANCELED */
void cio__pool_stop(void);    /* quiesce, wait for busy workers, join all */
/* Give op (QUEUED) to a worker: 0 when an idle worker with a kernel timer
 * of its own has it, or a new one where the last worker to start got a
 * timer (that timer delivers the deadline once the worker runs it, the
 * timer thread if it is slower than the deadline or has no timer); 1 when
 * the caller is to stop it at its deadline while it is QUEUED (it waits in
 * the queue, or for a new thread); -EAGAIN (no thread), -ENOMEM (no room
 * for one), -ECANCELED (a shutdown). */
int cio__pool_submit(cio__op *op);
/* After a submit's thread start failed (-EAGAIN), with no lock held: the
 * ops queued meanwhile get a worker, or fail if none is left to take them. */
void cio__pool_rescue(void);
/* Take op back if no worker has taken it yet: out of the queue of ops
 * waiting for a worker, or from a worker it was handed to that has not yet
 * woken up.  1 if it was taken back (then no worker will ever touch it). */
int cio__pool_unqueue(cio__op *op);
/* The same only if pool.mu is free: -EBUSY (nothing done) if it is not. */
int cio__pool_try_unqueue(cio__op *op);
/* A seam for white-box tests, NULL otherwise: called with no lock held by
 * a worker that was handed an op, before it takes it (a worker that is slow
 * to get a CPU and pool.mu back, on demand). */
extern void (*cio__pool_pause_hook)(void);
/* The same, called on a worker whose read has parked (step 3p), before
 * its wait begins. */
extern void (*cio__park_hook)(void);
/* cio_options.waits: 1 (CIO_WAIT_CALLER) an op that can park does so on
 * its caller's thread (3c), 0 on its worker (3p).  Set as the library
 * starts. */
extern atomic_int cio__park_on_caller;
/* The same, called with no lock held just before a worker's thread is
 * created: a slow start. */
extern void (*cio__pool_spawn_hook)(void);
/* The same, called with no lock held by a submit that has signalled the
 * idle worker it handed an op to, before it counts that wake-up as paid
 * (a hander preempted between the two). */
extern void (*cio__pool_wake_hook)(void);
pthread_t cio__worker_thread(const struct cio__worker *w);
cio__wtimer *cio__worker_timer(struct cio__worker *w); /* NULL if it has none */
/* The worker's park word (protocol step 3p, op.c), and what its releaser
 * leaves it to call once it is out of its wait (written before GONE). */
atomic_int *cio__worker_park(struct cio__worker *w);
typedef struct cio__park_left {
    void (*fn)(void *held);
    void *held;
} cio__park_left;
cio__park_left *cio__worker_left(struct cio__worker *w);
/* Nonzero on a thread the library made (a worker, the timer thread), where
 * user code can run too (a cio_call's fn): a call that waits for every
 * library thread must not be made there. */
extern _Thread_local int cio__on_lib_thread;
unsigned cio__worker_serial(const struct cio__worker *w);
void cio__pool_counts(unsigned *threads, unsigned *idle);
void cio__pool_lock_for_fork(void);
void cio__pool_unlock_after_fork(int child);

/* ---- timer.c: deadlines ---- */

typedef struct cio__timer cio__timer;
typedef struct cio__timer_ops {
    void (*hold)(cio__timer *t); /* timer.mu held: keep the owner alive */
    void (*fire)(cio__timer *t); /* no lock held: the deadline passed */
} cio__timer_ops;

struct cio__timer {
    cio__heap_node node; /* timer.mu */
    const cio__timer_ops *ops;
    cio__timer *fire_next; /* the timer thread's batch of due timers */
};

/* A backend's way to sleep until a time and be woken early. */
typedef struct cio__sleeper {
    int (*open)(void);
    void (*close)(void);
    void (*forget)(void); /* after fork, in the child: drop the parent's */
    /* timer.mu held; returns with it held, at `until` (0 = none) or woken */
    void (*wait)(pthread_mutex_t *mu, cio_time_t until);
    /* timer.mu held: the earliest deadline is now `until` (0 = stop) */
    void (*wake)(cio_time_t until);
} cio__sleeper;

extern const cio__sleeper cio__sleeper_cond;
extern const cio__sleeper cio__sleeper_timerfd; /* open() -ENOSYS off Linux */

void cio__timer_init(cio__timer *t, const cio__timer_ops *ops);
/* CIO_TIMER_*; the thread starts lazily, on a stack of stack_size bytes
 * (as cio__thread_stack makes it). */
int cio__timer_start(int kind, size_t stack_size);
void cio__timer_stop(void);
int cio__timer_arm(cio__timer *t, cio_time_t when); /* insert or move */
void cio__timer_disarm(cio__timer *t);
int cio__timer_try_disarm(cio__timer *t); /* 0: timer.mu was busy, t stays */
int cio__timer_armed(cio__timer *t);      /* t is in the heap */
/* A seam for white-box tests, NULL otherwise: called by the timer thread
 * with no lock held, between taking a batch of due timers out of the heap
 * and firing them (a timer thread slow to fire, on demand). */
extern void (*cio__timer_fire_hook)(void);
unsigned cio__timer_count(void);
void cio__timer_lock_for_fork(void);
void cio__timer_unlock_after_fork(int child);

/* ---- lib.c: the library's life ---- */

int cio__lib_ensure(void); /* initialise with defaults if needed */
/* The same before an op: -ECANCELED at once while cio_shutdown runs. */
int cio__lib_ensure_op(void);
/* Whether cio_shutdown runs now; and the callers parked on their own
 * threads (3c), which it waits for (lib.c). */
int cio__lib_stopping(void);
extern atomic_uint cio__callers_parked;

/* What a layer above the core does at cio_shutdown and around fork.  lib.c
 * knows nothing above it: the layers register themselves (file.c, call.c),
 * once, before their first op. */
typedef struct cio__lib_hooks {
    void (*cancel_all)(void);             /* cio_shutdown: every op fails ECANCELED */
    void (*lock_for_fork)(void);          /* NULL: nothing to hold across fork */
    void (*unlock_after_fork)(int child); /* NULL with lock_for_fork */
    struct cio__lib_hooks *next;          /* lib.mu */
} cio__lib_hooks;
void cio__lib_register(cio__lib_hooks *h); /* once for each h; takes lib.mu */

/* The fork gate.  A fork holds every lock of the library, one a file (lib.c,
 * on_fork_prepare).  Were the threads about to take a file's lock to queue
 * on it, the fork would wait behind a stream of new holders for each of
 * hundreds of locks, then hand each lock over as it let go of it, a wake-up
 * that may cost it its CPU each time: on a saturated machine a fork then
 * held the last files for most of a second (docs/performance.md, sixteenth
 * round).  So a fork first closes the gate, and a thread that holds no lock
 * of the library waits there until the fork is over.  It is a courtesy, not
 * a lock: a thread that passed just before it closed takes its lock as
 * before, and the fork waits for it.  Never with a lock held, which the fork
 * would then wait for for ever: a lock taken under another (a timer armed
 * under a file's lock, the files walked under files.mu, anything under
 * lib.mu: a start, a shutdown and its hooks) is taken plainly. */
extern atomic_int cio__fork_gate;
extern atomic_uint cio__fork_gate_waiting; /* threads at the gate now */
void cio__fork_gate_wait(void);
/* A seam for white-box tests, NULL otherwise: called by a fork with the
 * gate closed and every lock of the library held. */
extern void (*cio__fork_hook)(void);
static inline void cio__lock(pthread_mutex_t *mu)
{
    if (atomic_load_explicit(&cio__fork_gate, memory_order_relaxed))
        cio__fork_gate_wait();
    pthread_mutex_lock(mu);
}

/* ---- file.c ---- */

/* Run op on f in direction d with Go's deadline rules; the result. */
long cio__file_do(cio_file *f, int d, cio__op *op);
/* Adopt fd, a descriptor the library just made (cio_accept, cio_open); a
 * negative fd is the error to report.  If that fails the fd is closed and
 * errno says why, as cio_fdopen set it. */
cio_file *cio__file_adopt(long fd);
/* Reads on f may outlive their caller: they need a bounce buffer. */
int cio__file_may_orphan(const cio_file *f);

/* file.c keeps every live file (under files.mu, ranked between lib.mu and
 * file->mu), for cio_shutdown and fork: its cio__lib_hooks. */

/* ---- call.c: ops with no file ---- */

/* Run op on a worker with its own deadline (no file, no timer); the result,
 * or -ETIMEDOUT, -ECANCELED (cio_shutdown), -EAGAIN. */
long cio__call_run(cio__op *op, cio_time_t deadline);

/* ---- watching the ops a thread starts (the notes layer, plan9/note.c) ----
 *
 * A thread whose cio__watcher_self is set has its ops seen from where they
 * start on its own thread (cio__file_do, cio__call_run), in these steps:
 *   begin        no lock held, before the op's lock is taken: returns 1 (the
 *                watcher now knows op and mu, its owner's lock, and may
 *                interrupt it under mu), 0 (not watched: the op runs as if
 *                no watcher were set), or -EINTR (refused: the op fails
 *                without touching anything; end is still called).
 *   arm_locked   mu held, once op is prepared: an interrupt may be due
 *                already.
 *   disarm_locked  mu held, once op has finished with result r (never touch
 *                op again: it may be an orphan, or gone).  Whether a note
 *                ended it is cio__op_noted_locked(op, r).
 *   end          no lock held, op's lock still alive: forget op; returns the
 *                op's result.  The layer above runs its handlers here.
 *   span         no lock held, around a read helper, whose several ops make
 *                one (rule 20): on = 1 before it begins returns -EINTR
 *                (refused: it touches nothing) or 0; until span(w, 0) at
 *                its end, end forgets each op without running handlers,
 *                and span(w, 0) runs them once the helper has let the read
 *                direction go (a handler may read the same file).
 * Nothing here names the layer above: it sets the pointer on its threads. */
typedef struct cio__watcher cio__watcher;
typedef struct cio__watch_ops {
    int (*begin)(cio__watcher *w, cio__op *op, pthread_mutex_t *mu);
    void (*arm_locked)(cio__watcher *w, cio__op *op);
    void (*disarm_locked)(cio__watcher *w, cio__op *op, long r);
    long (*end)(cio__watcher *w, long result);
    int (*span)(cio__watcher *w, int on);
} cio__watch_ops;
struct cio__watcher {
    const cio__watch_ops *ops;
};
extern _Thread_local cio__watcher *cio__watcher_self;

/* ---- stats.c: counters and tracing ---- */

/* Op outcomes, summed: a snapshot's, one op's. */
typedef struct cio__op_counts {
    uint64_t started, done, timeouts, cancels;
} cio__op_counts;

/* A file's op outcomes, folded into the global counters when the file goes
 * away.  Written under file->mu, one writer at a time, so a count goes up
 * by a load and a store, no locked instruction on the fast path; read with
 * no lock by cio_get_stats, whose walk of every live file would otherwise
 * wait for each file's lock (on a loaded machine with 9,000 files, with the
 * pool's and the timer's: p50 13-133 ms a call, p99 0.9-3.2 s,
 * docs/performance.md, eighteenth round).
 * Stored in the order started, done, timeouts and cancels, each a release;
 * read in the opposite order, each an acquire: a snapshot never has more
 * done than started. */
typedef struct cio__file_counts {
    atomic_uint_fast64_t started, done, timeouts, cancels;
} cio__file_counts;

typedef struct cio__counters {
    atomic_uint_fast64_t ops_started, ops_done, timeouts, cancels;
    atomic_uint_fast64_t signals_sent, resignals;
} cio__counters;
extern cio__counters cio__stats;

void cio__count(atomic_uint_fast64_t *c);
/* Into a file's counts, under its lock: an op begins (n of them: the fork
 * takes back, with a negative n, those the child will never end), an op
 * ends with result (-errno or a count). */
void cio__file_count_started(cio__file_counts *c, int64_t n);
void cio__file_count_outcome(cio__file_counts *c, long result);
/* Add a file's counts to *out, with or without its lock. */
void cio__file_counts_add(cio__file_counts *c, cio__op_counts *out);
/* Fold a file's counts into the totals: no op can run on it any more. */
void cio__file_counts_fold(cio__file_counts *c);
/* Into cio__stats: started before done, done before timeouts and cancels,
 * which cio__counts_add_totals reads in the opposite order, so that a
 * snapshot never has more done than started. */
void cio__counts_fold(const cio__op_counts *c);
/* An op with no file to count it (a call, an open), counted straight into
 * the totals: cio__count_started as it begins, cio__count_ended with its
 * result (-errno or a count) as it ends; cio__count_direct both at once,
 * for one refused before it began (or with no file it may lock). */
void cio__count_started(void);
void cio__count_ended(long result);
void cio__count_direct(long result);
/* Add the totals to *c; files.mu held, so that no file is folded into
 * them while the live files are summed (file.c). */
void cio__counts_add_totals(cio__op_counts *c);
/* Add the counts of every live file and the totals to *c (file.c). */
void cio__files_sum_counts(cio__op_counts *c);
extern atomic_int cio__tracing;
void cio__emit(int type, int fd, int which, const struct cio__worker *w, long result, int err);
#define CIO__EMIT(type, fd, which, w, res, err)                                                    \
    do {                                                                                           \
        if (atomic_load_explicit(&cio__tracing, memory_order_relaxed))                             \
            cio__emit(type, fd, which, w, res, err);                                               \
    } while (0)

#endif
