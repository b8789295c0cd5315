/*
 * A worker parked in ppoll(2) (protocol step 3p, docs/protocol.md).
 *
 * While it waits for its fd to be ready, a worker keeps the cancel signal
 * blocked, and ppoll unblocks it for the wait alone, atomically.  A signal
 * sent before the wait began is then pending, not lost: the wait returns
 * EINTR at once.  So a stop that releases the caller of a parked read needs
 * exactly one signal, and nobody has to repeat it (rule 11).
 */
#include "internal.h"

#include <errno.h>
#include <poll.h>

const int cio__can_park = 1;

static _Thread_local int masked; /* this worker blocked the signal to park */

void cio__park_mask(void)
{
    sigset_t s;
    if (masked)
        return;
    sigemptyset(&s);
    sigaddset(&s, cio__signal_number());
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    masked = 1;
}

void cio__park_unmask(void)
{
    if (!masked)
        return;
    masked = 0;
    cio__signal_worker_mask_restore(); /* a pending signal is a late one */
}

long cio__park_wait(int fd, short events)
{
    struct pollfd p = {fd, events, 0};
    sigset_t open;
    cio__signal_worker_mask(&open);
    return ppoll(&p, 1, NULL, &open) < 0 ? -errno : 0;
}
