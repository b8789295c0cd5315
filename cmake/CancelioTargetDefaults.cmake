# cio_target_defaults(<target>)
#
# The compile settings every cancelio target shares: the library, the tests,
# the examples and the benchmarks.  All of it is PRIVATE, so nothing leaks to
# consumers of cancelio::cancelio, and nothing touches the global
# CMAKE_C_FLAGS (that variable belongs to the user: sanitizer presets use it).
# CANCELIO_EXTRA_WARNINGS (a list) adds options to every target: the clang
# preset's -Weverything and its exceptions.

include_guard(GLOBAL)

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
    # must not define these macros themselves.
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
    if(CANCELIO_EXTRA_WARNINGS)
        target_compile_options(${target} PRIVATE ${CANCELIO_EXTRA_WARNINGS})
    endif()
endfunction()
