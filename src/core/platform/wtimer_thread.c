/*
 * Linux: a worker's own POSIX timer (timer_create with SIGEV_THREAD_ID)
 * sends the cancel signal to that worker, and to no other thread, at an
 * absolute CLOCK_MONOTONIC time, then again every interval until it is
 * disarmed.  The kernel's hrtimer interrupt does the sending: a deadline
 * reaches the worker with no thread of ours in between, and a signal lost
 * before the syscall (protocol step 5) is sent again without anyone being
 * woken to do it.
 */
#include "internal.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id /* glibc before 2.35 names it by its union */
#define sigev_notify_thread_id _sigev_un._tid
#endif

struct cio__wtimer {
    timer_t id;
};

cio__wtimer *cio__wtimer_new(void)
{
    cio__wtimer *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    struct sigevent ev = {0};
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = cio__signal_number();
    ev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &ev, &t->id) < 0) {
        free(t);
        return NULL; /* the caller re-signals instead, as everywhere else */
    }
    return t;
}

void cio__wtimer_set(cio__wtimer *t, cio_time_t at, cio_time_t every)
{
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (at != CIO_NO_DEADLINE) {
        its.it_value = cio__timespec(at > 0 ? at : 1); /* 1 ns: at once */
        its.it_interval = cio__timespec(every);
    }
    timer_settime(t->id, TIMER_ABSTIME, &its, NULL);
}

void cio__wtimer_free(cio__wtimer *t)
{
    if (t)
        timer_delete(t->id);
    free(t);
}
