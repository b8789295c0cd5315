/*
 * Ops with no file: cio_call runs any blocking function on a worker, and
 * cio_open runs open(2) there.  Only their deadline, or cio_shutdown, cuts
 * them off.  The caller enforces the deadline itself while it waits (see
 * wait_done_locked in op.c), so no timer is needed; each call in flight is
 * on a list, for cio_shutdown.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>

struct call {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    cio__op *op;
    struct call *prev, *next; /* calls.mu */
};

/* calls.mu ranks with files.mu: after lib.mu, before a call's own mu. */
static struct {
    pthread_mutex_t mu;
    struct call *head;
} calls = {PTHREAD_MUTEX_INITIALIZER, NULL};

static _Thread_local cio__op *current; /* the cio_call running on this worker */

static void enlist(struct call *c)
{
    pthread_mutex_lock(&calls.mu);
    CIO__LIST_PUSH(calls.head, c, prev, next);
    pthread_mutex_unlock(&calls.mu);
}

static void delist(struct call *c)
{
    pthread_mutex_lock(&calls.mu);
    CIO__LIST_UNLINK(calls.head, c, prev, next);
    pthread_mutex_unlock(&calls.mu);
}

static void calls_cancel_all(void)
{
    pthread_mutex_lock(&calls.mu);
    for (struct call *c = calls.head; c; c = c->next) {
        pthread_mutex_lock(&c->mu);
        cio__op_interrupt_locked(c->op, ECANCELED);
        pthread_mutex_unlock(&c->mu);
    }
    pthread_mutex_unlock(&calls.mu);
}

/* Calls have no file to count them: they go straight to the totals,
 * started as cio__call_run begins, and ended here.  result is what the
 * caller gets (-1 on failure), err its errno. */
static void count(long result, int err)
{
    cio__count_ended(result == -1 ? -err : 0);
    CIO__EMIT(CIO_EV_OP_DONE, -1, 0, NULL, result, result == -1 ? err : 0);
}

/* Run op on a worker under c's lock, seen by w (NULL: not watched). */
static long run_watched(struct call *c, cio__op *op, cio_time_t deadline, cio__watcher *w)
{
    op->fd = -1;
    op->mu = &c->mu;
    op->cv = &c->cv;
    cio__op_prepare_locked(op); /* before enlist: a shutdown's reason stays */
    enlist(c);
    pthread_mutex_lock(&c->mu);
    if (w)
        w->ops->arm_locked(w, op);
    long r = cio__op_run_locked(op, deadline);
    if (w)
        w->ops->disarm_locked(w, op, r);
    pthread_mutex_unlock(&c->mu);
    delist(c);
    return r;
}

/* fork: the list is whole in the child (calls.mu held across it), and
 * empty there, for the calls on it are other threads', which the child
 * does not have: a cio_shutdown in the child must not reach them. */
static void calls_lock_for_fork(void)
{
    pthread_mutex_lock(&calls.mu);
}

static void calls_unlock_after_fork(int child)
{
    if (child) {
        calls.head = NULL;
        current = NULL; /* a fork in fn: the child runs no call */
    }
    pthread_mutex_unlock(&calls.mu);
}

static cio__lib_hooks calls_hooks = {calls_cancel_all, calls_lock_for_fork, calls_unlock_after_fork,
                                     NULL};

static void register_calls(void)
{
    cio__lib_register(&calls_hooks);
}

static pthread_once_t calls_once = PTHREAD_ONCE_INIT;
CIO__AT_LOAD(register_calls_at_load, calls_once, register_calls)

long cio__call_run(cio__op *op, cio_time_t deadline)
{
    pthread_once(&calls_once, register_calls);
    cio__count_started(); /* in flight from here: ended by its caller (count) */
    long r = cio__lib_ensure_op();
    if (r < 0)
        return r;
    struct call c = {.op = op};
    pthread_mutex_init(&c.mu, NULL);
    if ((r = cio__cond_init(&c.cv)) < 0) {
        pthread_mutex_destroy(&c.mu);
        return r;
    }
    cio__watcher *w = cio__watcher_self;
    int watched = w ? w->ops->begin(w, op, &c.mu) : 0;
    if (watched < 0)
        r = watched; /* a note was pending: refused, fn never runs */
    else if (deadline != CIO_NO_DEADLINE && deadline <= cio_now())
        r = -ETIMEDOUT; /* already past: fn never runs */
    else
        r = run_watched(&c, op, deadline, watched ? w : NULL);
    if (watched)
        r = w->ops->end(w, r); /* c.mu is still alive for a late note */
    pthread_cond_destroy(&c.cv);
    pthread_mutex_destroy(&c.mu);
    return r;
}

struct call_args {
    cio_func fn;
    void *arg;
    cio_time_t deadline;
    int caller_errno; /* fn starts with it, as if called directly */
    int late;         /* fn returned -1 at or after the deadline */
};

static long call_thunk(cio__op *op)
{
    struct call_args *a = op->arg;
    current = op;
    errno = a->caller_errno;
    long r = a->fn(a->arg);
    op->err = errno;
    /* What fn could have seen: a reason set after this (a note that came
     * as the worker was on its way out) did not stop it. */
    op->fn_stop = cio__op_stop_reason(op);
    current = NULL;
    /* fn may have blocked the cancel signal, or unblocked the program's
     * signals: either would outlive it on this worker (rule 10), which the
     * next op, whatever it is, must find as the library left it. */
    cio__signal_worker_mask_restore();
    /* decided here, not by the caller: fn may beat the caller's wake-up */
    a->late = r == -1 && a->deadline != CIO_NO_DEADLINE && cio_now() >= a->deadline;
    return r;
}

long cio_call(cio_func fn, void *arg, cio_time_t deadline)
{
    if (!fn)
        return cio__fail(-EINVAL);
    struct call_args a = {fn, arg, deadline, errno, 0};
    cio__op op = {.run = call_thunk, .arg = &a, .fn_answers = 1};
    long r = cio__call_run(&op, deadline);
    int reason = op.started ? op.fn_stop : cio__op_stop_reason(&op);
    if (!op.started || (r == -1 && (reason || a.late))) {
        long e = !op.started ? r : reason ? -reason : -ETIMEDOUT;
        count(-1, (int)-e);
        return cio__fail(e);
    }
    count(r, op.err);
    errno = op.err;
    return r;
}

int cio_interrupted(void)
{
    return current && cio__op_stop_reason(current) != 0;
}

struct open_args {
    const char *path;
    int flags;
    mode_t mode;
};

static long open_once(cio__op *op)
{
    const struct open_args *a = op->arg;
    return cio__sys(open(a->path, a->flags, a->mode));
}

static long open_thunk(cio__op *op)
{
    return cio__retry(op, open_once);
}

cio_file *cio_open(const char *path, int flags, mode_t mode, cio_time_t deadline)
{
    if (!path)
        return (void)cio__fail(-EINVAL), NULL;
    struct open_args a = {path, flags, mode};
    /* no fd to wait on: an EAGAIN (O_NONBLOCK and a lease) is open's answer */
    cio__op op = {.run = open_thunk, .arg = &a, .dontwait = 1};
    int saved = errno;
    long fd = cio__call_run(&op, deadline);
    count(fd < 0 ? -1 : fd, fd < 0 ? (int)-fd : 0);
    cio_file *f = cio__file_adopt(fd);
    if (f)
        errno = saved; /* success leaves errno as it was */
    return f;
}
