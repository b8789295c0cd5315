# The wider surface (cio_add_test is defined in tests/CMakeLists.txt):
# positioned and vector I/O, cio_open and cio_call (test_calls), and the
# socket calls over loopback TCP/UDP and AF_UNIX (test_socket).
cio_add_test(NAME test_calls SOURCES test_calls.c
             LABELS integration TIMEOUT 90)
if(EXISTS "${CMAKE_CURRENT_SOURCE_DIR}/test_socket.c")
    cio_add_test(NAME test_socket SOURCES test_socket.c
                 LABELS integration TIMEOUT 90)
endif()
