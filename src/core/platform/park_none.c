/* No ppoll(2): a worker cannot wait with the cancel signal unblocked for
 * the wait alone, so it never parks; every read blocks in the syscall, and
 * its caller waits for the worker to leave it (protocol steps 3-6). */
#include "internal.h"

#include <errno.h>

const int cio__can_park = 0;

void cio__park_mask(void)
{
}

void cio__park_unmask(void)
{
}

long cio__park_wait(int fd, short events)
{
    (void)fd;
    (void)events;
    return -ENOSYS;
}

void cio__park_caller_enter(cio__park_caller *pc)
{
    (void)pc;
}

void cio__park_caller_leave(cio__park_caller *pc)
{
    (void)pc;
}

void cio__park_caller_settle(cio__park_caller *pc)
{
    (void)pc;
}

long cio__park_caller_wait(int fd, short events, cio_time_t due, cio__park_caller *pc)
{
    (void)fd;
    (void)events;
    (void)due;
    (void)pc;
    return -ENOSYS;
}
