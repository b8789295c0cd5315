# cio_target_defaults(<target>)
#
# The compile settings every cancelio target shares: the library, the tests,
# the examples and the benchmarks.  All of it is PRIVATE, so nothing leaks to
# consumers of cancelio::cancelio, and nothing touches the global
# CMAKE_C_FLAGS (that variable belongs to the user: sanitizer presets use it).

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
    # Sources must not define these macros themselves.
    if(CMAKE_SYSTEM_NAME STREQUAL "Linux")
        target_compile_definitions(${target} PRIVATE
            _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE _GNU_SOURCE)
    endif()

    if(CMAKE_C_COMPILER_ID MATCHES "^(GNU|Clang|AppleClang)$")
        target_compile_options(${target} PRIVATE
            -Wall -Wextra -Wpedantic -Wshadow
            -Wstrict-prototypes -Wmissing-prototypes
            $<$<BOOL:${CANCELIO_WERROR}>:-Werror>)
    endif()
endfunction()
