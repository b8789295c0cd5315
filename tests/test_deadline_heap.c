/*
 * Description: the deadline cases of test_deadline.c (rules 1-5) run with
 * the portable timer backend, CIO_TIMER_HEAP: a thread sleeping on
 * CLOCK_MONOTONIC until the earliest deadline of a min-heap.
 */
#define CIO_TEST_TIMER CIO_TIMER_HEAP
#include "test_deadline.c"
