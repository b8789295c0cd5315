# The tests, one cio_add_test each (cio_add_test is defined in
# tests/CMakeLists.txt).  Labels: unit (fast contract checks of single
# calls) or integration (races, real timing, signals, fork).
# Every test has a TIMEOUT, multiplied by CANCELIO_TEST_TIME_SCALE.

# Rules 1-5, once per timer backend (each file includes test_deadline.c);
# the timerfd one where the build has that backend (CancelioPlatform).
cio_add_test(NAME test_deadline_heap SOURCES test_deadline_heap.c
             LABELS integration TIMEOUT 90)
if(CIO_PLATFORM_CIO_HAVE_TIMERFD)
    cio_add_test(NAME test_deadline_timerfd SOURCES test_deadline_timerfd.c
                 LABELS integration TIMEOUT 90)
endif()
# Where the workers have timers of their own, their callers sleep once (and
# are woken after the worker's unlock, wake_futex.c: a caller signalled
# under the lock, wake_cond.c, may sleep on it a second time).
if(CIO_PLATFORM_CIO_HAVE_THREAD_TIMER AND CIO_PLATFORM_CIO_HAVE_FUTEX)
    target_compile_definitions(test_deadline_heap PRIVATE CIO_TEST_THREAD_TIMER=1)
    if(TARGET test_deadline_timerfd)
        target_compile_definitions(test_deadline_timerfd PRIVATE CIO_TEST_THREAD_TIMER=1)
    endif()
endif()

# Rules 6-8: cancel, close, detach, serialisation, underlying errors.
cio_add_test(NAME test_cancel SOURCES test_cancel.c
             LABELS integration TIMEOUT 90)

# Steps 3c and 4c (docs/protocol.md): reads parked on their callers' own
# threads, where pipes can be tried without blocking and polled.
if(CIO_PLATFORM_CIO_HAVE_PPOLL AND CIO_PLATFORM_CIO_HAVE_RWF_NOWAIT)
    cio_add_test(NAME test_callers SOURCES test_callers.c
                 LABELS integration TIMEOUT 90)
endif()

# Rules 9-11, 13, 14: the cancel signal, masks, storms, lost wake-ups,
# fork, fd flags.
cio_add_test(NAME test_signals SOURCES test_signals.c
             LABELS integration TIMEOUT 120)

# Rule 12 and the rest of the core API (stats, clock, shutdown, tracing).
cio_add_test(NAME test_api SOURCES test_api.c
             LABELS unit TIMEOUT 60)

# Workers in a program with a large static TLS block: where the library
# asks how large it is (glibc), or the C library adds it itself (musl).
# Not on glibc without the probe (the POSIX-only build), which cannot ask.
if(CIO_PLATFORM_CIO_HAVE_STACK_TLS OR NOT CIO_LIBC_GLIBC)
    cio_add_test(NAME test_tls SOURCES test_tls.c
                 LABELS unit TIMEOUT 60)
endif()

# The timer heap, white-box (written with the library).
if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/test_heap.c")
    cio_add_test(NAME test_heap SOURCES test_heap.c INTERNAL core/heap.c
                 LABELS unit TIMEOUT 60)
endif()

# An op handed to a worker that has not taken it yet, through the pool's
# white-box seam (cio__pool_pause_hook): only a static library lets a test
# reach it.
get_target_property(cio_handoff_library_type cancelio TYPE)
if(cio_handoff_library_type STREQUAL "STATIC_LIBRARY")
    cio_add_test(NAME test_handoff SOURCES test_handoff.c
                 LABELS integration TIMEOUT 60)
    # Reads and writes of a socket park (docs/protocol.md, 3p) where there
    # is ppoll and a try for sockets.
    if(CIO_PLATFORM_CIO_HAVE_PPOLL AND
       (CIO_PLATFORM_CIO_HAVE_RWF_NOWAIT OR CIO_PLATFORM_CIO_HAVE_MSG_DONTWAIT))
        target_compile_definitions(test_handoff PRIVATE CIO_TEST_PARK)
    endif()
endif()
