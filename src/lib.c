/*
 * The library's life: cio_init, lazy start on first use, cio_shutdown, and
 * fork.  The layers above the core (files, calls) take part in shutdown and
 * fork through the hooks they register (cio__lib_register): this file names
 * nothing above it.
 *
 * `state` is read without the lock on every op (the fast path of
 * cio__lib_ensure); it is written only under lib.mu.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h> /* PTHREAD_STACK_MIN */
#include <sched.h>
#include <string.h>

#define DEFAULT_MAX_THREADS 4096u
#define DEFAULT_STACK ((size_t)128 * 1024)

/* STALE: a forked child that must restart threads.  STOPPING: cio_shutdown
 * is under way (lib.mu held throughout). */
enum { OFF, ON, STALE, STOPPING };

static struct {
    pthread_mutex_t mu;
    atomic_int state;
    cio_options opt;       /* as resolved when started */
    cio__lib_hooks *hooks; /* the layers above, in the order they came */
} lib = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_fork_prepare(void);
static void on_fork_parent(void);
static void on_fork_child(void);

/* An op that begins while cio_shutdown runs waits on stop_cv for its end,
 * STOP_WAIT_NS at most, before it fails with ECANCELED (ensure). */
#define STOP_WAIT_NS ((cio_time_t)100 * 1000 * 1000)
static pthread_mutex_t stop_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t stop_cv;
static int stop_cv_ok;

static void register_fork_handlers(void)
{
    stop_cv_ok = cio__cond_init(&stop_cv) == 0;
    pthread_atfork(on_fork_prepare, on_fork_parent, on_fork_child);
}

/* Before anybody takes lib.mu: a fork while another thread held it (in the
 * first start, say) would copy it locked into a child with no handler to
 * unlock it, and the child's first op would wait forever (rule 13). */
static pthread_once_t fork_handlers_once = PTHREAD_ONCE_INIT;
CIO__AT_LOAD(register_fork_handlers_at_load, fork_handlers_once, register_fork_handlers)

static void lock_lib(void)
{
    pthread_once(&fork_handlers_once, register_fork_handlers);
    pthread_mutex_lock(&lib.mu);
}

void cio__lib_register(cio__lib_hooks *h)
{
    lock_lib();
    cio__lib_hooks **p = &lib.hooks;
    while (*p)
        p = &(*p)->next;
    h->next = NULL;
    *p = h;
    pthread_mutex_unlock(&lib.mu);
}

static void resolve(const cio_options *in, cio_options *out)
{
    static const cio_options none;
    *out = in ? *in : none;
    if (!out->signo)
        out->signo = SIGUSR1;
    if (!out->max_threads)
        out->max_threads = DEFAULT_MAX_THREADS;
    if (!out->stack_size)
        out->stack_size = DEFAULT_STACK;
}

static int same(const cio_options *a, const cio_options *b)
{
    return a->signo == b->signo && a->max_threads == b->max_threads &&
           a->stack_size == b->stack_size && a->timer == b->timer &&
           a->futex_hash_slots == b->futex_hash_slots && a->waits == b->waits;
}

/* Start the threads' machinery with lib.opt; lib.mu held. */
static int start_locked(int install)
{
    int e = install ? cio__signal_install(lib.opt.signo) : 0;
    if (e < 0)
        return e;
    if (install && (e = cio__futex_hash_set(lib.opt.futex_hash_slots)) < 0) {
        cio__signal_restore();
        return e;
    }
    atomic_store_explicit(&cio__park_on_caller, lib.opt.waits == CIO_WAIT_CALLER,
                          memory_order_relaxed);
    cio__pool_config cfg = {lib.opt.max_threads, lib.opt.stack_size};
    e = cio__timer_start(lib.opt.timer, cio__thread_stack(lib.opt.stack_size));
    if (!e)
        e = cio__pool_start(&cfg);
    if (e < 0) {
        cio__timer_stop();
        if (install)
            cio__signal_restore();
        return e;
    }
    atomic_store(&lib.state, ON);
    return 0;
}

static int validate(const cio_options *o)
{
    if (!cio__signal_valid(o->signo)) /* EINVAL before EBUSY, running or not */
        return -EINVAL;
    if (o->timer < CIO_TIMER_AUTO || o->timer > CIO_TIMER_TIMERFD)
        return -EINVAL;
    if (o->stack_size && o->stack_size < (size_t)PTHREAD_STACK_MIN)
        return -EINVAL;
    if (o->waits != CIO_WAIT_CALLER && o->waits != CIO_WAIT_WORKER)
        return -EINVAL;
    unsigned h = o->futex_hash_slots;
    if (h && h != CIO_FUTEX_HASH_GLOBAL && (h < 2 || (h & (h - 1))))
        return -EINVAL;
    return 0;
}

int cio_init(const cio_options *opt)
{
    cio_options o;
    resolve(opt, &o);
    int e = validate(&o);
    if (e < 0)
        return (int)cio__fail(e);
    /* Inside a cio_call's fn the library runs, or stops: a cio_shutdown
     * holds lib.mu while it waits for this very worker to leave, and
     * taking it would wait for ever.  While any library thread lives, the
     * options are fixed (written under lib.mu before the first thread was
     * made): nothing to start, only to compare. */
    if (cio__on_lib_thread)
        return same(&o, &lib.opt) ? 0 : (int)cio__fail(-EBUSY);
    lock_lib();
    int state = atomic_load(&lib.state);
    if (state != OFF) {
        e = same(&o, &lib.opt) ? (state == STALE ? start_locked(0) : 0) : -EBUSY;
    } else {
        lib.opt = o;
        e = start_locked(1);
    }
    pthread_mutex_unlock(&lib.mu);
    return e < 0 ? (int)cio__fail(e) : 0;
}

/* Failing at once, an op begun during a shutdown turned a caller that
 * retries into a spinning thread, and 200 of them kept the CPUs from the
 * workers that the shutdown waits for: it took seconds (0.3-8 s on 2
 * CPUs).  So the op waits for the shutdown to end.  Not for ever: this
 * thread may be what a worker waits for (a cio_call's fn waiting on a lock
 * this caller holds, or on its next step), and the shutdown waits for that
 * worker.  Not on a library thread: a worker's own op (inside fn) fails at
 * once, since the shutdown waits for the worker. */
static void wait_for_stop_end(void)
{
    if (!stop_cv_ok)
        return;
    cio_time_t until = cio_now() + STOP_WAIT_NS;
    pthread_mutex_lock(&stop_mu);
    while (atomic_load(&lib.state) == STOPPING && cio_now() < until)
        cio__cond_wait_until(&stop_cv, &stop_mu, until);
    pthread_mutex_unlock(&stop_mu);
}

/* The shutdown is over (lib.state no longer STOPPING): wake its waiters. */
static void stop_ended(void)
{
    pthread_mutex_lock(&stop_mu);
    pthread_cond_broadcast(&stop_cv);
    pthread_mutex_unlock(&stop_mu);
}

static int ensure(int for_op)
{
    int now = atomic_load_explicit(&lib.state, memory_order_acquire);
    if (now == ON)
        return 0;
    /* An op that begins while cio_shutdown runs fails as the ones it stops
     * do, before it takes any lock, once the shutdown is over (or 100 ms
     * have passed, wait_for_stop_end): callers that retry at once would
     * otherwise keep taking the files' locks that the shutdown needs (an
     * unfair mutex let them hold it off for seconds), or wait for it on
     * lib.mu and then start the library again under its feet.  A setter
     * (a deadline, an alarm) goes on: its timer waits in the heap for the
     * next start, as every armed one does across a shutdown. */
    if (now == STOPPING) {
        if (for_op && !cio__on_lib_thread)
            wait_for_stop_end();
        return for_op ? -ECANCELED : 0;
    }
    lock_lib();
    int e = 0, state = atomic_load(&lib.state);
    if (state == OFF)
        resolve(NULL, &lib.opt);
    if (state != ON)
        e = start_locked(state == OFF);
    pthread_mutex_unlock(&lib.mu);
    return e;
}

int cio__lib_ensure(void)
{
    return ensure(0);
}

int cio__lib_ensure_op(void)
{
    return ensure(1);
}

/* Step 3c: callers parked on their own threads, between their enter and
 * their leave (cio__park_caller_*).  A shutdown waits for each to leave
 * before it restores the signal's old disposition: a cancel's signal not
 * yet taken by its caller would meet the default action (the process
 * ends).  They leave at once: the shutdown's cancel released each one in
 * its wait, and one not yet there finds the library stopping. */
atomic_uint cio__callers_parked;

int cio__lib_stopping(void)
{
    return atomic_load(&lib.state) == STOPPING;
}

static void wait_no_parked_caller(void)
{
    while (atomic_load(&cio__callers_parked) > 0)
        nanosleep(&(struct timespec){0, 100 * 1000}, NULL);
}

int cio_shutdown(void)
{
    /* It waits for every library thread to leave, this one too: from a
     * cio_call's fn (or an exit() there that runs atexit handlers) it
     * would wait for ever. */
    if (cio__on_lib_thread)
        return (int)cio__fail(-EDEADLK);
    lock_lib();
    if (atomic_load(&lib.state) != OFF) {
        atomic_store(&lib.state, STOPPING);
        cio__pool_quiesce();
        for (cio__lib_hooks *h = lib.hooks; h; h = h->next)
            h->cancel_all();
        wait_no_parked_caller();
        cio__pool_stop();
        cio__timer_stop();
        cio__signal_restore();
        atomic_store(&lib.state, OFF);
        stop_ended();
    }
    pthread_mutex_unlock(&lib.mu);
    return 0;
}

const char *cio_version(void)
{
    return CIO_VERSION_STRING;
}

/* The fork gate (internal.h): the fork holds gate for writing from
 * on_fork_prepare, once lib.mu is held, to on_fork_parent, once every lock
 * is let go; a waiter takes it for reading and lets go at once.  An rwlock,
 * not a mutex and a condvar: when the fork lets go, every waiter is woken
 * at once and none has a lock to take after it (a condvar's waiters each
 * retake its mutex, one after another, and on a saturated machine that
 * queue took as long as the fork itself). */
atomic_int cio__fork_gate;
atomic_uint cio__fork_gate_waiting;
static pthread_rwlock_t gate = PTHREAD_RWLOCK_INITIALIZER;
void (*cio__fork_hook)(void);

void cio__fork_gate_wait(void)
{
    atomic_fetch_add(&cio__fork_gate_waiting, 1);
    pthread_rwlock_rdlock(&gate);
    pthread_rwlock_unlock(&gate);
    atomic_fetch_sub(&cio__fork_gate_waiting, 1);
}

static void close_gate(void)
{
    pthread_rwlock_wrlock(&gate);
    atomic_store(&cio__fork_gate, 1);
}

static void open_gate(void)
{
    atomic_store(&cio__fork_gate, 0);
    pthread_rwlock_unlock(&gate);
}

/* Whether this thread's fork goes ahead without lib.mu (on_fork_prepare). */
static _Thread_local int forking_in_shutdown;

/* fork: hold every lock across it, so that the child's copy of each
 * structure is whole, then rebuild in the child what only threads had.
 * One lock may be out of reach: cio_shutdown holds lib.mu while it waits
 * for every worker to leave, and a cio_call's fn that forks then would wait
 * for lib.mu for ever.  Such a fork goes ahead without it (the shutdown
 * changes nothing else under lib.mu until the workers are gone), and the
 * child, where no shutdown runs, starts afresh (on_fork_child). */
static void on_fork_prepare(void)
{
    forking_in_shutdown = 0;
    while (pthread_mutex_trylock(&lib.mu) != 0) {
        if (cio__on_lib_thread && atomic_load(&lib.state) == STOPPING) {
            forking_in_shutdown = 1;
            break;
        }
        if (!cio__on_lib_thread) {
            pthread_mutex_lock(&lib.mu); /* no shutdown waits for this thread */
            break;
        }
        sched_yield(); /* a worker: the holder may be a shutdown to come */
    }
    /* Not before: a shutdown holding lib.mu waits for workers, which must
     * not wait at the gate for this fork. */
    close_gate();
    for (cio__lib_hooks *h = lib.hooks; h; h = h->next)
        if (h->lock_for_fork)
            h->lock_for_fork();
    cio__timer_lock_for_fork();
    cio__pool_lock_for_fork();
    void (*hook)(void) = cio__fork_hook;
    if (hook)
        hook();
}

/* Undo on_fork_prepare below lib.mu, in the parent or the child. */
static void unlock_after_fork(int child)
{
    cio__pool_unlock_after_fork(child);
    cio__timer_unlock_after_fork(child);
    for (cio__lib_hooks *h = lib.hooks; h; h = h->next)
        if (h->unlock_after_fork)
            h->unlock_after_fork(child);
}

static void on_fork_parent(void)
{
    unlock_after_fork(0);
    if (!forking_in_shutdown)
        pthread_mutex_unlock(&lib.mu);
    open_gate(); /* last: this thread may wait for a CPU behind all it wakes */
}

static void on_fork_child(void)
{
    /* Made anew, open: the child's thread is not the one that closed it
     * (it has a thread id of its own), and none waits at it here. */
    atomic_store(&cio__fork_gate, 0);
    atomic_store(&cio__fork_gate_waiting, 0);
    atomic_store(&cio__callers_parked, 0); /* their threads are not here */
    pthread_rwlock_init(&gate, NULL);
    pthread_mutex_init(&stop_mu, NULL); /* no shutdown runs here: none waits */
    unlock_after_fork(1);
    int state = atomic_load(&lib.state);
    if (state == ON || state == STOPPING)
        atomic_store(&lib.state, STALE); /* threads come back on next use */
    if (forking_in_shutdown)             /* held by the parent's shutdown, absent here */
        pthread_mutex_init(&lib.mu, NULL);
    else
        pthread_mutex_unlock(&lib.mu);
}
