/* Links against an installed cancelio and checks that it is the version the
 * package files announced, and that the helpers work from the installed
 * library: a child's output read line by line under a deadline. */
#include <cancelio.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

static int helpers_work(void)
{
    char *argv[] = {"sh", "-c", "printf 'one\\ntw'; sleep 1; printf 'o\\n'; exit 3", NULL};
    cio_child *c = cio_spawn(argv, CIO_STDOUT);
    if (!c)
        return 0;
    cio_file *out = cio_child_file(c, CIO_STDOUT);
    char buf[16];
    int ok = cio_read_until(out, buf, sizeof buf, "\n", 1) == 4 && memcmp(buf, "one\n", 4) == 0;
    cio_set_read_deadline(out, cio_after_ms(100));
    ok = ok && cio_read_until(out, buf, sizeof buf, "\n", 1) == -1 && errno == ETIMEDOUT &&
         cio_unread(out) == 2;
    cio_set_read_deadline(out, CIO_NO_DEADLINE);
    ok = ok && cio_read_full(out, buf, 4) == 4 && memcmp(buf, "two\n", 4) == 0;
    int st = 0;
    ok = ok && cio_child_wait(c, &st, cio_after_ms(5000)) == 0 && WEXITSTATUS(st) == 3;
    cio_child_free(c);
    return ok;
}

int main(void)
{
    const char *v = cio_version();

    printf("cancelio %s\n", v);
    if (!helpers_work()) {
        printf("the helpers failed\n");
        return 1;
    }
    return strcmp(v, EXPECTED_VERSION) == 0 ? 0 : 1;
}
