/*
 * The cancel signal.  Its handler does almost nothing: its job is to exist,
 * so that the signal interrupts a worker's syscall (EINTR, because it is
 * installed without SA_RESTART) instead of killing the process or being
 * ignored.  Whether the EINTR means "stop" is decided by the op's reason
 * flag, never by the signal itself (see docs/protocol.md).  It counts the
 * signals its thread took: a caller parked on its own thread learns so that
 * the signal a stop owes it has come (step 4c).
 */
#include "internal.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

static int installed_signo; /* lib.mu */
static struct sigaction previous;

CIO__TLS_IE volatile sig_atomic_t cio__signal_seen;

int cio__signal_from_this_process(const siginfo_t *si)
{
    /* pthread_kill's is SI_TKILL on Linux (glibc's sigwaitinfo reports it
     * as SI_USER), SI_LWP on FreeBSD; the sender's pid is this one's */
    int sent = si->si_code == SI_USER || si->si_code == SI_QUEUE
#ifdef SI_TKILL
               || si->si_code == SI_TKILL
#endif
#ifdef SI_LWP
               || si->si_code == SI_LWP
#endif
        ;
    return sent && si->si_pid == getpid();
}

/* Counts only what a thread of this process sent this thread, as the
 * library's stops do: a kill(1) of the process that lands in a caller's
 * wait is not taken for the signal its stop owes it (step 4c). */
static void on_cancel_signal(int signo, siginfo_t *si, void *context)
{
    int saved = errno;
    (void)signo;
    (void)context;
    if (si && cio__signal_from_this_process(si))
        cio__signal_seen = cio__signal_seen + 1; /* this thread alone writes it */
    errno = saved;
}

/* Not SIGKILL or SIGSTOP (no handler), nor a signal the kernel sends for
 * a fault: a handler that returns from SIGSEGV, SIGBUS, SIGFPE, SIGILL or
 * SIGTRAP raised by the faulting instruction runs it again, forever.  Nor
 * one the C library keeps (sigaddset refuses glibc's 32 and 33; FreeBSD's
 * libthr takes SIGTHR and SIGLIBRT, which sigaddset accepts). */
int cio__signal_valid(int signo)
{
    sigset_t s;
    sigemptyset(&s);
#ifdef SIGTHR
    if (signo == SIGTHR)
        return 0;
#endif
#ifdef SIGLIBRT
    if (signo == SIGLIBRT)
        return 0;
#endif
    return signo > 0 && signo != SIGKILL && signo != SIGSTOP && signo != SIGSEGV &&
           signo != SIGBUS && signo != SIGFPE && signo != SIGILL && signo != SIGTRAP &&
           sigaddset(&s, signo) == 0;
}

int cio__signal_install(int signo)
{
    struct sigaction sa, old;
    if (!cio__signal_valid(signo))
        return -EINVAL;
    if (sigaction(signo, NULL, &old) < 0)
        return -errno;
    int theirs = (old.sa_flags & SA_SIGINFO)
                     ? old.sa_sigaction != NULL && old.sa_sigaction != on_cancel_signal
                     : old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN;
    if (theirs)
        return -EBUSY;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_cancel_signal;
    sigfillset(&sa.sa_mask);
    sa.sa_flags = SA_SIGINFO; /* no SA_RESTART: the syscall must fail with EINTR */
    if (sigaction(signo, &sa, NULL) < 0)
        return -errno;
    previous = old;
    installed_signo = signo;
    return 0;
}

void cio__signal_restore(void)
{
    if (installed_signo)
        sigaction(installed_signo, &previous, NULL);
    installed_signo = 0;
}

int cio__signal_number(void)
{
    return installed_signo;
}

void cio__signal_worker_mask(sigset_t *set)
{
    sigfillset(set);
    sigdelset(set, installed_signo);
}

void cio__signal_worker_mask_restore(void)
{
    sigset_t set;
    cio__signal_worker_mask(&set);
    pthread_sigmask(SIG_SETMASK, &set, NULL);
}
