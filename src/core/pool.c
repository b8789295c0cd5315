/*
 * The worker pool: one thread per blocking op, kept for reuse.
 *
 * The pool grows on demand up to max_threads.  An idle worker waits on its
 * own condvar (no thundering herd) on a LIFO list, so the hottest thread is
 * reused and the coldest ones retire after IDLE_NS.  When the cap is reached
 * ops wait in a FIFO queue; a canceller may take an op back out of it.
 * Retired threads are joined by the next worker to finish an op (it holds
 * no lock then) or by cio__pool_stop, so that cio_shutdown really joins
 * every thread the library made.
 *
 * An op handed over is not the worker's until the worker takes it, under
 * pool.mu: until then a canceller may take it back (cio__pool_try_unqueue,
 * or the op's own caller, cio__pool_unqueue), from the queue or from the
 * hands of a worker that has not yet woken up.
 * On a loaded machine a woken worker may wait long for a CPU and for
 * pool.mu; a deadline must not wait with it (docs/protocol.md, step 4).
 *
 * Every field of `pool` is guarded by pool.mu.
 */
#include "internal.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>

#define IDLE_NS ((cio_time_t)5 * 1000 * 1000 * 1000)
#define OWED_POLL_NS ((cio_time_t)1000 * 1000)

_Thread_local int cio__on_lib_thread; /* see internal.h */

struct cio__worker {
    pthread_t tid;
    unsigned serial;
    pthread_cond_t cv;        /* wakes this worker alone */
    cio__wtimer timer;        /* its own (timer.ok = 0 where there is none) */
    cio__op *op;              /* the op handed to it, until it takes it */
    int fresh;                /* made for op, not yet running: not idle */
    atomic_int owed;          /* wake-ups its handers are yet to send (no lock) */
    atomic_int park;          /* parked in its read's wait, or released (op.c) */
    cio__park_left left;      /* a release's: to call once out of the wait */
    struct cio__worker *prev; /* on the idle list, or the dead list */
    struct cio__worker *next;
    struct cio__worker *all_prev, *all_next; /* every worker not yet reaped */
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t drained; /* threads reached 0 */
    cio__pool_config cfg;
    int stopping;
    unsigned threads, idle, serial;
    atomic_uint_fast64_t seen;     /* threads << 32 | idle, for cio_get_stats */
    int last_timed;                /* the last worker to start got its timer */
    struct cio__worker *idle_head; /* most recently idle first */
    struct cio__worker *dead;      /* exited, waiting to be joined */
    struct cio__worker *all;       /* every worker not yet reaped (for fork) */
    cio__op *queue, *queue_tail;   /* ops waiting for a worker */
} pool = {.mu = PTHREAD_MUTEX_INITIALIZER, .stopping = 1};

/* The counts, stored after each change for cio_get_stats to read with no
 * lock: pool.mu is the library's hottest, and under load a snapshot waited
 * 0.4-1.1 s for it (docs/performance.md, eighteenth round).  One word, so
 * that a snapshot reads a pair that was true at once: read as two, a
 * reader preempted between them saw more idle workers than workers.
 * pool.mu held. */
static void publish_locked(void)
{
    uint64_t both = (uint64_t)pool.threads << 32 | pool.idle;
    atomic_store_explicit(&pool.seen, both, memory_order_relaxed);
}

static void idle_push(struct cio__worker *w)
{
    CIO__LIST_PUSH(pool.idle_head, w, prev, next);
    pool.idle++;
    publish_locked();
}

static void idle_unlink(struct cio__worker *w)
{
    CIO__LIST_UNLINK(pool.idle_head, w, prev, next);
    pool.idle--;
    publish_locked();
}

/* The queue is doubly linked, so that a canceller takes an op out of it in
 * O(1) however many ops wait: with thousands queued beyond max_threads, a
 * walk per timeout made mass expiry quadratic.  op->queued says whether the
 * op is in it. */
static void queue_push(cio__op *op)
{
    op->qnext = NULL;
    op->qprev = pool.queue_tail;
    if (pool.queue_tail)
        pool.queue_tail->qnext = op;
    else
        pool.queue = op;
    pool.queue_tail = op;
    op->queued = 1;
}

static void queue_unlink(cio__op *op)
{
    if (op->qprev)
        op->qprev->qnext = op->qnext;
    else
        pool.queue = op->qnext;
    if (op->qnext)
        op->qnext->qprev = op->qprev;
    else
        pool.queue_tail = op->qprev;
    op->queued = 0;
}

/* An op the pool took out and could not start goes back where it was. */
static void queue_push_front(cio__op *op)
{
    op->qprev = NULL;
    op->qnext = pool.queue;
    if (pool.queue)
        pool.queue->qprev = op;
    else
        pool.queue_tail = op;
    pool.queue = op;
    op->queued = 1;
}

static cio__op *queue_pop(void)
{
    cio__op *op = pool.queue;
    if (op)
        queue_unlink(op);
    return op;
}

void (*cio__pool_pause_hook)(void);
void (*cio__pool_spawn_hook)(void);
void (*cio__pool_wake_hook)(void);

/* The worker takes the op handed to it (if it is still there). */
static cio__op *take_locked(struct cio__worker *w)
{
    cio__op *op = w->op;
    w->op = NULL;
    if (op)
        op->handed = NULL;
    return op;
}

/* A test's pause of a worker that was handed an op, before it takes it. */
static void pause_handed_locked(struct cio__worker *w)
{
    void (*hook)(void) = cio__pool_pause_hook;
    if (!hook || !w->op)
        return;
    pthread_mutex_unlock(&pool.mu);
    hook();
    pthread_mutex_lock(&pool.mu);
}

static void all_link(struct cio__worker *w)
{
    CIO__LIST_PUSH(pool.all, w, all_prev, all_next);
}

static void all_unlink(struct cio__worker *w)
{
    CIO__LIST_UNLINK(pool.all, w, all_prev, all_next);
}

/* The threads that exited, for reap; pool.mu held. */
static struct cio__worker *take_dead_locked(void)
{
    struct cio__worker *dead = pool.dead;
    pool.dead = NULL;
    for (struct cio__worker *w = dead; w; w = w->next)
        all_unlink(w);
    return dead;
}

/* Join them (each has left its last lock, or is about to: quick). */
static void reap(struct cio__worker *dead)
{
    while (dead) {
        struct cio__worker *w = dead;
        dead = w->next;
        pthread_join(w->tid, NULL);
        pthread_cond_destroy(&w->cv);
        free(w);
    }
}

/* Wait for the next op; NULL when the worker should exit. */
static cio__op *next_op(struct cio__worker *w)
{
    cio__lock(&pool.mu);
    struct cio__worker *dead = take_dead_locked();
    if (dead) { /* a join frees a stack: not under pool.mu */
        pthread_mutex_unlock(&pool.mu);
        reap(dead);
        cio__lock(&pool.mu);
    }
    cio__op *op = queue_pop();
    if (!op && !pool.stopping) {
        idle_push(w);
        cio_time_t retire = cio_now() + IDLE_NS;
        while (!w->op && !pool.stopping && cio_now() < retire) {
            cio__cond_wait_until(&w->cv, &pool.mu, retire);
            pause_handed_locked(w);
        }
        op = take_locked(w); /* whoever set it took w off the idle list */
        if (!op)
            idle_unlink(w);
    }
    if (!op) {
        /* Not before every wake-up handed to it is sent (wake_handed): the
         * hander signals w->cv and counts down after pool.mu is let go, and
         * w is freed once joined.  Off every list now, it is handed nothing
         * more; a signal still owed comes within a few instructions of the
         * hander's, unless the hander is preempted: look again soon. */
        while (atomic_load_explicit(&w->owed, memory_order_acquire) != 0)
            cio__cond_wait_until(&w->cv, &pool.mu, cio_now() + OWED_POLL_NS);
        w->next = pool.dead;
        pool.dead = w;
        if (--pool.threads == 0)
            pthread_cond_broadcast(&pool.drained);
        publish_locked();
    }
    pthread_mutex_unlock(&pool.mu);
    return op;
}

/* A new thread's first op, unless a canceller took it back meanwhile. */
static cio__op *first_op(struct cio__worker *w)
{
    cio__lock(&pool.mu);
    w->fresh = 0;
    pool.last_timed = w->timer.ok;
    cio__op *op = take_locked(w);
    pthread_mutex_unlock(&pool.mu);
    return op ? op : next_op(w);
}

static void *worker_main(void *arg)
{
    struct cio__worker *w = arg;
    /* Its own: the creator may still be inside pthread_create when the
     * thread has run, retired and is being joined (reap). */
    w->tid = pthread_self();
    cio__on_lib_thread = 1;
    cio__wtimer_open(&w->timer); /* before anyone can see w in an op */
    for (cio__op *op = first_op(w); op; op = next_op(w))
        cio__op_execute(op, w);
    cio__wtimer_close(&w->timer);
    return NULL;
}

/* A worker for op, counted and handed op; its thread is started by
 * start_worker once pool.mu is free.  pool.mu held. */
static struct cio__worker *new_worker_locked(cio__op *op)
{
    struct cio__worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (cio__cond_init(&w->cv) != 0) {
        free(w);
        return NULL;
    }
    w->op = op;
    w->fresh = 1;
    w->serial = ++pool.serial;
    pool.threads++;
    publish_locked();
    all_link(w);
    op->handed = w;
    return w;
}

/* Start w's thread, with no pool lock held: thread creation maps a stack
 * and can take milliseconds on a loaded machine, and every submit and every
 * worker going idle would queue behind it (docs/performance.md, fifth
 * round).  0, or -EAGAIN with w gone and *back the op it was handed, back
 * in the starter's hands: nobody else will run or finish it.  *back is
 * NULL if a canceller took the op back meanwhile (a submit holds no op
 * lock: a canceller may take back the submit's own op, finish it, and the
 * submit then fails with EAGAIN, for which its caller returns the
 * canceller's reason, cio__op_run_locked).  While it starts, w counts
 * toward max_threads, so a submit at the cap queues its op; if the start
 * then fails, cio__pool_rescue sees to that op. */
static int start_worker(struct cio__worker *w, cio__op **back)
{
    void (*hook)(void) = cio__pool_spawn_hook;
    if (hook)
        hook();
    pthread_attr_t attr;
    pthread_t tid;
    int e = pthread_attr_init(&attr);
    if (!e) {
        pthread_attr_setstacksize(&attr, pool.cfg.stack_size);
        /* The new thread inherits this mask (every signal blocked but the
         * cancel one) from its first instruction on. */
        sigset_t mask, old;
        cio__signal_worker_mask(&mask);
        pthread_sigmask(SIG_SETMASK, &mask, &old);
        e = pthread_create(&tid, &attr, worker_main, w);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    if (!e)
        return 0;
    cio__lock(&pool.mu);
    *back = take_locked(w);
    all_unlink(w);
    if (--pool.threads == 0)
        pthread_cond_broadcast(&pool.drained);
    publish_locked();
    pthread_mutex_unlock(&pool.mu);
    pthread_cond_destroy(&w->cv);
    free(w);
    return -EAGAIN;
}

/* Hand op to an idle worker, a new one, or the queue.  A new thread is
 * started after pool.mu is let go: it costs milliseconds under load, and a
 * lock holder that is slow or preempted makes every other thread queue
 * behind it, each of them then waiting its turn for a CPU once woken. */
/* Hand op to the most recently idle worker, if there is one: that worker,
 * or NULL.  pool.mu held.  The wake-up is owed (w->owed) and sent by
 * wake_handed once pool.mu is let go: a wake-up sent under it lets the
 * woken worker take the holder's CPU, and on a saturated machine the
 * holder then keeps pool.mu, which every op's submit and every worker
 * going idle takes, through a whole round of the other threads' slices
 * (docs/performance.md, fourteenth round).  A worker does not exit (retire,
 * or stop at a shutdown) while a wake-up is owed to it (next_op), so its
 * condvar outlives the late signal. */
static struct cio__worker *hand_idle_locked(cio__op *op)
{
    struct cio__worker *w = pool.idle_head;
    if (!w)
        return NULL;
    idle_unlink(w);
    w->op = op;
    op->handed = w;
    atomic_fetch_add_explicit(&w->owed, 1, memory_order_relaxed);
    return w;
}

/* The wake-up hand_idle_locked owed w; no pool lock held.  The worker
 * looks at w->op under pool.mu before it waits, so none is lost; w may
 * exit as soon as the count is down (not before). */
static void wake_handed(struct cio__worker *w)
{
    pthread_cond_signal(&w->cv);
    void (*hook)(void) = cio__pool_wake_hook;
    if (hook)
        hook();
    atomic_fetch_sub_explicit(&w->owed, 1, memory_order_release);
}

int cio__pool_submit(cio__op *op)
{
    int e = 0;
    struct cio__worker *fresh = NULL, *handed = NULL, *w;
    cio__lock(&pool.mu);
    op->handed = NULL;
    if (pool.stopping) {
        e = -ECANCELED;
    } else if ((w = hand_idle_locked(op)) != NULL) {
        e = !w->timer.ok; /* with a timer, it delivers the deadline */
        handed = w;
    } else if (pool.threads < pool.cfg.max_threads) {
        /* Whether it gets a timer is not known until it runs; as the last
         * one did.  If it does not, the timer thread delivers the deadline
         * (it skips only ops whose caller wakes by their deadline), and the
         * first stop reason wakes the caller to re-signal.  A caller that
         * also slept until the deadline would, at a mass expiry, wake there
         * only to find its op on its worker's way out (docs/performance.md,
         * sixth round). */
        fresh = new_worker_locked(op);
        e = fresh ? !pool.last_timed : -ENOMEM;
    } else {
        queue_push(op);
        e = 1;
    }
    pthread_mutex_unlock(&pool.mu);
    if (handed)
        wake_handed(handed);
    cio__op *back;
    if (fresh && start_worker(fresh, &back) < 0)
        e = -EAGAIN;
    return e;
}

/* Ops that a submit queued while a thread was starting counted that thread
 * as a worker ahead of them; if it could not be made, nobody may be left
 * to take them.  A worker gone idle meanwhile takes them first; then,
 * while there is room under the cap, the queue's head gets a worker of its
 * own.  If that thread cannot be made either, the head
 *   - fails alone, with its reason, if it got one meanwhile;
 *   - goes to a worker gone idle meanwhile;
 *   - or back to the front of the queue, if a worker is left, busy: it
 *     waits as behind a full pool;
 *   - else fails with the whole queue, each op with its reason if it has
 *     one, or with the start's error, as the submit that failed did.
 * No lock held: failing an op takes its own.  An op popped here is this
 * thread's alone (its caller waits for DONE), but while its worker starts:
 * then a canceller may take it back from that worker (start_worker's
 * *back is NULL).  An op to fail leaves the queue for good under pool.mu
 * (queued = 0), so no canceller unlinks it from a list that is no longer
 * the pool's: the canceller only sets the reason, which the failure then
 * reports. */
void cio__pool_rescue(void)
{
    for (;;) {
        cio__op *op = NULL;
        struct cio__worker *w = NULL;
        cio__lock(&pool.mu);
        while (!pool.stopping && pool.queue && pool.idle_head)
            wake_handed(hand_idle_locked(queue_pop())); /* rare: under pool.mu */
        if (!pool.stopping && pool.queue && pool.threads < pool.cfg.max_threads) {
            op = queue_pop();
            w = new_worker_locked(op);
        }
        pthread_mutex_unlock(&pool.mu);
        if (!op)
            return;
        cio__op *back = op;
        int e = w ? start_worker(w, &back) : -ENOMEM;
        if (e == 0 || !back)
            continue;
        cio__op *doomed = NULL;
        int go_on = 0;
        cio__lock(&pool.mu);
        if (cio__op_stop_reason(back)) {
            doomed = back;
            back->qnext = NULL;
            go_on = 1;
        } else if (!pool.stopping && (w = hand_idle_locked(back)) != NULL) {
            wake_handed(w); /* a worker gone idle meanwhile has it */
        } else if (!pool.stopping && pool.threads > 0) {
            queue_push_front(back);
        } else {
            back->qnext = pool.queue;
            pool.queue = pool.queue_tail = NULL;
            doomed = back;
        }
        for (cio__op *o = doomed; o; o = o->qnext)
            o->queued = 0;
        pthread_mutex_unlock(&pool.mu);
        for (cio__op *next; doomed; doomed = next) {
            next = doomed->qnext; /* before it is failed: its caller may go */
            cio__op_fail_unstarted(doomed, -e);
        }
        if (!go_on)
            return;
    }
}

/* Take op back from the worker it was handed to, which has not taken it
 * yet; that worker goes back to waiting (idle, unless it never ran). */
static int take_back_locked(cio__op *op)
{
    struct cio__worker *w = op->handed;
    if (!w)
        return 0;
    w->op = NULL;
    op->handed = NULL;
    if (!w->fresh)
        idle_push(w);
    return 1;
}

static int dequeue_locked(cio__op *op)
{
    if (!op->queued)
        return 0;
    queue_unlink(op);
    return 1;
}

/* The take-back of both calls below; pool.mu held. */
static int unqueue_locked(cio__op *op)
{
    return take_back_locked(op) || dequeue_locked(op);
}

int cio__pool_unqueue(cio__op *op)
{
    cio__lock(&pool.mu);
    int found = unqueue_locked(op);
    pthread_mutex_unlock(&pool.mu);
    return found;
}

int cio__pool_try_unqueue(cio__op *op)
{
    if (pthread_mutex_trylock(&pool.mu) != 0)
        return -EBUSY;
    int found = unqueue_locked(op);
    pthread_mutex_unlock(&pool.mu);
    return found;
}

size_t cio__thread_stack(size_t want)
{
    size_t s = want < (size_t)PTHREAD_STACK_MIN ? (size_t)PTHREAD_STACK_MIN : want;
    /* The size asked is the thread's to run on, whatever the program's
     * thread-local storage takes from it (glibc: platform/stacktls_phdr.c). */
    size_t tls = cio__stack_tls_bytes();
    if (tls > SIZE_MAX - s)
        tls = 0; /* absurd: let pthread_create say so */
    return s + tls;
}

int cio__pool_start(const cio__pool_config *cfg)
{
    static int once;
    pthread_mutex_lock(&pool.mu);
    if (!once) {
        cio__cond_init(&pool.drained);
        once = 1;
    }
    pool.cfg = *cfg;
    pool.cfg.stack_size = cio__thread_stack(cfg->stack_size);
    pool.stopping = 0;
    pthread_mutex_unlock(&pool.mu);
    return 0;
}

void cio__pool_quiesce(void)
{
    pthread_mutex_lock(&pool.mu);
    pool.stopping = 1;
    pthread_mutex_unlock(&pool.mu);
}

void cio__pool_stop(void)
{
    pthread_mutex_lock(&pool.mu);
    pool.stopping = 1;
    for (struct cio__worker *w = pool.idle_head; w; w = w->next)
        pthread_cond_signal(&w->cv);
    while (pool.threads > 0)
        pthread_cond_wait(&pool.drained, &pool.mu);
    struct cio__worker *dead = take_dead_locked();
    pthread_mutex_unlock(&pool.mu);
    reap(dead);
}

pthread_t cio__worker_thread(const struct cio__worker *w)
{
    return w->tid;
}

cio__wtimer *cio__worker_timer(struct cio__worker *w)
{
    return w->timer.ok ? &w->timer : NULL;
}

atomic_int *cio__worker_park(struct cio__worker *w)
{
    return &w->park;
}

cio__park_left *cio__worker_left(struct cio__worker *w)
{
    return &w->left;
}

unsigned cio__worker_serial(const struct cio__worker *w)
{
    return w ? w->serial : 0;
}

void cio__pool_counts(unsigned *threads, unsigned *idle)
{
    uint64_t both = atomic_load_explicit(&pool.seen, memory_order_relaxed);
    *threads = (unsigned)(both >> 32);
    *idle = (unsigned)(both & 0xffffffffu);
}

void cio__pool_lock_for_fork(void)
{
    pthread_mutex_lock(&pool.mu);
}

/* In the child no worker exists: forget them all (their ops vanished with
 * them) and start afresh. */
void cio__pool_unlock_after_fork(int child)
{
    if (child) {
        while (pool.all) { /* idle, busy and dead alike */
            struct cio__worker *w = pool.all;
            pool.all = w->all_next;
            free(w);
        }
        pool.idle_head = pool.dead = NULL;
        pool.queue = pool.queue_tail = NULL;
        pool.threads = pool.idle = 0;
        publish_locked();
        cio__cond_init(&pool.drained);
        cio__on_lib_thread = 0; /* a fork in a cio_call's fn: the child's own thread */
    }
    pthread_mutex_unlock(&pool.mu);
}
