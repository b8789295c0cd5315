# The platform files on their own (cio_add_test is defined in
# tests/CMakeLists.txt): each timed-condvar backend that this system can
# compile, whichever one the library chose (cmake/CancelioPlatform.cmake),
# with the futex-hash file it chose (which says whether condvars are
# process-shared).
set(cio_futexhash ${CANCELIO_PLATFORM_SOURCES})
list(FILTER cio_futexhash INCLUDE REGEX "futexhash_")
cio_add_test(NAME test_cond_realtime SOURCES test_cond.c
             INTERNAL core/clock.c core/platform/cond_realtime.c ${cio_futexhash}
             LABELS unit TIMEOUT 60)
target_compile_definitions(test_cond_realtime PRIVATE CIO_TEST_COND_NAME="cond_realtime")
if(CIO_HAVE_CONDATTR_SETCLOCK)
    cio_add_test(NAME test_cond_monotonic SOURCES test_cond.c
                 INTERNAL core/clock.c core/platform/cond_monotonic.c ${cio_futexhash}
                 LABELS unit TIMEOUT 60)
    target_compile_definitions(test_cond_monotonic PRIVATE CIO_TEST_COND_NAME="cond_monotonic")
endif()

# The caller's wake-up (wake_*.c): each file this system can compile,
# whichever one the library chose, as for the condvar waits above.
cio_add_test(NAME test_wake_cond SOURCES test_wake.c
             INTERNAL core/clock.c core/platform/wake_cond.c core/platform/cond_realtime.c
             ${cio_futexhash}
             LABELS unit TIMEOUT 120)
target_compile_definitions(test_wake_cond PRIVATE CIO_TEST_WAKE_NAME="wake_cond")
if(CIO_HAVE_FUTEX)
    cio_add_test(NAME test_wake_futex SOURCES test_wake.c
                 INTERNAL core/clock.c core/platform/wake_futex.c ${cio_futexhash}
                 LABELS unit TIMEOUT 120)
    target_compile_definitions(test_wake_futex PRIVATE CIO_TEST_WAKE_NAME="wake_futex"
                                                  CIO_TEST_WAKE_LATE=1)
endif()
