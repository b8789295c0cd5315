/*
 * Description: the deadline cases of test_deadline.c (rules 1-5) run with
 * the Linux timer backend, CIO_TIMER_TIMERFD: a thread blocked on a
 * timerfd armed for the earliest deadline.
 */
#define CIO_TEST_TIMER CIO_TIMER_TIMERFD
#include "test_deadline.c"
