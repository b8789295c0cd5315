/*
 * Description: the deadline heap on its own, with no threads and no clock.
 * Random sequences of insert, move and remove are checked against a plain
 * array model: after every step the minimum agrees, every node knows its
 * slot, and equal keys leave in insertion order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include <cmocka.h>

#include "core/heap.h"

#define N 512

static cio__heap_node nodes[N];
static int in_model[N];

static void check_invariants(const cio__heap *h)
{
    for (size_t i = 0; i < h->n; i++) {
        assert_int_equal(h->v[i]->idx, i);
        if (i > 0) {
            const cio__heap_node *p = h->v[(i - 1) / 2], *c = h->v[i];
            assert_true(p->key < c->key || (p->key == c->key && p->seq < c->seq));
        }
    }
}

/* The model's minimum: smallest key, then oldest sequence number. */
static cio__heap_node *model_min(void)
{
    cio__heap_node *best = NULL;
    for (int i = 0; i < N; i++) {
        if (!in_model[i])
            continue;
        cio__heap_node *x = &nodes[i];
        if (!best || x->key < best->key || (x->key == best->key && x->seq < best->seq))
            best = x;
    }
    return best;
}

/* insert, move and remove keep the heap equal to the model */
static void random_operations_agree_with_a_model(void **state)
{
    (void)state;
    cio__heap h = {0};
    unsigned seed = (unsigned)time(NULL);
    printf("seed %u\n", seed);
    srand(seed);
    for (int i = 0; i < N; i++) {
        cio__heap_node_init(&nodes[i]);
        in_model[i] = 0;
    }
    size_t count = 0;
    for (int step = 0; step < 20000; step++) {
        int i = rand() % N;
        int64_t key = rand() % 64; /* few keys: many ties */
        switch (rand() % 3) {
        case 0:
            assert_int_equal(cio__heap_set(&h, &nodes[i], key), 0);
            count += !in_model[i];
            in_model[i] = 1;
            break;
        case 1:
            cio__heap_remove(&h, &nodes[i]);
            count -= in_model[i];
            in_model[i] = 0;
            assert_false(cio__heap_in(&nodes[i]));
            break;
        default: {
            cio__heap_node *m = cio__heap_min(&h);
            assert_ptr_equal(m, model_min());
            if (m) {
                cio__heap_remove(&h, m);
                in_model[m - nodes] = 0;
                count--;
            }
        }
        }
        assert_int_equal(h.n, count);
        assert_ptr_equal(cio__heap_min(&h), model_min());
        if (step % 64 == 0)
            check_invariants(&h);
    }
    cio__heap_free(&h);
}

/* equal keys leave in the order they were inserted */
static void equal_keys_leave_in_insertion_order(void **state)
{
    (void)state;
    cio__heap h = {0};
    for (int i = 0; i < 100; i++) {
        cio__heap_node_init(&nodes[i]);
        assert_int_equal(cio__heap_insert(&h, &nodes[i], 7), 0);
    }
    for (int i = 0; i < 100; i++) {
        cio__heap_node *m = cio__heap_min(&h);
        assert_ptr_equal(m, &nodes[i]);
        cio__heap_remove(&h, m);
    }
    assert_null(cio__heap_min(&h));
    cio__heap_free(&h);
}

/* removing a node that is not in the heap changes nothing */
static void removing_an_absent_node_changes_nothing(void **state)
{
    (void)state;
    cio__heap h = {0};
    cio__heap_node a, b;
    cio__heap_node_init(&a);
    cio__heap_node_init(&b);
    assert_int_equal(cio__heap_insert(&h, &a, 5), 0);
    cio__heap_remove(&h, &b);
    assert_int_equal(h.n, 1);
    assert_ptr_equal(cio__heap_min(&h), &a);
    cio__heap_remove(&h, &a);
    cio__heap_remove(&h, &a);
    assert_int_equal(h.n, 0);
    cio__heap_free(&h);
}

/* moving a node later or earlier reorders it, and a moved node counts as new
 * for ties (it leaves after nodes that already had that key) */
static void moving_a_node_reorders_it(void **state)
{
    (void)state;
    cio__heap h = {0};
    cio__heap_node a, b, c;
    cio__heap_node_init(&a);
    cio__heap_node_init(&b);
    cio__heap_node_init(&c);
    cio__heap_insert(&h, &a, 10);
    cio__heap_insert(&h, &b, 20);
    cio__heap_insert(&h, &c, 30);
    assert_ptr_equal(cio__heap_min(&h), &a);
    cio__heap_set(&h, &a, 40); /* later */
    assert_ptr_equal(cio__heap_min(&h), &b);
    cio__heap_set(&h, &c, 1); /* earlier */
    assert_ptr_equal(cio__heap_min(&h), &c);
    cio__heap_set(&h, &c, 20); /* tie with b, but newer */
    assert_ptr_equal(cio__heap_min(&h), &b);
    cio__heap_free(&h);
}

/* the slot array grows without losing nodes */
static void the_heap_grows_past_its_first_capacity(void **state)
{
    (void)state;
    cio__heap h = {0};
    for (int i = 0; i < N; i++) {
        cio__heap_node_init(&nodes[i]);
        assert_int_equal(cio__heap_insert(&h, &nodes[i], N - i), 0);
    }
    check_invariants(&h);
    for (int i = N - 1; i >= 0; i--) {
        cio__heap_node *m = cio__heap_min(&h);
        assert_ptr_equal(m, &nodes[i]);
        cio__heap_remove(&h, m);
    }
    cio__heap_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(random_operations_agree_with_a_model),
        cmocka_unit_test(equal_keys_leave_in_insertion_order),
        cmocka_unit_test(removing_an_absent_node_changes_nothing),
        cmocka_unit_test(moving_a_node_reorders_it),
        cmocka_unit_test(the_heap_grows_past_its_first_capacity),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
