/*
 * The file object, shared by file.c (deadlines, cancel, close) and
 * orphan.c (reads that outlive their caller, DESIGN rule 15).
 */
#ifndef CIO_FILE_H
#define CIO_FILE_H

#include "internal.h"

struct dir {
    cio_time_t deadline; /* f->mu; 0 = none */
    cio__timer timer;    /* armed while deadline is in the future */
    cio_time_t armed_at; /* f->mu: the key timer was last armed with, 0 = none;
                            it may be earlier than deadline (see set_locked) */
    int busy;            /* f->mu: an op of this direction is running */
    int no_nowait;       /* f->mu: the fd cannot do a non-blocking try */
    unsigned waiters;    /* f->mu: ops waiting for busy to clear */
    uint64_t cancel_gen; /* f->mu: bumped by each cio_cancel */
    cio__op *ops;        /* f->mu: the ops in flight (one, but for pread) */
    cio__op *orphan;     /* f->mu: a read that outlived its caller, running */
    cio__op *orphans;    /* f->mu: every orphan running (reads and preads) */
    cio__timer kick;     /* re-sends the signal to orphans (read side only) */
    cio__op *pending;    /* f->mu: an orphan's bytes, for the next read */
};

struct cio_file {
    pthread_mutex_t mu;
    pthread_cond_t cv;     /* any change: an op done, a direction free, closing */
    int fd;                /* read-only */
    int closing;           /* f->mu */
    unsigned ops;          /* f->mu: callers inside cio__file_do */
    int may_orphan;        /* read-only: reads a signal may not interrupt */
    int close_deferred;    /* f->mu: cio_close left the fd to the orphans */
    unsigned orphans;      /* f->mu: orphaned ops still running */
    cio__op_counts counts; /* f->mu; folded into cio__stats on close */
    atomic_uint refs;
    struct dir dir[2];
    cio_file *reg_prev, *reg_next; /* files.mu */
};

void cio__file_unref(cio_file *f);

/* orphan.c; each with f->mu held */
/* The caller of op gave up on it: the worker finishes it alone. */
void cio__orphan_keep_locked(cio_file *f, struct dir *d, cio__op *op);
/* Serve a read from an orphan's bytes; the count, 0 if there are none. */
long cio__pending_take_locked(struct dir *d, cio__op *op);
/* In close (detach 0) or detach (1), after every caller left.  Returns 1
 * when an orphan still runs and will close the fd itself. */
int cio__orphan_release_locked(cio_file *f, int detach);
void cio__pending_free(struct dir *d);
void cio__orphan_init(cio_file *f); /* in cio_fdopen */

#endif
