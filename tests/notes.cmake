# Plan 9 notes on threads, cancelio/plan9.h (cio_add_test is defined in
# tests/CMakeLists.txt): every rule of 16-19 (test_notes), and notes posted
# by many threads at random moments to threads doing I/O (test_notes_stress).
cio_add_test(NAME test_notes SOURCES test_notes.c
             LABELS integration TIMEOUT 90)
if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/test_notes_stress.c")
    cio_add_test(NAME test_notes_stress SOURCES test_notes_stress.c
                 LABELS stress TIMEOUT 180)
endif()
