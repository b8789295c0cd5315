# cio_target_defaults(<target>)
#
# The compile settings every cancelio target shares: the library, the tests,
# the examples and the benchmarks.  All of it is PRIVATE, so nothing leaks to
# consumers of cancelio::cancelio, and nothing touches the global
# CMAKE_C_FLAGS (that variable belongs to the user: sanitizer presets use it).
#
#   cio_target_defaults(<target> [LIBRARY|STRICT])
# LIBRARY: the library itself (its feature macros, below, and STRICT).
# STRICT: with CANCELIO_WEVERYTHING (the clang preset), clang's every
# warning but the few listed below; the library and the examples get it.

include_guard(GLOBAL)

option(CANCELIO_WEVERYTHING "clang: -Weverything (minus a short list) on the library and examples" OFF)

# Why each warning of -Weverything is off:
set(cio_weverything
    -Weverything
    # C11 code declares a variable where its value is known (STYLE.md).
    -Wno-declaration-after-statement
    # Struct layout follows the locks and the reading order; padding is
    # not a defect.
    -Wno-padded
    # glibc's sa_handler/sa_sigaction (and cmocka's asserts) are macros
    # that expand to themselves.
    -Wno-disabled-macro-expansion
    # The container-of casts (char * back to the struct holding a member)
    # keep the struct's own alignment.
    -Wno-cast-align
    # An op keeps one void *buf for both directions; a write's const buffer
    # is stored there and never written through.
    -Wno-cast-qual
    # Newer clangs: C++-minded buffer advice that flags every pointer index,
    # and the option itself unknown to older ones.
    -Wno-unknown-warning-option
    -Wno-unsafe-buffer-usage)

function(cio_target_defaults target)
    set_target_properties(${target} PROPERTIES
        C_STANDARD 11
        C_STANDARD_REQUIRED ON
        C_EXTENSIONS OFF)

    # -std=c11 makes glibc and musl hide everything beyond ISO C; the feature
    # macros bring back POSIX 2008 (pthread, sigaction, clock_gettime) and the
    # Linux extras (timerfd, pipe2, preadv2).  The BSDs and macOS show their
    # whole namespace when no feature macro is defined, and defining
    # _POSIX_C_SOURCE there would hide the BSD extensions, so they get none.
    # cmake/CancelioPlatform.cmake decides which case this is by a probe.
    # The library (LIBRARY) gets POSIX 2008 alone in the CANCELIO_PORTABLE
    # build; tests, examples and tools keep the system's macros.  Sources
    # do not define these macros themselves, but for the examples, which
    # define _POSIX_C_SOURCE when nothing did, to build on their own too.
    if(ARGV1 STREQUAL "LIBRARY")
        set(macros ${CANCELIO_LIBRARY_FEATURE_MACROS})
    else()
        set(macros ${CANCELIO_SYSTEM_FEATURE_MACROS})
    endif()
    if(macros)
        target_compile_definitions(${target} PRIVATE ${macros})
    endif()

    if(CMAKE_C_COMPILER_ID MATCHES "^(GNU|Clang|AppleClang)$")
        target_compile_options(${target} PRIVATE
            -Wall -Wextra -Wpedantic -Wshadow
            -Wstrict-prototypes -Wmissing-prototypes
            $<$<BOOL:${CANCELIO_WERROR}>:-Werror>)
    endif()
    if(CANCELIO_WEVERYTHING AND CMAKE_C_COMPILER_ID MATCHES "Clang"
       AND (ARGV1 STREQUAL "LIBRARY" OR ARGV1 STREQUAL "STRICT"))
        target_compile_options(${target} PRIVATE ${cio_weverything})
    endif()
endfunction()
