/*
 * One blocking operation, and the cancel protocol that stops it.
 *
 * The hand-off, numbered as in docs/protocol.md (every step under op->mu
 * unless it says otherwise):
 *   1. The caller publishes the op (QUEUED) and hands it to the pool, with
 *      op->mu let go while it does (pool.mu is global: cio__op_run_locked).
 *   2. The worker checks op->reason; if set it finishes at once, else it
 *      becomes RUNNING and publishes itself in op->worker.  Checking the
 *      reason and publishing under the same lock as step 4 is what closes
 *      the check-then-publish race.  A worker with its own kernel timer
 *      arms it at the op's deadline, repeating (2a).
 *   3. The worker runs the syscall with no lock held (on an O_NONBLOCK fd,
 *      the syscall and a poll(2) until it would not block, io.c, as one
 *      blocking call); on EINTR it retries
 *      unless op->reason is set (a stray or late signal changes nothing),
 *      or the op's deadline has passed: then it sets ETIMEDOUT itself (3a).
 *  3p. A read whose caller's try found nothing to read may instead park:
 *      the worker, the cancel signal blocked, publishes PARKED in its park
 *      word and waits in ppoll (the signal unblocked for the wait alone),
 *      then takes the word back (PARKED -> NONE) and reads without
 *      blocking.  If it cannot take it back, a stop released the op (4p).
 *   4. A canceller sets op->reason (first reason wins) and, if the op is
 *      RUNNING, sends the signal to op->worker.  A QUEUED op that no worker
 *      has taken yet (in the pool's queue, or handed to a worker that has
 *      not woken up) is taken back and finished by the canceller itself if
 *      pool.mu is free, else by its caller, woken (pool.mu is not waited
 *      for under op->mu): a stop never waits for a worker to get a CPU.
 *  4p. If that worker is parked, the canceller takes the word
 *      (PARKED -> RELEASED), finishes the op with the reason and wakes the
 *      caller itself: the worker has read nothing, and never touches the op
 *      again.  Then (after the lock, where it can) it sends the worker its
 *      one signal, pending if the wait has not begun, and says GONE; only
 *      then may the worker, back from its wait, go on to another op.
 *   5. The signal may land after step 2 but before the syscall starts, and
 *      then it is lost.  So it is sent again, with a back-off, for as long
 *      as the op is RUNNING with a reason: by the worker's kernel timer,
 *      which step 4 arms to repeat (5a), or, where there is none, by the
 *      caller, whom step 4 then wakes to start its back-off clock.
 *   6. The worker finishes: it clears op->worker and sets DONE under the
 *      lock, and wakes its caller (the caller's own wake-up: one, nobody
 *      else's; where it can, just after the unlock); then it disarms its
 *      timer, before it takes another op.  From DONE on nobody signals it
 *      for this op, so a signal can only be late (already sent, or sent by
 *      the timer before it was disarmed), and step 3 makes a late one
 *      harmless.
 */
#include "internal.h"

#include <errno.h>
#include <sched.h>
#include <unistd.h>

_Thread_local cio__watcher *cio__watcher_self; /* see internal.h */

#define KICK_FIRST ((cio_time_t)500 * 1000)     /* 0.5 ms */
#define KICK_MAX ((cio_time_t)64 * 1000 * 1000) /* 64 ms */
/* When a worker's kernel timer first repeats a cancel's signal (step 5a),
 * and how often after that.  A lost signal is rare (a window of a few
 * instructions); a stuck syscall that no signal moves costs one wasted
 * signal each time.  The first repeat comes after the next scheduler tick
 * (HZ >= 100), so arming it never makes it the CPU's earliest timer: that
 * would reprogram the clock-event device, which in a virtual machine is an
 * exit to the hypervisor (measured: 3.7 us a timer_settime instead of
 * 1.2 us; a cancel across CPUs took 36 us at p50 with the repeat 0.5 ms
 * out, 17-22 us with it 10 ms out; docs/performance.md, fourth round). */
#define KTIMER_FIRST ((cio_time_t)10 * 1000 * 1000) /* 10 ms */
#define KICK_EVERY ((cio_time_t)2 * 1000 * 1000)    /* 2 ms */

/* The worker's kernel timer, if it has one and the op may use it: an op
 * that may be orphaned keeps the caller in the loop (rule 15 needs it
 * awake to give up in time). */
static cio__wtimer *ktimer_of(const cio__op *op)
{
    return op->worker && !op->may_orphan ? cio__worker_timer(op->worker) : NULL;
}

/* The timer stops (a deadline cleared while the op runs); a signal it
 * already sent is late.  (An op that may be orphaned never arms it.) */
static void ktimer_disarm_locked(cio__op *op)
{
    if (op->ktimer)
        cio__wtimer_set(ktimer_of(op), CIO_NO_DEADLINE, 0);
    op->ktimer = 0;
}

/* Its own wake-up has one waiter, its caller; a shared condvar (the
 * file's, for ops that may be orphaned; a call's) may have others, and each
 * must see.  The first half of a wake-up, under op->mu: its token goes to
 * cio__wake_post_late once op->mu is unlocked (NULL: nothing left to do). */
static void *wake_caller_early_locked(cio__op *op)
{
    if (!op->cv)
        return cio__wake_post_early(&op->own_wake);
    pthread_cond_broadcast(op->cv);
    return NULL;
}

static void wake_caller_locked(cio__op *op)
{
    cio__wake_post_late(wake_caller_early_locked(op));
}

/* Step 6, save the wake-up's second half (the token).  An op whose worker's
 * timer is armed for it is finished only by that worker, which disarms the
 * timer itself once its caller is woken (cio__op_execute). */
static void *finish_early_locked(cio__op *op, long result)
{
    op->result = result;
    op->state = CIO__OP_DONE;
    op->worker = NULL;
    return wake_caller_early_locked(op);
}

static void finish_locked(cio__op *op, long result)
{
    cio__wake_post_late(finish_early_locked(op, result));
}

long cio__op_cut_result(const cio__op *op, int reason)
{
    return op->done ? (long)op->done : -reason;
}

/* Send the cancel signal to the worker inside op; op->mu held, RUNNING. */
static void kick_locked(cio__op *op)
{
    cio__count(&cio__stats.signals_sent);
    if (op->signals++ > 0)
        cio__count(&cio__stats.resignals);
    CIO__EMIT(CIO_EV_SIGNAL, op->fd, op->which + 1, op->worker, 0,
              atomic_load_explicit(&op->reason, memory_order_relaxed));
    op->next_kick = cio_now() + op->backoff;
    op->backoff = op->backoff * 2 > KICK_MAX ? KICK_MAX : op->backoff * 2;
    pthread_kill(cio__worker_thread(op->worker), cio__signal_number());
}

cio_time_t cio__op_kick_if_due_locked(cio__op *op, cio_time_t now)
{
    if (op->state == CIO__OP_RUNNING && !op->on_caller && cio__op_stop_reason(op) &&
        now >= op->next_kick)
        kick_locked(op);
    return op->next_kick;
}

/* Step 5a: the worker's timer repeats the signal until step 6, so nobody
 * has to be woken to do it.  0 when there is no such timer. */
static int ktimer_repeat_locked(cio__op *op)
{
    cio__wtimer *t = ktimer_of(op);
    if (!t)
        return 0;
    op->ktimer_at = cio_now() + KTIMER_FIRST;
    op->ktimer_due = 0;
    cio__wtimer_set(t, op->ktimer_at, KICK_EVERY);
    op->ktimer = 1;
    return 1;
}

/* ---- steps 3p and 4p: a parked read, and its release ---- */

static void count_ktimer_resends_locked(const cio__op *op);
static int reason_or_due(cio__op *op, int *mine);

enum { PARK_NONE, PARK_IN, PARK_RELEASED, PARK_GONE, PARK_GONE_ARMED };

/* What a release still owes after the op is finished: the caller's wake-up
 * (its token), the signal to the parked thread, and GONE in its park word
 * (with whether a worker's timer was armed for the op: the worker disarms
 * it).  The parked thread is the op's worker (4p) or its caller (4c). */
struct owed {
    void *token;
    pthread_t thread;
    atomic_int *park;
    int armed;
    int caller; /* GONE first: see pay */
};

/* A canceller that holds a file's lock defers them until it lets go of it
 * (cio__op_defer_begin .. _end), so that the thread it wakes does not find
 * the lock taken: on one CPU that would be two more switches.  A canceller
 * that does not (or has more to owe than fits) pays them at once. */
#define OWED_MAX 8
static _Thread_local struct owed owed_q[OWED_MAX];
static _Thread_local unsigned owed_n, deferring;

/* A released worker must not go on before its signal is sent: GONE comes
 * after it.  A released caller waits for its signal itself (it counts the
 * ones its handler took, cio__park_caller_settle), so GONE comes first:
 * the signal that wakes it finds GONE said, and a caller that the kill
 * woke on this CPU does not have to give it back to its canceller to hear
 * GONE (two more switches, measured: 1.9x the floor's cancel, 1.2x
 * without).  Either way GONE is the last touch of the op (the thread was
 * copied out under its lock). */
static void pay(struct owed o)
{
    int gone = o.armed ? PARK_GONE_ARMED : PARK_GONE;
    cio__wake_post_late(o.token);
    if (o.caller)
        atomic_store_explicit(o.park, gone, memory_order_release);
    pthread_kill(o.thread, cio__signal_number());
    if (!o.caller)
        atomic_store_explicit(o.park, gone, memory_order_release);
}

static void owe(struct owed o)
{
    if (deferring && owed_n < OWED_MAX)
        owed_q[owed_n++] = o;
    else
        pay(o);
}

void cio__op_defer_begin(void)
{
    deferring++;
}

void cio__op_defer_end(void)
{
    if (--deferring)
        return;
    for (unsigned i = 0; i < owed_n; i++)
        pay(owed_q[i]);
    owed_n = 0;
}

/* Step 4p: release a parked read, or 0 when its worker is not parked. */
static int release_locked(cio__op *op, int reason)
{
    struct cio__worker *w = op->worker;
    int parked = PARK_IN;
    if (!atomic_compare_exchange_strong(cio__worker_park(w), &parked, PARK_RELEASED))
        return 0;
    /* From here on the worker touches neither op nor its file. */
    cio__count(&cio__stats.signals_sent);
    if (op->signals++ > 0)
        cio__count(&cio__stats.resignals);
    CIO__EMIT(CIO_EV_SIGNAL, op->fd, op->which + 1, w, 0, reason);
    cio__park_left *left = cio__worker_left(w); /* the worker reads it after GONE */
    left->fn = op->hold_parked ? op->left_parked : NULL;
    left->held = op->hold_parked ? op->hold_parked(op) : NULL;
    struct owed o = {NULL, cio__worker_thread(w), cio__worker_park(w), op->ktimer, 0};
    if (op->ktimer)
        count_ktimer_resends_locked(op);
    op->ktimer = 0;
    o.token = finish_early_locked(op, cio__op_cut_result(op, reason));
    owe(o);
    return 1;
}

void cio__op_park(struct cio__worker *w)
{
    atomic_store(cio__worker_park(w), PARK_IN);
}

int cio__op_unpark(struct cio__worker *w)
{
    int parked = PARK_IN;
    return atomic_compare_exchange_strong(cio__worker_park(w), &parked, PARK_NONE);
}

/* On a worker whose op was released: wait until its canceller has sent the
 * signal (the worker must exist until then; a few instructions, unless
 * that canceller was preempted), tell the op's owner that it is out of its
 * wait on the fd (a close waits for that: poll holds the open file), then
 * disarm its timer if it was armed for that op. */
/* Wait until the releaser of a parked thread has said GONE (a worker's
 * after sending it the signal, a caller's just before: a few instructions,
 * unless it was preempted); what it said. */
static int wait_gone(atomic_int *park)
{
    int p;
    for (unsigned spins = 0;
         (p = atomic_load_explicit(park, memory_order_acquire)) == PARK_RELEASED; spins++) {
        if (spins < 64)
            sched_yield();
        else
            nanosleep(&(struct timespec){0, 50 * 1000}, NULL);
    }
    atomic_store_explicit(park, PARK_NONE, memory_order_relaxed);
    return p;
}

static void released(struct cio__worker *w)
{
    int p = wait_gone(cio__worker_park(w));
    cio__park_left *left = cio__worker_left(w);
    if (left->fn)
        left->fn(left->held);
    left->fn = NULL;
    if (p == PARK_GONE_ARMED)
        cio__wtimer_set(cio__worker_timer(w), CIO_NO_DEADLINE, 0);
}

/* ---- steps 3c and 4c: an op parked on its caller's own thread ---- */

/* Step 4c: a stop (reason) or a deadline moved earlier (0) that finds the
 * caller parked takes the word and signals it, once: the signal cannot be
 * lost (the caller's wait is the only place it is unblocked), nor come
 * after the caller has gone (it waits for GONE).  A caller not parked sees
 * the reason, or the new deadline, before its next wait. */
static void caller_release_locked(cio__op *op, int reason)
{
    int parked = PARK_IN;
    if (!atomic_compare_exchange_strong(&op->park_word, &parked, PARK_RELEASED))
        return;
    if (reason) {
        cio__count(&cio__stats.signals_sent);
        if (op->signals++ > 0)
            cio__count(&cio__stats.resignals);
        CIO__EMIT(CIO_EV_SIGNAL, op->fd, op->which + 1, NULL, 0, reason);
    }
    owe((struct owed){NULL, op->caller, &op->park_word, 0, 1});
}

void cio__op_caller_begin_locked(cio__op *op)
{
    op->state = CIO__OP_RUNNING;
    op->started = 1;
    op->on_caller = 1;
    op->caller = pthread_self();
    atomic_store(&op->park_word, PARK_NONE);
    atomic_store(&op->park_due, CIO_NO_DEADLINE);
    /* traced as a hand-off to a "worker" 0, which is the caller itself */
    CIO__EMIT(CIO_EV_OP_START, op->fd, op->which + 1, NULL, 0, 0);
    CIO__EMIT(CIO_EV_OP_RUN, op->fd, op->which + 1, NULL, 0, 0);
}

void cio__op_caller_end_locked(cio__op *op)
{
    op->on_caller = 0;
    op->state = CIO__OP_NEW; /* done, or on its way to a worker */
}

void cio__op_caller_unpark(cio__op *op, struct cio__park_caller *pc)
{
    int parked = PARK_IN;
    if (atomic_compare_exchange_strong(&op->park_word, &parked, PARK_NONE))
        return;
    wait_gone(&op->park_word);
    cio__park_caller_settle(pc);
}

int cio__op_caller_park(cio__op *op, cio_time_t *due, struct cio__park_caller *pc)
{
    for (;;) {
        cio_time_t d = atomic_load(&op->due);
        pc->seen = cio__signal_seen; /* its handler runs in the wait alone */
        atomic_store(&op->park_due, d);
        atomic_store(&op->park_word, PARK_IN);
        /* After IN, never before: a stop that came first set its reason
         * and found no IN to take (so it sent nothing); one that comes
         * after finds IN (Dekker's order, both sequentially consistent). */
        int mine, reason = reason_or_due(op, &mine);
        if (!reason && cio__lib_stopping()) {
            /* a shutdown's cancel may have come before this op was
             * linked to its file: stop as an op refused by the pool */
            int none = 0;
            atomic_compare_exchange_strong(&op->reason, &none, ECANCELED);
            reason = cio__op_stop_reason(op);
        }
        if (!reason && atomic_load(&op->due) == d) {
            *due = d;
            return 0;
        }
        cio__op_caller_unpark(op, pc);
        if (mine) /* the caller is its deadline's timer */
            CIO__EMIT(CIO_EV_TIMER_FIRE, op->fd, op->which + 1, NULL, 0, ETIMEDOUT);
        if (reason)
            return reason;
    }
}

void cio__op_interrupt_locked(cio__op *op, int reason)
{
    int none = 0;
    if (!atomic_compare_exchange_strong(&op->reason, &none, reason))
        return; /* an earlier reason stands */
    op->stop_at = cio_now();
    if (op->state == CIO__OP_QUEUED) {
        /* Taken back here only if pool.mu is free: a canceller holds the
         * op's lock (a file's, wanted by every other caller, setter and
         * worker of that file), and on a saturated machine the holder of
         * pool.mu, global, may be off its CPU for tens of ms.  If it is
         * busy the caller, woken, takes the op back itself with no lock
         * held (wait_done_locked), unless a worker has it by then. */
        int back = cio__pool_try_unqueue(op);
        if (back > 0)
            finish_locked(op, cio__op_cut_result(op, reason));
        else if (back < 0)
            wake_caller_locked(op);
    } else if (op->state == CIO__OP_RUNNING && op->on_caller) {
        caller_release_locked(op, reason);
    } else if (op->state == CIO__OP_RUNNING) {
        if (release_locked(op, reason))
            return;
        /* The kill first: arming the repeat is a system call, and the
         * worker can be on its way out of the syscall meanwhile (it needs
         * this lock only at step 6, after its signal handler). */
        kick_locked(op);
        if (!ktimer_repeat_locked(op))
            wake_caller_locked(op); /* the caller starts its back-off clock */
    } else if (op->state == CIO__OP_NEW) {
        wake_caller_locked(op); /* it may wait for its turn (a note stops it) */
    }
}

int cio__op_noted_locked(const cio__op *op, long r)
{
    if (op->fn_answers && op->started) /* -1 then fails with EINTR */
        return op->fn_stop == EINTR && r == -1;
    if (atomic_load_explicit(&op->reason, memory_order_relaxed) != EINTR)
        return 0;
    /* a write that goes on until all is out returns the count it was cut
     * at; any other op that returned a count got it before the note could
     * stop it (a short send or recv may be the socket's own answer) */
    return r == -EINTR || (op->whole && r >= 0 && (size_t)r < op->n);
}

int cio__op_stop_reason(cio__op *op)
{
    return atomic_load_explicit(&op->reason, memory_order_acquire);
}

/* The reason to stop, or 0; a deadline that has passed is one even before
 * anybody set it: then ETIMEDOUT is set now (first reason wins) and *mine
 * says this call set it. */
static int reason_or_due(cio__op *op, int *mine)
{
    int reason = cio__op_stop_reason(op);
    cio_time_t due = atomic_load(&op->due);
    *mine = 0;
    if (reason || due == CIO_NO_DEADLINE || cio_now() < due)
        return reason;
    int none = 0;
    if (!atomic_compare_exchange_strong(&op->reason, &none, ETIMEDOUT))
        return none;
    *mine = 1;
    return ETIMEDOUT;
}

int cio__op_stop_or_due(cio__op *op)
{
    int mine;
    return reason_or_due(op, &mine);
}

int cio__op_eintr_reason(cio__op *op)
{
    int mine, reason = reason_or_due(op, &mine); /* step 3a */
    if (!mine)
        return reason;
    /* its own timer fired and signalled it: trace and count it so */
    CIO__EMIT(CIO_EV_TIMER_FIRE, op->fd, op->which + 1, op->worker, 0, ETIMEDOUT);
    cio__count(&cio__stats.signals_sent);
    op->due_counted = 1;
    CIO__EMIT(CIO_EV_SIGNAL, op->fd, op->which + 1, op->worker, 0, ETIMEDOUT);
    return ETIMEDOUT;
}

/* Step 2a: a deadline ahead, and a timer to deliver it straight to the
 * worker, repeating until step 6 (that repeat is step 5 for it). */
static void ktimer_arm_due_locked(cio__op *op)
{
    cio_time_t due = atomic_load(&op->due);
    cio__wtimer *t = ktimer_of(op);
    if (!t || due == CIO_NO_DEADLINE)
        return;
    op->ktimer_at = due;
    op->ktimer_due = 1;
    cio__wtimer_set(t, due, KICK_EVERY);
    op->ktimer = 1;
}

/* The signals a worker's kernel timer sent for an op that ends now, that
 * nobody counted (cio_stats: every signal sent, every resend), reckoned
 * from the timer's schedule: its expiries so far.  Not from the EINTRs
 * seen: a repeat that finds the syscall stuck, or a cio_call's fn that
 * retries, goes unseen (and an expiry while the last signal is still
 * pending, the kernel merges into it).  Repeating a stop, every expiry is a
 * resend (the canceller counted the first signal); at a deadline the first
 * is the op's first signal, which step 3a counted if it answered it.
 * Under op->mu, before the caller is woken to read the counts. */
static void count_ktimer_resends_locked(const cio__op *op)
{
    cio_time_t now = cio_now();
    if (now < op->ktimer_at)
        return;
    uint_fast64_t fired = (uint_fast64_t)((now - op->ktimer_at) / KICK_EVERY) + 1;
    uint_fast64_t sent = fired - (op->ktimer_due && op->due_counted);
    uint_fast64_t resent = fired - (op->ktimer_due ? 1 : 0);
    atomic_fetch_add_explicit(&cio__stats.signals_sent, sent, memory_order_relaxed);
    atomic_fetch_add_explicit(&cio__stats.resignals, resent, memory_order_relaxed);
}

void cio__op_set_due_locked(cio__op *op, cio_time_t t)
{
    /* A queued op's caller is not woken to re-time its wait: if it sleeps
     * past the new deadline, the timer thread stops the op (a wake-up
     * either way, and setting thousands of deadlines stays cheap). */
    atomic_store(&op->due, t);
    if (op->state != CIO__OP_RUNNING || cio__op_stop_reason(op))
        return;
    if (op->on_caller) { /* a parked caller waits until park_due: wake it if earlier */
        cio_time_t until = atomic_load(&op->park_due);
        if (t != CIO_NO_DEADLINE && (until == CIO_NO_DEADLINE || t < until))
            caller_release_locked(op, 0);
        return;
    }
    if (!ktimer_of(op))
        return;
    if (t == CIO_NO_DEADLINE)
        ktimer_disarm_locked(op);
    else
        ktimer_arm_due_locked(op);
}

int cio__op_expires_itself_locked(const cio__op *op)
{
    if (op->state == CIO__OP_QUEUED) /* its caller wakes by now to do it */
        return op->wake_at != CIO_NO_DEADLINE && op->wake_at <= cio_now();
    return op->state == CIO__OP_RUNNING && (op->ktimer || op->on_caller);
}

/* A queued op's caller is its deadline's timer: no thread has to be woken
 * to take it out of the queue (thousands may wait there at once).  So is
 * the caller of a running op whose worker has no kernel timer: the timer
 * thread skips a queued op whose caller wakes by its deadline, and if a
 * worker takes the op in that moment, nobody else would stop it.  An op
 * handed at once to an idle worker with a kernel timer is not its caller's
 * to time: that timer delivers the deadline once the worker runs it (and
 * the timer thread, finding it still QUEUED, would stop it).  A caller
 * asleep until the deadline armed a timer for nothing and, whenever the
 * worker was slower, woke there to find it on its way out and slept again
 * (docs/performance.md, fourth round).  When it is due, or 0; an op that
 * may be orphaned is left to the timer thread. */
static cio_time_t own_due(cio__op *op)
{
    int mine = (op->state == CIO__OP_QUEUED && op->self_timed) ||
               (op->state == CIO__OP_RUNNING && !op->ktimer);
    if (!mine || op->may_orphan || cio__op_stop_reason(op))
        return CIO_NO_DEADLINE;
    return atomic_load(&op->due);
}

static cio_time_t earliest(cio_time_t a, cio_time_t b)
{
    if (a == CIO_NO_DEADLINE)
        return b;
    return b == CIO_NO_DEADLINE || a < b ? a : b;
}

/* Step 5: wait for DONE, re-signalling while a reason is unanswered and no
 * kernel timer does it.  A deadline here (cio_call, cio_open: no file, so
 * no timer) is the caller's own to enforce. */
static void wait_done_locked(cio__op *op, cio_time_t deadline)
{
    while (op->state != CIO__OP_DONE) {
        int reason = cio__op_stop_reason(op);
        if (op->state == CIO__OP_QUEUED && reason && !op->took_back) {
            /* Step 4's take-back, left to the caller: pool.mu was busy, or
             * the reason came while this caller was submitting.  Once is
             * enough: the reason is set for good, so an op not taken back
             * now is a worker's, whose step 2 will see it (or, in
             * cio__pool_rescue's hands, is failed with it there). */
            op->took_back = 1;
            pthread_mutex_unlock(op->mu);
            int back = cio__pool_unqueue(op);
            cio__lock(op->mu);
            if (back)
                finish_locked(op, cio__op_cut_result(op, reason));
            continue;
        }
        int stopping = op->state == CIO__OP_RUNNING && reason;
        int resend = stopping && !op->ktimer;
        cio_time_t now = cio_now(), due = own_due(op);
        if (resend && op->signals > 0 && now >= op->next_kick)
            kick_locked(op);
        int due_passed = due != CIO_NO_DEADLINE && now >= due;
        if ((deadline != CIO_NO_DEADLINE && now >= deadline) || due_passed) {
            if (due_passed) /* the caller is its deadline's timer */
                CIO__EMIT(CIO_EV_TIMER_FIRE, op->fd, op->which + 1, NULL, 0, ETIMEDOUT);
            cio__op_interrupt_locked(op, ETIMEDOUT);
            deadline = CIO_NO_DEADLINE;
            continue;
        }
        if (stopping && op->may_orphan && now >= op->stop_at + CIO__ORPHAN_GRACE) {
            op->orphaned = 1; /* rule 15: the caller goes; the worker goes on */
            return;
        }
        cio_time_t until = resend ? op->next_kick : CIO_NO_DEADLINE;
        if (stopping && op->may_orphan)
            until = earliest(until, op->stop_at + CIO__ORPHAN_GRACE);
        until = earliest(earliest(until, deadline), due);
        op->wake_at = until;
        if (op->cv)
            cio__cond_wait_until(op->cv, op->mu, until);
        else
            cio__wake_wait_until(&op->own_wake, op->mu, until);
        op->wake_at = CIO_NO_DEADLINE;
    }
}

void cio__op_prepare_locked(cio__op *op)
{
    op->state = CIO__OP_NEW;
    op->worker = NULL;
    op->queued = 0;
    op->parkable = 0;
    op->on_caller = 0;
    atomic_init(&op->park_word, 0);
    atomic_init(&op->park_due, CIO_NO_DEADLINE);
    op->signals = 0;
    op->backoff = KICK_FIRST;
    op->next_kick = 0;
    op->ktimer = 0;
    op->ktimer_due = 0;
    op->ktimer_at = CIO_NO_DEADLINE;
    op->due_counted = 0;
    op->self_timed = 1;
    op->took_back = 0;
    op->wake_at = CIO_NO_DEADLINE;
    atomic_init(&op->reason, 0);
    atomic_init(&op->due, CIO_NO_DEADLINE);
}

long cio__op_run_locked(cio__op *op, cio_time_t deadline)
{
    op->state = CIO__OP_QUEUED;
    CIO__EMIT(CIO_EV_OP_START, op->fd, op->which + 1, NULL, 0, 0);
    /* Submitted with op->mu let go: pool.mu is global, and on a saturated
     * machine a submit waits tens of ms for it (a thread start takes
     * longer), while every setter, canceller and worker of this file would
     * wait for op->mu behind it (docs/performance.md, fourteenth round).
     * Meanwhile a worker may run op to DONE, and a canceller take it back
     * or find it not yet in the pool (it is QUEUED: then this caller looks
     * for itself, wait_done_locked). */
    pthread_mutex_unlock(op->mu);
    int e = cio__pool_submit(op);
    cio__lock(op->mu);
    if (e < 0) {
        /* No worker could be made; a thread start that failed can take
         * long under the limit that failed it.  A deadline that passed
         * meanwhile is the answer, as for any op that had not started
         * (rule 2): the caller then knows to stop, not to retry. */
        int mine, reason = 0;
        if (e != -ECANCELED) { /* a shutdown's answer stands */
            reason = reason_or_due(op, &mine);
            if (!reason && deadline != CIO_NO_DEADLINE && cio_now() >= deadline)
                reason = ETIMEDOUT; /* a cio_call's */
        }
        op->state = CIO__OP_DONE;
        if (e == -EAGAIN) { /* who queued behind the failed start? */
            pthread_mutex_unlock(op->mu);
            cio__pool_rescue();
            cio__lock(op->mu);
        }
        return op->done ? (long)op->done : reason ? -reason : e;
    }
    op->self_timed = e;
    wait_done_locked(op, deadline);
    return op->orphaned ? -cio__op_stop_reason(op) : op->result;
}

/* Step 2's check: a reason, or a deadline that passed while the op waited
 * for a worker.  Rule 2 lets such an op fail without touching the fd, and
 * after a mass expiry the workers then empty the queue at the cost of a lock
 * each, not a syscall, a timer and a signal each. */
static int stale_reason(cio__op *op)
{
    int mine, reason = reason_or_due(op, &mine);
    if (mine)
        op->stop_at = cio_now();
    return reason;
}

void cio__op_fail_unstarted(cio__op *op, int e)
{
    cio__lock(op->mu);
    int reason = cio__op_stop_or_due(op);
    finish_locked(op, cio__op_cut_result(op, reason ? reason : e));
    pthread_mutex_unlock(op->mu);
}

/* Steps 2, 3 and 6, on the worker. */
void cio__op_execute(cio__op *op, struct cio__worker *w)
{
    cio__lock(op->mu);
    int reason = stale_reason(op);
    if (reason) {
        finish_locked(op, cio__op_cut_result(op, reason));
        pthread_mutex_unlock(op->mu);
        return;
    }
    op->state = CIO__OP_RUNNING;
    op->started = 1;
    op->worker = w;
    ktimer_arm_due_locked(op);
    pthread_mutex_unlock(op->mu);

    CIO__EMIT(CIO_EV_OP_RUN, op->fd, op->which + 1, w, 0, 0);
    long r = op->run(op);
    /* A cio_call's fn that forked returns here in the child too, where
     * neither its caller nor this worker exists (the pool forgot it, and
     * cleared the flag): nothing to return to (cio_call(3)). */
    if (!cio__on_lib_thread)
        _exit(127);
    if (atomic_load_explicit(cio__worker_park(w), memory_order_relaxed) != PARK_NONE) {
        released(w); /* step 4p: op may be gone */
        cio__park_unmask();
        return;
    }

    cio__lock(op->mu);
    if (op->orphaned) { /* may_orphan: no kernel timer to disarm */
        op->result = r;
        op->state = CIO__OP_DONE;
        op->worker = NULL;
        op->adopt(op); /* unlocks op->mu; op may be gone */
        return;
    }
    /* The caller is woken after the unlock, so that it does not wake to
     * find op->mu still taken (wake_futex.c); op may be gone by then.  The
     * worker's timer is disarmed after that, off the caller's path: it is
     * the worker's own, and the worker takes no other op before it is
     * disarmed, so a signal it sends in between is a late one (step 3). */
    cio__wtimer *t = op->ktimer ? ktimer_of(op) : NULL;
    if (t)
        count_ktimer_resends_locked(op);
    op->ktimer = 0;
    void *token = finish_early_locked(op, r);
    pthread_mutex_unlock(op->mu);
    cio__wake_post_late(token);
    if (t)
        cio__wtimer_set(t, CIO_NO_DEADLINE, 0);
    cio__park_unmask(); /* a read that parked: its signal, if one came, is late */
}
