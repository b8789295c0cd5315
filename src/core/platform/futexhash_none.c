/* Systems without a per-process futex hash: nothing to size. */
#include "internal.h"

int cio__futex_hash_set(unsigned slots)
{
    (void)slots;
    return 0;
}
