/*
 * deadline_demo: the Plan 9 model, narrated by the library itself.
 *
 * A read with a 100 ms deadline on an empty pipe is handed to a worker
 * thread; the timer thread sees the deadline pass and sends the cancel
 * signal; the worker's read(2) fails with EINTR; the caller gets ETIMEDOUT.
 * Then the same descriptor reads a message written afterwards, whole.
 * Every line below "cancelio:" comes from the library's trace events.
 */
#include <cancelio.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static cio_time_t t0;
static int pipe_fds[2];

static double ms_since_start(cio_time_t t)
{
    return (double)(t - t0) / 1e6;
}

static const char *direction(int which)
{
    return which == CIO_READ ? "read" : "write";
}

static void narrate(const cio_event *ev, void *arg)
{
    (void)arg;
    printf("  [%8.3f ms] cancelio: ", ms_since_start(ev->when));
    switch (ev->type) {
    case CIO_EV_OP_START:
        printf("the caller hands a %s of fd %d to the worker pool\n", direction(ev->which), ev->fd);
        break;
    case CIO_EV_OP_RUN:
        printf("worker #%u enters %s(%d) and blocks in the kernel\n", ev->worker,
               direction(ev->which), ev->fd);
        break;
    case CIO_EV_TIMER_FIRE:
        printf("the timer thread sees the %s deadline of fd %d pass\n", direction(ev->which),
               ev->fd);
        break;
    case CIO_EV_SIGNAL:
        printf("SIGUSR1 is sent to worker #%u (reason: %s)\n", ev->worker, strerror(ev->err));
        break;
    case CIO_EV_EINTR:
        printf("worker #%u: %s(%d) fails with EINTR; a reason is set, so it stops\n", ev->worker,
               direction(ev->which), ev->fd);
        break;
    case CIO_EV_OP_DONE:
        if (ev->result < 0)
            printf("the %s returns -1 to its caller, errno %s\n", direction(ev->which),
                   strerror(ev->err));
        else
            printf("the %s returns %ld bytes to its caller\n", direction(ev->which), ev->result);
        break;
    }
    fflush(stdout);
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

int main(void)
{
    char buf[64];
    t0 = cio_now();
    if (pipe(pipe_fds) < 0 || cio_init(NULL) < 0) {
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

    cio_set_trace(NULL, NULL);
    cio_stats s;
    cio_get_stats(&s);
    printf("stats: %llu ops, %llu timed out, %llu signal(s) sent, %llu re-sent, %u worker(s)\n",
           (unsigned long long)s.ops_done, (unsigned long long)s.timeouts,
           (unsigned long long)s.signals_sent, (unsigned long long)s.resignals, s.threads);
    cio_close(f);
    close(pipe_fds[1]);
    cio_shutdown();
    return n == (ssize_t)strlen(msg) ? 0 : 1;
}
