/*
 * The model with no library around it, for figure 7: what a worker thread
 * per blocking read costs on this machine when nothing else is done.
 *
 * Each read runs on a worker thread of a fixed pool, one read at a time.
 * The worker's own POSIX timer (SIGEV_THREAD_ID) signals it at the read's
 * deadline, read(2) fails with EINTR, and the worker wakes the read's
 * caller through a futex word, then disarms its timer and takes the next
 * read.  The timer repeats every 2 ms until it is disarmed, for a signal
 * that lands just before read(2) (the repeat that DESIGN.md rule 11 asks
 * for).  A read whose deadline has passed by the time a worker takes it is
 * not started, as rule 2 allows.  There is no file, no lock but the
 * queue's, no cancel and no deadline move: the least the model can do.
 * The futex word is not FUTEX_PRIVATE_FLAG, so that its waiters hash into
 * the kernel's global table and not the process's small one (the library
 * does the same, src/core/platform/wake_futex.c).
 *
 * Linux only (SIGEV_THREAD_ID and futex(2), the library's probes for its
 * own use of them): elsewhere bare_model_none.c stands in, and figure 7
 * says that the model could not run.
 */
#include "bench.h"

#include <errno.h>
#include <linux/futex.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef sigev_notify_thread_id /* glibc before 2.35 names it by its union */
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define REPEAT (2 * NS_PER_MS)
#define WORKER_STACK ((size_t)64 * 1024)

typedef struct worker {
    pthread_t th;
    int fd;
    int ok;  /* its timer exists */
    int err; /* why not */
} worker;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int started; /* workers that have made their timer (or failed to) */
    int open;    /* jobs may be taken */
    bare_job **jobs;
    unsigned n, next;
    worker *w;
    unsigned nw;
} bare = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, 0, 0, NULL, 0};

static int signal_number(void)
{
    return SIGRTMIN + 1;
}

static void on_signal(int sig)
{
    (void)sig; /* only interrupts read(2) */
}

static void set_timer(timer_t t, ns_t at, ns_t every)
{
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    its.it_value.tv_sec = at / NS_PER_S;
    its.it_value.tv_nsec = at % NS_PER_S;
    its.it_interval.tv_sec = every / NS_PER_S;
    its.it_interval.tv_nsec = every % NS_PER_S;
    timer_settime(t, at ? TIMER_ABSTIME : 0, &its, NULL);
}

static bare_job *take(void)
{
    pthread_mutex_lock(&bare.mu);
    while (!bare.open)
        pthread_cond_wait(&bare.cv, &bare.mu);
    bare_job *j = bare.next < bare.n ? bare.jobs[bare.next++] : NULL;
    pthread_mutex_unlock(&bare.mu);
    return j;
}

static void finish(bare_job *j)
{
    atomic_store(&j->done, 1);
    syscall(SYS_futex, &j->done, FUTEX_WAKE, 1, NULL, NULL, 0);
}

/* One read, as the model runs it. */
static void serve(timer_t t, int fd, bare_job *j)
{
    if (now_ns() >= j->deadline) {
        finish(j); /* rule 2: not started, no system call but the wake */
        return;
    }
    set_timer(t, j->deadline, REPEAT);
    char byte;
    while (read(fd, &byte, 1) < 0 && errno == EINTR && now_ns() < j->deadline)
        continue;
    finish(j);
    set_timer(t, 0, 0); /* after the wake-up, off the caller's path */
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    sigset_t end, mine;
    sigemptyset(&end);
    sigaddset(&end, SIGUSR2); /* bare_close */
    pthread_sigmask(SIG_BLOCK, &end, NULL);
    sigemptyset(&mine);
    sigaddset(&mine, signal_number());
    pthread_sigmask(SIG_UNBLOCK, &mine, NULL);
    struct sigevent ev;
    memset(&ev, 0, sizeof ev);
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = signal_number();
    ev.sigev_notify_thread_id = (pid_t)syscall(SYS_gettid);
    timer_t t;
    w->ok = timer_create(CLOCK_MONOTONIC, &ev, &t) == 0;
    w->err = w->ok ? 0 : errno;
    pthread_mutex_lock(&bare.mu);
    bare.started++;
    pthread_cond_broadcast(&bare.cv);
    pthread_mutex_unlock(&bare.mu);
    for (bare_job *j; w->ok && (j = take()) != NULL;)
        serve(t, w->fd, j);
    if (w->ok)
        timer_delete(t);
    /* Done: wait outside every futex (see fig_scale.c on the finish line). */
    int sig;
    while (sigwait(&end, &sig) != 0)
        continue;
    return NULL;
}

int bare_open(const int *fds, unsigned n)
{
    bare.w = calloc(n ? n : 1, sizeof *bare.w);
    if (!bare.w)
        return -1;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: read(2) fails with EINTR */
    sigaction(signal_number(), &sa, NULL);
    bare.started = 0;
    bare.open = 0;
    bare.jobs = NULL;
    bare.n = bare.next = 0;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setstacksize(&a, WORKER_STACK);
    for (bare.nw = 0; bare.nw < n; bare.nw++) {
        bare.w[bare.nw].fd = fds[bare.nw];
        if (pthread_create(&bare.w[bare.nw].th, &a, worker_main, &bare.w[bare.nw]) != 0)
            break;
    }
    pthread_attr_destroy(&a);
    pthread_mutex_lock(&bare.mu);
    while (bare.started < (int)bare.nw)
        pthread_cond_wait(&bare.cv, &bare.mu);
    pthread_mutex_unlock(&bare.mu);
    int e = bare.nw < n ? EAGAIN : 0;
    for (unsigned i = 0; i < bare.nw && !e; i++)
        e = bare.w[i].err;
    if (e) {
        bare_close();
        errno = e;
        return -1;
    }
    return 0;
}

void bare_serve(bare_job **jobs, unsigned n)
{
    pthread_mutex_lock(&bare.mu);
    bare.jobs = jobs;
    bare.n = n;
    bare.next = 0;
    bare.open = 1;
    pthread_cond_broadcast(&bare.cv);
    pthread_mutex_unlock(&bare.mu);
}

void bare_wait(bare_job *j)
{
    while (!atomic_load(&j->done))
        syscall(SYS_futex, &j->done, FUTEX_WAIT, 0, NULL, NULL, 0);
}

void bare_close(void)
{
    bare_serve(NULL, 0); /* a worker still waiting to start finds nothing */
    for (unsigned i = 0; i < bare.nw; i++)
        pthread_kill(bare.w[i].th, SIGUSR2);
    for (unsigned i = 0; i < bare.nw; i++)
        pthread_join(bare.w[i].th, NULL);
    free(bare.w);
    bare.w = NULL;
    bare.nw = 0;
    signal(signal_number(), SIG_DFL);
}
