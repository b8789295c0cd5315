/* The system has MSG_NOSIGNAL: the socket calls add it to their flags. */
#include "internal.h"

#include <sys/socket.h>

const int cio__msg_nosignal = MSG_NOSIGNAL;
