/*
 * A read with a time limit, the Plan 9 way: alarm(2) posts the note "alarm"
 * to the process, the blocked read fails with "interrupted", and a handler
 * registered with atnotify(2) keeps the note from killing the process.
 *
 * On Plan 9 (our sketch of the idiom):
 *
 *     int
 *     catch(void *u, char *msg)
 *     {
 *         if(strcmp(msg, "alarm") == 0)
 *             return 1;          // handled: go on
 *         return 0;              // someone else's, or the default
 *     }
 *
 *     atnotify(catch, 1);
 *     alarm(200);
 *     n = read(fd, buf, sizeof buf);   // -1, errstr "interrupted"
 *     alarm(0);
 *
 * Here the same shape, with a thread in the role of the process and a
 * cancelio file in the role of the fd.  Exits 0 when everything happened
 * as described, 1 otherwise.
 */
/* POSIX 2008, for a build on its own: cc -std=c11 $(pkg-config --cflags
 * --libs cancelio) hides everything beyond ISO C (here only pipe, which
 * unistd.h shows anyway).  The project's build defines it itself. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <cancelio/plan9.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int alarms;

static int catch (void *u, char *msg)
{
    (void)u;
    if (strcmp(msg, "alarm") == 0) {
        alarms++;
        return 1;
    }
    return 0;
}

static int check(int ok, const char *what)
{
    printf("%-58s %s\n", what, ok ? "ok" : "WRONG");
    return ok ? 0 : 1;
}

int main(void)
{
    int p[2], bad = 0;
    char buf[64];
    if (pipe(p) < 0)
        return 1;
    cio_file *f = cio_fdopen(p[0]);
    if (!f || cio_atnotify(catch, 1) < 0)
        return 1;

    cio_time_t t0 = cio_now();
    cio_alarm(200);
    ssize_t n = cio_read(f, buf, sizeof buf); /* nobody writes: it blocks */
    int err = errno;
    long left = cio_alarm(0);
    double ms = (double)(cio_now() - t0) / 1e6;
    printf("read: %zd (%s) after %.0f ms\n", n, n < 0 ? strerror(err) : "data", ms);
    bad += check(n == -1 && err == EINTR, "the read was interrupted (EINTR)");
    bad += check(ms >= 200, "not before the alarm's 200 ms");
    bad += check(alarms == 1 && left == 0, "the handler took \"alarm\"; nothing left");

    /* data within the time: the read returns it, the alarm is cancelled */
    if (write(p[1], "hello", 5) != 5)
        return 1;
    cio_alarm(1000);
    n = cio_read(f, buf, sizeof buf);
    left = cio_alarm(0);
    printf("read: %zd bytes, %ld ms were left on the alarm\n", n, left);
    bad += check(n == 5 && memcmp(buf, "hello", 5) == 0, "the data arrived in time");
    bad += check(left > 0 && left <= 1000 && alarms == 1, "the alarm was cleared unfired");

    cio_close(f);
    close(p[1]);
    printf("%s\n", bad ? "FAILED" : "all as expected");
    return bad ? 1 : 0;
}
