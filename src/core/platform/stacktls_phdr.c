/*
 * glibc carves a thread's static thread-local storage out of the stack it
 * is given: a worker asked for 128 KiB in a program with 128 KiB of
 * `_Thread_local` data could not start at all (pthread_create fails with
 * EINVAL), and with 120 KiB of it would start with 8 KiB to run on.  The
 * static TLS is the TLS of the objects loaded at start, a reserve for
 * libraries dlopen()ed later with initial-exec TLS (a tunable,
 * glibc.rtld.optional_static_tls, can make it large) and the thread's
 * control block, laid out at the alignment of the most aligned block; and
 * glibc rounds the stack size down to that alignment too.
 *
 * The dynamic linker knows the whole of it: _dl_get_tls_static_info, the
 * call the sanitizers make for the same question (a GLIBC_PRIVATE symbol,
 * so it is looked up, never linked).  Where the lookup finds nothing (a
 * program linked statically), the loaded objects' PT_TLS segments give
 * the blocks, and the default reserve is small enough to stay within the
 * stack's own slack.  Either way twice the alignment is added: once for
 * the stack's rounding, once for the block's.
 */
#include "internal.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

typedef void static_info_fn(size_t *size, size_t *align);

struct tls_sum {
    size_t size, align;
};

static int add_tls(struct dl_phdr_info *info, size_t size, void *arg)
{
    (void)size;
    struct tls_sum *sum = arg;
    for (size_t i = 0; i < (size_t)info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS)
            continue;
        sum->size += (size_t)ph->p_memsz + (size_t)ph->p_align;
        if ((size_t)ph->p_align > sum->align)
            sum->align = (size_t)ph->p_align;
    }
    return 0;
}

size_t cio__stack_tls_bytes(void)
{
    struct tls_sum sum = {0, 0};
    static_info_fn *info = NULL;
#if !defined(__i386__) /* there a different calling convention, in old glibc */
    void *sym = dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    memcpy(&info, &sym, sizeof info); /* ISO C has no object-to-function cast */
#endif
    if (info)
        info(&sum.size, &sum.align);
    else
        dl_iterate_phdr(add_tls, &sum);
    return sum.size + 2 * sum.align;
}
