# The platform files on their own (cio_add_test is defined in
# tests/CMakeLists.txt): each timed-condvar backend that this system can
# compile, whichever one the library chose (cmake/CancelioPlatform.cmake).
cio_add_test(NAME test_cond_realtime SOURCES test_cond.c
             INTERNAL core/clock.c core/platform/cond_realtime.c
             LABELS unit TIMEOUT 60)
target_compile_definitions(test_cond_realtime PRIVATE CIO_TEST_COND_NAME="cond_realtime")
if(CIO_HAVE_CONDATTR_SETCLOCK)
    cio_add_test(NAME test_cond_monotonic SOURCES test_cond.c
                 INTERNAL core/clock.c core/platform/cond_monotonic.c
                 LABELS unit TIMEOUT 60)
    target_compile_definitions(test_cond_monotonic PRIVATE CIO_TEST_COND_NAME="cond_monotonic")
endif()
