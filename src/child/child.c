/*
 * Child processes with pipes, for tests and scripts that drive a program
 * (DESIGN "Helpers", rule 20).  Built on the public calls: the pipes are
 * cio_files and the wait is a cio_call.
 *
 * Reaping: a child is reaped only under c->mu, and cio_child_kill signals
 * only under c->mu after checking it was not reaped, so a pid is never
 * signalled after the kernel may have given it to another process.  The
 * blocking part of a wait is waitid(WNOWAIT) inside cio_call: it sees the
 * exit without reaping, and the deadline interrupts it through the
 * library's own signal (no polling, no SIGCHLD handler).  It waits only
 * for c->pid, so it never reaps a process it did not spawn; and once the
 * system has reaped c itself (ECHILD: SIGCHLD ignored), c->pid is never
 * waited for nor signalled again, whoever has that number now.  A kill or
 * a free first asks (WNOHANG) whether c is still there, so that the
 * system's reaping is seen even when nobody waited.  What no pid-based
 * call can see: with SIGCHLD ignored, the number taken over by another
 * child of this process between the system's reaping and that question
 * (a pidfd would close that window).
 */
#include "internal.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

struct cio_child {
    pid_t pid;         /* read-only */
    cio_file *file[3]; /* mu once spawned: stdin, stdout, stderr or NULL */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* a waiter left */
    int reaped;        /* mu */
    int lost;          /* mu: the system reaped it (ECHILD) */
    int status;        /* mu: valid once reaped */
    unsigned waiters;  /* mu: threads inside cio_child_wait */
};

extern char **environ;

#define ALL_STREAMS (CIO_STDIN | CIO_STDOUT | CIO_STDERR)

static int stream_index(int which)
{
    return which == CIO_STDIN ? 0 : which == CIO_STDOUT ? 1 : which == CIO_STDERR ? 2 : -1;
}

/* fd moved above 0-2, so that dup2 onto a standard fd never meets itself
 * (dup2(fd, fd) would leave close-on-exec set); fd is closed. */
static int above_stdio(int fd)
{
    if (fd > 2)
        return fd;
    int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    int e = errno;
    close(fd);
    errno = e;
    return nfd < 0 ? -errno : nfd;
}

/* A pipe for stream i: ours[i] is kept, theirs[i] goes to the child. */
static int make_pipe(int i, int ours[3], int theirs[3])
{
    int p[2];
    int e = cio__pipe_cloexec(p);
    if (e < 0)
        return e;
    p[0] = above_stdio(p[0]);
    p[1] = above_stdio(p[1]);
    if (p[0] < 0 || p[1] < 0) {
        e = p[0] < 0 ? p[0] : p[1];
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        return e;
    }
    ours[i] = i == 0 ? p[1] : p[0];
    theirs[i] = i == 0 ? p[0] : p[1];
    return 0;
}

static void close_all(int fds[3])
{
    for (int i = 0; i < 3; i++)
        if (fds[i] >= 0)
            close(fds[i]);
}

/* posix_spawnp with the pipes' ends on the child's 0-2 and an empty signal
 * mask; the error number (glibc and musl report a failed exec here). */
static int spawn(pid_t *pid, char *const argv[], const int theirs[3])
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none;
    int e = posix_spawn_file_actions_init(&fa);
    if (e)
        return e;
    if ((e = posix_spawnattr_init(&at)) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return e;
    }
    sigemptyset(&none);
    e = posix_spawnattr_setsigmask(&at, &none);
    if (!e)
        e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETSIGMASK);
    for (int i = 0; i < 3 && !e; i++)
        if (theirs[i] >= 0) /* dup2 clears close-on-exec on the copy */
            e = posix_spawn_file_actions_adddup2(&fa, theirs[i], i);
    if (!e)
        e = posix_spawnp(pid, argv[0], &fa, &at, argv, environ);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return e;
}

static cio_child *child_new(void)
{
    cio_child *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    if (cio__cond_init(&c->cv) != 0) {
        pthread_mutex_destroy(&c->mu);
        free(c);
        return NULL;
    }
    return c;
}

static void child_delete(cio_child *c)
{
    for (int i = 0; i < 3; i++)
        if (c->file[i])
            cio_close(c->file[i]);
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* Wrap our ends as files; the fds are owned by c from here. */
static int adopt_ends(cio_child *c, int ours[3])
{
    for (int i = 0; i < 3; i++) {
        if (ours[i] < 0)
            continue;
        c->file[i] = cio_fdopen(ours[i]);
        if (!c->file[i])
            return -errno;
        ours[i] = -1;
    }
    return 0;
}

cio_child *cio_spawn(char *const argv[], int flags)
{
    if (!argv || !argv[0] || (flags & ~ALL_STREAMS))
        return (void)cio__fail(-EINVAL), NULL;
    int ours[3] = {-1, -1, -1}, theirs[3] = {-1, -1, -1}, e = 0;
    int saved = errno; /* posix_spawnp's path search may write ours */
    cio_child *c = child_new();
    if (!c)
        return (void)cio__fail(-ENOMEM), NULL;
    for (int i = 0; i < 3 && !e; i++)
        if (flags & (1 << i))
            e = make_pipe(i, ours, theirs);
    if (!e)
        e = adopt_ends(c, ours);
    if (!e)
        e = -spawn(&c->pid, argv, theirs);
    close_all(theirs);
    if (e < 0) {
        close_all(ours);
        child_delete(c);
        return (void)cio__fail(e), NULL;
    }
    errno = saved;
    return c;
}

pid_t cio_child_pid(const cio_child *c)
{
    return c ? c->pid : (pid_t)cio__fail(-EINVAL);
}

cio_file *cio_child_file(cio_child *c, int which)
{
    int i = stream_index(which);
    if (!c || i < 0)
        return (void)cio__fail(-EINVAL), NULL;
    pthread_mutex_lock(&c->mu);
    cio_file *f = c->file[i];
    pthread_mutex_unlock(&c->mu);
    return f ? f : ((void)cio__fail(-EINVAL), NULL);
}

int cio_child_close(cio_child *c, int which)
{
    int i = stream_index(which);
    if (!c || i < 0)
        return (int)cio__fail(-EINVAL);
    pthread_mutex_lock(&c->mu);
    cio_file *f = c->file[i];
    c->file[i] = NULL;
    pthread_mutex_unlock(&c->mu);
    return f ? cio_close(f) : (int)cio__fail(-EINVAL);
}

/* Reap c if it has exited; c->mu held.  1 when reaped (now or before).
 * ECHILD: the system reaped it (SIGCHLD ignored), and its pid is free for
 * another process, which we must never wait for nor signal (rule 20). */
static int reap_locked(cio_child *c, int options)
{
    if (c->reaped || c->lost)
        return c->reaped;
    int st;
    pid_t r;
    do
        r = waitpid(c->pid, &st, options);
    while (r < 0 && errno == EINTR);
    if (r == c->pid) {
        c->reaped = 1;
        c->status = st;
    } else if (r < 0 && errno == ECHILD) {
        c->lost = 1;
    }
    return c->reaped;
}

/* In cio_call: wait for c to exit, leaving it for reap_locked. */
static long await_exit(void *arg)
{
    cio_child *c = arg;
    siginfo_t si;
    for (;;) {
        if (waitid(P_PID, (id_t)c->pid, &si, WEXITED | WNOWAIT) == 0)
            return 0;
        if (errno != EINTR || cio_interrupted())
            return -1;
    }
}

int cio_child_wait(cio_child *c, int *status, cio_time_t deadline)
{
    if (!c)
        return (int)cio__fail(-EINVAL);
    pthread_mutex_lock(&c->mu);
    int done = reap_locked(c, WNOHANG), e = 0;
    if (!done && !c->lost) {
        c->waiters++;
        pthread_mutex_unlock(&c->mu);
        long r = cio_call(await_exit, c, deadline);
        e = r < 0 ? errno : 0;
        pthread_mutex_lock(&c->mu);
        done = reap_locked(c, WNOHANG);
        if (--c->waiters == 0)
            pthread_cond_broadcast(&c->cv);
    }
    if (done && status)
        *status = c->status;
    pthread_mutex_unlock(&c->mu);
    return done ? 0 : (int)cio__fail(-(e ? e : ECHILD));
}

/* A number kill(2) takes: below NSIG where the system says it (sigaddset
 * refuses the C library's own signals, which kill(2) sends). */
static int kill_signo_valid(int signo)
{
#ifdef NSIG
    return signo >= 0 && signo < NSIG;
#else
    sigset_t s;
    sigemptyset(&s);
    return signo == 0 || sigaddset(&s, signo) == 0;
#endif
}

int cio_child_kill(cio_child *c, int signo)
{
    if (!c || !kill_signo_valid(signo))
        return (int)cio__fail(-EINVAL); /* as kill(2): the number first */
    pthread_mutex_lock(&c->mu);
    reap_locked(c, WNOHANG); /* exited: reaped now, or found lost (ECHILD) */
    int r = c->reaped || c->lost ? -ESRCH : kill(c->pid, signo) == 0 ? 0 : -errno;
    pthread_mutex_unlock(&c->mu);
    return r < 0 ? (int)cio__fail(r) : 0;
}

int cio_child_free(cio_child *c)
{
    if (!c)
        return (int)cio__fail(-EINVAL);
    int saved = errno; /* a child the system reaped answers ECHILD */
    pthread_mutex_lock(&c->mu);
    if (!reap_locked(c, WNOHANG) && !c->lost)
        kill(c->pid, SIGKILL);
    while (c->waiters > 0) /* they see the exit and leave */
        pthread_cond_wait(&c->cv, &c->mu);
    reap_locked(c, 0);
    pthread_mutex_unlock(&c->mu);
    child_delete(c);
    errno = saved;
    return 0;
}
