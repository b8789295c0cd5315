/*
 * A pipe whose two ends are close-on-exec from birth: pipe2(2), where the
 * system has it (Linux, the BSDs), so no other thread's fork+exec can
 * inherit an end between pipe and fcntl.
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

int cio__pipe_cloexec(int fds[2])
{
    return pipe2(fds, O_CLOEXEC) == 0 ? 0 : -errno;
}
