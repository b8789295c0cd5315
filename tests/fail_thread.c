/*
 * A shim that test_tools loads into a tool with LD_PRELOAD: the Nth
 * pthread_create of the process fails with EAGAIN, as under a limit on
 * threads.  CIO_TEST_FAIL_THREAD=N counts every call; =attr:N only those
 * given attributes (the library's threads, not the tool's own);
 * =noattr:N only those given none (the tool's own).  When
 * CIO_TEST_SHIM_MARK names a file, the shim creates it as it loads, so
 * that the test knows it took effect (a static program ignores
 * LD_PRELOAD).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* RTLD_NEXT */
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);

__attribute__((constructor)) static void mark(void)
{
    const char *m = getenv("CIO_TEST_SHIM_MARK");
    int fd = m ? open(m, O_WRONLY | O_CREAT | O_CLOEXEC, 0600) : -1;
    if (fd >= 0)
        close(fd);
}

int pthread_create(pthread_t *t, const pthread_attr_t *a, void *(*fn)(void *), void *arg)
{
    static atomic_long counted;
    const char *want = getenv("CIO_TEST_FAIL_THREAD");
    int attr_only = want && strncmp(want, "attr:", 5) == 0;
    int noattr_only = want && strncmp(want, "noattr:", 7) == 0;
    int skip = attr_only ? 5 : noattr_only ? 7 : 0;
    if (want && (!attr_only || a) && (!noattr_only || !a) &&
        atomic_fetch_add(&counted, 1) + 1 == atol(want + skip))
        return EAGAIN;
    void *p = dlsym(RTLD_NEXT, "pthread_create");
    create_fn real;
    memcpy(&real, &p, sizeof real); /* an object pointer to a function's */
    return real(t, a, fn, arg);
}
