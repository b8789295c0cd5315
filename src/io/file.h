/*
 * The file object, shared by file.c (deadlines, cancel, close), orphan.c
 * (reads that outlive their caller, DESIGN rule 15), held.c (bytes read
 * from the fd that no caller has taken yet) and scan.c (the read helpers).
 */
#ifndef CIO_FILE_H
#define CIO_FILE_H

#include "internal.h"

/* Bytes read from the fd but not yet returned to any caller: an orphan's
 * (rule 15) or those a read helper read past its answer or gave back
 * (rule 20).  Every serialised read takes them before it reads the fd.
 * mem is one malloc'd block (possibly an orphan's op, adopted whole); the
 * bytes are mem[off .. off+len). */
struct held {
    char *mem;
    size_t off, len, cap;
};

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
    struct held held;    /* f->mu: read side only */
    int spanning;        /* f->mu: a read helper holds d across its reads */
    uint64_t span_gen;   /* f->mu: cancel_gen when that span began */
};

struct cio_file {
    pthread_mutex_t mu;
    pthread_cond_t cv;       /* any change: an op done, a direction free, closing */
    int fd;                  /* read-only */
    int closing;             /* f->mu */
    unsigned ops;            /* f->mu: callers inside cio__file_do or a span */
    unsigned spans;          /* f->mu: of those, in a span, not counted as started */
    int may_orphan;          /* read-only: reads a signal may not interrupt */
    int close_deferred;      /* f->mu: cio_close left the fd to the orphans */
    unsigned orphans;        /* f->mu: orphaned ops still running */
    unsigned parked;         /* f->mu: released workers not yet out of their
                                wait on fd (protocol step 4p): a close waits */
    cio__file_counts counts; /* written under mu; folded into cio__stats on close */
    atomic_uint refs;
    struct dir dir[2];
    cio_file *reg_prev, *reg_next; /* files.mu */
};

void cio__file_unref(cio_file *f);
/* Out of the registry: the last orphan of a closed file, as it closes the fd. */
void cio__file_unregister(cio_file *f);

/* A read helper's span (file.c): it holds the read direction across its
 * reads of the fd and counts as one op for deadline, cancel and close.
 * begin waits for the direction, then copies up to cap held bytes into buf
 * (taking them): their count; or -errno, with a copy of them in buf.  reserve makes room to put
 * back n bytes.  end puts back n bytes (reserved) and lets the direction go. */
long cio__span_begin(cio_file *f, void *buf, size_t cap);
int cio__span_reserve(cio_file *f, size_t n);
void cio__span_end(cio_file *f, const void *back, size_t n);
/* A helper that a pending note refused: buf gets a copy of the held bytes,
 * as begin gives when it fails. */
void cio__span_refused(cio_file *f, void *buf, size_t cap);

/* orphan.c; each with f->mu held */
/* The caller of op gave up on it: the worker finishes it alone. */
void cio__orphan_keep_locked(cio_file *f, struct dir *d, cio__op *op);
/* In close (detach 0) or detach (1), after every caller left.  Returns 1
 * when an orphan still runs and will close the fd itself. */
int cio__orphan_release_locked(cio_file *f, int detach);
void cio__orphan_init(cio_file *f); /* in cio_fdopen */

/* held.c; each with f->mu held */
/* Serve op from the held bytes (op->deliver); the count, 0 if none.  A
 * peek (op->peek) leaves them held. */
long cio__held_take_locked(struct dir *d, cio__op *op);
/* Make room for extra more bytes, so that a later put-back of up to that
 * many cannot fail.  0 or -ENOMEM. */
int cio__held_reserve_locked(struct dir *d, size_t extra);
/* Put n bytes back in front of the held ones (read before them). */
int cio__held_put_back_locked(struct dir *d, const char *p, size_t n);
/* An orphan's op finished with its bytes in op->buf: they go after the
 * held ones.  Takes op (its memory may become the held block). */
void cio__held_adopt_locked(struct dir *d, cio__op *op, size_t n);
/* Give memory back once nothing is held. */
void cio__held_trim_locked(struct dir *d);
void cio__held_free(struct dir *d);

#endif
