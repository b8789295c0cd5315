/*
 * Deadlines: one heap of armed timers and one thread that sleeps until the
 * earliest.  How it sleeps is the backend's business (platform/sleep_*.c):
 * on a condvar bound to CLOCK_MONOTONIC, or blocked on a timerfd.
 *
 * A due timer is taken out of the heap and fired with no lock held, so its
 * owner may take its own lock (which ranks above timer.mu).  The owner's
 * fire callback re-checks its real deadline under that lock: a timer that
 * was moved or cleared after it was taken out is therefore stale and does
 * nothing, which is what makes "clear, then the old timer fires" harmless.
 *
 * The thread is woken only when the earliest deadline moves earlier; a
 * deadline moved later (the idle-timeout idiom) costs no wake-up, the thread
 * just finds nothing due and sleeps again.
 *
 * Every field of `timer` is guarded by timer.mu.
 */
#include "internal.h"

#include <errno.h>

static struct {
    pthread_mutex_t mu;
    cio__heap heap;
    const cio__sleeper *sleeper; /* NULL until cio__timer_start */
    int running, stop;
    size_t stack; /* the thread's stack size */
    pthread_t tid;
    cio_time_t sleeping_until; /* what the thread was told; 0 = forever */
    atomic_uint count;         /* heap.n, for cio_get_stats (publish_locked) */
} timer = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The number of armed timers, stored after each change for cio_get_stats
 * to read with no lock: under load a holder of timer.mu is preempted with
 * it, and a snapshot waited up to 70 ms here (docs/performance.md,
 * eighteenth round).  timer.mu held. */
static void publish_locked(void)
{
    atomic_store_explicit(&timer.count, (unsigned)timer.heap.n, memory_order_relaxed);
}

static cio__timer *owner(cio__heap_node *n)
{
    return (cio__timer *)((char *)n - offsetof(cio__timer, node));
}

/* Take out every due timer, earliest first, holding each owner; timer.mu
 * held.  The batch keeps that order, so a thread that fell behind serves
 * the oldest deadline first. */
static cio__timer *take_due_locked(cio_time_t now)
{
    cio__timer *batch = NULL, **tail = &batch;
    cio__heap_node *n;
    while ((n = cio__heap_min(&timer.heap)) && n->key <= now) {
        cio__timer *t = owner(n);
        cio__heap_remove(&timer.heap, n);
        t->ops->hold(t);
        t->fire_next = NULL;
        *tail = t;
        tail = &t->fire_next;
    }
    publish_locked();
    return batch;
}

void (*cio__timer_fire_hook)(void);

static void *timer_main(void *arg)
{
    (void)arg; /* its signal mask comes from ensure_thread_locked */
    cio__on_lib_thread = 1;
    cio__lock(&timer.mu);
    while (!timer.stop) {
        cio__timer *batch = take_due_locked(cio_now());
        if (batch) {
            pthread_mutex_unlock(&timer.mu);
            void (*hook)(void) = cio__timer_fire_hook;
            if (hook)
                hook();
            for (cio__timer *t = batch, *next; t; t = next) {
                next = t->fire_next;
                t->ops->fire(t);
            }
            cio__lock(&timer.mu);
            continue;
        }
        cio__heap_node *n = cio__heap_min(&timer.heap);
        timer.sleeping_until = n ? n->key : CIO_NO_DEADLINE;
        timer.sleeper->wait(&timer.mu, timer.sleeping_until);
    }
    pthread_mutex_unlock(&timer.mu);
    return NULL;
}

/* Make sure the thread runs; timer.mu held. */
static int ensure_thread_locked(void)
{
    /* While cio__timer_stop runs, no thread is started: it would never be
     * joined (the stop saw none), and a restart would make a second one.
     * The timer waits in the heap, and the restart starts the thread. */
    if (timer.running || timer.stop)
        return 0;
    pthread_attr_t attr;
    int e = pthread_attr_init(&attr);
    if (e)
        return -e;
    pthread_attr_setstacksize(&attr, timer.stack);
    sigset_t mask, old;
    cio__signal_worker_mask(&mask);
    pthread_sigmask(SIG_SETMASK, &mask, &old);
    e = pthread_create(&timer.tid, &attr, timer_main, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
    if (e)
        return -EAGAIN;
    timer.running = 1;
    timer.sleeping_until = CIO_NO_DEADLINE; /* it reads the heap before it sleeps */
    return 0;
}

void cio__timer_init(cio__timer *t, const cio__timer_ops *ops)
{
    cio__heap_node_init(&t->node);
    t->ops = ops;
    t->fire_next = NULL;
}

int cio__timer_arm(cio__timer *t, cio_time_t when)
{
    pthread_mutex_lock(&timer.mu);
    /* With the library stopped the timer waits in the heap for a restart. */
    int e = timer.sleeper ? ensure_thread_locked() : 0;
    if (!e)
        e = cio__heap_set(&timer.heap, &t->node, when);
    publish_locked();
    if (!e && timer.sleeper && cio__heap_min(&timer.heap) == &t->node &&
        (timer.sleeping_until == CIO_NO_DEADLINE || when < timer.sleeping_until)) {
        timer.sleeping_until = when;
        timer.sleeper->wake(when);
    }
    pthread_mutex_unlock(&timer.mu);
    return e;
}

void cio__timer_disarm(cio__timer *t)
{
    pthread_mutex_lock(&timer.mu);
    cio__heap_remove(&timer.heap, &t->node);
    publish_locked();
    pthread_mutex_unlock(&timer.mu);
}

/* The same, unless timer.mu is taken: 1 if it is out of the heap now. */
int cio__timer_try_disarm(cio__timer *t)
{
    if (pthread_mutex_trylock(&timer.mu) != 0)
        return 0;
    cio__heap_remove(&timer.heap, &t->node);
    publish_locked();
    pthread_mutex_unlock(&timer.mu);
    return 1;
}

int cio__timer_armed(cio__timer *t)
{
    pthread_mutex_lock(&timer.mu);
    int in = cio__heap_in(&t->node);
    pthread_mutex_unlock(&timer.mu);
    return in;
}

unsigned cio__timer_count(void)
{
    return atomic_load_explicit(&timer.count, memory_order_relaxed);
}

int cio__timer_start(int kind, size_t stack_size)
{
    const cio__sleeper *s = kind == CIO_TIMER_HEAP ? &cio__sleeper_cond : &cio__sleeper_timerfd;
    int e = s->open();
    if (e < 0 && kind == CIO_TIMER_AUTO)
        e = (s = &cio__sleeper_cond)->open();
    if (e < 0)
        return e;
    pthread_mutex_lock(&timer.mu);
    timer.sleeper = s;
    timer.stop = 0;
    timer.stack = stack_size;
    e = timer.heap.n ? ensure_thread_locked() : 0; /* deadlines from before */
    pthread_mutex_unlock(&timer.mu);
    return e;
}

void cio__timer_stop(void)
{
    pthread_mutex_lock(&timer.mu);
    const cio__sleeper *s = timer.sleeper;
    int running = timer.running;
    timer.stop = 1;
    if (running)
        s->wake(CIO_NO_DEADLINE);
    pthread_mutex_unlock(&timer.mu);
    if (running)
        pthread_join(timer.tid, NULL);
    pthread_mutex_lock(&timer.mu);
    timer.running = 0;
    timer.sleeper = NULL;
    pthread_mutex_unlock(&timer.mu);
    if (s)
        s->close();
}

void cio__timer_lock_for_fork(void)
{
    pthread_mutex_lock(&timer.mu);
}

/* The child has no timer thread, and must not share the parent's timerfd. */
void cio__timer_unlock_after_fork(int child)
{
    if (child) {
        if (timer.sleeper)
            timer.sleeper->forget();
        timer.sleeper = NULL;
        timer.running = 0;
    }
    pthread_mutex_unlock(&timer.mu);
}
