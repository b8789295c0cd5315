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
 * so it is looked up, never linked; dlsym is in libc from glibc 2.34).
 * Where the lookup finds nothing (a program linked statically, an older
 * glibc), the loaded objects' PT_TLS segments give the blocks, and a fixed
 * allowance the control block and the default reserve.  Either way twice
 * the alignment is added: once for the stack's rounding, once for the
 * block's.  The size is fixed once the program has started, so it is
 * taken once, as the library is loaded: dlsym and dl_iterate_phdr take the
 * dynamic linker's locks, which a dlopen() holds while it runs
 * constructors that may call into cancelio, and the pool would otherwise
 * ask under its own.
 */
#include "internal.h"

#include <dlfcn.h>
#include <link.h>
#include <string.h>

#define ALLOWANCE ((size_t)8 * 1024) /* a control block and the default reserve */

typedef void static_info_fn(size_t *size, size_t *align);

struct tls_sum {
    size_t size, align;
};

static size_t stack_tls; /* written once, before any thread of ours exists */

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

__attribute__((constructor)) static void measure_stack_tls(void)
{
    struct tls_sum sum = {0, 0};
    static_info_fn *info = NULL;
#if __GLIBC_PREREQ(2, 34)
    void *sym = dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    memcpy(&info, &sym, sizeof info); /* ISO C has no object-to-function cast */
    if (!sym)
        (void)dlerror(); /* leave no error behind for the program's dlerror() */
#endif
    if (info) {
        info(&sum.size, &sum.align);
    } else {
        dl_iterate_phdr(add_tls, &sum);
        sum.size += ALLOWANCE;
    }
    stack_tls = sum.size + 2 * sum.align;
}

size_t cio__stack_tls_bytes(void)
{
    return stack_tls;
}
