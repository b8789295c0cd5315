/*
 * The model bare needs a thread's own POSIX timer (SIGEV_THREAD_ID) and
 * futex(2) (bare_model.c); without them figure 7 runs the floor and the
 * library only, and says why.
 */
#include "bench.h"

#include <errno.h>

int bare_open(const int *fds, unsigned n)
{
    (void)fds;
    (void)n;
    errno = ENOSYS;
    return -1;
}

void bare_serve(bare_job **jobs, unsigned n)
{
    (void)jobs;
    (void)n;
}

void bare_wait(bare_job *j)
{
    (void)j;
}

void bare_close(void)
{
}
