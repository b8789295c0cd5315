/*
 * An "interrupt" note to a reader blocked in another thread.  On Plan 9 the
 * console posts "interrupt" to the process group when you press DEL; a
 * program that wants to survive it catches the note and sees its blocked
 * read fail with "interrupted".
 *
 * On Plan 9 (our sketch):
 *
 *     // the reader                     // the console, or another process
 *     atnotify(onintr, 1);              postnote(PNPROC, pid, "interrupt");
 *     n = read(0, buf, sizeof buf);
 *     if(n < 0)                         // onintr returns 1 for "interrupt"
 *         print("read: %r\n");          // "read: interrupted"
 *
 * Here the reader is a thread; it publishes its cio_proc so that the main
 * thread can post to it.  Exits 0 when everything happened as described.
 */
/* POSIX 2008, for a build on its own: cc -std=c11 $(pkg-config --cflags
 * --libs cancelio) hides everything beyond ISO C, nanosleep among it.
 * The project's build defines it itself. */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L
#endif

#include <cancelio/plan9.h>

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Atomic(cio_proc *) reader_proc;
static atomic_int reading;
static char seen[CIO_ERRMAX];
static ssize_t result;
static int result_err;

static int onintr(void *u, char *note)
{
    (void)u;
    if (strcmp(note, "interrupt") != 0)
        return 0;
    snprintf(seen, sizeof seen, "%s", note);
    return 1;
}

static void *reader(void *arg)
{
    cio_file *f = arg;
    char buf[64];
    cio_atnotify(onintr, 1);
    atomic_store(&reader_proc, cio_proc_self());
    atomic_store(&reading, 1);
    result = cio_read(f, buf, sizeof buf);
    result_err = errno;
    if (result < 0)
        printf("reader: read: %s\n", strerror(result_err));
    return NULL;
}

static void nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

int main(void)
{
    int p[2];
    pthread_t t;
    if (pipe(p) < 0)
        return 1;
    cio_file *f = cio_fdopen(p[0]);
    if (!f || pthread_create(&t, NULL, reader, f))
        return 1;
    while (!atomic_load(&reading))
        nap_ms(1);
    nap_ms(100); /* let it block (if the note came first, the read is refused: same result) */
    printf("main: postnote(reader, \"interrupt\")\n");
    if (cio_postnote(atomic_load(&reader_proc), "interrupt") < 0)
        return 1;
    pthread_join(t, NULL);

    int ok = result == -1 && result_err == EINTR && strcmp(seen, "interrupt") == 0;
    /* the thread is gone: like a process that exited */
    int gone = cio_postnote(atomic_load(&reader_proc), "interrupt") == -1 && errno == ESRCH;
    printf("main: the reader saw \"%s\"; a note to the exited reader: %s\n", seen,
           gone ? "ESRCH" : "accepted?");
    cio_close(f);
    close(p[1]);
    printf("%s\n", ok && gone ? "all as expected" : "FAILED");
    return ok && gone ? 0 : 1;
}
