# test_orphan (DESIGN rule 15): reads that no signal can interrupt, made at
# the syscall layer by link-time interposition (ld --wrap) of read, readv,
# pread and preadv2.  Like test_fault it needs the static library.
include(CheckLinkerFlag)
check_linker_flag(C "LINKER:--wrap=cio_no_such_symbol" CIO_LINKER_HAS_WRAP)
get_target_property(cio_library_type cancelio TYPE)
if(cio_library_type STREQUAL "STATIC_LIBRARY" AND CIO_LINKER_HAS_WRAP
   AND CMAKE_SYSTEM_NAME STREQUAL "Linux")
    cio_add_test(NAME test_orphan SOURCES test_orphan.c
                 LABELS integration TIMEOUT 90)
    target_link_options(test_orphan PRIVATE "LINKER:--wrap=read" "LINKER:--wrap=readv"
                        "LINKER:--wrap=pread")
    if(CIO_PLATFORM_CIO_HAVE_RWF_NOWAIT) # the library's try on a file
        target_link_options(test_orphan PRIVATE "LINKER:--wrap=preadv2")
        target_compile_definitions(test_orphan PRIVATE CIO_TEST_RWF_NOWAIT=1)
    else()
        target_compile_definitions(test_orphan PRIVATE CIO_TEST_RWF_NOWAIT=0)
    endif()
endif()
