# The helpers for test suites and scripts (DESIGN rule 20): the read
# helpers and child processes.
cio_add_test(NAME test_helpers SOURCES test_helpers.c LABELS integration TIMEOUT 60)
cio_add_test(NAME test_child SOURCES test_child.c LABELS integration TIMEOUT 60)
