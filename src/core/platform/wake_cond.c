/*
 * A file op's caller waits on a condvar of its own (systems without a
 * futex).  It is signalled under the lock, as a condvar must be when its
 * waiter may free it as soon as the lock is free (wake_futex.c says what
 * that costs), so the late half of a post does nothing.
 */
#include "internal.h"

int cio__wake_init(cio__wake *w)
{
    w->sleeping = 0;
    return cio__cond_init(&w->cv);
}

void cio__wake_destroy(cio__wake *w)
{
    pthread_cond_destroy(&w->cv);
}

void cio__wake_wait_until(cio__wake *w, pthread_mutex_t *mu, cio_time_t t)
{
    w->sleeping = 1;
    cio__cond_wait_until(&w->cv, mu, t);
    w->sleeping = 0;
}

void *cio__wake_post_early(cio__wake *w)
{
    if (w->sleeping) /* else its waiter is awake: it holds mu, or never slept */
        pthread_cond_signal(&w->cv);
    return NULL;
}

void cio__wake_post_late(void *token)
{
    (void)token;
}
