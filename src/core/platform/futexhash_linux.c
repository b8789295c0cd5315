/*
 * Linux >= 6.16: prctl(PR_FUTEX_HASH) sizes the process's private futex hash
 * (by default from the number of CPUs, whatever the number of threads), or
 * switches the process to the kernel's global one (0 slots).  Only ever on
 * the application's explicit request (cio_options.futex_hash_slots): it is
 * a process-wide setting, and the library is a guest in the process.
 *
 * What the library does in its own design, so that the setting matters
 * less: its condvars, and each file's lock, are process-shared.  Their
 * futexes are then keyed by address space and hashed into the kernel's
 * global table (256 buckets a CPU), not the process's 16, so thousands of
 * callers waiting for their ops, or for their files' locks as their workers
 * finish, do not lengthen the chains that every futex wake-up of the
 * process walks (docs/performance.md, figure 7).  The pool's and the timer
 * heap's locks stay private: statically initialised, and one futex each,
 * so their waiters share a bucket whatever the hash's size.
 */
#include "internal.h"

#include <errno.h>
#include <sys/prctl.h>

#ifndef PR_FUTEX_HASH /* headers older than Linux 6.16 */
#define PR_FUTEX_HASH 78
#define PR_FUTEX_HASH_SET_SLOTS 1
#endif

const int cio__futex_pshared = PTHREAD_PROCESS_SHARED;

int cio__futex_hash_set(unsigned slots)
{
    if (!slots)
        return 0;
    unsigned long n = slots == CIO_FUTEX_HASH_GLOBAL ? 0 : slots;
    if (prctl(PR_FUTEX_HASH, PR_FUTEX_HASH_SET_SLOTS, n, 0, 0) == 0)
        return 0;
    int e = errno;
    /* An older kernel does not know the option (EINVAL for the whole
     * PR_FUTEX_HASH): it has only the global hash, which is what is asked
     * of it in the end.  Tell the two apart by asking for the size. */
    return prctl(PR_FUTEX_HASH, 2 /* GET_SLOTS */, 0, 0, 0) < 0 ? 0 : -e;
}
