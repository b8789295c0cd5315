# The stress suite and the fault-injection tests (cio_add_test is defined in
# tests/CMakeLists.txt).
#
# test_stress (label stress): a few minutes at most in CI, also under the
# sanitizer presets.  Each chaos phase lasts CIO_STRESS_SECONDS (default 15;
# not stretched by CANCELIO_TEST_TIME_SCALE); for longer local runs start
# the binary directly, e.g.
#     CIO_STRESS_SECONDS=300 build/dev/tests/test_stress
# (the ctest TIMEOUT below is sized for the default).  CIO_STRESS_SEED
# replays a run's random choices.
cio_add_test(NAME test_stress SOURCES test_stress.c
             LABELS stress TIMEOUT 300)

# test_fault: pthread_create and the allocator fail on demand, by link-time
# interposition (ld --wrap) of the calls the static library makes.  Only a
# static library routes its calls through the wrappers, so with a shared
# one (BUILD_SHARED_LIBS, the release preset) the test is not built.
include(CheckLinkerFlag)
check_linker_flag(C "LINKER:--wrap=cio_no_such_symbol" CIO_LINKER_HAS_WRAP)
get_target_property(cio_library_type cancelio TYPE)
if(cio_library_type STREQUAL "STATIC_LIBRARY" AND CIO_LINKER_HAS_WRAP
   AND EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/test_fault.c")
    cio_add_test(NAME test_fault SOURCES test_fault.c
                 LABELS integration fault TIMEOUT 120)
    target_link_options(test_fault PRIVATE
        "LINKER:--wrap=pthread_create"
        "LINKER:--wrap=malloc"
        "LINKER:--wrap=calloc"
        "LINKER:--wrap=realloc"
        "LINKER:--wrap=free"
        "LINKER:--wrap=timer_create")
endif()
