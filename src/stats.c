/* Counters for cio_get_stats, and the tracer behind cio_set_trace. */
#include "internal.h"

#include <errno.h>

cio__counters cio__stats;
atomic_int cio__tracing;

static struct {
    pthread_mutex_t mu;
    cio_trace_fn fn; /* trace.mu */
    void *arg;
} trace = {.mu = PTHREAD_MUTEX_INITIALIZER};

void cio__count(atomic_uint_fast64_t *c)
{
    atomic_fetch_add_explicit(c, 1, memory_order_relaxed);
}

void cio__count_outcome(cio__op_counts *c, long result)
{
    c->timeouts += result == -ETIMEDOUT;
    c->cancels += result == -ECANCELED;
    c->done++;
}

void cio__counts_fold(const cio__op_counts *c)
{
    atomic_fetch_add_explicit(&cio__stats.ops_started, c->started, memory_order_relaxed);
    atomic_fetch_add_explicit(&cio__stats.ops_done, c->done, memory_order_relaxed);
    atomic_fetch_add_explicit(&cio__stats.timeouts, c->timeouts, memory_order_relaxed);
    atomic_fetch_add_explicit(&cio__stats.cancels, c->cancels, memory_order_relaxed);
}

static uint64_t get(atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void cio_get_stats(cio_stats *out)
{
    if (!out)
        return;
    cio__op_counts live = {0, 0, 0, 0};
    cio__files_sum_counts(&live); /* holds files.mu: no file is half-folded */
    out->ops_started = live.started + get(&cio__stats.ops_started);
    out->ops_done = live.done + get(&cio__stats.ops_done);
    out->timeouts = live.timeouts + get(&cio__stats.timeouts);
    out->cancels = live.cancels + get(&cio__stats.cancels);
    out->signals_sent = get(&cio__stats.signals_sent);
    out->resignals = get(&cio__stats.resignals);
    cio__pool_counts(&out->threads, &out->threads_idle);
    out->timers = cio__timer_count();
}

void cio_set_trace(cio_trace_fn fn, void *arg)
{
    pthread_mutex_lock(&trace.mu);
    trace.fn = fn;
    trace.arg = arg;
    atomic_store(&cio__tracing, fn != NULL);
    pthread_mutex_unlock(&trace.mu);
}

void cio__emit(int type, int fd, int which, const struct cio__worker *w, long result, int err)
{
    cio_event ev = {type, fd, which, cio__worker_serial(w), result, err, cio_now()};
    pthread_mutex_lock(&trace.mu);
    if (trace.fn)
        trace.fn(&ev, trace.arg);
    pthread_mutex_unlock(&trace.mu);
}

void cio__trace_lock_for_fork(void)
{
    pthread_mutex_lock(&trace.mu);
}

void cio__trace_unlock_after_fork(void)
{
    pthread_mutex_unlock(&trace.mu);
}
