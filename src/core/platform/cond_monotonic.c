/*
 * Timed condvar waits on CLOCK_MONOTONIC (pthread_condattr_setclock): the
 * deadline goes to the kernel as it is, and no step of the wall clock can
 * move it.
 */
#include "internal.h"

int cio__cond_init(pthread_cond_t *cv)
{
    pthread_condattr_t a;
    int e = pthread_condattr_init(&a);
    if (e)
        return -e;
    e = pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
    if (!e)
        pthread_condattr_setpshared(&a, cio__futex_pshared); /* speed only */
    if (!e)
        e = pthread_cond_init(cv, &a);
    pthread_condattr_destroy(&a);
    return -e;
}

void cio__cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, cio_time_t t)
{
    if (t == CIO_NO_DEADLINE) {
        pthread_cond_wait(cv, mu);
        return;
    }
    struct timespec ts = cio__timespec(t);
    pthread_cond_timedwait(cv, mu, &ts);
}
