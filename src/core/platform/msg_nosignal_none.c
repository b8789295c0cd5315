/* No MSG_NOSIGNAL: a send's SIGPIPE lands on the worker, which takes it
 * back for the caller (cio__take_sigpipe), as for write(2). */
#include "internal.h"

const int cio__msg_nosignal = 0;
