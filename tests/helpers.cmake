# The helpers for test suites and scripts (DESIGN rule 20): the read
# helpers and child processes.
cio_add_test(NAME test_helpers SOURCES test_helpers.c LABELS integration TIMEOUT 60)
cio_add_test(NAME test_child SOURCES test_child.c LABELS integration TIMEOUT 60)

# The tools, run as a user runs them: the test finds them in the build tree.
if(TARGET cio-cat AND TARGET cio-run)
    cio_add_test(NAME test_tools SOURCES test_tools.c LABELS integration TIMEOUT 120)
    target_compile_definitions(test_tools PRIVATE
        CIO_CAT="$<TARGET_FILE:cio-cat>" CIO_RUN="$<TARGET_FILE:cio-run>")
    add_dependencies(test_tools cio-cat cio-run)
    # It times real processes (sh, the tools) against wall-clock bounds, and
    # its dozens of processes would load the machine under the timing of
    # the other suites: it runs alone.
    set_tests_properties(test_tools PROPERTIES RUN_SERIAL TRUE)
    # A thread that cannot be made, in a tool (LD_PRELOAD).
    add_library(cio_fail_thread MODULE fail_thread.c)
    target_link_libraries(cio_fail_thread PRIVATE ${CMAKE_DL_LIBS})
    target_compile_definitions(test_tools PRIVATE
        CIO_FAIL_THREAD="$<TARGET_FILE:cio_fail_thread>")
    add_dependencies(test_tools cio_fail_thread)
endif()
