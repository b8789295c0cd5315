/* The system has MSG_DONTWAIT: the socket calls add it to their flags. */
#include "internal.h"

#include <sys/socket.h>

const int cio__msg_dontwait = MSG_DONTWAIT;
