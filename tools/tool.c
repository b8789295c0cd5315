#include "tool.h"

#include <errno.h>
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

int tool_duration(const char *s, cio_time_t *ns)
{
    double v = 0, scale = 1;
    int digits = 0;
    for (; *s >= '0' && *s <= '9'; s++, digits++)
        v = v * 10 + (*s - '0');
    if (*s == '.')
        for (s++; *s >= '0' && *s <= '9'; s++, digits++)
            v += (*s - '0') * (scale /= 10);
    unsigned unit = unit_of(*s);
    if (!digits || unit == 0 || (*s && s[1]))
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

_Noreturn void tool_version(void)
{
    printf("%s (cancelio) %s\n", tool_name, cio_version());
    exit(0);
}

int tool_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int tool_exit(int status)
{
    cio_stats st;
    cio_get_stats(&st);
    if (st.threads == st.threads_idle)
        cio_shutdown();
    return status;
}
