/* Counters for cio_get_stats, and the tracer behind cio_set_trace. */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>

cio__counters cio__stats;
atomic_int cio__tracing;

/* The tracer is an immutable pair behind one atomic pointer, so an event
 * takes no lock: millions of events a second from every thread would make
 * a lock the hottest in the library, and a worker waiting for it between
 * step 2 and its syscall is one more place where a signal gets lost.  A
 * replaced pair is kept (on `retired`), since an event on another thread
 * may still be using it; cio_set_trace is rare, the pairs are small. */
struct tracer {
    cio_trace_fn fn;
    void *arg;
    struct tracer *retired;
};

static _Atomic(struct tracer *) tracer;
static struct tracer *retired; /* set_mu */
static pthread_mutex_t set_mu = PTHREAD_MUTEX_INITIALIZER;

void cio__count(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

/* Its one writer holds the file's lock (cio__file_counts): a plain add,
 * published by a release store. */
static void bump(atomic_uint_fast64_t *c, uint64_t n)
{
    uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
    atomic_store_explicit(c, v + n, memory_order_release);
}

void cio__file_count_started(cio__file_counts *c, int64_t n)
{
    bump(&c->started, (uint64_t)n); /* a negative n wraps to a take-back */
}

void cio__file_count_outcome(cio__file_counts *c, long result)
{
    bump(&c->done, 1);
    if (result == -ETIMEDOUT)
        bump(&c->timeouts, 1);
    else if (result == -ECANCELED)
        bump(&c->cancels, 1);
}

void cio__file_counts_add(cio__file_counts *c, cio__op_counts *out)
{
    out->cancels += atomic_load_explicit(&c->cancels, memory_order_acquire);
    out->timeouts += atomic_load_explicit(&c->timeouts, memory_order_acquire);
    out->done += atomic_load_explicit(&c->done, memory_order_acquire);
    out->started += atomic_load_explicit(&c->started, memory_order_acquire);
}

void cio__count_started(void)
{
    atomic_fetch_add(&cio__stats.ops_started, 1);
}

/* One op's outcome into the totals, and its start with it if started. */
static void count_into_totals(uint64_t started, long result)
{
    cio__op_counts c = {started, 1, result == -ETIMEDOUT, result == -ECANCELED};
    cio__counts_fold(&c);
}

void cio__count_ended(long result)
{
    count_into_totals(0, result);
}

void cio__count_direct(long result)
{
    count_into_totals(1, result);
}

/* Sequentially consistent, and in this order: a reader that sees an op's
 * done sees its started (cio__counts_add_totals). */
void cio__counts_fold(const cio__op_counts *c)
{
    if (c->started)
        atomic_fetch_add(&cio__stats.ops_started, c->started);
    if (c->done)
        atomic_fetch_add(&cio__stats.ops_done, c->done);
    if (c->timeouts)
        atomic_fetch_add(&cio__stats.timeouts, c->timeouts);
    if (c->cancels)
        atomic_fetch_add(&cio__stats.cancels, c->cancels);
}

void cio__file_counts_fold(cio__file_counts *c)
{
    cio__op_counts sum = {0, 0, 0, 0};
    cio__file_counts_add(c, &sum);
    cio__counts_fold(&sum);
}

void cio__counts_add_totals(cio__op_counts *c)
{
    c->cancels += atomic_load(&cio__stats.cancels);
    c->timeouts += atomic_load(&cio__stats.timeouts);
    c->done += atomic_load(&cio__stats.ops_done);
    c->started += atomic_load(&cio__stats.ops_started);
}

static uint64_t get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void cio_get_stats(cio_stats *out)
{
    if (!out)
        return;
    /* The live files and the totals under one lock (files.mu): a file
     * closed meanwhile is counted once, live or folded, never both. */
    cio__op_counts all = {0, 0, 0, 0};
    cio__files_sum_counts(&all);
    out->ops_started = all.started;
    out->ops_done = all.done;
    out->timeouts = all.timeouts;
    out->cancels = all.cancels;
    out->signals_sent = get(&cio__stats.signals_sent);
    out->resignals = get(&cio__stats.resignals);
    cio__pool_counts(&out->threads, &out->threads_idle);
    out->timers = cio__timer_count();
    out->callers_waiting = atomic_load_explicit(&cio__callers_parked, memory_order_relaxed);
}

void cio_set_trace(cio_trace_fn fn, void *arg)
{
    struct tracer *t = NULL;
    if (fn && (t = malloc(sizeof *t))) {
        t->fn = fn;
        t->arg = arg;
    }
    pthread_mutex_lock(&set_mu);
    struct tracer *old = atomic_exchange(&tracer, t);
    atomic_store(&cio__tracing, t != NULL);
    if (old) {
        old->retired = retired;
        retired = old;
    }
    pthread_mutex_unlock(&set_mu);
}

void cio__emit(int type, int fd, int which, const struct cio__worker *w, long result, int err)
{
    struct tracer *t = atomic_load_explicit(&tracer, memory_order_acquire);
    if (!t)
        return;
    cio_event ev = {type, fd, which, cio__worker_serial(w), result, err, cio_now()};
    t->fn(&ev, t->arg);
}
