/* Systems without a timer that signals one thread: workers have none, and
 * the caller re-sends the signal itself (protocol step 5). */
#include "internal.h"

#include <stdlib.h>

cio__wtimer *cio__wtimer_new(void)
{
    return NULL;
}

void cio__wtimer_set(cio__wtimer *t, cio_time_t at, cio_time_t every)
{
    (void)t;
    (void)at;
    (void)every;
}

void cio__wtimer_free(cio__wtimer *t)
{
    (void)t;
}
