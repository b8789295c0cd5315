/* A consumer of the installed notes layer: only <cancelio/plan9.h> is
 * included (it brings cancelio.h).  A note refuses the next read, an alarm
 * interrupts a blocked one; exits 0 if both behave as DESIGN rules 16-18
 * say. */
#include <cancelio/plan9.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int taken;

static int take(void *arg, char *note)
{
    (void)arg;
    taken += strcmp(note, "hello") == 0 || strcmp(note, "alarm") == 0;
    return 1;
}

int main(void)
{
    int p[2];
    char buf[8];
    if (pipe(p) < 0)
        return 1;
    cio_file *f = cio_fdopen(p[0]);
    cio_proc *me = cio_proc_self();
    if (!f || !me || cio_atnotify(take, 1) < 0)
        return 1;
    int ok = cio_postnote(me, "hello") == 0;
    ok &= cio_read(f, buf, sizeof buf) == -1 && errno == EINTR && taken == 1;
    ok &= cio_alarm(50) == 0;
    ok &= cio_read(f, buf, sizeof buf) == -1 && errno == EINTR && taken == 2;
    ok &= cio_postnote(NULL, "x") == -1 && errno == EINVAL;
    cio_close(f);
    close(p[1]);
    printf("plan9 consumer: %s (CIO_NNOTE %d, CIO_ERRMAX %d)\n", ok ? "ok" : "FAILED", CIO_NNOTE,
           CIO_ERRMAX);
    return ok ? 0 : 1;
}
