#include "core/heap.h"

#include <errno.h>
#include <stdlib.h>

void cio__heap_node_init(cio__heap_node *x)
{
    x->key = 0;
    x->seq = 0;
    x->idx = CIO__HEAP_NONE;
}

int cio__heap_in(const cio__heap_node *x)
{
    return x->idx != CIO__HEAP_NONE;
}

static int less(const cio__heap_node *a, const cio__heap_node *b)
{
    return a->key < b->key || (a->key == b->key && a->seq < b->seq);
}

static void put(cio__heap *h, size_t i, cio__heap_node *x)
{
    h->v[i] = x;
    x->idx = i;
}

static void sift_up(cio__heap *h, size_t i)
{
    cio__heap_node *x = h->v[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!less(x, h->v[parent]))
            break;
        put(h, i, h->v[parent]);
        i = parent;
    }
    put(h, i, x);
}

static void sift_down(cio__heap *h, size_t i)
{
    cio__heap_node *x = h->v[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= h->n)
            break;
        if (c + 1 < h->n && less(h->v[c + 1], h->v[c]))
            c++;
        if (!less(h->v[c], x))
            break;
        put(h, i, h->v[c]);
        i = c;
    }
    put(h, i, x);
}

/* Restore order around slot i after its key changed either way. */
static void fix(cio__heap *h, size_t i)
{
    if (i > 0 && less(h->v[i], h->v[(i - 1) / 2]))
        sift_up(h, i);
    else
        sift_down(h, i);
}

static int grow(cio__heap *h)
{
    size_t cap = h->cap ? 2 * h->cap : 64;
    cio__heap_node **v = realloc(h->v, cap * sizeof *v);
    if (!v)
        return -ENOMEM;
    h->v = v;
    h->cap = cap;
    return 0;
}

int cio__heap_insert(cio__heap *h, cio__heap_node *x, int64_t key)
{
    if (h->n == h->cap && grow(h) < 0)
        return -ENOMEM;
    x->key = key;
    x->seq = h->seq++;
    put(h, h->n++, x);
    sift_up(h, x->idx);
    return 0;
}

int cio__heap_set(cio__heap *h, cio__heap_node *x, int64_t key)
{
    if (!cio__heap_in(x))
        return cio__heap_insert(h, x, key);
    x->key = key;
    x->seq = h->seq++;
    fix(h, x->idx);
    return 0;
}

void cio__heap_remove(cio__heap *h, cio__heap_node *x)
{
    size_t i = x->idx;
    if (i == CIO__HEAP_NONE)
        return;
    x->idx = CIO__HEAP_NONE;
    cio__heap_node *last = h->v[--h->n];
    if (last == x)
        return;
    put(h, i, last);
    fix(h, i);
}

cio__heap_node *cio__heap_min(const cio__heap *h)
{
    return h->n ? h->v[0] : NULL;
}

void cio__heap_free(cio__heap *h)
{
    free(h->v);
    h->v = NULL;
    h->n = h->cap = 0;
}
