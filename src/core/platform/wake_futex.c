/*
 * A file op's caller waits on a futex word of its own thread (Linux).
 *
 * What this buys over a condvar: the worker can wake its caller after it
 * has let go of the file's lock.  Woken under the lock, the caller may run
 * at once (on one CPU it usually does), find the lock taken and sleep
 * again, a second hand-off for every op.  A condvar cannot be signalled
 * after the unlock, because the caller may see DONE, return and free the
 * op (it lives on the caller's stack) in between.  A futex word can: the
 * word is bumped under the lock, and only the FUTEX_WAKE system call comes
 * after it.
 *
 * The word is not in the op but in the caller thread's own storage
 * (thread-local), which outlives every op of that thread.  So the late
 * FUTEX_WAKE names memory that is still the thread's (nothing for
 * AddressSanitizer or Valgrind to report), and at worst wakes a later wait
 * of the same thread, which re-checks its condition and sleeps again.  Only
 * if the thread has exited in that instant is the memory given back; the
 * kernel then finds nobody there, wakes whoever waits there now (every
 * futex waiter allows for a spurious wake-up; glibc's own mutex unlock
 * wakes after its release in the same way) or fails with EFAULT.  A thread
 * waits on one op at a time, so its word has one waiter.
 *
 * The futex is not FUTEX_PRIVATE_FLAG, for the reason condvars are
 * process-shared (futexhash_linux.c): it hashes into the kernel's global
 * table, not the process's small one.
 */
#include "internal.h"

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Thread_local atomic_uint my_word;

int cio__wake_init(cio__wake *w)
{
    w->word = &my_word;
    w->sleeping = 0;
    return 0;
}

void cio__wake_destroy(cio__wake *w)
{
    w->word = NULL; /* the thread's word stays, for its next op */
}

void cio__wake_wait_until(cio__wake *w, pthread_mutex_t *mu, cio_time_t t)
{
    /* Read under mu: a post after this read changes the word, and the
     * kernel then refuses to sleep (EAGAIN); so none is lost. */
    atomic_uint *word = w->word;
    unsigned seen = atomic_load_explicit(word, memory_order_relaxed);
    struct timespec ts = cio__timespec(t);
    w->sleeping = 1;
    pthread_mutex_unlock(mu);
    /* FUTEX_WAIT_BITSET takes an absolute time on CLOCK_MONOTONIC, the
     * clock of cio_time_t.  Every return (woken, timed out, EINTR,
     * EAGAIN, a late wake meant for an earlier op) goes back to the
     * caller, which re-checks under mu. */
    syscall(SYS_futex, word, FUTEX_WAIT_BITSET, seen, t == CIO_NO_DEADLINE ? NULL : &ts, NULL,
            FUTEX_BITSET_MATCH_ANY);
    pthread_mutex_lock(mu);
    w->sleeping = 0;
}

/* The word moves whoever posts; the FUTEX_WAKE is owed only to a waiter
 * between its unlock and relock.  So a caller that finishes its own op (its
 * deadline, its own cancel) and a post that finds the caller awake under
 * mu make no system call. */
void *cio__wake_post_early(cio__wake *w)
{
    atomic_uint *word = w->word;
    atomic_fetch_add_explicit(word, 1, memory_order_relaxed);
    return w->sleeping ? word : NULL;
}

void cio__wake_post_late(void *token)
{
    if (token)
        syscall(SYS_futex, token, FUTEX_WAKE, 1, NULL, NULL, 0);
}
