/*
 * cancelio/plan9.h — Plan 9 notes on POSIX threads.
 *
 * A thread plays the part of a Plan 9 process.  A note is a short string
 * posted to a thread: if that thread is blocked in a cancelio call (any call
 * of cancelio.h that may block, cio_call and cio_open included), the call is
 * interrupted and fails with EINTR, as a Plan 9 system call fails with
 * "interrupted"; if the thread is in no call, the note waits and the next
 * call the thread makes fails at once with EINTR without touching its file.
 * Just before that call returns, on the thread itself and never in signal
 * context, each pending note is offered to the thread's handlers.
 *
 * Same library as cancelio.h (link cancelio), same conventions: -1 and
 * errno on failure.  docs/plan9.md tells the whole story.
 */
#ifndef CANCELIO_PLAN9_H
#define CANCELIO_PLAN9_H

#include "../cancelio.h"

#ifdef __cplusplus
extern "C" {
#endif

#define CIO_ERRMAX 128 /* a note's text, NUL included (Plan 9's ERRMAX) */
#define CIO_NNOTE 5    /* notes pending at once per thread (Plan 9's NNOTE) */

typedef struct cio_proc cio_proc; /* a thread, as a Plan 9 process */

/* The calling thread's cio_proc, made on first use.  The pointer stays valid
 * for the life of the process, after the thread has exited too (notes to it
 * then fail with ESRCH).  Never blocks.  Errors: ENOMEM. */
CIO_API cio_proc *cio_proc_self(void);

/* Queue the note (a string of 1 to CIO_ERRMAX-1 bytes, copied) for p, and
 * interrupt the cancelio call p is blocked in, which then fails with EINTR
 * (a write cut short returns its count instead; a cio_call's fn sees
 * cio_interrupted()).  If p is in no call, its next call fails with EINTR
 * at once.  Any thread may post to any cio_proc, its own included.  Does
 * not block on I/O (it takes short internal locks).  Errors: EINVAL p or
 * note NULL, note empty or too long; EAGAIN CIO_NNOTE notes already pending
 * on p (nothing queued); ESRCH p's thread has exited. */
CIO_API int cio_postnote(cio_proc *p, const char *note);

/* Add (in = 1) or remove (in = 0) a handler of the calling thread's notes.
 * Handlers are offered each note in the order they were added, as f(NULL,
 * note) on this thread; the first that returns nonzero has handled it, and
 * a note nobody handles is dropped.  A handler may be added more than once
 * (it is then offered the note once per entry); removal takes out its
 * earliest entry.  Handlers may call cancelio, and may add or remove
 * handlers (the change applies from the next note).  At most 32 handlers
 * per thread.  Returns 0 (not Plan 9's 1).  Never blocks.  Errors: EINVAL
 * f NULL or in not 0 or 1; ENOENT removing a handler that is not there;
 * ENOSPC 32 handlers already; ENOMEM (no cio_proc could be made). */
CIO_API int cio_atnotify(int (*f)(void *arg, char *note), int in);

/* Post the note "alarm" to the calling thread ms milliseconds from now; a
 * new call replaces the previous alarm, and 0 clears it.  Returns the
 * milliseconds that were left on the previous alarm, rounded up (0 if
 * none).  An alarm that finds CIO_NNOTE notes pending is dropped.  Never
 * blocks.  Errors: ENOMEM; EAGAIN (the library could not start its timer);
 * EBUSY (the library's first use could not install the cancel signal's
 * handler: see cio_init). */
CIO_API long cio_alarm(unsigned long ms);

#ifdef __cplusplus
}
#endif

#endif
