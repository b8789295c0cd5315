/*
 * The file object: the fd, its two directions (deadline, timer,
 * serialisation, the op in flight), and the rules of DESIGN.md 1-8.
 *
 * Lifetime: `refs` counts the owner (until cio_close/cio_detach) and every
 * timer that the timer thread has taken out of the heap but not yet fired,
 * so a firing timer never touches freed memory.  `ops` counts the callers
 * inside an op (waiting or running); close waits for it to reach 0 before
 * the fd is closed, so an fd number is never reused under a running op.
 */
#include "io/file.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static struct {
    pthread_mutex_t mu;
    cio_file *head;
} files = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void registry_add(cio_file *f)
{
    pthread_mutex_lock(&files.mu);
    CIO__LIST_PUSH(files.head, f, reg_prev, reg_next);
    pthread_mutex_unlock(&files.mu);
}

static void registry_unlink_locked(cio_file *f)
{
    CIO__LIST_UNLINK(files.head, f, reg_prev, reg_next);
}

static void registry_remove(cio_file *f)
{
    pthread_mutex_lock(&files.mu);
    cio__file_counts_fold(&f->counts); /* no op can run on f any more */
    registry_unlink_locked(f);
    pthread_mutex_unlock(&files.mu);
}

static struct dir *dir_of_timer(cio__timer *t)
{
    return (struct dir *)((char *)t - offsetof(struct dir, timer));
}

static cio_file *file_of_dir(struct dir *d, int i)
{
    return (cio_file *)((char *)(d - i) - offsetof(cio_file, dir));
}

void cio__file_unregister(cio_file *f)
{
    registry_remove(f);
}

void cio__file_unref(cio_file *f)
{
    if (atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    cio__held_free(&f->dir[CIO__R]);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static int expired(const struct dir *d)
{
    return d->deadline != CIO_NO_DEADLINE && d->deadline <= cio_now();
}

static void interrupt_all_locked(struct dir *d, int reason)
{
    for (cio__op *op = d->ops; op; op = op->fnext)
        cio__op_interrupt_locked(op, reason);
}

/* The ops of d follow its deadline (and their workers' timers with them). */
static void due_all_locked(struct dir *d)
{
    for (cio__op *op = d->ops; op; op = op->fnext)
        cio__op_set_due_locked(op, d->deadline);
}

static void link_locked(struct dir *d, cio__op *op)
{
    CIO__LIST_PUSH(d->ops, op, fprev, fnext);
}

static void unlink_locked(struct dir *d, cio__op *op)
{
    CIO__LIST_UNLINK(d->ops, op, fprev, fnext);
}

/* The deadline of d passed: stop its op and wake its waiters; f->mu held.
 * The timer thread leaves alone the ops that stop themselves on time (a
 * worker's kernel timer, a queued op's caller): at mass expiry it would
 * otherwise be the one thread all of them wait for. */
static void expire_locked(cio_file *f, struct dir *d, int by_timer)
{
    for (cio__op *op = d->ops; op; op = op->fnext)
        if (!by_timer || !cio__op_expires_itself_locked(op))
            cio__op_interrupt_locked(op, ETIMEDOUT);
    if (d->waiters)
        pthread_cond_broadcast(&f->cv);
}

static void hold_timer(cio__timer *t);
static void fire_read(cio__timer *t);
static void fire_write(cio__timer *t);
static const cio__timer_ops timer_ops[2] = {{hold_timer, fire_read}, {hold_timer, fire_write}};

static void hold_timer(cio__timer *t)
{
    int i = t->ops == &timer_ops[CIO__W];
    atomic_fetch_add(&file_of_dir(dir_of_timer(t), i)->refs, 1);
}

/* Arm d's timer at its deadline; f->mu held.  If that fails (ENOMEM in the
 * heap), the deadline stands and the op will see it when it next looks. */
static int rearm_locked(struct dir *d)
{
    int e = cio__timer_arm(&d->timer, d->deadline);
    d->armed_at = e < 0 ? CIO_NO_DEADLINE : d->deadline;
    return e;
}

/* A timer taken out of the heap; stale if the deadline moved since. */
static void fire(cio__timer *t, int i)
{
    struct dir *d = dir_of_timer(t);
    cio_file *f = file_of_dir(d, i);
    cio__op_defer_begin();
    cio__lock(&f->mu);
    d->armed_at = CIO_NO_DEADLINE;
    if (!f->closing && expired(d)) {
        CIO__EMIT(CIO_EV_TIMER_FIRE, f->fd, i + 1, NULL, 0, ETIMEDOUT);
        expire_locked(f, d, 1);
    } else if (!f->closing && d->deadline != CIO_NO_DEADLINE) {
        rearm_locked(d); /* the deadline was moved later: sleep on */
    }
    pthread_mutex_unlock(&f->mu);
    cio__op_defer_end();
    cio__file_unref(f);
}

static void fire_read(cio__timer *t)
{
    fire(t, CIO__R);
}

static void fire_write(cio__timer *t)
{
    fire(t, CIO__W);
}

static void register_files(void);

/* f->mu is process-shared where condvars are (futexhash_*.c), for the same
 * reason: at a mass expiry thousands of callers wait on their files' locks
 * at once (a worker finishing an op holds it as its caller wakes), and in
 * a process's small private futex hash those waiters made every wake-up of
 * the process walk long chains (docs/performance.md, third round). */
static int init_lock(pthread_mutex_t *mu)
{
    pthread_mutexattr_t a;
    int e = pthread_mutexattr_init(&a);
    if (e)
        return e;
    pthread_mutexattr_setpshared(&a, cio__futex_pshared); /* speed only */
    e = pthread_mutex_init(mu, &a);
    pthread_mutexattr_destroy(&a);
    return e;
}

static pthread_once_t files_once = PTHREAD_ONCE_INIT;
CIO__AT_LOAD(register_files_at_load, files_once, register_files)

cio_file *cio_fdopen(int fd)
{
    pthread_once(&files_once, register_files); /* every op needs a file first */
    if (fd < 0 || fcntl(fd, F_GETFD) < 0)
        return (void)cio__fail(-EBADF), NULL;
    cio_file *f = calloc(1, sizeof *f);
    if (!f)
        return (void)cio__fail(-ENOMEM), NULL;
    int e = -init_lock(&f->mu); /* -errno, as cio__cond_init's */
    if (!e && (e = cio__cond_init(&f->cv)) < 0)
        pthread_mutex_destroy(&f->mu);
    if (e < 0) {
        free(f);
        return (void)cio__fail(e), NULL;
    }
    struct stat st;
    f->fd = fd;
    /* Where a signal may not pull a read out: disks, NFS and FUSE files,
     * and devices.  A tty is one: Linux's n_tty_read waits for the tty's
     * input work, run by a kernel thread, before it looks for a signal, and
     * that wait is uninterruptible (seen for seconds on a loaded machine,
     * the cancel signal pending all along: docs/performance.md, eighteenth
     * round).  Pipes, FIFOs and sockets wait interruptibly. */
    f->may_orphan =
        fstat(fd, &st) == 0 && (S_ISREG(st.st_mode) || S_ISBLK(st.st_mode) || S_ISCHR(st.st_mode));
    atomic_init(&f->refs, 1);
    atomic_init(&f->counts.started, 0);
    atomic_init(&f->counts.done, 0);
    atomic_init(&f->counts.timeouts, 0);
    atomic_init(&f->counts.cancels, 0);
    for (int i = 0; i < 2; i++)
        cio__timer_init(&f->dir[i].timer, &timer_ops[i]);
    cio__orphan_init(f);
    registry_add(f);
    return f;
}

cio_file *cio__file_adopt(long fd)
{
    if (fd < 0)
        return (void)cio__fail(fd), NULL;
    cio_file *f = cio_fdopen((int)fd);
    if (!f) {
        int e = errno; /* close may change it; the caller reports fdopen's */
        close((int)fd);
        errno = e;
    }
    return f;
}

int cio_fileno(const cio_file *f)
{
    return f ? f->fd : (int)cio__fail(-EINVAL);
}

/* Wait until direction d is free; the first error that stops the op.
 * Rule 6: only a cancel issued after this op entered (gen moved) stops it;
 * a note (rule 16) stops it through op->reason, set on the prepared op. */
static int stop_reason_locked(const cio_file *f, const struct dir *d, uint64_t gen, cio__op *op)
{
    if (f->closing)
        return -EBADF;
    if (d->cancel_gen != gen)
        return -ECANCELED;
    if (expired(d))
        return -ETIMEDOUT;
    return -cio__op_stop_reason(op); /* a note (EINTR), or 0 */
}

static int enter_locked(cio_file *f, struct dir *d, cio__op *op)
{
    uint64_t gen = d->cancel_gen;
    for (;;) {
        int r = stop_reason_locked(f, d, gen, op);
        if (r < 0)
            return r;
        if (op->parallel || !d->busy)
            return 0;
        d->waiters++;
        pthread_cond_wait(&f->cv, &f->mu);
        d->waiters--;
    }
}

/* Up to this size the try keeps f->mu across its syscall: it cannot block
 * (RWF_NOWAIT, MSG_DONTWAIT), it takes about as long as the second lock
 * pair it saves, and nothing else waits on f->mu for more than that.
 * Larger tries copy for longer, and let a write proceed meanwhile. */
#define TRY_LOCKED_MAX ((size_t)16 * 1024)

/* The fast path: the op, tried on the caller's thread without blocking.
 * 1 when that settled it (result in *r), 0 when a worker must run it.  A
 * cancel or deadline that came meanwhile only set op->reason. */
static int try_locked(cio_file *f, struct dir *d, cio__op *op, long *r)
{
    long t;
    if (op->n <= TRY_LOCKED_MAX) {
        t = op->try(op);
    } else {
        pthread_mutex_unlock(&f->mu);
        t = op->try(op);
        cio__lock(&f->mu);
    }
    if (t >= 0)
        op->done += (size_t)t;
    else if (t == -EOPNOTSUPP)
        d->no_nowait = 1;
    /* The try works on this fd, and found it not ready: the worker's wait
     * may park (3p).  A write that moved part of its bytes waits for room
     * for the rest. */
    if (t == -EAGAIN || (t >= 0 && op->whole && op->done < op->n))
        op->parkable = cio__can_park && !op->may_orphan;
    int reason = cio__op_stop_reason(op);
    if (t >= 0 && (!op->whole || op->done == op->n))
        *r = (long)op->done;
    else if (t < 0 && t != -EAGAIN && t != -EOPNOTSUPP && t != -EINTR)
        *r = op->done ? (long)op->done : t; /* the syscall's own answer: a
                                               socket error is reported once */
    else if (reason)
        *r = op->done ? (long)op->done : -reason;
    else
        return 0;
    return 1;
}

/* An op that its worker's own timer stopped returns before the timer
 * thread has fired the deadline: take that timer out now (the deadline
 * passed, so it has nothing left to do), rather than leave the timer
 * thread a fire per op to do after a mass expiry.  Only if timer.mu is
 * free: at a mass expiry thousands of returning callers queue for it, and
 * one of them preempted while holding it kept the rest (each holding its
 * own file's lock) waiting for 100 ms and more.  A timer left in the heap
 * fires later and finds nothing to do (fire() re-checks under f->mu). */
static void drop_fired_locked(struct dir *d)
{
    if (d->armed_at == CIO_NO_DEADLINE || !expired(d))
        return;
    if (cio__timer_try_disarm(&d->timer))
        d->armed_at = CIO_NO_DEADLINE;
}

/* On a worker; bytes read into a bounce buffer go to the caller.  The
 * caller waits on its own wake-up, so that the worker wakes it and nobody
 * else; an op that may be orphaned keeps the file's condvar, which its
 * worker may still use after the caller has gone. */
static long run_locked(cio_file *f, cio__op *op)
{
    if (op->parkable && op->park &&
        atomic_load_explicit(&cio__park_on_caller, memory_order_relaxed)) { /* step 3c */
        cio__op_caller_begin_locked(op);
        pthread_mutex_unlock(&f->mu);
        long r = op->park(op);
        cio__lock(&f->mu);
        cio__op_caller_end_locked(op);
        if (r != CIO__TO_WORKER)
            return r;
        op->parkable = 0; /* the worker blocks in the syscall */
    }
    int own = !op->may_orphan && cio__wake_init(&op->own_wake) == 0;
    op->cv = own ? NULL : &f->cv;
    long r = cio__op_run_locked(op, CIO_NO_DEADLINE);
    if (own)
        cio__wake_destroy(&op->own_wake);
    if (!op->orphaned && r > 0 && op->may_orphan)
        op->deliver(op, op->buf, (size_t)r);
    return r;
}

int cio__file_may_orphan(const cio_file *f)
{
    return f->may_orphan;
}

/* The op's lock, prepared op, entry and run; w sees it start and finish. */
static long do_locked(cio_file *f, struct dir *d, cio__op *op, cio__watcher *w)
{
    long r;
    cio__op_prepare_locked(op);
    if (w)
        w->ops->arm_locked(w, op);
    /* A helper's read already holds d: it only checks for a reason to stop
     * that came since the helper began (rule 20: the helper is one op). */
    r = op->spanned ? stop_reason_locked(f, d, d->span_gen, op) : enter_locked(f, d, op);
    if (r == 0) {
        if (!op->parallel)
            d->busy = 1;
        link_locked(d, op);
        atomic_store(&op->due, d->deadline);
        if (!op->parallel && (r = cio__held_take_locked(d, op)) > 0)
            cio__held_trim_locked(d); /* rules 15, 20: held bytes come first */
        else if (!op->try || d->no_nowait || !try_locked(f, d, op, &r))
            r = run_locked(f, op);
        unlink_locked(d, op);
        if (r == -ETIMEDOUT)
            drop_fired_locked(d);
        if (op->orphaned)
            cio__orphan_keep_locked(f, d, op); /* a read keeps d busy */
        else if (!op->parallel && !op->spanned)
            d->busy = 0;
    }
    if (w)
        w->ops->disarm_locked(w, op, r); /* before an orphan may be freed */
    return r;
}

/* The calling thread's notes (rules 16-17) watch op from here to
 * unwatch: its watcher, or NULL when none watches it; NULL with *refused
 * set when a pending note refuses it. */
static cio__watcher *watch(cio_file *f, cio__op *op, long *refused)
{
    cio__watcher *w = cio__watcher_self;
    int watched = w ? w->ops->begin(w, op, &f->mu) : 0;
    *refused = 0;
    if (watched < 0)
        *refused = w->ops->end(w, watched);
    if (watched <= 0)
        return NULL;
    atomic_fetch_add(&f->refs, 1); /* f->mu outlives the op until end */
    return w;
}

static long unwatch(cio_file *f, cio__watcher *w, long r)
{
    if (!w)
        return r;
    r = w->ops->end(w, r);
    cio__file_unref(f);
    return r;
}

/* A stop released a parked read of f (protocol step 4p): its worker may
 * still be in ppoll on f->fd, where the kernel holds the open file, so a
 * close waits for it to come out (else the fd's close would not let go of
 * the pipe or socket: a writer would not see EPIPE, a peer no EOF).
 * f->mu held. */
static void *hold_parked_locked(cio__op *op)
{
    cio_file *f = (cio_file *)((char *)op->mu - offsetof(cio_file, mu));
    f->parked++;
    atomic_fetch_add(&f->refs, 1);
    return f;
}

/* That worker is out of its wait, on its own thread. */
static void parked_left(void *held)
{
    cio_file *f = held;
    cio__lock(&f->mu);
    if (--f->parked == 0 && f->closing)
        pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    cio__file_unref(f);
}

/* A caller leaves f: a close waits for the last, a read or write for its
 * turn on d. */
static void leave_locked(cio_file *f, struct dir *d)
{
    if ((--f->ops == 0 && f->closing) || d->waiters)
        pthread_cond_broadcast(&f->cv);
}

static long file_do(cio_file *f, int i, cio__op *op)
{
    long r = cio__lib_ensure_op();
    if (r < 0) {
        cio__count_direct(r); /* no lock: a shutdown waits for some */
        return r;
    }
    cio__watcher *w = watch(f, op, &r);
    if (r < 0)
        return r; /* a note was pending: refused */
    struct dir *d = &f->dir[i];
    int fd = f->fd; /* f may be freed as soon as this caller leaves */
    cio__lock(&f->mu);
    cio__file_count_started(&f->counts, 1);
    f->ops++;
    op->fd = fd;
    op->which = i;
    op->mu = &f->mu;
    op->cv = &f->cv;
    op->hold_parked = hold_parked_locked;
    op->left_parked = parked_left;
    r = do_locked(f, d, op, w);
    cio__file_count_outcome(&f->counts, r);
    leave_locked(f, d);
    pthread_mutex_unlock(&f->mu);
    CIO__EMIT(CIO_EV_OP_DONE, fd, i + 1, NULL, r < 0 ? -1 : r, r < 0 ? (int)-r : 0);
    return unwatch(f, w, r);
}

long cio__file_do(cio_file *f, int i, cio__op *op)
{
    int saved = errno;
    long r = file_do(f, i, op);
    /* A call that succeeds leaves errno as it found it, whatever its try,
     * its wait or its clock said on the way (EAGAIN, ETIMEDOUT, ...). */
    if (r >= 0)
        errno = saved;
    return r;
}

/* ---- a read helper's span (scan.c) ---- */

static void copy_out(cio__op *op, const char *src, size_t len)
{
    memcpy(op->user_buf, src, len);
}

/* The span waits for its turn as an op does, and a note stops that wait
 * the same way (rule 16); the notes it then interrupts its reads with are
 * delivered once it ends (scan.c). */
/* A helper refused before it began still leaves in buf a copy of what f
 * holds (up to cap), which cio_unread counts: as for one that failed after
 * reading (rule 20).  f->mu held. */
static void peek_held_locked(struct dir *d, void *buf, size_t cap)
{
    struct held *h = &d->held;
    if (h->len)
        memcpy(buf, h->mem + h->off, h->len < cap ? h->len : cap);
}

void cio__span_refused(cio_file *f, void *buf, size_t cap)
{
    cio__lock(&f->mu);
    peek_held_locked(&f->dir[CIO__R], buf, cap);
    pthread_mutex_unlock(&f->mu);
}

long cio__span_begin(cio_file *f, void *buf, size_t cap)
{
    long r = cio__lib_ensure_op();
    if (r < 0) {
        cio__count_direct(r);
        cio__span_refused(f, buf, cap);
        return r;
    }
    struct dir *d = &f->dir[CIO__R];
    cio__op op = {.n = cap,
                  .user_buf = buf,
                  .deliver = copy_out,
                  .fd = f->fd,
                  .which = CIO__R,
                  .mu = &f->mu,
                  .cv = &f->cv};
    cio__watcher *w = watch(f, &op, &r);
    if (r < 0)
        return r;
    cio__lock(&f->mu);
    f->ops++;
    f->spans++;
    cio__op_prepare_locked(&op);
    if (w)
        w->ops->arm_locked(w, &op);
    r = enter_locked(f, d, &op);
    if (w)
        w->ops->disarm_locked(w, &op, r);
    if (r == 0) {
        d->busy = 1;
        d->spanning = 1;
        d->span_gen = d->cancel_gen;
        r = cio__held_take_locked(d, &op);
    } else {
        peek_held_locked(d, buf, cap); /* f may go once ops drops below */
        f->spans--;
        cio__file_count_started(&f->counts, 1); /* one that failed before it began */
        cio__file_count_outcome(&f->counts, r);
        leave_locked(f, d);
    }
    pthread_mutex_unlock(&f->mu);
    return unwatch(f, w, r);
}

int cio__span_reserve(cio_file *f, size_t n)
{
    cio__lock(&f->mu);
    int e = cio__held_reserve_locked(&f->dir[CIO__R], n);
    pthread_mutex_unlock(&f->mu);
    return e;
}

void cio__span_end(cio_file *f, const void *back, size_t n)
{
    struct dir *d = &f->dir[CIO__R];
    cio__lock(&f->mu);
    cio__held_put_back_locked(d, back, n); /* reserved: cannot fail */
    cio__held_trim_locked(d);
    d->spanning = 0;
    if (!d->orphan)
        d->busy = 0; /* else the orphan keeps d busy until it finishes */
    f->ops--;
    f->spans--;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
}

size_t cio_unread(const cio_file *f)
{
    if (!f)
        return 0;
    cio_file *w = (cio_file *)f; /* the lock, not the file, changes */
    cio__lock(&w->mu);
    size_t n = w->dir[CIO__R].held.len;
    pthread_mutex_unlock(&w->mu);
    return n;
}

/* Moving a deadline later leaves the timer where it is (armed_at <= t):
 * when it fires early, fire() finds the deadline not passed and re-arms it
 * at the real one.  So the idle-timeout idiom, a deadline pushed later
 * before every op, costs one lock and a store, not a heap update. */
static int set_locked(cio_file *f, int i, cio_time_t t)
{
    struct dir *d = &f->dir[i];
    if (t != CIO_NO_DEADLINE && t > cio_now()) {
        cio_time_t old = d->deadline;
        d->deadline = t;
        int e = d->armed_at != CIO_NO_DEADLINE && d->armed_at <= t ? 0 : rearm_locked(d);
        if (e < 0)
            d->deadline = old; /* nothing changed */
        else
            due_all_locked(d);
        return e;
    }
    /* Cleared or moved into the past, the timer has nothing left to do, so
     * it is taken out of the heap only if timer.mu is free: rule 3 must
     * not wait for a holder of that global lock preempted on a loaded
     * machine.  A timer left in the heap (armed_at kept) fires later and
     * finds nothing to do (fire), or is moved by the next set. */
    if (d->armed_at != CIO_NO_DEADLINE && cio__timer_try_disarm(&d->timer))
        d->armed_at = CIO_NO_DEADLINE;
    d->deadline = t;
    if (t != CIO_NO_DEADLINE)
        expire_locked(f, d, 0); /* rule 3: moved into the past stops it now */
    due_all_locked(d);
    return 0;
}

static int set_deadlines(cio_file *f, int mask, cio_time_t t)
{
    if (!f)
        return (int)cio__fail(-EINVAL);
    int e = cio__lib_ensure();
    if (e < 0)
        return (int)cio__fail(e);
    cio__op_defer_begin();
    cio__lock(&f->mu);
    cio_time_t old = f->dir[CIO__R].deadline;
    e = f->closing ? -EBADF : 0;
    if (!e && (mask & CIO_READ))
        e = set_locked(f, CIO__R, t);
    if (!e && (mask & CIO_WRITE) && (e = set_locked(f, CIO__W, t)) < 0 && (mask & CIO_READ))
        set_locked(f, CIO__R, old); /* ENOMEM: undo the half done */
    pthread_mutex_unlock(&f->mu);
    cio__op_defer_end();
    return e < 0 ? (int)cio__fail(e) : 0;
}

int cio_set_deadline(cio_file *f, cio_time_t t)
{
    return set_deadlines(f, CIO_READ | CIO_WRITE, t);
}

int cio_set_read_deadline(cio_file *f, cio_time_t t)
{
    return set_deadlines(f, CIO_READ, t);
}

int cio_set_write_deadline(cio_file *f, cio_time_t t)
{
    return set_deadlines(f, CIO_WRITE, t);
}

/* Rule 6, for the directions in mask; f->mu held. */
static void cancel_locked(cio_file *f, int mask)
{
    for (int i = 0; i < 2; i++) {
        struct dir *d = &f->dir[i];
        if (!(mask & (i + 1)))
            continue;
        d->cancel_gen++;
        interrupt_all_locked(d, ECANCELED);
    }
    pthread_cond_broadcast(&f->cv);
}

int cio_cancel(cio_file *f, int which)
{
    if (!f || which <= 0 || (which & ~(CIO_READ | CIO_WRITE)))
        return (int)cio__fail(-EINVAL);
    cio__op_defer_begin(); /* a parked read's caller is woken after the unlock */
    cio__lock(&f->mu);
    cancel_locked(f, which);
    pthread_mutex_unlock(&f->mu);
    cio__op_defer_end();
    return 0;
}

static void files_cancel_all(void)
{
    pthread_mutex_lock(&files.mu);
    for (cio_file *f = files.head; f; f = f->reg_next) {
        pthread_mutex_lock(&f->mu);
        cancel_locked(f, CIO_READ | CIO_WRITE);
        pthread_mutex_unlock(&f->mu);
    }
    pthread_mutex_unlock(&files.mu);
}

/* Rule 7: stop everything, wait for every caller to leave, hand back fd. */
static int release(cio_file *f, int detach)
{
    cio__lock(&f->mu);
    f->closing = 1; /* from here on nothing arms f's timers */
    for (int i = 0; i < 2; i++)
        interrupt_all_locked(&f->dir[i], EBADF);
    pthread_cond_broadcast(&f->cv);
    while (f->ops > 0 || f->parked > 0)
        pthread_cond_wait(&f->cv, &f->mu);
    /* Only now the timers, which take the heap's global lock: the ops'
     * EBADF (rule 7) does not wait for a holder of it preempted elsewhere.
     * A timer the thread has taken out already holds a reference to f, and
     * finding f closing it does nothing. */
    for (int i = 0; i < 2; i++) {
        cio__timer_disarm(&f->dir[i].timer);
        f->dir[i].armed_at = CIO_NO_DEADLINE;
    }
    int fd = f->fd;
    /* Rule 15: the last orphan closes the fd, and takes f out of the
     * registry then; until then a fork must still see f (fork_child). */
    int deferred = cio__orphan_release_locked(f, detach);
    if (deferred)
        fd = -1;
    pthread_mutex_unlock(&f->mu);
    if (!deferred)
        registry_remove(f);
    cio__file_unref(f);
    return fd;
}

int cio_close(cio_file *f)
{
    if (!f)
        return (int)cio__fail(-EINVAL);
    int fd = release(f, 0);
    return fd < 0 ? 0 : close(fd);
}

int cio_detach(cio_file *f)
{
    if (!f)
        return (int)cio__fail(-EINVAL);
    int saved = errno; /* a seek back over held bytes may fail (a pipe) */
    int fd = release(f, 1);
    if (fd >= 0)
        errno = saved;
    return fd;
}

void cio__files_sum_counts(cio__op_counts *c)
{
    cio__lock(&files.mu); /* no file folded into the totals meanwhile */
    for (cio_file *f = files.head; f; f = f->reg_next)
        cio__file_counts_add(&f->counts, c); /* no file's lock: see internal.h */
    cio__counts_add_totals(c);
    pthread_mutex_unlock(&files.mu);
}

static void files_lock_for_fork(void)
{
    pthread_mutex_lock(&files.mu);
    for (cio_file *f = files.head; f; f = f->reg_next)
        pthread_mutex_lock(&f->mu);
}

/* In the child the ops in flight belonged to threads that do not exist
 * there: forget them, so the files work again. */
static void reset_for_child(cio_file *f)
{
    cio__cond_init(&f->cv);
    /* Each caller inside counted its op as started, but for a read
     * helper's span, waiting for its turn or holding it (its reads count
     * themselves): in the child none of them will ever be done, so they
     * never started there. */
    cio__file_count_started(&f->counts, -(int64_t)(f->ops - f->spans));
    f->ops = 0;
    f->spans = 0;
    /* No orphan runs in the child either: the references they held go,
     * with the ops themselves (each its own block, run_bounced's, that no
     * thread here will touch), and so does the timer that re-signals them
     * (its fire would walk ops whose workers the pool has forgotten). */
    atomic_fetch_sub(&f->refs, f->orphans);
    f->orphans = 0;
    /* Nor a released worker (step 4p): none will say it left. */
    atomic_fetch_sub(&f->refs, f->parked);
    f->parked = 0;
    for (cio__op *op = f->dir[CIO__R].orphans, *next; op; op = next) {
        next = op->fnext;
        free(op);
    }
    cio__timer_disarm(&f->dir[CIO__R].kick);
    for (int i = 0; i < 2; i++) {
        struct dir *d = &f->dir[i];
        d->orphan = NULL;
        d->orphans = NULL;
        d->busy = 0;
        d->spanning = 0;
        d->waiters = 0;
        d->ops = NULL;
        /* A timer the timer thread had taken out to fire (it waited for
         * f->mu) never fires here, and armed_at would keep every later
         * deadline from arming it again.  (The reference that fire would
         * have dropped stays: f is never freed in this child.) */
        if (d->armed_at != CIO_NO_DEADLINE && !cio__timer_armed(&d->timer)) {
            d->armed_at = CIO_NO_DEADLINE;
            if (!f->closing && d->deadline != CIO_NO_DEADLINE)
                rearm_locked(d);
        }
    }
}

/* A file the program closed while orphans ran (rule 15) waits for the
 * last of them to close its fd; in the child none will.  Closed and freed
 * here, files.mu held: no thread but this one exists, and no timer of f is
 * left in the heap (release disarmed the deadlines, reset_for_child the
 * kick). */
static void free_closed_in_child(cio_file *f)
{
    cio__file_counts_fold(&f->counts);
    registry_unlink_locked(f);
    close(f->fd);
    cio__held_free(&f->dir[CIO__R]);
    pthread_cond_destroy(&f->cv);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

static void files_unlock_after_fork(int child)
{
    for (cio_file *f = files.head, *next; f; f = next) {
        next = f->reg_next;
        if (child)
            reset_for_child(f);
        pthread_mutex_unlock(&f->mu);
        if (child && f->close_deferred)
            free_closed_in_child(f);
    }
    pthread_mutex_unlock(&files.mu);
}

static cio__lib_hooks files_hooks = {files_cancel_all, files_lock_for_fork, files_unlock_after_fork,
                                     NULL};

static void register_files(void)
{
    cio__lib_register(&files_hooks);
}
