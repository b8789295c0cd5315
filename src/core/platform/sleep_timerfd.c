/*
 * The Linux timer backend: the timer thread blocks in read(2) on a timerfd
 * armed with TFD_TIMER_ABSTIME at the earliest deadline.  Whoever moves the
 * earliest deadline re-arms the timerfd directly (under timer.mu), so the
 * thread wakes exactly when it should, with no separate wake-up channel.
 */
#include "internal.h"

#include <errno.h>
#include <stdint.h>
#include <sys/timerfd.h>
#include <unistd.h>

static int tfd = -1; /* timer.mu, or lib.mu while the thread is stopped */

static void arm(cio_time_t until)
{
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (until != CIO_NO_DEADLINE)
        its.it_value = cio__timespec(until > 0 ? until : 1); /* 1 ns: at once */
    timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

static int open_tfd(void)
{
    tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    return tfd < 0 ? -errno : 0;
}

static void close_tfd(void)
{
    close(tfd);
    tfd = -1;
}

static void wait_tfd(pthread_mutex_t *mu, cio_time_t until)
{
    uint64_t expirations;
    arm(until);
    int fd = tfd;
    pthread_mutex_unlock(mu);
    ssize_t r = read(fd, &expirations, sizeof expirations); /* EINTR: re-check */
    (void)r;
    pthread_mutex_lock(mu);
}

static void wake_tfd(cio_time_t until)
{
    arm(until == CIO_NO_DEADLINE ? 1 : until); /* "stop" must wake it too */
}

const cio__sleeper cio__sleeper_timerfd = {open_tfd, close_tfd, close_tfd, wait_tfd, wake_tfd};
