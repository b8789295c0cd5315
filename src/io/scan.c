/*
 * The read helpers (DESIGN rule 20): cio_read_until and cio_read_full.
 *
 * Each is one span (file.c): it holds the read direction from start to
 * end, so no other read on the file slips in between its reads of the fd,
 * and a deadline, cio_cancel or cio_close at any point stops it like one
 * op.  It begins with the file's held bytes, then reads the fd in chunks
 * straight into the caller's buffer.  What it does not return goes back to
 * the held bytes: the bytes past the delimiter, or every byte when it
 * fails, so a failed helper consumed nothing (a copy stays in buf).  Room
 * for that is reserved before each read of the fd, so giving bytes back
 * never fails for want of memory.
 */
#include "io/file.h"

#include <errno.h>
#include <string.h>

/* A read of the fd asks for at most this much: the most a failed helper
 * can make the held block grow by beyond what it has already read. */
#define CHUNK ((size_t)64 * 1024)

struct goal {
    const char *delim; /* NULL: read_full */
    size_t dlen;
};

/* The count through the end of the first delimiter in buf[0..got), or 0.
 * Bytes before `from` were searched already. */
static size_t found(const char *buf, size_t from, size_t got, const struct goal *g)
{
    size_t i = from >= g->dlen ? from - (g->dlen - 1) : 0;
    while (got - i >= g->dlen) {
        const char *p = memchr(buf + i, g->delim[0], got - i - g->dlen + 1);
        if (!p)
            return 0;
        i = (size_t)(p - buf);
        if (memcmp(p, g->delim, g->dlen) == 0)
            return i + g->dlen;
        i++;
    }
    return 0;
}

/* Where the answer ends in buf[0..got): > 0 when it is complete. */
static size_t answer(const char *buf, size_t from, size_t got, size_t cap, const struct goal *g)
{
    if (!g->delim)
        return got == cap ? got : 0;
    return got >= g->dlen ? found(buf, from, got, g) : 0;
}

/* Read the fd until the goal, end of file or a failure; the result. */
static long fill(cio_file *f, char *buf, size_t cap, size_t *got, const struct goal *g)
{
    size_t searched = 0;
    for (;;) {
        size_t end = answer(buf, searched, *got, cap, g);
        if (end)
            return (long)end;
        if (*got == cap)
            return -ENOBUFS;
        searched = *got;
        size_t k = cap - *got < CHUNK ? cap - *got : CHUNK;
        int e = cio__span_reserve(f, *got + k);
        if (e < 0)
            return e;
        long r = cio__read_spanned(f, buf + *got, k);
        if (r <= 0)
            return r < 0 ? r : (long)*got; /* end of file: what was read */
        *got += (size_t)r;
    }
}

static long spanned(cio_file *f, void *buf, size_t cap, const struct goal *g)
{
    long r = cio__span_begin(f, buf, cap);
    if (r < 0)
        return r;
    size_t got = (size_t)r;
    r = fill(f, buf, cap, &got, g);
    size_t keep = r > 0 ? (size_t)r : r == 0 ? got : 0; /* the bytes consumed */
    cio__span_end(f, (char *)buf + keep, got - keep);
    return r;
}

/* A thread's notes (rules 16-17) see the helper as one op: a note pending
 * refuses it, and one that interrupts it is delivered after span_end, so
 * that a handler may read this file too (it would wait for itself). */
static ssize_t run(cio_file *f, void *buf, size_t cap, const struct goal *g)
{
    int saved = errno; /* left as it was on success, as by cio_read */
    cio__watcher *w = cio__watcher_self;
    long r = w ? w->ops->span(w, 1) : 0;
    if (r == 0)
        r = spanned(f, buf, cap, g);
    else
        cio__span_refused(f, buf, cap);
    if (w)
        w->ops->span(w, 0); /* before errno is set: handlers may change it */
    if (r >= 0)
        errno = saved;
    return r < 0 ? cio__fail(r) : r;
}

ssize_t cio_read_until(cio_file *f, void *buf, size_t cap, const void *delim, size_t dlen)
{
    if (!f || !buf || !delim || dlen == 0)
        return cio__fail(-EINVAL);
    if (cap == 0)
        return cio__fail(-ENOBUFS);
    struct goal g = {delim, dlen};
    return run(f, buf, cap, &g);
}

ssize_t cio_read_full(cio_file *f, void *buf, size_t n)
{
    if (!f || (!buf && n))
        return cio__fail(-EINVAL);
    if (n == 0)
        return 0;
    struct goal g = {NULL, 0};
    return run(f, buf, n, &g);
}
