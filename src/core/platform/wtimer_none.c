/* Systems without a timer that signals one thread: workers have none, and
 * the caller re-sends the signal itself (protocol step 5). */
#include "internal.h"

#include <errno.h>

int cio__wtimer_open(cio__wtimer *t)
{
    t->ok = 0;
    return -ENOSYS;
}

void cio__wtimer_set(cio__wtimer *t, cio_time_t at, cio_time_t every)
{
    (void)t;
    (void)at;
    (void)every;
}

void cio__wtimer_close(cio__wtimer *t)
{
    t->ok = 0;
}
