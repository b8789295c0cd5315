/*
 * Reads that outlive their caller (DESIGN rule 15).
 *
 * A signal cannot pull every wait out of the kernel: a read of a local
 * disk, an NFS hard mount, a FUSE file whose daemon ignores interrupts.  On
 * such files (regular files, block devices and character devices: a tty read
 * waits uninterruptibly for the tty's input work) a worker reads into a bounce
 * buffer of its op, so that when it does not answer the signal within
 * CIO__ORPHAN_GRACE the caller can return ETIMEDOUT (or ECANCELED, EBADF)
 * on time and leave the op to the worker: an orphan.
 *
 * The orphan keeps the file alive (a reference) and the fd open.  A read
 * orphan keeps its direction busy, so the next read waits for it (under its
 * own deadline); when it finishes, the bytes it read join the file's held
 * bytes (held.c) and the next reads take them first: nothing is lost and
 * the order is kept.  A pread orphan's bytes are simply dropped: pread moves no
 * offset, so nothing is lost.  cio_close returns at once and the last orphan
 * closes the fd; cio_detach waits for the orphans, then seeks back over the
 * held bytes nobody read, so the fd it hands back is where a reader
 * expects it.
 *
 * Nobody waits for an orphan, so the read side's `kick` timer takes over
 * step 5 of the cancel protocol for it: it re-sends the signal with the
 * same back-off for as long as the orphan is inside its syscall, so an
 * orphan whose signal was lost before the syscall still gets one.
 */
#include "io/file.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* An orphan leaves its direction's ops for the read side's orphans: the
 * same link fields (cio__op.fnext). */
static void orphans_link(struct dir *d, cio__op *op)
{
    CIO__LIST_PUSH(d->orphans, op, fprev, fnext);
}

static void orphans_unlink(struct dir *d, cio__op *op)
{
    CIO__LIST_UNLINK(d->orphans, op, fprev, fnext);
}

static cio_file *file_of_kick(cio__timer *t)
{
    return (cio_file *)((char *)t - offsetof(struct dir, kick) - offsetof(cio_file, dir));
}

static void hold_kick(cio__timer *t)
{
    atomic_fetch_add(&file_of_kick(t)->refs, 1);
}

/* Re-send the signal to every orphan that is due; re-arm for the next. */
static void fire_kick(cio__timer *t)
{
    cio_file *f = file_of_kick(t);
    struct dir *d = &f->dir[CIO__R];
    cio__lock(&f->mu);
    cio_time_t now = cio_now(), next = 0;
    for (cio__op *op = d->orphans; op; op = op->fnext) {
        cio_time_t due = cio__op_kick_if_due_locked(op, now);
        if (!next || due < next)
            next = due;
    }
    if (next)
        cio__timer_arm(&d->kick, next);
    pthread_mutex_unlock(&f->mu);
    cio__file_unref(f);
}

static const cio__timer_ops kick_ops = {hold_kick, fire_kick};

void cio__orphan_init(cio_file *f)
{
    cio__timer_init(&f->dir[CIO__R].kick, &kick_ops);
}

/* An orphan finished, on its worker, with f->mu held. */
static void adopt(cio__op *op)
{
    cio_file *f = op->owner;
    struct dir *d = &f->dir[CIO__R];
    int keep = !op->parallel && op->result > 0 && !f->close_deferred;
    if (d->orphan == op) {
        d->orphan = NULL;
        d->busy = d->spanning; /* a helper that saw it orphaned still holds d */
    }
    orphans_unlink(d, op);
    if (!d->orphans)
        cio__timer_disarm(&d->kick);
    if (keep)
        cio__held_adopt_locked(d, op, (size_t)op->result);
    int close_fd = --f->orphans == 0 && f->close_deferred;
    pthread_cond_broadcast(&f->cv);
    pthread_mutex_unlock(&f->mu);
    if (!keep)
        free(op);
    if (close_fd) {
        cio__file_unregister(f);
        close(f->fd);
    }
    cio__file_unref(f);
}

void cio__orphan_keep_locked(cio_file *f, struct dir *d, cio__op *op)
{
    op->owner = f;
    op->adopt = adopt;
    f->orphans++;
    atomic_fetch_add(&f->refs, 1);
    if (!op->parallel)
        d->orphan = op; /* d stays busy until adopt */
    struct dir *r = &f->dir[CIO__R];
    orphans_link(r, op);
    cio__timer_arm(&r->kick, op->next_kick);
    *op->gone = 1;
}

int cio__orphan_release_locked(cio_file *f, int detach)
{
    if (!detach && f->orphans > 0) {
        f->close_deferred = 1;
        return 1;
    }
    while (f->orphans > 0)
        pthread_cond_wait(&f->cv, &f->mu);
    struct held *h = &f->dir[CIO__R].held;
    if (detach && h->len)
        lseek(f->fd, -(off_t)h->len, SEEK_CUR); /* a pipe cannot: they are lost */
    cio__held_free(&f->dir[CIO__R]);
    return 0;
}
