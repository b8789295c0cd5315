/*
 * Timed condvar waits without pthread_condattr_setclock (macOS): the
 * condvar keeps its default clock, CLOCK_REALTIME, and each wait converts
 * the monotonic deadline into a wall-clock one just before it sleeps.
 *
 * A step of the wall clock during the wait moves the wake-up: a step
 * forward wakes it early, and the caller, which re-checks its condition and
 * its deadline on CLOCK_MONOTONIC after every wake-up (as it must for a
 * spurious one), simply waits again; a step back makes this one wait late
 * by the step.  The next wait converts afresh, so a step is never carried
 * from one wait to the next.
 */
#include "internal.h"

int cio__cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int e = pthread_condattr_init(&a);
    if (e)
        return -e;
    pthread_condattr_setpshared(&a, cio__futex_pshared); /* speed only */
    e = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return -e;
}

/* The wall-clock time `left` nanoseconds from now, saturated. */
static struct timespec wall_after(cio_time_t left)
{
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    cio_time_t wall = (cio_time_t)now.tv_sec * 1000000000 + now.tv_nsec;
    return cio__timespec(wall > INT64_MAX - left ? INT64_MAX : wall + left);
}

void cio__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, cio_time_t t)
{
    if (t == CIO_NO_DEADLINE) {
        pthread_cond_wait(cv, mu);
        return;
    }
    cio_time_t now = cio_now();
    if (t <= now)
        return; /* due already: the caller re-checks */
    struct timespec ts = wall_after(t - now);
    pthread_cond_timedwait(cv, mu, &ts);
}
