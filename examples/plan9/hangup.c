/*
 * A "hangup" to every reader of a connection.  On Plan 9 a server whose
 * client went away posts "hangup" to the processes serving it; with
 * PNGROUP (or a write to /proc/n/notepg) one note reaches the whole group,
 * and each process blocked in a read leaves it with "interrupted".
 *
 * On Plan 9 (our sketch):
 *
 *     for(i = 0; i < nreader; i++)      // or once: postnote(PNGROUP, pid, "hangup")
 *         postnote(PNPROC, reader[i], "hangup");
 *
 * cancelio has no process groups: the group is a list of cio_procs, and the
 * note goes to each.  The connection itself survives: the readers' reads
 * consumed nothing, and a read after the hangup gets the data.  Exits 0
 * when everything happened as described.
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
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NREADER 3

struct reader {
    pthread_t thread;
    cio_file *conn;
    _Atomic(cio_proc *) proc;
    ssize_t n;
    int err;
};

static atomic_int hangups;

static int onhangup(void *u, char *note)
{
    (void)u;
    if (strcmp(note, "hangup") != 0)
        return 0;
    atomic_fetch_add(&hangups, 1);
    return 1;
}

static void *serve(void *arg)
{
    struct reader *r = arg;
    char buf[64];
    cio_atnotify(onhangup, 1);
    atomic_store(&r->proc, cio_proc_self());
    r->n = cio_read(r->conn, buf, sizeof buf); /* one reads, the others wait their turn */
    r->err = errno;
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
    int sv[2], ok = 1;
    struct reader rd[NREADER];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        return 1;
    cio_file *conn = cio_fdopen(sv[0]);
    if (!conn)
        return 1;
    for (int i = 0; i < NREADER; i++) {
        rd[i].conn = conn;
        atomic_store(&rd[i].proc, NULL);
        if (pthread_create(&rd[i].thread, NULL, serve, &rd[i]))
            return 1;
    }
    for (int i = 0; i < NREADER; i++)
        while (!atomic_load(&rd[i].proc))
            nap_ms(1);
    nap_ms(100); /* let them block: one in read, the others waiting for it */

    printf("the client hung up: \"hangup\" to %d readers\n", NREADER);
    for (int i = 0; i < NREADER; i++)
        if (cio_postnote(atomic_load(&rd[i].proc), "hangup") < 0)
            ok = 0;
    for (int i = 0; i < NREADER; i++) {
        pthread_join(rd[i].thread, NULL);
        printf("reader %d: %zd (%s)\n", i, rd[i].n, rd[i].n < 0 ? strerror(rd[i].err) : "data");
        ok &= rd[i].n == -1 && rd[i].err == EINTR;
    }
    ok &= atomic_load(&hangups) == NREADER;

    /* the connection is intact: nothing was consumed */
    char buf[16];
    if (write(sv[1], "still here", 10) != 10)
        return 1;
    ssize_t n = cio_read(conn, buf, sizeof buf);
    printf("after the hangup the connection reads: %.*s\n", n > 0 ? (int)n : 0, buf);
    ok &= n == 10 && memcmp(buf, "still here", 10) == 0;
    cio_close(conn);
    close(sv[1]);
    printf("%s\n", ok ? "all as expected" : "FAILED");
    return ok ? 0 : 1;
}
