/*
 * deadline_demo: the Plan 9 model, narrated by the library itself.
 *
 * A read with a 100 ms deadline on an empty pipe is handed to a worker
 * thread (cio_options.waits = CIO_WAIT_WORKER: every op on a worker, the
 * model as it is); its deadline ends the worker's wait with the cancel
 * signal, EINTR; the caller gets ETIMEDOUT.  Then the same descriptor reads
 * a message written afterwards, whole.  Last, the library's default for a
 * pipe: the caller waits itself, its deadline the wait's own timeout, and
 * no worker at all.  Every line below "cancelio:" comes from the library's
 * trace events.
 *
 * With --plan9 each event is also told in Plan 9's words (a process per
 * call, the note "hangup", "interrupted": Go's net package on Plan 9, see
 * docs/plan9.md), and a third part runs the same timeout with a note of the
 * thread's own: cio_alarm, as Plan 9's alarm(2).
 */
/* POSIX 2008, for a build on its own: cc -std=c11 $(pkg-config --cflags
 * --libs cancelio) hides everything beyond ISO C, nanosleep and flockfile
 * among it.  The project's build defines it itself. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <cancelio.h>
#include <cancelio/plan9.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static cio_time_t t0;
static int pipe_fds[2];
static int plan9;             /* --plan9: narrate in Plan 9's words too */
static int callers;           /* the last part: the default, a pipe's read waits on its caller */
static atomic_int fires_told; /* in that part: its timer events come from two threads */

static double ms_since_start(cio_time_t t)
{
    return (double)(t - t0) / 1e6;
}

static const char *direction(int which)
{
    return which == CIO_READ ? "read" : "write";
}

/* The same event as Go's net package on Plan 9 would live it. */
static void narrate_plan9(const cio_event *ev)
{
    printf("                 plan 9: ");
    switch (ev->type) {
    case CIO_EV_OP_START:
        printf("asyncIO starts a process for the %s; the caller waits on its channel\n",
               direction(ev->which));
        break;
    case CIO_EV_OP_RUN:
        printf("process %u publishes its pid and sleeps in %s(%d)\n", ev->worker,
               direction(ev->which), ev->fd);
        break;
    case CIO_EV_TIMER_FIRE:
        printf("the deadline timer fires: Cancel takes the mutex, the pid is valid\n");
        break;
    case CIO_EV_SIGNAL:
        printf("postnote(PNPROC, pid of process %u, \"hangup\")\n", ev->worker);
        break;
    case CIO_EV_EINTR:
        printf("process %u: %s fails, errstr \"interrupted\"; hangup is expected: NCONT\n",
               ev->worker, direction(ev->which));
        break;
    case CIO_EV_OP_DONE:
        if (ev->result < 0)
            printf("the caller takes the result off the channel: %s\n",
                   ev->err == ETIMEDOUT ? "\"i/o timeout\"" : "\"interrupted\"");
        else
            printf("the caller takes %ld bytes off the channel; pid = -1\n", ev->result);
        break;
    }
}

static void narrate(const cio_event *ev, void *arg)
{
    (void)arg;
    flockfile(stdout); /* events come from several threads at once: one line each */
    printf("  [%8.3f ms] cancelio: ", ms_since_start(ev->when));
    switch (ev->type) {
    case CIO_EV_OP_START:
        if (callers)
            printf("the %s of fd %d would block: it stays on its caller's thread\n",
                   direction(ev->which), ev->fd);
        else
            printf("the caller hands a %s of fd %d to the worker pool\n", direction(ev->which),
                   ev->fd);
        break;
    case CIO_EV_OP_RUN:
        if (callers)
            printf("the caller itself waits in the kernel for fd %d (ppoll, the deadline its "
                   "timeout)\n",
                   ev->fd);
        else
            printf("worker #%u takes the %s and waits in the kernel for fd %d\n", ev->worker,
                   direction(ev->which), ev->fd);
        break;
    case CIO_EV_TIMER_FIRE:
        if (callers && atomic_fetch_add(&fires_told, 1) == 0) /* the caller's, or the timer's */
            printf("the %s deadline of fd %d passes: the caller's wait times out, no signal "
                   "is sent\n",
                   direction(ev->which), ev->fd);
        else if (callers)
            printf("(the timer thread sees it too, and leaves it to the caller)\n");
        else if (ev->worker)
            printf("worker #%u's own kernel timer fires at the %s deadline of fd %d\n", ev->worker,
                   direction(ev->which), ev->fd);
        else
            printf("the timer thread sees the %s deadline of fd %d pass\n", direction(ev->which),
                   ev->fd);
        break;
    case CIO_EV_SIGNAL:
        printf("SIGUSR1 is sent to worker #%u (reason: %s)\n", ev->worker, strerror(ev->err));
        break;
    case CIO_EV_EINTR:
        printf("worker #%u: its wait for fd %d fails with EINTR; a reason is set, so it stops\n",
               ev->worker, ev->fd);
        break;
    case CIO_EV_OP_DONE:
        if (ev->result < 0)
            printf("the %s returns -1 to its caller, errno %s\n", direction(ev->which),
                   strerror(ev->err));
        else
            printf("the %s returns %ld bytes to its caller\n", direction(ev->which), ev->result);
        break;
    }
    if (plan9 && !callers)
        narrate_plan9(ev);
    fflush(stdout);
    funlockfile(stdout);
}

static void *late_writer(void *arg)
{
    const char *msg = arg;
    struct timespec pause = {0, 200 * 1000 * 1000};
    nanosleep(&pause, NULL); /* the data arrives well after the timeout */
    printf("  [%8.3f ms] writer: writes \"%s\" into the pipe\n", ms_since_start(cio_now()), msg);
    if (write(pipe_fds[1], msg, strlen(msg)) < 0)
        perror("write");
    return NULL;
}

static int took_alarm;

static int on_alarm(void *u, char *note)
{
    (void)u;
    took_alarm = strcmp(note, "alarm") == 0;
    printf("  [%8.3f ms] plan 9: the handler gets the note \"%s\" on this thread: NCONT\n",
           ms_since_start(cio_now()), note);
    return took_alarm;
}

/* Part 3 (--plan9): the timeout as a Plan 9 program writes it, alarm(2)
 * around a read, with the caller's own thread as the process. */
static int alarm_read(cio_file *f)
{
    char buf[64];
    printf("3. The same timeout, Plan 9 style: alarm(100); read; alarm(0):\n");
    cio_atnotify(on_alarm, 1);
    cio_time_t start = cio_now();
    cio_alarm(100);
    ssize_t n = cio_read(f, buf, sizeof buf);
    int err = errno;
    cio_alarm(0);
    printf("   cio_read -> %zd (%s, Plan 9's \"interrupted\") after %.1f ms\n\n", n,
           n < 0 ? strerror(err) : "ok", (double)(cio_now() - start) / 1e6);
    cio_atnotify(on_alarm, 0);
    return n == -1 && err == EINTR && took_alarm;
}

int main(int argc, char **argv)
{
    char buf[64];
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--plan9") == 0) {
            plan9 = 1;
        } else {
            fprintf(stderr, "usage: %s [--plan9]\n", argv[0]);
            return 2;
        }
    }
    t0 = cio_now();
    cio_options plan9_model = {.waits = CIO_WAIT_WORKER};
    if (pipe(pipe_fds) < 0 || cio_init(&plan9_model) < 0) {
        perror("setup");
        return 1;
    }
    cio_file *f = cio_fdopen(pipe_fds[0]);
    if (!f) {
        perror("cio_fdopen");
        return 1;
    }
    cio_set_trace(narrate, NULL);

    printf("1. An empty pipe, a read with a 100 ms deadline:\n");
    cio_set_read_deadline(f, cio_after_ms(100));
    ssize_t n = cio_read(f, buf, sizeof buf);
    int err = errno;
    printf("   cio_read -> %zd (%s) after %.1f ms\n\n", n, n < 0 ? strerror(err) : "ok",
           ms_since_start(cio_now()));
    if (n >= 0 || err != ETIMEDOUT)
        return 1;

    printf("2. The same fd, a new 2 s deadline; the data comes later:\n");
    const char *msg = "hello from after the timeout";
    pthread_t writer;
    pthread_create(&writer, NULL, late_writer, (void *)msg);
    cio_set_read_deadline(f, cio_after_ms(2000));
    n = cio_read(f, buf, sizeof buf);
    pthread_join(writer, NULL);
    printf("   cio_read -> %zd: \"%.*s\"%s\n\n", n, n > 0 ? (int)n : 0, buf,
           n == (ssize_t)strlen(msg) ? " (whole: nothing was lost)" : " (UNEXPECTED)");

    int ok = n == (ssize_t)strlen(msg);
    if (plan9 && !alarm_read(f))
        ok = 0;

    cio_stats s;
    cio_get_stats(&s);
    printf("so far: %llu signal(s) sent, %u worker(s)\n\n", (unsigned long long)s.signals_sent,
           s.threads);

    /* The library again with its defaults (the file stays valid). */
    printf("%d. The default (cio_options.waits = CIO_WAIT_CALLER), the same read:\n",
           plan9 ? 4 : 3);
    cio_shutdown();
    callers = 1;
    cio_set_read_deadline(f, cio_after_ms(100));
    cio_time_t start = cio_now();
    n = cio_read(f, buf, sizeof buf);
    err = errno;
    printf("   cio_read -> %zd (%s) after %.1f ms\n\n", n, n < 0 ? strerror(err) : "ok",
           (double)(cio_now() - start) / 1e6);
    if (n >= 0 || err != ETIMEDOUT)
        ok = 0;

    cio_set_trace(NULL, NULL);
    cio_get_stats(&s);
    printf("stats: %llu ops, %llu timed out, %llu signal(s) sent, %llu re-sent, %u worker(s)\n",
           (unsigned long long)s.ops_done, (unsigned long long)s.timeouts,
           (unsigned long long)s.signals_sent, (unsigned long long)s.resignals, s.threads);
    cio_close(f);
    close(pipe_fds[1]);
    cio_shutdown();
    return ok ? 0 : 1;
}
