/*
 * The Plan 9 layer's process: one per thread (note.c), with its alarm
 * (alarm.c).  Built on the public surface and on the core's watcher hook;
 * nothing below it names anything here.
 */
#ifndef CIO_PLAN9_PROC_H
#define CIO_PLAN9_PROC_H

#include "cancelio/plan9.h"
#include "internal.h"

#define CIO__NHANDLER 32 /* handlers per thread (Plan 9's libc keeps 33) */

typedef int (*cio__note_handler)(void *arg, char *note);

struct cio_proc {
    cio__watcher watcher; /* the core's view: begin, arm, disarm, end, span */
    pthread_mutex_t mu;
    char note[CIO_NNOTE][CIO_ERRMAX];   /* mu: a ring, the oldest at head */
    unsigned head, n;                   /* mu */
    atomic_uint pending;                /* stored under mu (== n); read anywhere */
    int exited;                         /* mu: its thread is gone (ESRCH) */
    cio__op *op;                        /* mu: the op its thread is in, or NULL */
    pthread_mutex_t *op_mu;             /* mu: that op's lock */
    int armed;                          /* *op_mu: op prepared, not finished */
    cio__timer alarm;                   /* armed while alarm_at is set */
    cio_time_t alarm_at;                /* mu: when "alarm" is due; 0 = none */
    cio__note_handler h[CIO__NHANDLER]; /* the owner thread's alone */
    unsigned nh;                        /* the owner thread's alone */
    int delivering;                     /* the owner thread's: in its handlers */
    int spanning;                       /* the owner thread's: in a read helper */
    int noted;                          /* the owner thread's: a note ended (or
                                           refused) its op; end delivers */
    cio_proc *next;                     /* procs.mu */
};

/* Queue a note that fits (len < CIO_ERRMAX, room checked) and interrupt
 * the op p's thread is in; p->mu held. */
void cio__note_queue_locked(cio_proc *p, const char *note, size_t len);

void cio__alarm_init(cio_proc *p);
void cio__alarm_clear_locked(cio_proc *p); /* p->mu held */

#endif
