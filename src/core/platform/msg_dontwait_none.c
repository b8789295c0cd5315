/* No MSG_DONTWAIT: the socket calls have no try, every one goes to a worker. */
#include "internal.h"

const int cio__msg_dontwait = 0;
