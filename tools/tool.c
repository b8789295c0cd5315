#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char *tool_name = "cio";

/* Past this a duration means "as good as never" (about 31 years), and the
 * sums with cio_now() cannot overflow. */
#define DUR_MAX 1e18

/* Seconds in the unit of suffix c; 0 for no such unit. */
static unsigned unit_of(char c)
{
    switch (c) {
    case '\0':
    case 's':
        return 1;
    case 'm':
        return 60;
    case 'h':
        return 3600;
    case 'd':
        return 86400;
    default:
        return 0;
    }
}

/* The number as strtod(3) reads it in the C locale (the tools never call
 * setlocale), as timeout(1) does: "1e3", "0x10", "inf" and leading blanks
 * are numbers too, one too large for a double (1e400) is as good as
 * never and one too small (1e-400) next to nothing; a negative one or NaN
 * is not a duration. */
int tool_duration(const char *s, cio_time_t *ns)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || isnan(v) || v < 0)
        return -1;
    unsigned unit = unit_of(*end);
    if (unit == 0 || (*end && end[1]))
        return -1;
    v *= unit * 1e9;
    *ns = v > DUR_MAX ? (cio_time_t)DUR_MAX : (cio_time_t)v;
    if (*ns == 0 && v > 0)
        *ns = 1; /* a positive duration never means "none" */
    return 0;
}

cio_time_t tool_earlier(cio_time_t a, cio_time_t b)
{
    if (a == CIO_NO_DEADLINE)
        return b;
    if (b == CIO_NO_DEADLINE)
        return a;
    return a < b ? a : b;
}

void tool_warn(const char *what, int err)
{
    fprintf(stderr, "%s: %s: %s\n", tool_name, what, strerror(err));
}

_Noreturn void tool_usage_error(const char *msg, const char *arg)
{
    if (arg)
        fprintf(stderr, "%s: %s '%s'\n", tool_name, msg, arg);
    else
        fprintf(stderr, "%s: %s\n", tool_name, msg);
    fprintf(stderr, "Try '%s --help' for more information.\n", tool_name);
    exit(EXIT_USAGE);
}

/* Standard output is buffered: a failure to write shows at the flush at
 * the latest, and is said before exit(3) would flush in silence. */
_Noreturn void tool_print_exit(const char *text, int fail)
{
    if (fputs(text, stdout) == EOF || fflush(stdout) == EOF) {
        tool_warn("standard output", errno);
        exit(fail);
    }
    exit(0);
}

_Noreturn void tool_version(int fail)
{
    char line[256];
    snprintf(line, sizeof line, "%s (cancelio) %s\n", tool_name, cio_version());
    tool_print_exit(line, fail);
}

int tool_write_all(cio_file *f, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = cio_write(f, p, n);
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* An fd of 0-2 that is closed would be the first number the library takes
 * (its timer, its pipes), and the tool would then read or write that as
 * its standard stream.  Each closed one is held by /dev/null opened the
 * other way round, so using it fails with EBADF, as on a closed fd. */
void tool_hold_std_fds(void)
{
    static const int way[3] = {O_WRONLY, O_RDONLY, O_RDONLY};
    for (int fd = 0; fd < 3; fd++) {
        if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
            continue;
        /* the lowest free: fd; not for CMD, which sees it closed */
        int held = open("/dev/null", way[fd] | O_CLOEXEC);
        if (held >= 0 && held != fd) {
            dup2(held, fd);
            close(held);
        }
    }
}

void tool_start_library(void)
{
    if (cio_init(NULL) == 0)
        return;
    tool_warn("cannot start", errno);
    exit(EXIT_USAGE);
}

int tool_exit(int status)
{
    cio_stats st;
    cio_get_stats(&st);
    if (st.threads == st.threads_idle)
        cio_shutdown();
    return status;
}
