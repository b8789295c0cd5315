/*
 * glibc carves a thread's static thread-local storage out of the stack it
 * is given: a worker asked for 128 KiB in a program with 128 KiB of
 * `_Thread_local` data could not start at all (pthread_create fails with
 * EINVAL), and with 120 KiB of it would start with 8 KiB to run on.  The
 * TLS blocks of the objects loaded now (the program, the libraries it
 * links) are what the static TLS holds; each object's PT_TLS segment says
 * its size.  A library dlopen()ed later gets its TLS elsewhere (a surplus
 * glibc reserves, or the heap), so this is read when the pool starts.
 */
#include "internal.h"

#include <link.h>

static int add_tls(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    size_t *sum = arg;
    for (size_t i = 0; i < (size_t)info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_TLS)
            *sum += (size_t)ph->p_memsz + (size_t)ph->p_align;
    }
    return 0;
}

size_t cio__stack_tls_bytes(void)
{
    size_t sum = 0;
    dl_iterate_phdr(add_tls, &sum);
    return sum;
}
