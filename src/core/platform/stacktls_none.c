/* Systems whose C library gives a thread's TLS room of its own (musl adds
 * it to the stack size asked; the BSDs allocate it apart), or where it
 * cannot be known: the stack size asked is all stack. */
#include "internal.h"

size_t cio__stack_tls_bytes(void)
{
    return 0;
}
