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
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id /* glibc before 2.35 names it by its union */
#define sigev_notify_thread_id _sigev_un._tid
#endif

_Static_assert(sizeof(timer_t) <= sizeof(((cio__wtimer *)0)->id), "timer_t fits");

static timer_t id_of(const cio__wtimer *t)
{
    timer_t id;
    memcpy(&id, t->id, sizeof id);
    return id;
}

/* Valgrind takes a signal that arrives while it prepares a thread's system
 * call as one that came before the call: it runs the handler and starts
 * the call again, without the EINTR.  Its way from there back into the
 * call can take longer than the timer's repeat (2 ms), so once a deadline
 * has passed, a worker blocked in a read or write met its timer's next
 * signal there every time and never saw an EINTR: seen as a worker using
 * a whole CPU under memcheck with SIGUSR1 pending (si_overrun 13-22), its
 * op never stopped.  So under valgrind (its preload library is in the
 * environment it starts a program with) workers have no timer, and the
 * caller re-sends the signal with a back-off that outgrows that path. */
static int under_valgrind;

static void look_for_valgrind(void)
{
    const char *p = getenv("LD_PRELOAD");
    under_valgrind = p && strstr(p, "vgpreload") != NULL;
}

int cio__wtimer_open(cio__wtimer *t)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    struct sigevent ev;
    timer_t id;
    t->ok = 0;
    pthread_once(&once, look_for_valgrind);
    if (under_valgrind)
        return -ENOTSUP;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = cio__signal_number();
    ev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
    if (timer_create(CLOCK_MONOTONIC, &ev, &id) < 0)
        return -errno; /* the caller re-signals instead, as everywhere else */
    memcpy(t->id, &id, sizeof id);
    t->ok = 1;
    return 0;
}

void cio__wtimer_set(cio__wtimer *t, cio_time_t at, cio_time_t every)
{
    struct itimerspec its = {{0, 0}, {0, 0}};
    if (at != CIO_NO_DEADLINE) {
        its.it_value = cio__timespec(at > 0 ? at : 1); /* 1 ns: at once */
        its.it_interval = cio__timespec(every);
    }
    timer_settime(id_of(t), TIMER_ABSTIME, &its, NULL);
}

void cio__wtimer_close(cio__wtimer *t)
{
    if (t->ok)
        timer_delete(id_of(t));
    t->ok = 0;
}
