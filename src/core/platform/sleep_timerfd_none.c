/* Systems without timerfd: asking for that backend fails with ENOSYS. */
#include "internal.h"

#include <errno.h>

static int open_none(void)
{
    return -ENOSYS;
}

static void nothing(void)
{
}

static void wait_none(pthread_mutex_t *mu, cio_time_t until)
{
    (void)mu;
    (void)until;
}

static void wake_none(cio_time_t until)
{
    (void)until;
}

const cio__sleeper cio__sleeper_timerfd = {open_none, nothing, nothing, wait_none, wake_none};
