# The platform, probed once.
#
# Every capability the library uses beyond POSIX 2008 is tested here, by
# compiling a few lines against the system's headers and C library, never
# assumed from CMAKE_SYSTEM_NAME.  Each one chooses a whole file under
# src/core/platform/: the file that uses the capability, or its fallback.
# The core files name only the internal interface (src/internal.h), so they
# carry no #ifdef.  docs/portability.md lists what each system gets.
#
#   CANCELIO_PORTABLE=ON  compiles the library with _POSIX_C_SOURCE=200809L
#                         alone and takes every fallback, whatever the
#                         probes say: the configuration that proves the
#                         fallbacks on Linux.
#
# Provides:
#   CANCELIO_LIBRARY_FEATURE_MACROS  the feature macros the library compiles with
#   CANCELIO_SYSTEM_FEATURE_MACROS   the ones tests, examples and tools get
#   cio_platform_choose(FEATURE <text> {USE <probe var> <file>}... FALLBACK <file>)
#       appends the chosen file to CANCELIO_PLATFORM_SOURCES and notes the
#       choice for the summary; CIO_PLATFORM_<probe var> is then 1 or 0 (the
#       tests read it to know which backend runs)
#   cio_platform_summary()  prints which backend each feature got

include_guard(GLOBAL)
include(CheckCSourceCompiles)
include(CheckSymbolExists)
include(CMakePushCheckState)

option(CANCELIO_PORTABLE
    "Compile the library as POSIX 2008 alone and use every platform fallback" OFF)

# glibc and musl hide POSIX under -std=c11 unless a feature macro asks for
# it; the BSDs and macOS show their whole namespace when none is defined
# (and _POSIX_C_SOURCE would hide their extensions there).  So: does a
# POSIX call compile under strict C11 with no macro at all?
cmake_push_check_state(RESET)
set(CMAKE_REQUIRED_FLAGS "${CMAKE_C11_STANDARD_COMPILE_OPTION}")
check_c_source_compiles([[
#include <signal.h>
#include <time.h>
int main(void) {
    struct timespec ts;
    sigset_t s;
    sigemptyset(&s);
    return clock_gettime(CLOCK_MONOTONIC, &ts) + pthread_sigmask(SIG_BLOCK, &s, 0);
}]] CIO_POSIX_WITHOUT_MACROS)
cmake_pop_check_state()

if(CIO_POSIX_WITHOUT_MACROS)
    set(CANCELIO_SYSTEM_FEATURE_MACROS "")
else()
    set(CANCELIO_SYSTEM_FEATURE_MACROS _POSIX_C_SOURCE=200809L _DEFAULT_SOURCE _GNU_SOURCE)
endif()
if(CANCELIO_PORTABLE)
    set(CANCELIO_LIBRARY_FEATURE_MACROS _POSIX_C_SOURCE=200809L)
else()
    set(CANCELIO_LIBRARY_FEATURE_MACROS ${CANCELIO_SYSTEM_FEATURE_MACROS})
endif()

# The probes compile as the library does: C11, its feature macros, threads.
cmake_push_check_state(RESET)
set(CMAKE_REQUIRED_FLAGS "${CMAKE_C11_STANDARD_COMPILE_OPTION}")
list(TRANSFORM CANCELIO_LIBRARY_FEATURE_MACROS PREPEND "-D" OUTPUT_VARIABLE CMAKE_REQUIRED_DEFINITIONS)
set(CMAKE_REQUIRED_LIBRARIES Threads::Threads)

# timerfd: the timer thread blocks in read(2) on an absolute timer.
check_c_source_compiles([[
#include <sys/timerfd.h>
#include <time.h>
int main(void) {
    struct itimerspec its = {{0, 0}, {0, 1}};
    int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
    return timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, 0);
}]] CIO_HAVE_TIMERFD)

# preadv2/pwritev2 with RWF_NOWAIT: one read or write that fails with
# EAGAIN instead of blocking, without touching O_NONBLOCK.
check_c_source_compiles([[
#include <sys/uio.h>
int main(void) {
    char c;
    struct iovec v = {&c, 1};
    return (int)preadv2(0, &v, 1, -1, RWF_NOWAIT) + (int)pwritev2(1, &v, 1, -1, RWF_NOWAIT);
}]] CIO_HAVE_RWF_NOWAIT)

# A condvar whose timed waits run on CLOCK_MONOTONIC (macOS has none).
check_c_source_compiles([[
#include <pthread.h>
#include <time.h>
int main(void) {
    pthread_condattr_t a;
    pthread_condattr_init(&a);
    return pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
}]] CIO_HAVE_CONDATTR_SETCLOCK)

# Per-call socket flags: a try that never blocks, a send that raises no
# SIGPIPE.  Neither changes the socket (SO_NOSIGPIPE would: not used).
check_symbol_exists(MSG_DONTWAIT "sys/types.h;sys/socket.h" CIO_HAVE_MSG_DONTWAIT)
check_symbol_exists(MSG_NOSIGNAL "sys/types.h;sys/socket.h" CIO_HAVE_MSG_NOSIGNAL)

# pipe2(O_CLOEXEC): a pipe that no exec in another thread can inherit.
check_symbol_exists(pipe2 "fcntl.h;unistd.h" CIO_HAVE_PIPE2)

# A timer that signals one thread (Linux: timer_create, SIGEV_THREAD_ID):
# a worker's deadline, and a repeated cancel signal, straight from the
# kernel to it.
check_c_source_compiles([[
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
int main(void) {
    struct sigevent ev = {0};
    timer_t id;
    ev.sigev_notify = SIGEV_THREAD_ID;
    ev.sigev_signo = (int)syscall(SYS_gettid);
    return timer_create(CLOCK_MONOTONIC, &ev, &id);
}]] CIO_HAVE_THREAD_TIMER)

# ppoll(2): a wait with a signal unblocked for the wait alone (POSIX 2024;
# Linux, the BSDs), so that a signal sent before the wait is not lost: a
# worker parks its read there (platform/park_ppoll.c).
check_c_source_compiles([[
#include <poll.h>
#include <signal.h>
int main(void) {
    struct pollfd p = {0, POLLIN, 0};
    sigset_t s;
    sigemptyset(&s);
    return ppoll(&p, 1, (void *)0, &s);
}]] CIO_HAVE_PPOLL)

# futex(2) (Linux): a caller's wake-up that may come after the lock is
# released (platform/wake_futex.c).  Where SYS_futex takes a 32-bit time
# (some 32-bit systems with a 64-bit time_t), the probe fails and the
# condvar is used.
check_c_source_compiles([[
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
_Static_assert(sizeof(struct timespec) == 2 * sizeof(long), "kernel timespec");
int main(void) {
    static unsigned word;
    struct timespec ts = {0, 0};
    return (int)syscall(SYS_futex, &word, FUTEX_WAIT_BITSET, 1u, &ts, (void *)0,
                        FUTEX_BITSET_MATCH_ANY);
}]] CIO_HAVE_FUTEX)

# glibc, which takes a thread's static TLS out of its stack: its size, as
# the dynamic linker tells it (dlsym, in libc from glibc 2.34) or as the
# loaded objects' TLS segments add up (dl_iterate_phdr), is added to the
# size a worker asks for.  musl adds it itself; the BSDs keep TLS apart.
check_symbol_exists(__GLIBC__ "stdlib.h" CIO_LIBC_GLIBC)
check_c_source_compiles([[
#include <link.h>
#include <stddef.h>
#ifndef __GLIBC__
#error "only glibc puts static TLS inside the thread's stack"
#endif
static int cb(struct dl_phdr_info *i, size_t n, void *a) {
    (void)n; (void)a;
    return i->dlpi_phnum > 0 && i->dlpi_phdr[0].p_type == PT_TLS;
}
int main(void) { return dl_iterate_phdr(cb, NULL); }
]] CIO_HAVE_STACK_TLS)

# prctl (Linux): the size of the process's futex hash (PR_FUTEX_HASH,
# Linux 6.16; the file defines the constants older headers lack).
check_symbol_exists(prctl "sys/prctl.h" CIO_HAVE_PR_FUTEX_HASH)
cmake_pop_check_state()

# What the POSIX-only build may still use when the probe (run with POSIX
# 2008 macros alone) finds it: MSG_DONTWAIT is POSIX 2024 and every BSD and
# macOS has it, so that build tries ready sockets the way they do.
set(cio_portable_probes CIO_HAVE_MSG_DONTWAIT)

set(CANCELIO_PLATFORM_SOURCES "")
set(cio_platform_lines "")

function(cio_platform_choose)
    # FEATURE <text> {USE <probe var> <file>}... FALLBACK <file>: the first
    # USE whose probe passed, else FALLBACK; CANCELIO_PORTABLE skips every
    # USE whose probe is not in cio_portable_probes.
    set(feature "")
    set(fallback "")
    set(uses "")
    set(args ${ARGN})
    while(args)
        list(POP_FRONT args key)
        if(key STREQUAL "FEATURE")
            list(POP_FRONT args feature)
        elseif(key STREQUAL "FALLBACK")
            list(POP_FRONT args fallback)
        elseif(key STREQUAL "USE")
            list(POP_FRONT args probe file)
            list(APPEND uses "${probe}" "${file}")
        else()
            message(FATAL_ERROR "cio_platform_choose: unexpected '${key}'")
        endif()
    endwhile()
    if(NOT feature OR NOT fallback OR NOT uses)
        message(FATAL_ERROR "cio_platform_choose: FEATURE, USE and FALLBACK are required")
    endif()
    set(chosen "${fallback}")
    set(why "")
    while(uses)
        list(POP_FRONT uses probe file)
        set(CIO_PLATFORM_${probe} 0 PARENT_SCOPE)
        if(CANCELIO_PORTABLE AND NOT probe IN_LIST cio_portable_probes)
            list(APPEND why "${probe} forced off")
        elseif(NOT ${probe})
            list(APPEND why "no ${probe}")
        else()
            set(chosen "${file}")
            list(APPEND why "${probe}")
            set(CIO_PLATFORM_${probe} 1 PARENT_SCOPE)
            break()
        endif()
    endwhile()
    list(JOIN why ", " why)
    get_filename_component(name "${chosen}" NAME)
    string(LENGTH "${feature}" len)
    math(EXPR pad "24 - ${len}")
    if(pad LESS 1)
        set(pad 1)
    endif()
    string(REPEAT " " ${pad} spaces)
    set(CANCELIO_PLATFORM_SOURCES ${CANCELIO_PLATFORM_SOURCES} "${chosen}" PARENT_SCOPE)
    set(cio_platform_lines ${cio_platform_lines} "  ${feature}${spaces}${name}  (${why})"
        PARENT_SCOPE)
endfunction()

function(cio_platform_summary)
    if(CANCELIO_PORTABLE)
        set(mode "POSIX-only (CANCELIO_PORTABLE): -D${CANCELIO_LIBRARY_FEATURE_MACROS}")
    elseif(CANCELIO_LIBRARY_FEATURE_MACROS)
        list(JOIN CANCELIO_LIBRARY_FEATURE_MACROS " -D" macros)
        set(mode "native: -D${macros}")
    else()
        set(mode "native: the system's default namespace (no feature macros)")
    endif()
    message(STATUS "cancelio platform, ${mode}")
    foreach(line IN LISTS cio_platform_lines)
        message(STATUS "${line}")
    endforeach()
endfunction()
