/* Systems without a per-process futex hash: nothing to size, and no reason
 * to make condvars and locks process-shared (which costs a shared page
 * each on some systems). */
#include "internal.h"

const int cio__futex_pshared = PTHREAD_PROCESS_PRIVATE;

int cio__futex_hash_set(unsigned slots)
{
    (void)slots;
    return 0;
}
