/*
 * Plan 9 notes on POSIX threads: a cio_proc per thread, its queue of notes
 * and its handlers, and the watcher through which a note interrupts the op
 * its thread is in (DESIGN rules 16-17, docs/plan9.md).  alarm.c adds
 * cio_alarm on top.
 *
 * Lock order: p->mu, then the lock of the op p is in (file->mu, or a call's
 * mu); procs.mu is taken alone.  The owner thread takes p->mu only while it
 * holds no op lock (in begin and end); under the op's lock it reads only
 * the atomic count of pending notes.  So cio_postnote may hold p->mu while
 * it takes the op's lock, and the op (on the owner's stack) cannot end
 * meanwhile: end must take p->mu to forget it.
 *
 * Who touches what:
 *   p->mu guards     the queue, exited, op, op_mu (and alarm.c's alarm_at)
 *   *p->op_mu guards armed: op is prepared and not finished, so a note may
 *                    interrupt it; outside that window a note only waits
 *   the owner thread handlers and delivering, with no lock (no one else
 *                    reads them)
 */
#include "plan9/proc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static struct {
    pthread_mutex_t mu;
    cio_proc *head; /* every cio_proc ever made: they are never freed */
} procs = {PTHREAD_MUTEX_INITIALIZER, NULL};

static _Thread_local cio_proc *self;
static pthread_key_t exit_key; /* its destructor marks the proc exited */
static pthread_once_t once = PTHREAD_ONCE_INIT;
static int once_err;

static cio_proc *proc_of(cio__watcher *w)
{
    return (cio_proc *)((char *)w - offsetof(cio_proc, watcher));
}

/* ---- the queue; p->mu held ---- */

void cio__note_queue_locked(cio_proc *p, const char *note, size_t len)
{
    char *slot = p->note[(p->head + p->n) % CIO_NNOTE];
    memcpy(slot, note, len);
    slot[len] = '\0';
    p->n++;
    atomic_store(&p->pending, p->n);
    if (!p->op)
        return; /* the next op p starts is refused (begin) */
    pthread_mutex_lock(p->op_mu);
    /* An op already over (its caller not yet woken to disarm it) is not
     * stopped: its result stands, and the note refuses the next op. */
    if (p->armed && p->op->state != CIO__OP_DONE)
        cio__op_interrupt_locked(p->op, EINTR);
    /* not armed: arm_locked will see `pending`, or the op is over and the
     * note waits to refuse the next one */
    pthread_mutex_unlock(p->op_mu);
}

static int take(cio_proc *p, char *note)
{
    pthread_mutex_lock(&p->mu);
    int got = p->n > 0;
    if (got) {
        memcpy(note, p->note[p->head], CIO_ERRMAX);
        p->head = (p->head + 1) % CIO_NNOTE;
        p->n--;
        atomic_store(&p->pending, p->n);
    }
    pthread_mutex_unlock(&p->mu);
    return got;
}

/* ---- delivery, on the owner thread with no lock held (rule 17) ---- */

/* Offer note to the handlers as they stand when it is taken: a handler
 * that adds or removes handlers changes the list for the next note. */
static void offer(cio_proc *p, char *note)
{
    cio__note_handler h[CIO__NHANDLER];
    unsigned nh = p->nh;
    memcpy(h, p->h, nh * sizeof h[0]);
    for (unsigned i = 0; i < nh; i++)
        if (h[i](NULL, note))
            return;
    /* nobody took it: dropped (a Plan 9 process would die here) */
}

/* Every pending note, oldest first; notes posted meanwhile (by handlers or
 * other threads) are delivered in the same round, so none is left over to
 * refuse the next op.  The handlers' own ops are not watched. */
static void deliver(cio_proc *p)
{
    char note[CIO_ERRMAX];
    p->delivering = 1;
    while (take(p, note))
        offer(p, note);
    p->delivering = 0;
}

/* ---- the watcher: an op of p's thread starts and ends ---- */

static int begin(cio__watcher *w, cio__op *op, pthread_mutex_t *mu)
{
    cio_proc *p = proc_of(w);
    if (p->delivering)
        return 0; /* a handler's op: the notes at hand do not stop it */
    pthread_mutex_lock(&p->mu);
    int refused = p->n > 0;
    if (!refused) {
        p->op = op;
        p->op_mu = mu;
    }
    pthread_mutex_unlock(&p->mu);
    p->noted |= refused;
    return refused ? -EINTR : 1;
}

static void arm_locked(cio__watcher *w, cio__op *op)
{
    cio_proc *p = proc_of(w);
    p->armed = 1;
    /* A note queued between begin and now found the op unarmed. */
    if (atomic_load(&p->pending))
        cio__op_interrupt_locked(op, EINTR);
}

/* Rule 17: handlers run in an op that a note ended (it fails with EINTR,
 * or a write returns its cut count), never in one that succeeded or that
 * an earlier reason ended: a note that came too late for its op waits,
 * and refuses the next one, as one that came after it. */
static void disarm_locked(cio__watcher *w, cio__op *op, long r)
{
    cio_proc *p = proc_of(w);
    p->armed = 0;
    p->noted |= cio__op_noted_locked(op, r);
}

static void deliver_if_noted(cio_proc *p)
{
    if (!p->noted)
        return;
    p->noted = 0;
    deliver(p);
}

static long end(cio__watcher *w, long result)
{
    cio_proc *p = proc_of(w);
    pthread_mutex_lock(&p->mu);
    p->op = NULL;
    p->op_mu = NULL;
    pthread_mutex_unlock(&p->mu);
    if (!p->spanning)
        deliver_if_noted(p);
    return result;
}

/* A read helper is one op to its caller, made of several: its notes wait
 * for its end, when the file's read direction is free again. */
static int span(cio__watcher *w, int on)
{
    cio_proc *p = proc_of(w);
    if (p->delivering)
        return 0; /* a handler's helper: the notes at hand do not stop it */
    p->spanning = on;
    if (on) {
        int refused = atomic_load(&p->pending) != 0;
        p->noted |= refused;
        return refused ? -EINTR : 0;
    }
    deliver_if_noted(p);
    return 0;
}

static const cio__watch_ops watch_ops = {begin, arm_locked, disarm_locked, end, span};

/* ---- procs: made on first use, marked exited, never freed ---- */

static void on_thread_exit(void *arg)
{
    cio_proc *p = arg;
    pthread_mutex_lock(&p->mu);
    p->exited = 1;
    p->n = 0;
    atomic_store(&p->pending, 0);
    cio__alarm_clear_locked(p);
    pthread_mutex_unlock(&p->mu);
}

static void fork_prepare(void)
{
    pthread_mutex_lock(&procs.mu);
}

static void fork_parent(void)
{
    pthread_mutex_unlock(&procs.mu);
}

/* In the child only the forking thread lives: every other proc's thread
 * has exited, and no lock another thread held may stay held. */
static void fork_child(void)
{
    for (cio_proc *p = procs.head; p; p = p->next) {
        pthread_mutex_init(&p->mu, NULL);
        p->op = NULL;
        p->op_mu = NULL;
        p->armed = 0;
        if (p != self) {
            p->exited = 1;
            p->n = 0;
            atomic_store(&p->pending, 0);
            p->alarm_at = CIO_NO_DEADLINE;
        }
    }
    pthread_mutex_unlock(&procs.mu);
}

static void make_key(void)
{
    once_err = pthread_key_create(&exit_key, on_thread_exit);
    if (!once_err)
        once_err = pthread_atfork(fork_prepare, fork_parent, fork_child);
}

CIO__AT_LOAD(make_key_at_load, once, make_key)

static cio_proc *make(void)
{
    cio_proc *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    if (pthread_mutex_init(&p->mu, NULL)) {
        free(p);
        return NULL;
    }
    p->watcher.ops = &watch_ops;
    atomic_init(&p->pending, 0);
    cio__alarm_init(p);
    return p;
}

cio_proc *cio_proc_self(void)
{
    if (self)
        return self;
    pthread_once(&once, make_key);
    cio_proc *p = once_err ? NULL : make();
    if (!p)
        return (void)cio__fail(-ENOMEM), NULL;
    if (pthread_setspecific(exit_key, p)) {
        pthread_mutex_destroy(&p->mu);
        free(p);
        return (void)cio__fail(-ENOMEM), NULL;
    }
    pthread_mutex_lock(&procs.mu);
    p->next = procs.head;
    procs.head = p;
    pthread_mutex_unlock(&procs.mu);
    self = p;
    cio__watcher_self = &p->watcher;
    return p;
}

/* ---- the public calls ---- */

/* strlen, or CIO_ERRMAX if note is longer than a note may be */
static size_t note_len(const char *note)
{
    size_t n = 0;
    while (n < CIO_ERRMAX && note[n])
        n++;
    return n;
}

int cio_postnote(cio_proc *p, const char *note)
{
    size_t len = note ? note_len(note) : 0;
    if (!p || len == 0 || len >= CIO_ERRMAX)
        return (int)cio__fail(-EINVAL);
    pthread_mutex_lock(&p->mu);
    int e = p->exited ? -ESRCH : p->n == CIO_NNOTE ? -EAGAIN : 0;
    if (!e)
        cio__note_queue_locked(p, note, len);
    pthread_mutex_unlock(&p->mu);
    return e < 0 ? (int)cio__fail(e) : 0;
}

static int add(cio_proc *p, cio__note_handler f)
{
    if (p->nh == CIO__NHANDLER)
        return -ENOSPC;
    p->h[p->nh++] = f;
    return 0;
}

static int del(cio_proc *p, cio__note_handler f)
{
    for (unsigned i = 0; i < p->nh; i++) {
        if (p->h[i] != f)
            continue;
        memmove(&p->h[i], &p->h[i + 1], (p->nh - i - 1) * sizeof p->h[0]);
        p->nh--;
        return 0;
    }
    return -ENOENT;
}

int cio_atnotify(int (*f)(void *arg, char *note), int in)
{
    if (!f || (in != 0 && in != 1))
        return (int)cio__fail(-EINVAL);
    cio_proc *p = cio_proc_self();
    if (!p)
        return -1;
    int e = in ? add(p, f) : del(p, f);
    return e < 0 ? (int)cio__fail(e) : 0;
}
