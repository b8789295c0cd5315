/* The portable timer backend: a condvar bound to CLOCK_MONOTONIC. */
#include "internal.h"

static pthread_cond_t cv;

static int open_cond(void)
{
    return cio__cond_init(&cv);
}

static void close_cond(void)
{
    pthread_cond_destroy(&cv);
}

static void forget_cond(void)
{
    cio__cond_init(&cv); /* the parent's waiters are not in the child */
}

static void wait_cond(pthread_mutex_t *mu, cio_time_t until)
{
    cio__cond_wait_until(&cv, mu, until);
}

static void wake_cond(cio_time_t until)
{
    (void)until; /* the thread re-reads the heap when it wakes */
    pthread_cond_signal(&cv);
}

const cio__sleeper cio__sleeper_cond = {open_cond, close_cond, forget_cond, wait_cond, wake_cond};
