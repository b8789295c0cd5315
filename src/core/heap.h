/*
 * An intrusive binary min-heap of deadlines.  Pure data structure: it knows
 * nothing of threads or clocks, so it is unit-tested on its own.
 *
 * Nodes are embedded in their owners and carry their own slot index, so
 * removing or moving any node is O(log n) with no search.  Equal keys leave
 * in insertion order (a sequence number breaks ties).  The slot array grows
 * by doubling and never shrinks: after warm-up, insert, move and remove
 * allocate nothing.
 */
#ifndef CIO_HEAP_H
#define CIO_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define CIO__HEAP_NONE ((size_t)-1)

typedef struct cio__heap_node {
    int64_t key;  /* the deadline */
    uint64_t seq; /* insertion order, breaks ties */
    size_t idx;   /* slot in the heap, CIO__HEAP_NONE when not in it */
} cio__heap_node;

typedef struct cio__heap {
    cio__heap_node **v;
    size_t n, cap;
    uint64_t seq;
} cio__heap;

void cio__heap_node_init(cio__heap_node *x);
int cio__heap_in(const cio__heap_node *x);
/* Insert x (not in a heap) with key; 0, or -ENOMEM with nothing changed. */
int cio__heap_insert(cio__heap *h, cio__heap_node *x, int64_t key);
/* Insert x or move it to key if it is in h already; 0 or -ENOMEM. */
int cio__heap_set(cio__heap *h, cio__heap_node *x, int64_t key);
/* Remove x from h; x not in h is allowed and does nothing. */
void cio__heap_remove(cio__heap *h, cio__heap_node *x);
cio__heap_node *cio__heap_min(const cio__heap *h);
void cio__heap_free(cio__heap *h);

#endif
