/*
 * One blocking operation, and the cancel protocol that stops it.
 *
 * The hand-off, numbered as in docs/protocol.md (every step under op->mu
 * unless it says otherwise):
 *   1. The caller publishes the op (QUEUED) and hands it to the pool.
 *   2. The worker checks op->reason; if set it finishes at once, else it
 *      becomes RUNNING and publishes itself in op->worker.  Checking the
 *      reason and publishing under the same lock as step 4 is what closes
 *      the check-then-publish race.
 *   3. The worker runs the syscall with no lock held; on EINTR it retries
 *      unless op->reason is set (a stray or late signal changes nothing).
 *   4. A canceller sets op->reason (first reason wins) and, if the op is
 *      RUNNING, sends the signal to op->worker.  A QUEUED op that no worker
 *      has taken yet (in the pool's queue, or handed to a worker that has
 *      not woken up) is taken back and finished by the canceller itself: a
 *      stop never waits for a worker to get a CPU.
 *   5. The signal may land after step 2 but before the syscall starts, and
 *      then it is lost.  So the caller, waiting for DONE, re-sends it with a
 *      doubling back-off for as long as the op is RUNNING with a reason.
 *   6. The worker finishes: it clears op->worker and sets DONE under the
 *      lock.  From then on nobody signals it for this op, so a signal can
 *      only be late (already sent), and step 3 makes a late one harmless.
 */
#include "internal.h"

#include <errno.h>

_Thread_local cio__watcher *cio__watcher_self; /* see internal.h */

#define KICK_FIRST ((cio_time_t)500 * 1000)     /* 0.5 ms */
#define KICK_MAX ((cio_time_t)64 * 1000 * 1000) /* 64 ms */

static void finish_locked(cio__op *op, long result)
{
    op->result = result;
    op->state = CIO__OP_DONE;
    op->worker = NULL;
    pthread_cond_broadcast(op->cv);
}

/* The result of an op stopped by reason before a worker ran it: a write
 * that the caller's try had begun reports the bytes that went out. */
static long cut_result(const cio__op *op, int reason)
{
    return op->done ? (long)op->done : -reason;
}

/* Send the cancel signal to the worker inside op; op->mu held, RUNNING. */
static void kick_locked(cio__op *op)
{
    pthread_kill(cio__worker_thread(op->worker), cio__signal_number());
    cio__count(&cio__stats.signals_sent);
    if (op->signals++ > 0)
        cio__count(&cio__stats.resignals);
    CIO__EMIT(CIO_EV_SIGNAL, op->fd, op->which + 1, op->worker, 0,
              atomic_load_explicit(&op->reason, memory_order_relaxed));
    op->next_kick = cio_now() + op->backoff;
    op->backoff = op->backoff * 2 > KICK_MAX ? KICK_MAX : op->backoff * 2;
}

cio_time_t cio__op_kick_if_due_locked(cio__op *op, cio_time_t now)
{
    if (op->state == CIO__OP_RUNNING && cio__op_stop_reason(op) && now >= op->next_kick)
        kick_locked(op);
    return op->next_kick;
}

void cio__op_interrupt_locked(cio__op *op, int reason)
{
    int none = 0;
    if (!atomic_compare_exchange_strong(&op->reason, &none, reason))
        return; /* an earlier reason stands */
    op->stop_at = cio_now();
    if (op->state == CIO__OP_QUEUED && cio__pool_unqueue(op))
        finish_locked(op, cut_result(op, reason));
    else if (op->state == CIO__OP_RUNNING)
        kick_locked(op);
    pthread_cond_broadcast(op->cv); /* the caller starts its back-off clock */
}

int cio__op_stop_reason(cio__op *op)
{
    return atomic_load_explicit(&op->reason, memory_order_acquire);
}

/* Step 5: wait for DONE, re-signalling while a reason is unanswered.  A
 * deadline here (cio_call, cio_open: no file, so no timer) is the caller's
 * own to enforce. */
static void wait_done_locked(cio__op *op, cio_time_t deadline)
{
    while (op->state != CIO__OP_DONE) {
        int stopping = op->state == CIO__OP_RUNNING && cio__op_stop_reason(op);
        cio_time_t now = cio_now();
        if (stopping && op->signals > 0 && now >= op->next_kick)
            kick_locked(op);
        if (deadline != CIO_NO_DEADLINE && now >= deadline) {
            cio__op_interrupt_locked(op, ETIMEDOUT);
            deadline = CIO_NO_DEADLINE;
            continue;
        }
        if (stopping && op->may_orphan && now >= op->stop_at + CIO__ORPHAN_GRACE) {
            op->orphaned = 1; /* rule 15: the caller goes; the worker goes on */
            return;
        }
        cio_time_t until = stopping ? op->next_kick : CIO_NO_DEADLINE;
        if (stopping && op->may_orphan && op->stop_at + CIO__ORPHAN_GRACE < until)
            until = op->stop_at + CIO__ORPHAN_GRACE;
        if (deadline != CIO_NO_DEADLINE && (until == CIO_NO_DEADLINE || deadline < until))
            until = deadline;
        cio__cond_wait_until(op->cv, op->mu, until);
    }
}

void cio__op_prepare_locked(cio__op *op)
{
    op->state = CIO__OP_NEW;
    op->worker = NULL;
    op->queued = 0;
    op->signals = 0;
    op->backoff = KICK_FIRST;
    op->next_kick = 0;
    atomic_init(&op->reason, 0);
}

long cio__op_run_locked(cio__op *op, cio_time_t deadline)
{
    op->state = CIO__OP_QUEUED;
    CIO__EMIT(CIO_EV_OP_START, op->fd, op->which + 1, NULL, 0, 0);
    int e = cio__pool_submit(op);
    if (e < 0)
        return op->done ? (long)op->done : e;
    wait_done_locked(op, deadline);
    return op->orphaned ? -cio__op_stop_reason(op) : op->result;
}

/* Steps 2, 3 and 6, on the worker. */
void cio__op_execute(cio__op *op, struct cio__worker *w)
{
    pthread_mutex_lock(op->mu);
    int reason = cio__op_stop_reason(op);
    if (reason) {
        finish_locked(op, cut_result(op, reason));
        pthread_mutex_unlock(op->mu);
        return;
    }
    op->state = CIO__OP_RUNNING;
    op->started = 1;
    op->worker = w;
    pthread_mutex_unlock(op->mu);

    CIO__EMIT(CIO_EV_OP_RUN, op->fd, op->which + 1, w, 0, 0);
    long r = op->run(op);

    pthread_mutex_lock(op->mu);
    if (op->orphaned) {
        op->result = r;
        op->state = CIO__OP_DONE;
        op->worker = NULL;
        op->adopt(op); /* unlocks op->mu; op may be gone */
        return;
    }
    finish_locked(op, r);
    pthread_mutex_unlock(op->mu);
}
