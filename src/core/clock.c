/* Time on CLOCK_MONOTONIC, and the small helpers every module shares. */
#include "internal.h"

#include <errno.h>

cio_time_t cio_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (cio_time_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

cio_time_t cio_after_ms(int64_t ms)
{
    const int64_t max_ms = INT64_MAX / 1000000;
    cio_time_t now = cio_now();
    if (ms > max_ms || (ms > 0 && now > INT64_MAX - ms * 1000000))
        return INT64_MAX;
    if (ms < -max_ms)
        return INT64_MIN + 1; /* in the past, and never the special 0 */
    cio_time_t t = now + ms * 1000000;
    return t == CIO_NO_DEADLINE ? -1 : t; /* 0 would mean "none" */
}

long cio__fail(long neg_errno)
{
    errno = (int)-neg_errno;
    return -1;
}

struct timespec cio__timespec(cio_time_t t)
{
    struct timespec ts;
    if (t < 0)
        t = 0;
    ts.tv_sec = (time_t)(t / 1000000000);
    ts.tv_nsec = (long)(t % 1000000000);
    return ts;
}
