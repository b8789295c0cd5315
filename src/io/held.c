/*
 * Held bytes: read from the fd, not yet returned to any caller (DESIGN
 * rules 15 and 20).  An orphan's bytes land here when it finishes, and the
 * read helpers put back here what they read past their answer, or all they
 * read when they fail.  Every serialised read (cio_read, cio_readv, the
 * recv family, the helpers) takes from here before it reads the fd, so the
 * stream order is kept whichever way the bytes came: one mechanism.
 *
 * Memory: one block.  A helper reserves room before each read of the fd,
 * so that putting its bytes back never needs memory it cannot get; the
 * block is freed once it is empty and larger than KEEP.
 */
#include "io/file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define KEEP ((size_t)64 * 1024)

long cio__held_take_locked(struct dir *d, cio__op *op)
{
    struct held *h = &d->held;
    size_t k = h->len < op->n ? h->len : op->n;
    if (k == 0)
        return 0;
    op->deliver(op, h->mem + h->off, k);
    if (!op->peek) {
        h->off += k;
        h->len -= k;
        if (h->len == 0)
            h->off = 0;
    }
    return (long)k;
}

/* Move the bytes to the start of the block. */
static void compact(struct held *h)
{
    if (h->off && h->len)
        memmove(h->mem, h->mem + h->off, h->len);
    h->off = 0;
}

int cio__held_reserve_locked(struct dir *d, size_t extra)
{
    struct held *h = &d->held;
    if (h->cap - h->len >= extra)
        return 0;
    size_t cap = h->len + extra;
    if (cap < 2 * h->cap)
        cap = 2 * h->cap; /* a helper reserving chunk after chunk: grow geometrically */
    char *mem = malloc(cap);
    if (!mem)
        return -ENOMEM;
    if (h->len)
        memcpy(mem, h->mem + h->off, h->len);
    free(h->mem);
    *h = (struct held){mem, 0, h->len, cap};
    return 0;
}

int cio__held_put_back_locked(struct dir *d, const char *p, size_t n)
{
    struct held *h = &d->held;
    if (n == 0)
        return 0;
    int e = cio__held_reserve_locked(d, n);
    if (e < 0)
        return e;
    if (h->off < n) { /* slide the held bytes up to make room in front */
        compact(h);
        memmove(h->mem + n, h->mem, h->len);
        h->off = n;
    }
    h->off -= n;
    h->len += n;
    memcpy(h->mem + h->off, p, n);
    return 0;
}

void cio__held_adopt_locked(struct dir *d, cio__op *op, size_t n)
{
    struct held *h = &d->held;
    const char *src = op->buf;
    if (h->len == 0 && !d->spanning) { /* the usual case: the op's block becomes the held one */
        free(h->mem);
        *h = (struct held){(char *)op, (size_t)(src - (char *)op), n,
                           (size_t)(src - (char *)op) + n};
        return;
    }
    /* A helper gave bytes back while this orphan ran: they come first.  A
     * helper that still holds d keeps the room it reserved for what it
     * will put back (cio__span_end cannot fail), so the copy takes room
     * beyond that.  Without memory for it the orphan's bytes are lost
     * (ENOMEM), and nothing else changes. */
    size_t kept = d->spanning ? h->cap - h->len : 0;
    if (cio__held_reserve_locked(d, n + kept) == 0) {
        if (h->off + h->len + n > h->cap)
            compact(h);
        memcpy(h->mem + h->off + h->len, src, n);
        h->len += n;
    }
    free(op);
}

void cio__held_trim_locked(struct dir *d)
{
    if (d->held.len == 0 && d->held.cap > KEEP)
        cio__held_free(d);
}

void cio__held_free(struct dir *d)
{
    free(d->held.mem);
    d->held = (struct held){NULL, 0, 0, 0};
}
