/*
 * A worker parked in ppoll(2) (protocol step 3p, docs/protocol.md).
 *
 * While it waits for its fd to be ready, a worker keeps the cancel signal
 * blocked, and ppoll unblocks it for the wait alone, atomically.  A signal
 * sent before the wait began is then pending, not lost: the wait returns
 * EINTR at once.  So a stop that releases the caller of a parked read needs
 * exactly one signal, and nobody has to repeat it (rule 11).
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>

const int cio__can_park = 1;

static _Thread_local int masked; /* this worker blocked the signal to park */

/* The set of the cancel signal alone. */
static sigset_t cancel_signal(void)
{
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, cio__signal_number());
    return s;
}

void cio__park_mask(void)
{
    if (masked)
        return;
    sigset_t s = cancel_signal();
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    masked = 1;
}

void cio__park_unmask(void)
{
    if (!masked)
        return;
    masked = 0;
    cio__signal_worker_mask_restore(); /* a pending signal is a late one */
}

long cio__park_wait(int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    sigset_t open;
    cio__signal_worker_mask(&open);
    return ppoll(&p, 1, NULL, &open) < 0 ? -errno : 0;
}

/* ---- step 3c: the same wait on the caller's own thread ---- */

void cio__park_caller_enter(cio__park_caller *pc)
{
    sigset_t s = cancel_signal();
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &pc->cancel_state);
    pthread_sigmask(SIG_BLOCK, &s, &pc->saved);
    atomic_fetch_add(&cio__callers_parked, 1);
    /* The wait keeps the caller's own mask but for the cancel signal: the
     * application's signals interrupt it as they would a read(2) (the loop
     * then waits again), and one it blocks stays blocked (rule 10). */
    pc->open = pc->saved;
    sigdelset(&pc->open, cio__signal_number());
}

void cio__park_caller_leave(cio__park_caller *pc)
{
    pthread_sigmask(SIG_SETMASK, &pc->saved, NULL);
    atomic_fetch_sub(&cio__callers_parked, 1);
    pthread_setcancelstate(pc->cancel_state, NULL);
}

void cio__park_caller_settle(cio__park_caller *pc)
{
    sigset_t s = cancel_signal();
    if (cio__signal_seen != pc->seen) {
        /* Its handler ran in the last wait: that was it (or a stray came
         * too, and it is pending: take it). */
        while (sigtimedwait(&s, NULL, &(struct timespec){0, 0}) >= 0)
            continue;
    } else {
        /* It comes next (GONE was said first), or is pending: either way
         * this returns once it is taken (a kill(1) of the process taken on
         * the way is not it). */
        siginfo_t si;
        while (sigwaitinfo(&s, &si) < 0 || !cio__signal_from_this_process(&si))
            continue;
    }
    pc->seen = cio__signal_seen;
}

/* Linux lets a poll's timeout end late by up to 0.1% of it (0.5% for a
 * niced thread; at most 100 ms: select_estimate_accuracy), where
 * clock_nanosleep is late by 50 us.  A wait of up to 1 s keeps that under
 * 1 ms; a longer one first waits until a little before the deadline (by
 * 1/128 of the wait: more than its own slack), then again, so that a
 * 60 s deadline is not 60 ms late.  (Returns 0 as a timeout: the caller
 * finds the deadline not passed and waits again.) */
#define SLACK_FREE ((cio_time_t)1000 * 1000 * 1000)

long cio__park_caller_wait(int fd, short events, cio_time_t due, cio__park_caller *pc)
{
    struct pollfd p = {fd, events, 0};
    struct timespec left, *t = NULL;
    if (due != CIO_NO_DEADLINE) {
        cio_time_t ns = due - cio_now();
        if (ns <= 0)
            return 0;
        if (ns > SLACK_FREE)
            ns -= ns / 128;
        left.tv_sec = (time_t)(ns / 1000000000);
        left.tv_nsec = (long)(ns % 1000000000);
        t = &left;
    }
    int r = ppoll(&p, 1, t, &pc->open);
    return r < 0 ? -errno : r;
}
