/*
 * The seed, rebuilt on the notes layer: Go's asyncIO on Plan 9 (commit
 * adb384ad, src/net/fd_io_plan9.go), with a thread in the role of the
 * process and cio_postnote in the role of postnote.
 *
 * The seed, in our words: to run one blocking call cancellably, start a
 * goroutine locked to its own process, with a mutex held so that an early
 * Cancel waits; the goroutine marks "ignore hangup", publishes its pid,
 * lets go of the mutex, makes the call, then under the mutex sets pid = -1
 * and un-ignores hangup, and sends the result.  Cancel, under the mutex,
 * posts "hangup" to pid if it is not -1.  The caller always waits for the
 * result, so its buffer is never touched after Read returns.
 *
 * How the library really does it (docs/protocol.md): no thread per call but
 * a pooled worker; the "pid" is op->worker, published under the file's lock
 * at step 2 and cleared under it at step 6; the "note" is pthread_kill of
 * the cancel signal, sent only while the op is RUNNING; "ignore hangup" is
 * a worker retrying an EINTR that has no reason; and because a signal can
 * land just before the syscall, the waiting caller re-sends it until the
 * worker leaves (the seed's bug 7).  Below, the same shape in a few dozen
 * lines: here the "blocking call" is a cio_read, which a note interrupts.
 * Exits 0 when everything happened as described.
 */
/* POSIX 2008, for a build on its own: cc -std=c11 $(pkg-config --cflags
 * --libs cancelio) hides everything beyond ISO C, nanosleep among it.
 * The project's build defines it itself. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <cancelio/plan9.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { STARTING, RUNNING, DONE };

struct asyncio {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int state;     /* mu: STARTING until the proc is published */
    cio_proc *pid; /* mu: the thread doing the call, as the seed's pid */
    pthread_t thread;
    cio_file *f;
    char buf[64];
    ssize_t n;
    int err;
};

static int ignore_hangup(void *u, char *note)
{
    (void)u;
    return strcmp(note, "hangup") == 0; /* NCONT for the I/O "process" */
}

static void set_state(struct asyncio *a, int state, cio_proc *pid)
{
    pthread_mutex_lock(&a->mu);
    a->state = state;
    a->pid = pid;
    pthread_cond_broadcast(&a->cv);
    pthread_mutex_unlock(&a->mu);
}

static void *io_proc(void *arg)
{
    struct asyncio *a = arg;
    cio_atnotify(ignore_hangup, 1);
    set_state(a, RUNNING, cio_proc_self()); /* publish the pid */
    a->n = cio_read(a->f, a->buf, sizeof a->buf);
    a->err = errno;
    set_state(a, DONE, NULL); /* pid = -1: nobody posts to us any more */
    return NULL;
}

static int async_start(struct asyncio *a, cio_file *f)
{
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cv, NULL);
    a->state = STARTING;
    a->pid = NULL;
    a->f = f;
    return pthread_create(&a->thread, NULL, io_proc, a);
}

/* Cancel: wait until the pid is known, post only while it is valid. */
static void async_cancel(struct asyncio *a)
{
    pthread_mutex_lock(&a->mu);
    while (a->state == STARTING)
        pthread_cond_wait(&a->cv, &a->mu);
    if (a->state == RUNNING)
        cio_postnote(a->pid, "hangup");
    pthread_mutex_unlock(&a->mu);
}

/* The caller always waits for the call: its buffer is free afterwards. */
static ssize_t async_wait(struct asyncio *a, int *err)
{
    pthread_join(a->thread, NULL);
    *err = a->err;
    return a->n;
}

static void async_free(struct asyncio *a)
{
    pthread_cond_destroy(&a->cv);
    pthread_mutex_destroy(&a->mu);
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int main(void)
{
    int p[2], err, ok = 1;
    struct asyncio a;
    if (pipe(p) < 0)
        return 1;
    cio_file *f = cio_fdopen(p[0]);

    /* a deadline: the "timer" cancels the read in flight */
    if (!f || async_start(&a, f))
        return 1;
    nap_ms(100);
    async_cancel(&a);
    ssize_t n = async_wait(&a, &err);
    async_free(&a);
    printf("read with a 100 ms deadline: %zd (%s)\n", n, n < 0 ? strerror(err) : "data");
    ok &= n == -1 && err == EINTR;

    /* data first: the read completes, a late Cancel posts nothing */
    if (async_start(&a, f))
        return 1;
    if (write(p[1], "net", 3) != 3)
        return 1;
    nap_ms(50);
    n = async_wait(&a, &err);
    async_cancel(&a); /* after the call: state is DONE, nothing is posted */
    async_free(&a);
    printf("read with data: %zd bytes \"%.*s\"; a late cancel did nothing\n", n, n > 0 ? (int)n : 0,
           a.buf);
    ok &= n == 3 && memcmp(a.buf, "net", 3) == 0;

    cio_close(f);
    close(p[1]);
    printf("%s\n", ok ? "all as expected" : "FAILED");
    return ok ? 0 : 1;
}
