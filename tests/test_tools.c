/*
 * Description: cio-cat and cio-run, run as a user runs them (through
 * cio_spawn, from the build tree).  One case per exit status: 0, 1, 124,
 * 125, 126, 127 and 128+N; --idle against a program that prints and then
 * goes silent (while a descendant keeps the pipes open: no hang); --idle
 * reset by steady output; --total; --kill-after against a program that
 * ignores SIGTERM; --expect against a program that prints the text after
 * a delay, split across two writes, on stdout or stderr; SIGTERM to
 * cio-run passed on to CMD; every byte read before a timeout present in
 * the output; an output that fails (1 from cio-cat, 125 from cio-run, a
 * message naming it, never a hang); --idle standing still while a slow
 * reader holds cio-run's output up; closed standard streams named as such;
 * --total with a reader that takes nothing (cio-cat writes every byte it
 * read; cio-run still exits on time); a reader that goes away (CMD
 * stopped, then cio-run dies of SIGPIPE); durations as strtod reads them.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LIMIT_MS 20000

struct result {
    int status; /* the exit code, or 128+N */
    char *out, *err;
    size_t out_len, err_len;
    double ms;
};

/* Read f to its end (bounded), into a fresh string. */
static char *slurp(cio_file *f, size_t *len)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap + 1);
    assert_non_null(buf);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(scaled_ms(LIMIT_MS))), 0);
    for (;;) {
        if (n == cap) {
            buf = realloc(buf, (cap *= 2) + 1);
            assert_non_null(buf);
        }
        ssize_t r = cio_read(f, buf + n, cap - n);
        assert_true(r >= 0);
        if (r == 0)
            break;
        n += (size_t)r;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Run argv with input on its stdin (NULL: an open pipe nobody writes to
 * until the tool has exited), collecting its output. */
static struct result run_tool(char *const argv[], const char *input)
{
    struct result res = {0};
    cio_time_t t0 = cio_now();
    cio_child *c = cio_spawn(argv, CIO_STDIN | CIO_STDOUT | CIO_STDERR);
    assert_non_null(c);
    if (input) {
        cio_file *in = cio_child_file(c, CIO_STDIN);
        assert_int_equal(cio_write(in, input, strlen(input)), (ssize_t)strlen(input));
        assert_int_equal(cio_child_close(c, CIO_STDIN), 0);
    }
    res.out = slurp(cio_child_file(c, CIO_STDOUT), &res.out_len);
    res.err = slurp(cio_child_file(c, CIO_STDERR), &res.err_len);
    int st;
    assert_int_equal(cio_child_wait(c, &st, cio_after_ms(scaled_ms(LIMIT_MS))), 0);
    res.ms = elapsed_ms(t0, cio_now());
    res.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    assert_int_equal(cio_child_free(c), 0);
    return res;
}

static void result_free(struct result *r)
{
    free(r->out);
    free(r->err);
}

/* The tools run natively, but on a loaded machine a program's first
 * output can come late: durations given to them that must outlast it grow
 * with the time scale (at most 3 times). */
static double tool_scale(void)
{
    return time_scale() > 3 ? 3 : time_scale();
}

/* s seconds, scaled, as a DURATION argument (a few live at once). */
static char *dur(double s)
{
    static char ring[8][32];
    static unsigned next;
    char *p = ring[next++ % 8];
    snprintf(p, sizeof ring[0], "%.3f", s * tool_scale());
    return p;
}

static double dur_ms(double s)
{
    return s * tool_scale() * 1000;
}

#define RUN(input, ...) run_tool((char *const[]){__VA_ARGS__, NULL}, input)

/* A pipe that no program we start inherits but as the streams we give
 * it: a read end left open in the child would keep a writer from ever
 * seeing its reader go. */
static void cloexec_pipe(int p[2])
{
    assert_int_equal(make_pipe(p), 0);
    for (int i = 0; i < 2; i++)
        assert_int_equal(fcntl(p[i], F_SETFD, FD_CLOEXEC), 0);
}

/* Start argv with the given fds as its stdin and stdout (its stderr is
 * ours); its pid. */
static pid_t start_with(char *const argv[], int in, int out)
{
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, in, 0), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, out, 1), 0);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Wait (bounded) for pid; its exit code or 128+N, or -1 if it is still
 * there after ms (then it is killed). */
static int wait_exit(pid_t pid, double ms)
{
    cio_time_t end = cio_now() + (cio_time_t)(ms * 1e6);
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        if (cio_now() > end) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_us(2000);
    }
}

/* ---- cio-cat ---- */

static char *temp_file(const char *content)
{
    static char path[64];
    strcpy(path, "/tmp/cio_tools_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write_all(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

/* Files and - (stdin) in order, exit 0. */
static void cat_copies_files_and_stdin_and_exits_0(void **state)
{
    (void)state;
    char *path = temp_file("from the file\n");
    struct result r = RUN("from stdin\n", CIO_CAT, path, "-", path);
    unlink(path);
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "from the file\nfrom stdin\nfrom the file\n");
    assert_int_equal(r.err_len, 0);
    result_free(&r);
}

/* --idle on input that goes silent: every byte read is out, then 124,
 * not before the idle time. */
static void cat_idle_writes_every_byte_then_exits_124(void **state)
{
    (void)state;
    char script[512];
    snprintf(script, sizeof script,
             "(head -c 200000 /dev/zero | tr '\\0' a; sleep %d) | %s --idle %s",
             (int)(4 * tool_scale()) + 2, CIO_CAT, dur(2));
    struct result r = RUN(NULL, "sh", "-c", script);
    assert_int_equal(r.status, 124);
    assert_int_equal(r.out_len, 200000);
    assert_int_equal(strspn(r.out, "a"), 200000);
    assert_true(r.ms >= dur_ms(2));
    result_free(&r);
}

/* --total on input that never ends: 124 not before it. */
static void cat_total_exits_124(void **state)
{
    (void)state;
    struct result r = RUN(NULL, CIO_CAT, "--total", "0.3");
    assert_int_equal(r.status, 124);
    assert_true(r.ms >= 300);
    assert_true(r.ms < scaled_ms(LIMIT_MS));
    result_free(&r);
}

/* --total passes while standard output is not being read: cio-cat stops
 * reading, but every byte it read is written (DESIGN: 124 after writing
 * every byte that was read), however late its reader comes.  Its input is
 * a file shared with us, so its offset says how much it read. */
static void cat_total_writes_every_byte_it_read_to_a_slow_reader(void **state)
{
    (void)state;
    char path[] = "/tmp/cio_tools_big_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    unlink(path);
    static char block[1 << 16];
    memset(block, 'c', sizeof block);
    for (int i = 0; i < 16; i++)
        assert_int_equal(write_all(fd, block, sizeof block), (ssize_t)sizeof block);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    int out[2];
    cloexec_pipe(out);
    pid_t pid = start_with((char *const[]){CIO_CAT, "--total", "0.3", NULL}, fd, out[1]);
    close(out[1]);
    sleep_us((unsigned)(dur_ms(1.5) * 1000)); /* well past --total */
    size_t got = 0;
    ssize_t r;
    while ((r = read(out[0], block, sizeof block)) > 0)
        got += (size_t)r;
    close(out[0]);
    assert_int_equal(wait_exit(pid, scaled_ms(LIMIT_MS)), 124);
    off_t taken = lseek(fd, 0, SEEK_CUR);
    close(fd);
    assert_true(taken < 16 << 16); /* it did stop early */
    assert_int_equal(got, (size_t)taken);
}

/* Standard input closed: a message naming it, the next file still
 * copied, exit 1; the library's own descriptors never stand in for it. */
static void cat_closed_stdin_is_an_error_like_any_other(void **state)
{
    (void)state;
    char *path = temp_file("ok\n");
    char script[256];
    snprintf(script, sizeof script, "%s --idle %s - %s <&-", CIO_CAT, dur(5), path);
    struct result r = RUN(NULL, "sh", "-c", script);
    unlink(path);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "ok\n");
    assert_non_null(strstr(r.err, "cio-cat: standard input: Bad file descriptor"));
    result_free(&r);
}

/* A missing file: its message, the other files still copied, exit 1. */
static void cat_missing_file_exits_1_with_a_message(void **state)
{
    (void)state;
    char *path = temp_file("ok\n");
    struct result r = RUN("", CIO_CAT, "/nonexistent/cio-none", path);
    unlink(path);
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "ok\n");
    assert_non_null(strstr(r.err, "cio-cat: /nonexistent/cio-none: No such file or directory"));
    result_free(&r);
}

/* Standard output that fails: 1, with a message naming it, also when the
 * failure comes after part of a write went out (a file size limit). */
static void cat_output_error_exits_1_naming_standard_output(void **state)
{
    (void)state;
    char script[512];
    snprintf(script, sizeof script, "head -c 300000 /dev/zero | %s > /dev/full", CIO_CAT);
    struct result r = RUN(NULL, "sh", "-c", script);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cio-cat: standard output: No space left on device"));
    result_free(&r);
    char out[] = "/tmp/cio_tools_out_XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    snprintf(script, sizeof script,
             "trap '' XFSZ; ulimit -f 20; head -c 300000 /dev/zero | %s > %s", CIO_CAT, out);
    r = RUN(NULL, "sh", "-c", script);
    unlink(out);
    assert_int_equal(r.status, 1);
    assert_non_null(strstr(r.err, "cio-cat: standard output: File too large"));
    result_free(&r);
}

/* Bad durations and options: 125; --help and --version: 0. */
static void cat_bad_usage_exits_125(void **state)
{
    (void)state;
    const char *bad[] = {"x", "-1", "1x", "", "1.5.2", "1ss", "s", "nan", "1 "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct result r = RUN("", CIO_CAT, "--idle", (char *)bad[i]);
        if (r.status != 125)
            fail_msg("--idle '%s' gave %d", bad[i], r.status);
        assert_non_null(strstr(r.err, "cio-cat: "));
        result_free(&r);
    }
    struct result r = RUN("", CIO_CAT, "--bogus");
    assert_int_equal(r.status, 125);
    result_free(&r);
    r = RUN("", CIO_CAT, "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: cio-cat"));
    result_free(&r);
    r = RUN("", CIO_CAT, "--version");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, cio_version()));
    result_free(&r);
    /* numbers as timeout(1) reads them (strtod) */
    const char *good[] = {"1.5m", ".5h", "1e3", "inf", " 2", "0x10", "1.", "1e400"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++) {
        r = RUN("x", CIO_CAT, "--idle", (char *)good[i], "--total", (char *)good[i]);
        if (r.status != 0 || strcmp(r.out, "x") != 0)
            fail_msg("--idle '%s' gave %d", good[i], r.status);
        result_free(&r);
    }
}

/* ---- cio-run ---- */

/* CMD's status, its stdout and stderr relayed apart. */
static void run_relays_and_exits_with_the_status(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--", "sh", "-c", "echo out; echo err >&2; exit 3");
    assert_int_equal(r.status, 3);
    assert_string_equal(r.out, "out\n");
    assert_string_equal(r.err, "err\n");
    result_free(&r);
    r = RUN("", CIO_RUN, "true");
    assert_int_equal(r.status, 0);
    result_free(&r);
}

/* Our own output fails: a message, CMD stopped (it would block on a pipe
 * that nobody reads), 125; also when CMD has exited before the relay. */
static void run_output_error_stops_cmd_and_exits_125(void **state)
{
    (void)state;
    const char *cmds[] = {"head -c 1000000 /dev/zero", "echo hi"};
    for (int i = 0; i < 2; i++) {
        char script[256];
        snprintf(script, sizeof script, "%s -k 0 -- %s > /dev/full", CIO_RUN, cmds[i]);
        struct result r = RUN(NULL, "sh", "-c", script);
        assert_int_equal(r.status, 125);
        assert_non_null(strstr(r.err, "cio-run: standard output: No space left on device"));
        result_free(&r);
    }
}

/* Our stdout or stderr closed: the message says so (the library's own
 * descriptors never stand in for them), 125. */
static void run_closed_output_is_named_and_exits_125(void **state)
{
    (void)state;
    const char *redir[] = {">&-", "2>&-"};
    const char *say[] = {"echo hi", "echo hi >&2"};
    for (int i = 0; i < 2; i++) {
        char script[256];
        snprintf(script, sizeof script, "exec 3>&2; %s -k 0 -- sh -c '%s' %s", CIO_RUN, say[i],
                 redir[i]);
        struct result r = RUN(NULL, "sh", "-c", script);
        assert_int_equal(r.status, 125);
        if (i == 0)
            assert_non_null(strstr(r.err, "cio-run: standard output: Bad file descriptor"));
        result_free(&r);
    }
}

/* Run argv with stdout to a pipe that nobody reads; its status, and how
 * long it took in *ms. */
static int run_unread(char *const argv[], double *ms)
{
    int out[2];
    cloexec_pipe(out);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    cio_time_t t0 = cio_now();
    pid_t pid = start_with(argv, in, out[1]);
    close(out[1]);
    close(in);
    int status = wait_exit(pid, scaled_ms(LIMIT_MS));
    *ms = elapsed_ms(t0, cio_now());
    close(out[0]);
    return status;
}

/* --total bounds cio-run even when our own reader takes nothing: CMD is
 * stopped, the write that waits for the reader is cut, 124, on time; the
 * same after --expect has matched (0: a descendant of CMD, not signalled,
 * keeps the output coming), and after CMD has exited with its last output
 * still waiting for our reader (124). */
static void run_total_holds_while_our_reader_takes_nothing(void **state)
{
    (void)state;
    double ms, bound = dur_ms(0.3) + 5000 * tool_scale();
    char *busy[] = {CIO_RUN, "--total", "0.3", "--", "yes", NULL};
    assert_int_equal(run_unread(busy, &ms), 124);
    assert_true(ms < bound);
    /* the text comes on stderr while a descendant keeps stdout busy */
    char *seen[] = {CIO_RUN,    "--total", "0.3",
                    "--expect", "zz",      "--",
                    "sh",       "-c",      "yes & sleep 0.1; echo zz >&2; wait",
                    NULL};
    assert_int_equal(run_unread(seen, &ms), 0);
    assert_true(ms < bound);
    char *gone[] = {CIO_RUN, "--total", "0.3", "--", "head", "-c", "300000", "/dev/zero", NULL};
    assert_int_equal(run_unread(gone, &ms), 124);
    assert_true(ms < bound);
}

/* With no timeout, every byte CMD printed reaches a slow reader, also the
 * bytes still in CMD's pipe when it exits (100 KB: a write of ours waits
 * for the reader, CMD's pipe holds the rest, CMD is gone); and a SIGTERM
 * that comes after CMD has exited, while cio-run waits for its reader,
 * ends cio-run. */
static void run_slow_reader_gets_every_byte_and_sigterm_still_ends_it(void **state)
{
    (void)state;
    char script[256];
    snprintf(script, sizeof script, "%s -- head -c 100000 /dev/zero | (sleep %s; wc -c)", CIO_RUN,
             dur(1));
    struct result r = RUN(NULL, "sh", "-c", script);
    assert_int_equal(r.status, 0);
    assert_int_equal(atoi(r.out), 100000);
    result_free(&r);

    int out[2];
    cloexec_pipe(out);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    char *argv[] = {CIO_RUN, "--", "head", "-c", "100000", "/dev/zero", NULL};
    pid_t pid = start_with(argv, in, out[1]);
    close(out[1]);
    close(in);
    sleep_us((unsigned)(dur_ms(0.5) * 1000)); /* CMD has printed all and gone */
    assert_int_equal(kill(pid, SIGTERM), 0);
    assert_int_equal(wait_exit(pid, scaled_ms(LIMIT_MS)), 128 + SIGTERM);
    close(out[0]);
}

/* SIGCHLD ignored by whoever started cio-run (inherited across exec):
 * CMD's status still comes back, for cio-run puts SIGCHLD back to its
 * default, as timeout(1) does. */
static void run_reports_the_status_with_sigchld_ignored(void **state)
{
    (void)state;
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    sigemptyset(&ign.sa_mask);
    int in = open("/dev/null", O_RDWR | O_CLOEXEC);
    assert_true(in >= 0);
    char *argv[] = {CIO_RUN, "--", "sh", "-c", "sleep 0.3; exit 7", NULL};
    assert_int_equal(sigaction(SIGCHLD, &ign, &old), 0);
    pid_t pid = start_with(argv, in, in);
    assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0); /* before it exits */
    close(in);
    assert_int_equal(wait_exit(pid, scaled_ms(LIMIT_MS)), 7);
}

/* Our reader goes away: CMD is stopped (not left running on its own), and
 * cio-run dies of SIGPIPE as a pipeline's member does. */
static void run_reader_gone_stops_cmd_then_dies_of_sigpipe(void **state)
{
    (void)state;
    char pidfile[] = "/tmp/cio_tools_pid_XXXXXX";
    int pf = mkstemp(pidfile);
    assert_true(pf >= 0);
    close(pf);
    char script[256];
    snprintf(script, sizeof script, "echo $$ > %s; head -c 200000 /dev/zero; exec sleep 30",
             pidfile);
    int out[2];
    cloexec_pipe(out);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    pid_t pid =
        start_with((char *const[]){CIO_RUN, "-k", "0", "--", "sh", "-c", script, NULL}, in, out[1]);
    close(out[1]);
    close(in);
    char c;
    assert_int_equal(read(out[0], &c, 1), 1); /* it runs; then we go */
    close(out[0]);
    assert_int_equal(wait_exit(pid, scaled_ms(LIMIT_MS)), 128 + SIGPIPE);
    FILE *fp = fopen(pidfile, "r");
    assert_non_null(fp);
    int cmd = 0;
    assert_int_equal(fscanf(fp, "%d", &cmd), 1);
    fclose(fp);
    unlink(pidfile);
    bool gone = kill(cmd, 0) != 0;
    if (!gone)
        kill(cmd, SIGKILL);
    assert_true(gone);
}

/* --idle does not count the time CMD waits for our slow reader: it is not
 * silent, it is held up by us.  Every byte gets through, CMD's status. */
static void run_idle_stands_still_while_our_reader_is_slow(void **state)
{
    (void)state;
    char script[512];
    snprintf(script, sizeof script,
             "(%s --idle %s -- head -c 1000000 /dev/zero; echo rc=$? >&2) | (sleep %s; wc -c)",
             CIO_RUN, dur(0.5), dur(2));
    struct result r = RUN(NULL, "sh", "-c", script);
    assert_int_equal(r.status, 0);
    assert_int_equal(atoi(r.out), 1000000);
    assert_non_null(strstr(r.err, "rc=0"));
    result_free(&r);
}

/* A signal N that kills CMD: 128+N. */
static void run_killed_by_a_signal_exits_128_plus_n(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--", "sh", "-c", "kill -KILL $$");
    assert_int_equal(r.status, 128 + SIGKILL);
    result_free(&r);
}

/* --idle: a program that prints then goes silent is stopped, 124, its
 * output all relayed, although a descendant keeps the pipes open. */
static void run_idle_stops_a_silent_program_with_124(void **state)
{
    (void)state;
    char script[256];
    snprintf(script, sizeof script,
             "head -c 100000 /dev/zero | tr '\\0' b; echo; echo note >&2; sleep %d",
             (int)(4 * tool_scale()) + 2); /* past the idle time, then gone */
    struct result r = RUN("", CIO_RUN, "--idle", dur(2), "--", "sh", "-c", script);
    assert_int_equal(r.status, 124);
    assert_int_equal(r.out_len, 100001);
    assert_int_equal(strspn(r.out, "b"), 100000);
    assert_string_equal(r.err, "note\n");
    assert_true(r.ms >= dur_ms(2));
    assert_true(r.ms < scaled_ms(LIMIT_MS) / 2);
    result_free(&r);
}

/* --idle is reset by output on either stream. */
static void run_idle_is_reset_by_any_output(void **state)
{
    (void)state;
    /* output every 0.3 s, alternating streams, for longer than the idle
     * time: only a reset by each output lets it finish */
    int lines = (int)(3 * tool_scale() * 1.5 / 0.6) + 1;
    char script[256];
    snprintf(script, sizeof script,
             "i=0; while [ $i -lt %d ]; do echo $i; sleep 0.3; echo e >&2; sleep 0.3; "
             "i=$((i+1)); done; exit 5",
             lines);
    struct result r = RUN("", CIO_RUN, "--idle", dur(3), "--", "sh", "-c", script);
    assert_int_equal(r.status, 5);
    int seen = 0;
    for (size_t i = 0; i < r.out_len; i++)
        seen += r.out[i] == '\n';
    assert_int_equal(seen, lines);
    assert_true(r.ms >= dur_ms(3));
    result_free(&r);
}

/* SIGTERM sent to cio-run is passed on to CMD, which ends with 128+15. */
static void run_passes_sigterm_on_to_cmd(void **state)
{
    (void)state;
    char *argv[] = {CIO_RUN, "--", "sh", "-c", "echo up; exec sleep 30", NULL};
    cio_child *c = cio_spawn(argv, CIO_STDOUT);
    assert_non_null(c);
    char buf[8];
    assert_int_equal(cio_read_until(cio_child_file(c, CIO_STDOUT), buf, sizeof buf, "\n", 1), 3);
    assert_int_equal(cio_child_kill(c, SIGTERM), 0);
    int st;
    assert_int_equal(cio_child_wait(c, &st, cio_after_ms(scaled_ms(LIMIT_MS))), 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 128 + SIGTERM);
    assert_int_equal(cio_child_free(c), 0);
}

/* --total stops a program that keeps printing. */
static void run_total_stops_a_busy_program_with_124(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--total", dur(2), "--", "sh", "-c",
                          "while :; do echo tick; sleep 0.05; done");
    assert_int_equal(r.status, 124);
    assert_true(r.ms >= dur_ms(2));
    assert_non_null(strstr(r.out, "tick\n"));
    result_free(&r);
}

/* --kill-after: a program that ignores SIGTERM gets SIGKILL that much
 * later. */
static void run_kill_after_sends_sigkill(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--idle", dur(2), "--kill-after", dur(0.5), "--", "sh", "-c",
                          "trap '' TERM; echo up; while :; do sleep 1; done");
    assert_int_equal(r.status, 124);
    assert_string_equal(r.out, "up\n");
    assert_true(r.ms >= dur_ms(2.5));
    assert_true(r.ms < scaled_ms(LIMIT_MS) / 2);
    result_free(&r);
}

/* --expect: the text printed after a delay, in two writes: exit 0 soon
 * after, CMD stopped. */
static void run_expect_succeeds_when_the_text_appears(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--expect", "listening on", "--", "sh", "-c",
                          "sleep 0.3; printf 'server listen'; sleep 0.3; printf 'ing on 80\\n'; "
                          "exec sleep 30");
    assert_int_equal(r.status, 0);
    assert_string_equal(r.out, "server listening on 80\n");
    assert_true(r.ms >= 600);
    assert_true(r.ms < scaled_ms(LIMIT_MS) / 2);
    result_free(&r);
    r = RUN("", CIO_RUN, "--expect", "ready", "--", "sh", "-c", "echo ready >&2; exec sleep 30");
    assert_int_equal(r.status, 0);
    result_free(&r);
}

/* --expect and CMD ends without the text: 1; timeout first: 124. */
static void run_expect_missing_exits_1(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--expect", "ready", "--", "sh", "-c", "echo not yet");
    assert_int_equal(r.status, 1);
    assert_string_equal(r.out, "not yet\n");
    result_free(&r);
    r = RUN("", CIO_RUN, "--expect", "ready", "--total", "0.3", "--", "sleep", "30");
    assert_int_equal(r.status, 124);
    result_free(&r);
}

/* CMD not found: 127; found but not runnable: 126; bad usage: 125. */
static void run_cannot_run_or_find_or_parse(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--", "cio-no-such-command-anywhere");
    assert_int_equal(r.status, 127);
    assert_non_null(strstr(r.err, "cio-run: cio-no-such-command-anywhere: "));
    result_free(&r);
    char *path = temp_file("not a program\n");
    assert_int_equal(chmod(path, 0644), 0);
    r = RUN("", CIO_RUN, path);
    unlink(path);
    assert_int_equal(r.status, 126);
    result_free(&r);
    r = RUN("", CIO_RUN, "/etc/passwd/x"); /* ENOTDIR: found wanting, as timeout(1) */
    assert_int_equal(r.status, 126);
    result_free(&r);
    r = RUN("", CIO_RUN);
    assert_int_equal(r.status, 125);
    result_free(&r);
    r = RUN("", CIO_RUN, "--idle", "soon", "true");
    assert_int_equal(r.status, 125);
    result_free(&r);
    r = RUN("", CIO_RUN, "--help");
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "Usage: cio-run"));
    result_free(&r);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)

static void *nothing(void *arg)
{
    return arg;
}

int main(void)
{
    /* ThreadSanitizer starts a thread of its own with the first thread made:
     * make one now, so the fixtures' thread counts start after it. */
    pthread_t t;
    if (pthread_create(&t, NULL, nothing, NULL) == 0)
        pthread_join(t, NULL);
    const struct CMUnitTest tests[] = {
        T(cat_copies_files_and_stdin_and_exits_0),
        T(cat_idle_writes_every_byte_then_exits_124),
        T(cat_total_exits_124),
        T(cat_total_writes_every_byte_it_read_to_a_slow_reader),
        T(cat_closed_stdin_is_an_error_like_any_other),
        T(cat_missing_file_exits_1_with_a_message),
        T(cat_output_error_exits_1_naming_standard_output),
        T(cat_bad_usage_exits_125),
        T(run_relays_and_exits_with_the_status),
        T(run_output_error_stops_cmd_and_exits_125),
        T(run_closed_output_is_named_and_exits_125),
        T(run_total_holds_while_our_reader_takes_nothing),
        T(run_slow_reader_gets_every_byte_and_sigterm_still_ends_it),
        T(run_reports_the_status_with_sigchld_ignored),
        T(run_reader_gone_stops_cmd_then_dies_of_sigpipe),
        T(run_idle_stands_still_while_our_reader_is_slow),
        T(run_killed_by_a_signal_exits_128_plus_n),
        T(run_idle_stops_a_silent_program_with_124),
        T(run_idle_is_reset_by_any_output),
        T(run_passes_sigterm_on_to_cmd),
        T(run_total_stops_a_busy_program_with_124),
        T(run_kill_after_sends_sigkill),
        T(run_expect_succeeds_when_the_text_appears),
        T(run_expect_missing_exits_1),
        T(run_cannot_run_or_find_or_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
