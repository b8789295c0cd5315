/*
 * cio-run: run a command with its stdout and stderr relayed to ours as
 * they come, and stop it (SIGTERM and SIGCONT, then SIGKILL after
 * --kill-after) when it prints nothing for --idle or runs past --total
 * (exit 124, as timeout(1)), or as soon as --expect TEXT has appeared in
 * its output (exit 0).
 *
 * Threads: one relay per stream (cio_read, then cio_write to ours), one
 * waiter (cio_child_wait without a deadline), one forwarder of SIGHUP,
 * SIGINT, SIGQUIT, SIGTERM and SIGALRM to CMD (sigwait; each followed by
 * SIGCONT), and main, the controller, which sleeps on a condition variable
 * until the next deadline or an event.  Relays are stopped by moving
 * their read deadline into the past: a read cut that way consumed nothing,
 * and every byte a relay read it has already written out.  Only on a
 * timeout is a write of ours that our own reader does not take cut the
 * same way, so that --total bounds the run even then.
 *
 * SIGPIPE is blocked in every thread: a write to a reader that has gone
 * fails with EPIPE, CMD is stopped like on any output error, and then, if
 * SIGPIPE was not ignored, cio-run dies of it as a pipeline's member does.
 */
#include "tool.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* After CMD has exited its output is relayed until both pipes are at end
 * of file, or for this long (a descendant may keep a pipe open). */
#define DRAIN_NS ((cio_time_t)200 * 1000 * 1000)
#define BUF_SIZE ((size_t)64 * 1024)
#define TEXT_MAX ((size_t)4096)

struct run;

struct relay {
    struct run *run;
    cio_file *in;
    cio_file *out; /* our stdout or stderr */
    const char *in_name, *out_name;
    char carry[TEXT_MAX]; /* the last bytes of this stream, for --expect */
    size_t carried;
    /* run's mu: from the drain on, how many more bytes read may still be
     * CMD's own (what its pipe held then, and one read's worth that may
     * have been on its way out of it); -1 before (all are) */
    long long owed;
    long long unread; /* run's mu: of what its pipe held then, not yet read */
    int owed_write;   /* run's mu: inside a write of bytes that may be CMD's */
    int done;         /* run's mu: it has stopped relaying */
    int in_write;     /* run's mu: inside a write of ours */
    pthread_t thread;
};

struct run {
    cio_time_t idle, total, kill_after; /* durations, 0 = none */
    const char *text;                   /* --expect, or NULL */
    size_t tlen;
    cio_child *child;
    pthread_mutex_t mu;
    pthread_cond_t cv;      /* any of the fields below changed */
    cio_time_t last_output; /* mu */
    int drained;            /* mu: the drain is over: bytes not CMD's are dropped */
    cio_time_t cut;         /* mu: from the drain on, when a write of ours that
                               waits for our reader is cut (0: never) */
    int out_err;            /* mu: errno of a relay that failed (a write of ours, */
    const char *out_name;   /* or a read of CMD's output), or 0; and its stream */
    int matched;            /* mu */
    int exited, status;     /* mu */
    int copy_taken;         /* mu: a signal came after CMD had gone, taken as CMD's */
    sigset_t passed;        /* mu: the signals passed on to CMD */
    sigset_t taken;         /* the forwarded ones not ignored at the start */
    int relays;             /* mu: relays still running */
    int sigpipe_ignored;    /* as we found it */
    struct relay relay[2];
    pthread_t waiter;
};

static const char usage[] =
    "Usage: cio-run [--idle DUR] [--total DUR] [--expect TEXT] [--kill-after DUR]\n"
    "               [--] CMD [ARG...]\n"
    "Run CMD with its standard output and error relayed as they come.  When\n"
    "it prints nothing for --idle DUR, or --total DUR passes, send it SIGTERM,\n"
    "then SIGKILL after --kill-after DUR (default 5s), and exit 124.  With\n"
    "--expect, exit 0 as soon as TEXT appears in its standard output or its\n"
    "standard error (CMD is then stopped the same way), 1 if CMD ends\n"
    "without it.  DUR: a number, optional fraction, optional suffix s, m, h\n"
    "or d; 0 means none (for --kill-after: SIGKILL at once).\n"
    "\n"
    "  -i, --idle DUR         stop CMD after DUR without output\n"
    "  -t, --total DUR        stop CMD after DUR in all\n"
    "  -e, --expect TEXT      succeed as soon as TEXT has been printed\n"
    "  -k, --kill-after DUR   SIGKILL this long after SIGTERM (default 5s)\n"
    "  -h, --help             show this help and exit\n"
    "  -V, --version          show the version and exit\n"
    "\n"
    "Exit status: CMD's own, 128+N if signal N killed it; 0 or 1 with\n"
    "--expect (128+N if a signal passed on killed CMD first); 124 timed out;\n"
    "125 bad usage or cio-run failed; 126 CMD cannot be run; 127 CMD not\n"
    "found.\n";

/* The first place of t[0..tl) in h[0..hl), or NULL. */
static const char *find(const char *h, size_t hl, const char *t, size_t tl)
{
    for (size_t i = 0; hl >= tl && i <= hl - tl; i++) {
        const char *p = memchr(h + i, t[0], hl - tl - i + 1);
        if (!p)
            return NULL;
        i = (size_t)(p - h);
        if (memcmp(p, t, tl) == 0)
            return p;
    }
    return NULL;
}

/* Whether the text ends in p[0..n), this stream's bytes so far included:
 * a text split across two writes is found. */
static int saw_text(struct relay *rl, const char *p, size_t n)
{
    const struct run *r = rl->run;
    size_t keep = r->tlen - 1, k = n < keep ? n : keep;
    char seam[2 * TEXT_MAX];
    memcpy(seam, rl->carry, rl->carried);
    memcpy(seam + rl->carried, p, k);
    int hit = find(seam, rl->carried + k, r->text, r->tlen) || find(p, n, r->text, r->tlen);
    if (n >= keep) {
        memcpy(rl->carry, p + n - keep, keep);
        rl->carried = keep;
    } else {
        size_t total = rl->carried + n, drop = total > keep ? total - keep : 0;
        memmove(rl->carry, rl->carry + drop, rl->carried - drop);
        memcpy(rl->carry + rl->carried - drop, p, n);
        rl->carried = total - drop;
    }
    return hit;
}

/* Whether n bytes just read may be CMD's own output: all are until the
 * drain; from then on only as many as rl->owed says.  r->mu held. */
static int take_owed_locked(struct relay *rl, size_t n)
{
    rl->unread -= (long long)n < rl->unread ? (long long)n : rl->unread;
    if (rl->owed < 0)
        return 1;
    if (rl->owed == 0)
        return 0;
    rl->owed -= (long long)n < rl->owed ? (long long)n : rl->owed;
    return 1;
}

static void *relay_main(void *arg)
{
    struct relay *rl = arg;
    struct run *r = rl->run;
    static char bufs[2][BUF_SIZE];
    char *buf = bufs[rl == &r->relay[1]];
    ssize_t n;
    while ((n = cio_read(rl->in, buf, BUF_SIZE)) > 0) {
        /* CMD has spoken.  While our own reader is slow to take it, CMD
         * waits on us, not the other way round: that is not silence, so
         * the idle clock stops until the write is done. */
        pthread_mutex_lock(&r->mu);
        int owed = take_owed_locked(rl, (size_t)n);
        if (r->drained && !owed) { /* a descendant's, read as the drain ended */
            pthread_mutex_unlock(&r->mu);
            break;
        }
        if (r->drained && r->cut != CIO_NO_DEADLINE) /* CMD's, read just before */
            cio_set_write_deadline(rl->out, r->cut);
        rl->in_write = 1;
        rl->owed_write = owed;
        pthread_cond_broadcast(&r->cv); /* drain_locked counts time by it */
        pthread_mutex_unlock(&r->mu);
        int err = tool_write_all(rl->out, buf, (size_t)n) < 0 ? errno : 0;
        int hit = !err && r->text && saw_text(rl, buf, (size_t)n);
        pthread_mutex_lock(&r->mu);
        rl->owed_write = 0;
        rl->in_write = 0;
        r->last_output = cio_now();
        r->matched |= hit;
        if (err && err != ETIMEDOUT && !r->out_err) { /* ETIMEDOUT: cut (drain_locked) */
            r->out_err = err;
            r->out_name = rl->out_name;
        }
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
        if (err)
            break; /* output is being lost: the controller stops CMD */
    }
    /* A read that failed (no worker thread, no memory) would lose what CMD
     * writes next as surely as a failed write: not an end of file.
     * ETIMEDOUT is ours: drain_locked stops the relays that way. */
    int err = n < 0 && errno != ETIMEDOUT ? errno : 0;
    pthread_mutex_lock(&r->mu);
    if (err && !r->out_err) {
        r->out_err = err;
        r->out_name = rl->in_name;
    }
    rl->done = 1; /* an end of file, or an error: it reads no more */
    r->relays--;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void *waiter_main(void *arg)
{
    struct run *r = arg;
    int st = 0;
    while (cio_child_wait(r->child, &st, CIO_NO_DEADLINE) < 0 && errno != ECHILD) {
        struct timespec pause = {0, 10 * 1000 * 1000}; /* no worker now: not a spin */
        if (errno == EAGAIN || errno == ENOMEM)
            nanosleep(&pause, NULL);
    }
    pthread_mutex_lock(&r->mu);
    r->exited = 1;
    r->status = st;
    pthread_cond_broadcast(&r->cv);
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* Sleep on r->cv until woken or until t (0 = no limit); r->mu held. */
static void wait_until_locked(struct run *r, cio_time_t t)
{
    if (t == CIO_NO_DEADLINE) {
        pthread_cond_wait(&r->cv, &r->mu);
        return;
    }
    struct timespec ts = {(time_t)(t / 1000000000), (long)(t % 1000000000)};
    pthread_cond_timedwait(&r->cv, &r->mu, &ts);
}

enum outcome { EXITED, MATCHED, TIMED_OUT, FAILED };

/* Wait for CMD to exit, print the text, or time out; r->mu held. */
static enum outcome watch_locked(struct run *r, cio_time_t start)
{
    cio_time_t until = r->total ? start + r->total : CIO_NO_DEADLINE;
    for (;;) {
        if (r->out_err)
            return FAILED;
        if (r->matched)
            return MATCHED;
        if (r->exited)
            return EXITED;
        int writing = r->relay[0].in_write || r->relay[1].in_write;
        cio_time_t quiet = r->idle && !writing ? r->last_output + r->idle : CIO_NO_DEADLINE;
        cio_time_t next = tool_earlier(until, quiet);
        if (next != CIO_NO_DEADLINE && cio_now() >= next)
            return TIMED_OUT;
        wait_until_locked(r, next);
    }
}

/* SIGTERM, then SIGKILL after kill_after if CMD is still there; until it
 * has exited.  r->mu held. */
static void stop_locked(struct run *r)
{
    if (r->exited)
        return;
    if (r->kill_after) {
        /* A stopped CMD runs its SIGTERM handler only once continued:
         * without SIGCONT it would get no chance before SIGKILL (which
         * needs none).  As timeout(1) does. */
        cio_child_kill(r->child, SIGTERM);
        cio_child_kill(r->child, SIGCONT);
    } else {
        cio_child_kill(r->child, SIGKILL);
    }
    cio_time_t t = cio_now() + r->kill_after;
    while (!r->exited && r->kill_after && cio_now() < t)
        wait_until_locked(r, t);
    if (!r->exited)
        cio_child_kill(r->child, SIGKILL);
    while (!r->exited)
        wait_until_locked(r, CIO_NO_DEADLINE);
}

/* Whether what CMD left is still on its way: in a write of ours, or in
 * its pipe.  r->mu held. */
static int owed_pending_locked(const struct run *r)
{
    for (int i = 0; i < 2; i++)
        if (r->relay[i].owed_write || (!r->relay[i].done && r->relay[i].unread > 0))
            return 1;
    return 0;
}

/* Relay what CMD left in the pipes until both are at end of file, or for
 * DRAIN_NS (a descendant may keep a pipe open), not counting the time a
 * relay spends waiting for our reader to take a write of what CMD left,
 * nor the time before a relay has read what CMD left (a relay slow to get
 * a CPU would otherwise lose it): those bytes, and the ones behind them in
 * CMD's pipe, are on their way.  What CMD left is what its pipes hold now
 * (CMD has exited), and what a relay has read and not yet written; bytes
 * that a descendant writes after them count no more than silence, or one
 * writing faster than our reader takes would keep cio-run for as long as
 * the reader reads.  Then stop the relays.  A write our reader is not taking is cut too, but only
 * at `cut` (0: never): DRAIN_NS after a timeout, or when --total passes.
 * 1 when that cut came. */
static int drain_locked(struct run *r, cio_time_t cut)
{
    r->cut = cut;
    for (int i = 0; i < 2; i++) {
        int held = 0; /* where the pipe cannot say, every byte is CMD's */
        struct relay *rl = &r->relay[i];
        if (!rl->done && ioctl(cio_fileno(rl->in), FIONREAD, &held) == 0 && held >= 0) {
            rl->owed = (long long)held + (long long)BUF_SIZE;
            rl->unread = held;
        }
    }
    cio_time_t left = DRAIN_NS, since = cio_now();
    int cutting = 0, writing = owed_pending_locked(r); /* since `since` (relays say each change) */
    while (r->relays > 0) {
        cio_time_t now = cio_now();
        if (cut != CIO_NO_DEADLINE && now >= cut) {
            cutting = 1;
            break;
        }
        if (!writing)
            left -= now - since;
        since = now;
        writing = owed_pending_locked(r);
        if (!writing && left <= 0)
            break;
        wait_until_locked(r, tool_earlier(writing ? CIO_NO_DEADLINE : now + left, cut));
    }
    /* What a descendant writes is not waited for: a write of it that our
     * reader is not taking is cut too, and what a relay reads from now on
     * is dropped (or --total would not bound cio-run once CMD has gone). */
    r->drained = 1;
    for (int i = 0; i < 2; i++) {
        struct relay *rl = &r->relay[i];
        cio_set_read_deadline(rl->in, cio_now()); /* past: they return */
        if (cutting || (rl->in_write && !rl->owed_write))
            cio_set_write_deadline(rl->out, cio_now());
    }
    return cutting;
}

/* The signals a user or a CI runner sends to stop a job: passed on to CMD,
 * which then ends with its own status (128+N when they kill it). */
static const int forwarded_signals[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGALRM};
#define N_FORWARDED (sizeof forwarded_signals / sizeof forwarded_signals[0])

/* Those of them not ignored, or all. */
static sigset_t forwarded_set(int skip_ignored)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < N_FORWARDED; i++) {
        struct sigaction now;
        int signo = forwarded_signals[i];
        if (!skip_ignored || sigaction(signo, NULL, &now) != 0 || now.sa_handler != SIG_IGN)
            sigaddset(&set, signo);
    }
    return set;
}

static sigset_t forwarded(void)
{
    return forwarded_set(0);
}

static int exit_status(const struct run *r, enum outcome o)
{
    if (r->out_err) /* CMD's output could not all be relayed */
        return EXIT_USAGE;
    if (o == TIMED_OUT)
        return EXIT_TIMEDOUT;
    int signo = WIFSIGNALED(r->status) ? WTERMSIG(r->status) : 0;
    if (r->text && !r->matched) {
        /* Stopped by one of those signals (passed on by us, or sent to the
         * whole process group) before the text came: an interrupted run,
         * told apart from a missing text by CMD's own 128+N. */
        sigset_t set = forwarded();
        return signo && sigismember(&set, signo) == 1 ? 128 + signo : 1;
    }
    if (r->text)
        return 0;
    if (signo)
        return 128 + signo;
    return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 1;
}

/* Die of signo, as if nobody had blocked it. */
static void die_of(int signo)
{
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigemptyset(&dfl.sa_mask);
    sigaction(signo, &dfl, NULL);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, signo);
    raise(signo); /* pending while blocked */
    pthread_sigmask(SIG_UNBLOCK, &only, NULL);
}

/* Whether CMD, gone, was killed by a signal that we passed on to it.
 * r->mu held. */
static int killed_by_one_passed_on_locked(struct run *r)
{
    int st = r->status;
    if (!r->exited && cio_child_wait(r->child, &st, 1) < 0) /* reaped, not yet said */
        return 0;
    return WIFSIGNALED(st) && sigismember(&r->passed, WTERMSIG(st)) == 1;
}

/* Whether signo is CMD's.  While CMD runs it is passed on, followed by
 * SIGCONT so that a stopped CMD can act on it (as timeout(1) does); under
 * r->mu: the child is freed only after the waiter has said it exited.
 * Once CMD has gone (cio_child_kill reaps a CMD that has exited and fails
 * with ESRCH), and cio-run is only finishing its output, the first signal
 * is still CMD's, whatever CMD's status: one signal may reach both at once
 * (Ctrl-C to the foreground process group, a terminal's hangup, kill to a
 * process group), and CMD may have died of its copy, or caught it and
 * exited, before we took ours.  Taking ours as passed on changes nothing,
 * and the outcome is CMD's status, not a race.  A second one is for
 * cio-run itself, which dies of it: a way out of a wait for a reader that
 * takes nothing.  So is the first, when a signal we passed on killed CMD:
 * that one was the first, and ours. */
static int is_for_cmd_locked(struct run *r, int signo)
{
    if (!r->exited) {
        if (cio_child_kill(r->child, signo) == 0) {
            cio_child_kill(r->child, SIGCONT);
            sigaddset(&r->passed, signo);
            return 1;
        }
        if (errno != ESRCH)
            return 0; /* it cannot be passed on */
    }
    if (r->copy_taken || killed_by_one_passed_on_locked(r))
        return 0;
    r->copy_taken = 1;
    return 1;
}

static void *forwarder_main(void *arg)
{
    struct run *r = arg;
    int signo;
    while (sigwait(&r->taken, &signo) == 0) {
        pthread_mutex_lock(&r->mu);
        int ours = !is_for_cmd_locked(r, signo);
        pthread_mutex_unlock(&r->mu);
        if (ours)
            die_of(signo);
    }
    return NULL;
}

static int init_sync(struct run *r)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) || pthread_condattr_setclock(&ca, CLOCK_MONOTONIC) ||
        pthread_cond_init(&r->cv, &ca) || pthread_mutex_init(&r->mu, NULL))
        return -1;
    pthread_condattr_destroy(&ca);
    return 0;
}

static int start_threads(struct run *r, cio_file *outs[2])
{
    static const char *const names[2] = {"standard output", "standard error"};
    static const char *const cmd_names[2] = {"CMD's standard output", "CMD's standard error"};
    int which[2] = {CIO_STDOUT, CIO_STDERR};
    r->relays = 2;
    for (int i = 0; i < 2; i++) {
        r->relay[i] = (struct relay){.run = r,
                                     .owed = -1,
                                     .in = cio_child_file(r->child, which[i]),
                                     .out = outs[i],
                                     .in_name = cmd_names[i],
                                     .out_name = names[i]};
        if (pthread_create(&r->relay[i].thread, NULL, relay_main, &r->relay[i]))
            return -1;
    }
    pthread_t forwarder;
    if (pthread_create(&forwarder, NULL, forwarder_main, r))
        return -1;
    pthread_detach(forwarder); /* it lives until the process exits */
    return pthread_create(&r->waiter, NULL, waiter_main, r) ? -1 : 0;
}

/* A reader of ours went away: die of SIGPIPE, as cat(1) in a pipeline
 * does, unless it was ignored when we started (then: a message and 125). */
static void die_of_sigpipe(const struct run *r)
{
    if (r->out_err == EPIPE && !r->sigpipe_ignored)
        die_of(SIGPIPE);
}

/* The exit status when cio_spawn failed with err.  Out of descriptors,
 * memory or processes (for the pipes, the fork, or exec itself): cio-run
 * failed, whatever CMD is, 125 (timeout(1) too when it cannot fork).  Not
 * found: 127.  Any other error is exec refusing the file it found (EACCES,
 * ENOEXEC, EISDIR, ENOTDIR, ELOOP, ENAMETOOLONG, ETXTBSY, EPERM, E2BIG,
 * ...): 126, as timeout(1) and env(1) say. */
static int spawn_failure(int err)
{
    switch (err) {
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EAGAIN:
        return EXIT_USAGE;
    case ENOENT:
        return EXIT_NOT_FOUND;
    default:
        return EXIT_CANNOT_RUN;
    }
}

/* CMD whose output cannot be relayed (a thread of ours could not be
 * made): killed at once, for nothing it prints can reach anyone, and
 * reaped here, with no thread of the library's (that one may not be made
 * either); ECHILD if a signal passed on meanwhile found it exited and
 * reaped it (cio_child_kill does). */
static void stop_unrelayed(cio_child *c)
{
    cio_child_kill(c, SIGKILL);
    while (waitpid(cio_child_pid(c), NULL, 0) < 0 && errno == EINTR)
        ;
}

static int run(struct run *r, char **cmd)
{
    /* Blocked in every thread from here on, the forwarded ones taken by the
     * forwarder only (cio_spawn gives CMD an empty mask).  One ignored as
     * we start (nohup, a background job of a shell without job control)
     * stays ignored, and unblocked: the kernel queues a blocked signal
     * even when it is ignored, and sigwait would take it. */
    struct sigaction old, dfl = {.sa_handler = SIG_DFL};
    sigaction(SIGPIPE, NULL, &old);
    r->sigpipe_ignored = old.sa_handler == SIG_IGN;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, NULL); /* ignored, CMD's status would be lost */
    sigemptyset(&r->passed);
    r->taken = forwarded_set(1);
    sigset_t blocked = r->taken;
    sigaddset(&blocked, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &blocked, NULL);
    cio_file *outs[2] = {cio_fdopen(STDOUT_FILENO), cio_fdopen(STDERR_FILENO)};
    if (init_sync(r) < 0 || !outs[0] || !outs[1]) {
        tool_warn("setup", errno);
        return EXIT_USAGE;
    }
    r->child = cio_spawn(cmd, CIO_STDOUT | CIO_STDERR);
    if (!r->child) {
        int e = errno;
        tool_warn(cmd[0], e);
        return spawn_failure(e);
    }
    cio_time_t start = cio_now();
    r->last_output = start;
    if (start_threads(r, outs) < 0) { /* cannot relay: do not leave CMD behind */
        tool_warn("threads", EAGAIN);
        stop_unrelayed(r->child);
        exit(EXIT_USAGE);
    }
    pthread_mutex_lock(&r->mu);
    enum outcome o = watch_locked(r, start);
    if (o != EXITED)
        stop_locked(r);
    cio_time_t total = r->total ? start + r->total : CIO_NO_DEADLINE;
    if (drain_locked(r, o == TIMED_OUT ? cio_now() + DRAIN_NS : total) && o == EXITED)
        o = TIMED_OUT; /* --total passed while CMD's last output waited for our reader */
    pthread_mutex_unlock(&r->mu);
    for (int i = 0; i < 2; i++)
        pthread_join(r->relay[i].thread, NULL);
    pthread_join(r->waiter, NULL);
    cio_child_free(r->child);
    for (int i = 0; i < 2; i++)
        cio_detach(outs[i]);
    die_of_sigpipe(r);
    int status = exit_status(r, o);
    if (r->out_err)
        tool_warn(r->out_name, r->out_err);
    return tool_exit(status);
}

static void duration(const char *arg, cio_time_t *ns)
{
    if (tool_duration(arg, ns) < 0)
        tool_usage_error("invalid duration", arg);
}

static char **parse(int argc, char **argv, struct run *r)
{
    static const struct option opts[] = {{"idle", required_argument, NULL, 'i'},
                                         {"total", required_argument, NULL, 't'},
                                         {"expect", required_argument, NULL, 'e'},
                                         {"kill-after", required_argument, NULL, 'k'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    int o;
    /* "+": options end at CMD, whose own options are left alone */
    while ((o = getopt_long(argc, argv, "+i:t:e:k:hV", opts, NULL)) != -1) {
        switch (o) {
        case 'i':
            duration(optarg, &r->idle);
            break;
        case 't':
            duration(optarg, &r->total);
            break;
        case 'k':
            duration(optarg, &r->kill_after);
            break;
        case 'e':
            r->text = optarg;
            r->tlen = strlen(optarg);
            if (r->tlen == 0 || r->tlen > TEXT_MAX)
                tool_usage_error("--expect needs a text of 1 to 4096 bytes, not", optarg);
            break;
        case 'h':
            tool_print_exit(usage, EXIT_USAGE);
        case 'V':
            tool_version(EXIT_USAGE);
        default:
            tool_usage_error("bad usage", NULL);
        }
    }
    if (optind >= argc)
        tool_usage_error("no command given", NULL);
    return argv + optind;
}

int main(int argc, char **argv)
{
    static struct run r = {.kill_after = (cio_time_t)5 * 1000 * 1000 * 1000};
    tool_name = "cio-run";
    tool_hold_std_fds();
    char **cmd = parse(argc, argv, &r);
    tool_start_library();
    return run(&r, cmd);
}
