/*
 * cio_alarm: Plan 9's alarm(2) for a thread.  The proc's alarm is a timer
 * of the library's own timer thread; when it fires it posts "alarm" to the
 * proc as cio_postnote would.  Like the file deadlines, the fire callback
 * re-checks the real time under p->mu, so an alarm moved or cleared after
 * the timer thread took it out of the heap does nothing (a stale timer).
 */
#include "plan9/proc.h"

#include <errno.h>
#include <limits.h>

#define NS_PER_MS ((cio_time_t)1000 * 1000)
/* The longest alarm, ~73 million years: a quarter of cio_time_t's range,
 * so that now + ms cannot overflow whatever the monotonic clock reads. */
#define MAX_MS ((unsigned long)(INT64_MAX / 4 / NS_PER_MS))

static cio_proc *proc_of(cio__timer *t)
{
    return (cio_proc *)((char *)t - offsetof(cio_proc, alarm));
}

static void hold(cio__timer *t)
{
    (void)t; /* a proc is never freed */
}

/* Post "alarm" if it is due by now; p->mu held.  With CIO_NNOTE notes
 * already pending the alarm is dropped, as Plan 9's kernel drops a note
 * that finds the queue full. */
static void post_if_due_locked(cio_proc *p, cio_time_t now)
{
    if (p->alarm_at == CIO_NO_DEADLINE || p->alarm_at > now)
        return;
    p->alarm_at = CIO_NO_DEADLINE;
    if (!p->exited && p->n < CIO_NNOTE)
        cio__note_queue_locked(p, "alarm", 5);
}

static void fire(cio__timer *t)
{
    cio_proc *p = proc_of(t);
    pthread_mutex_lock(&p->mu);
    post_if_due_locked(p, cio_now());
    pthread_mutex_unlock(&p->mu);
}

static const cio__timer_ops alarm_ops = {hold, fire};

void cio__alarm_init(cio_proc *p)
{
    cio__timer_init(&p->alarm, &alarm_ops);
    p->alarm_at = CIO_NO_DEADLINE;
}

void cio__alarm_clear_locked(cio_proc *p)
{
    cio__timer_disarm(&p->alarm);
    p->alarm_at = CIO_NO_DEADLINE;
}

/* The milliseconds from now to at, rounded up; 0 if at is not ahead;
 * LONG_MAX at most (a long of 32 bits holds 24.8 days). */
static long ms_left(cio_time_t at, cio_time_t now)
{
    if (at == CIO_NO_DEADLINE || at <= now)
        return 0;
    cio_time_t ms = (at - now + NS_PER_MS - 1) / NS_PER_MS;
    return ms > LONG_MAX ? LONG_MAX : (long)ms;
}

long cio_alarm(unsigned long ms)
{
    cio_proc *p = cio_proc_self();
    if (!p)
        return -1;
    int e = cio__lib_ensure(); /* the timer thread */
    if (e < 0)
        return cio__fail(e);
    cio_time_t now = cio_now();
    pthread_mutex_lock(&p->mu);
    /* An alarm already due went off, whether or not the timer thread has
     * got to it yet: a late fire would find it replaced or cleared and post
     * nothing, and the 0 ms left would hide that it ever was. */
    post_if_due_locked(p, now);
    long left = ms_left(p->alarm_at, now);
    if (ms == 0) {
        cio__alarm_clear_locked(p);
    } else {
        cio_time_t at = now + (cio_time_t)(ms > MAX_MS ? MAX_MS : ms) * NS_PER_MS;
        e = cio__timer_arm(&p->alarm, at);
        if (e == 0)
            p->alarm_at = at; /* on ENOMEM the old alarm stands */
    }
    pthread_mutex_unlock(&p->mu);
    return e < 0 ? cio__fail(e) : left;
}
