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
 * stopped, then cio-run dies of SIGPIPE); durations as strtod reads them;
 * --help and --version that cannot be written (1 from cio-cat, 125 from
 * cio-run); a signal sent to cio-run and CMD at once (Ctrl-C to the
 * process group) that CMD dies of, or catches and exits 3, before cio-run
 * takes it (always CMD's 128+N or 3, never cio-run's own death): the first
 * signal after CMD has gone changes nothing, a second ends cio-run;
 * --expect interrupted by a signal passed on (128+N, not 1); cio-run out
 * of descriptors (125, even for a command that does not exist); a timeout,
 * and a signal passed on, that continue a stopped CMD.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
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

/* A status other than the one wanted fails the test with what the tool
 * printed: a failure seen once on a loaded machine says why. */
#define assert_status(r, want)                                                                     \
    do {                                                                                           \
        if ((r)->status != (want))                                                                 \
            print_message("status %d, not %d; out: \"%s\"; err: \"%s\"\n", (r)->status,            \
                          (int)(want), (r)->out ? (r)->out : "", (r)->err ? (r)->err : "");        \
        assert_int_equal((r)->status, (want));                                                     \
    } while (0)

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

/* How many rounds of a race to run: n, fewer under a time scale.  Each
 * round starts the tools, which under ThreadSanitizer or valgrind (where
 * the scale is set) take the better part of a second to start, and a few
 * rounds give those tools their say; the plain builds run every round. */
static int race_rounds(int n)
{
    int r = (int)(n / time_scale());
    return r < 6 ? 6 : r;
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
 * ours), and the signals the tests send at their defaults (whoever runs
 * the tests may ignore SIGINT, as a shell does for a background job); in
 * a process group of its own when group.  Its pid. */
static pid_t start_in(char *const argv[], int in, int out, bool group)
{
    posix_spawn_file_actions_t fa;
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, in, 0), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, out, 1), 0);
    posix_spawnattr_t at;
    assert_int_equal(posix_spawnattr_init(&at), 0);
    sigset_t dfl;
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGHUP);
    sigaddset(&dfl, SIGINT);
    sigaddset(&dfl, SIGTERM);
    assert_int_equal(posix_spawnattr_setsigdefault(&at, &dfl), 0);
    int flags = POSIX_SPAWN_SETSIGDEF;
    if (group) {
        flags |= POSIX_SPAWN_SETPGROUP;
        assert_int_equal(posix_spawnattr_setpgroup(&at, 0), 0);
    }
    assert_int_equal(posix_spawnattr_setflags(&at, (short)flags), 0);
    pid_t pid;
    assert_int_equal(posix_spawn(&pid, argv[0], &fa, &at, argv, environ), 0);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

static pid_t start_with(char *const argv[], int in, int out)
{
    return start_in(argv, in, out, false);
}

/* start_in with stdin /dev/null and stdout a new pipe, whose read end is
 * *out. */
static pid_t start_piped(char *const argv[], bool group, int *out)
{
    int p[2];
    cloexec_pipe(p);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(in >= 0);
    pid_t pid = start_in(argv, in, p[1], group);
    close(p[1]);
    close(in);
    *out = p[0];
    return pid;
}

/* The same as an exit code or 128+N, or -1. */
static int wait_exit(pid_t pid, double ms)
{
    int st = child_status_within(pid, ms);
    if (st == -1)
        return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
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
    assert_status(&r, 0);
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
    assert_status(&r, 124);
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
    assert_status(&r, 124);
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
    assert_status(&r, 1);
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
    assert_status(&r, 1);
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
    assert_status(&r, 1);
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
    assert_status(&r, 1);
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
    assert_status(&r, 125);
    result_free(&r);
    r = RUN("", CIO_CAT, "--help");
    assert_status(&r, 0);
    assert_non_null(strstr(r.out, "Usage: cio-cat"));
    result_free(&r);
    r = RUN("", CIO_CAT, "--version");
    assert_status(&r, 0);
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

/* --help and --version whose output cannot be written: a message and the
 * tool's failure status (cio-cat 1, cio-run 125, as cat(1) and timeout(1)),
 * not 0 as if all was said. */
static void help_and_version_that_cannot_be_written_fail(void **state)
{
    (void)state;
    const char *tools[] = {CIO_CAT, CIO_RUN}, *names[] = {"cio-cat", "cio-run"};
    const int fail[] = {1, 125};
    const char *opts[] = {"--help", "--version"};
    const char *outs[] = {"> /dev/full", ">&-"};
    const char *why[] = {"No space left on device", "Bad file descriptor"};
    for (int t = 0; t < 2; t++)
        for (int o = 0; o < 2; o++)
            for (int w = 0; w < 2; w++) {
                char script[512], want[128];
                snprintf(script, sizeof script, "%s %s %s", tools[t], opts[o], outs[w]);
                snprintf(want, sizeof want, "%s: standard output: %s", names[t], why[w]);
                struct result r = RUN(NULL, "sh", "-c", script);
                if (r.status != fail[t] || !strstr(r.err, want))
                    fail_msg("%s gave %d: %s", script, r.status, r.err);
                result_free(&r);
            }
}

/* ---- cio-run ---- */

/* CMD's status, its stdout and stderr relayed apart. */
static void run_relays_and_exits_with_the_status(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--", "sh", "-c", "echo out; echo err >&2; exit 3");
    assert_status(&r, 3);
    assert_string_equal(r.out, "out\n");
    assert_string_equal(r.err, "err\n");
    result_free(&r);
    r = RUN("", CIO_RUN, "true");
    assert_status(&r, 0);
    result_free(&r);
}

/* cio-run(1): SIGUSR1, the library's cancel signal, sent to cio-run "is
 * taken by it and changes nothing" -- from its very start: a CMD that
 * signals it at once does not end it (the default action) nor get left
 * behind without its relay. */
static void run_sigusr1_from_cmd_at_once_changes_nothing(void **state)
{
    (void)state;
    for (int i = 0; i < race_rounds(20); i++) {
        struct result r = RUN("", CIO_RUN, "--", "sh", "-c", "kill -USR1 $PPID; echo done");
        assert_status(&r, 0);
        assert_string_equal(r.out, "done\n");
        result_free(&r);
    }
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
        assert_status(&r, 125);
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
        assert_status(&r, 125);
        if (i == 0)
            assert_non_null(strstr(r.err, "cio-run: standard output: Bad file descriptor"));
        result_free(&r);
    }
}

/* ---- a thread the library cannot make (the LD_PRELOAD shim) ------------ */

/* The shell words that load the shim into a tool with CIO_TEST_FAIL_THREAD
 * = fail, and make it leave a mark; NULL (the test skips) where it cannot
 * work: a sanitizer's runtime must come first in the process. */
static const char *shim_env(const char *fail, char *mark, size_t mark_len)
{
#if defined(CIO_ASAN) || defined(CIO_TSAN)
    (void)fail;
    (void)mark;
    (void)mark_len;
    return NULL;
#else
    static char env[512];
    strcpy(mark, "/tmp/cio_shim_XXXXXX");
    int fd = mkstemp(mark);
    assert_true(fd >= 0);
    close(fd);
    unlink(mark);
    (void)mark_len;
    snprintf(env, sizeof env, "env LD_PRELOAD=%s CIO_TEST_FAIL_THREAD=%s CIO_TEST_SHIM_MARK=%s",
             CIO_FAIL_THREAD, fail, mark);
    return env;
#endif
}

/* The shim loaded (the tool is not static); the mark removed. */
static bool shim_took(const char *mark)
{
    bool took = access(mark, F_OK) == 0;
    unlink(mark);
    return took;
}

/* cio-cat(1): --idle is a promise.  When the deadline cannot be set (the
 * timer thread cannot be made), the read must not go on without it: a
 * message naming the input and 1, at once, not a copy that waits for the
 * input's end (here 3 s away, and it could be never). */
static void cat_fails_when_its_deadline_cannot_be_set(void **state)
{
    (void)state;
    char mark[64], script[1024];
    const char *env = shim_env("1", mark, sizeof mark); /* its first thread: the timer */
    if (!env) {
        skip();
        return;
    }
    snprintf(script, sizeof script, "(sleep 3; echo late) | %s %s --idle 0.3", env, CIO_CAT);
    struct result r = RUN(NULL, "sh", "-c", script);
    if (!shim_took(mark)) {
        result_free(&r);
        skip();
    }
    assert_status(&r, 1);
    assert_string_equal(r.out, "");
    assert_non_null(strstr(r.err, "cio-cat: standard input: Resource temporarily unavailable"));
    result_free(&r);
}

/* cio-run(1): a relay whose read fails (no worker thread for it) loses
 * CMD's output as surely as a failed write: a message naming the stream,
 * CMD stopped, 125; never 0 with the output missing.  (If the thread that
 * fails is the one that waits for CMD instead, it tries again: all is
 * relayed, 0.) */
static void run_relay_that_cannot_read_exits_125_not_0(void **state)
{
    (void)state;
    for (int i = 0; i < 5; i++) {
        char mark[64], script[1024];
        const char *env = shim_env("attr:1", mark, sizeof mark); /* the library's first */
        if (!env) {
            skip();
            return;
        }
        snprintf(script, sizeof script, "%s %s -k 0 -- sh -c 'sleep 0.2; echo out; echo err >&2'",
                 env, CIO_RUN);
        struct result r = RUN(NULL, "sh", "-c", script);
        if (!shim_took(mark)) {
            result_free(&r);
            skip();
        }
        if (r.status == 0) {
            assert_string_equal(r.out, "out\n");
            assert_string_equal(r.err, "err\n");
        } else {
            assert_status(&r, 125);
            assert_non_null(strstr(r.err, "cio-run: CMD's standard "));
            assert_non_null(strstr(r.err, ": Resource temporarily unavailable"));
        }
        result_free(&r);
    }
}

/* cio-run(1): a thread of its own that cannot be made (a relay, here)
 * means CMD's output cannot be relayed: 125 with a message, and CMD is
 * not left running on its own (it was: still asleep after cio-run had
 * gone, whatever --total said). */
static void run_that_cannot_make_its_threads_leaves_no_cmd_behind(void **state)
{
    (void)state;
    char mark[64], script[1024], pidfile[] = "/tmp/cio_tools_pid_XXXXXX";
    const char *env = shim_env("noattr:1", mark, sizeof mark); /* its first relay */
    if (!env) {
        skip();
        return;
    }
    int pf = mkstemp(pidfile);
    assert_true(pf >= 0);
    snprintf(script, sizeof script, "%s %s --total 30 -- sh -c 'echo $$ > %s; exec sleep 30'", env,
             CIO_RUN, pidfile);
    struct result r = RUN(NULL, "sh", "-c", script);
    if (!shim_took(mark)) {
        close(pf);
        unlink(pidfile);
        result_free(&r);
        skip();
    }
    sleep_us((unsigned)(dur_ms(0.5) * 1000)); /* a CMD left running writes its pid */
    char line[32] = "";
    ssize_t n = pread(pf, line, sizeof line - 1, 0);
    close(pf);
    unlink(pidfile);
    pid_t cmd = n > 0 ? (pid_t)atoi(line) : 0;
    bool alive = cmd > 0 && kill(cmd, 0) == 0;
    if (alive)
        kill(cmd, SIGKILL);
    assert_false(alive);
    assert_status(&r, 125);
    assert_non_null(strstr(r.err, "cio-run: threads: Resource temporarily unavailable"));
    result_free(&r);
}

/* Run argv with stdout to a pipe that nobody reads; its status, and how
 * long it took in *ms. */
static int run_unread(char *const argv[], double *ms)
{
    int out;
    cio_time_t t0 = cio_now();
    pid_t pid = start_piped(argv, false, &out);
    int status = wait_exit(pid, scaled_ms(LIMIT_MS));
    *ms = elapsed_ms(t0, cio_now());
    close(out);
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
    /* the text comes on stderr while a descendant keeps stdout busy (a
     * longer --total: the text must come before it, however slow the
     * machine is to start sh) */
    char *seen[] = {CIO_RUN,    "--total", "3",
                    "--expect", "zz",      "--",
                    "sh",       "-c",      "yes & sleep 0.1; echo zz >&2; wait",
                    NULL};
    assert_int_equal(run_unread(seen, &ms), 0);
    assert_true(ms < dur_ms(3) + 5000 * tool_scale());
    char *gone[] = {CIO_RUN, "--total", "0.3", "--", "head", "-c", "300000", "/dev/zero", NULL};
    assert_int_equal(run_unread(gone, &ms), 124);
    assert_true(ms < bound);
    /* CMD gone at once, a descendant writing without end: what CMD left
     * may wait for the reader until --total (124), the rest is not
     * waited for (0); never past --total (the drain's end cut nothing, and
     * cio-run waited for the reader for ever) */
    char *left[] = {CIO_RUN, "--total", "0.3", "--", "sh", "-c", "cat /dev/zero & exit 0", NULL};
    int st = run_unread(left, &ms);
    assert_true(st == 124 || st == 0);
    assert_true(ms < bound);
}

/* A process CMD left behind that writes without end, faster than our
 * reader takes it, does not keep cio-run: what CMD left in its pipes is
 * relayed however slow the reader, then what the descendant writes counts
 * as silence, and the drain ends (cio-run ran for as long as the reader
 * read).  CMD's status, 0. */
static void run_descendant_faster_than_our_reader_does_not_hold_it(void **state)
{
    (void)state;
    char *argv[] = {CIO_RUN, "--", "sh", "-c", "yes & exit 0", NULL};
    int out;
    pid_t pid = start_piped(argv, false, &out);
    cio_time_t end = cio_after_ms(scaled_ms(LIMIT_MS) / 2);
    char buf[4096];
    int st = 0;
    pid_t w;
    while ((w = waitpid(pid, &st, WNOHANG)) == 0 && cio_now() < end) {
        if (read(out, buf, sizeof buf) <= 0)
            break;           /* cio-run has gone */
        sleep_us(50 * 1000); /* each write of cio-run's waits for us */
    }
    if (w == 0) /* its output closed as it exits; or out of time: killed */
        st = child_status_within(pid, cio_now() < end ? scaled_ms(LIMIT_MS) : 0);
    close(out);
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 0);
}

/* The pid that CMD prints as its first line on fd. */
static pid_t read_pid(int fd)
{
    char line[32];
    size_t n = 0;
    while (n < sizeof line - 1 && read(fd, line + n, 1) == 1 && line[n] != '\n')
        n++;
    line[n] = '\0';
    pid_t pid = (pid_t)atoi(line);
    assert_true(pid > 0);
    return pid;
}

/* Wait (bounded) until pid, CMD of a cio-run, has been reaped by it. */
static void wait_reaped(pid_t pid)
{
    cio_time_t end = cio_after_ms(scaled_ms(LIMIT_MS));
    while (kill(pid, 0) == 0) {
        assert_true(cio_now() < end);
        sleep_us(500);
    }
    assert_int_equal(errno, ESRCH);
}

/* Wait (bounded) until the pipe that fd reads from has been full for a
 * while: a cio-run that relays an endless output to it is stuck in that
 * write, so it finishes its output only when we read. */
static void wait_pipe_full(int fd)
{
    int cap = pipe_capacity(fd), prev = -1, n = 0;
    cio_time_t end = cio_after_ms(scaled_ms(LIMIT_MS));
    for (;;) {
        assert_int_equal(ioctl(fd, FIONREAD, &n), 0);
        if (n == prev && n >= (cap > 0 ? cap / 2 : 1))
            return;
        assert_true(cio_now() < end);
        prev = n;
        sleep_us(50 * 1000);
    }
}

/* cio-run argv of a CMD that prints its pid and then output without end,
 * into a pipe that we do not read; once that pipe is full, CMD is sent
 * signal cmd_sig (it dies of it, or catches it and exits) and is reaped by
 * cio-run, which is then stuck relaying the rest of the output.  cio-run's
 * pid; *out: our end of its output. */
static pid_t stuck_after_cmd_signalled(char *const argv[], int cmd_sig, int *out)
{
    pid_t pid = start_piped(argv, false, out);
    pid_t cmd = read_pid(*out);
    wait_pipe_full(*out);
    assert_int_equal(kill(cmd, cmd_sig), 0);
    wait_reaped(cmd);
    return pid;
}

/* The same, CMD killed by cmd_sig. */
static pid_t stuck_after_cmd_killed(int cmd_sig, int *out)
{
    char *argv[] = {CIO_RUN, "--", "sh", "-c", "echo $$; exec cat /dev/zero", NULL};
    return stuck_after_cmd_signalled(argv, cmd_sig, out);
}

/* Read fd to its end: cio-run finishes its output, then exits. */
static void drain(int fd)
{
    char buf[1 << 16];
    while (read(fd, buf, sizeof buf) > 0)
        ;
}

/* Whether pid is still running after a while (it has been signalled). */
static bool still_running(pid_t pid)
{
    sleep_us((unsigned)(dur_ms(0.2) * 1000));
    int st;
    return waitpid(pid, &st, WNOHANG) == 0;
}

/* cio-run pid, whose CMD has gone, gets signo: that changes nothing; once
 * out (its output, closed here) is read to the end, it exits want. */
static void first_signal_changes_nothing(pid_t pid, int signo, int out, int want)
{
    assert_int_equal(kill(pid, signo), 0);
    assert_true(still_running(pid));
    drain(out);
    close(out);
    int st = child_status_within(pid, scaled_ms(LIMIT_MS));
    assert_true(st != -1 && WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), want);
}

/* cio-run pid, whose CMD has gone, gets signo: it dies of it; out (its
 * output) is closed. */
static void signal_ends_it(pid_t pid, int signo, int out)
{
    assert_int_equal(kill(pid, signo), 0);
    int st = child_status_within(pid, scaled_ms(LIMIT_MS));
    close(out);
    assert_true(st != -1 && WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), signo);
}

/* The same, signo twice: the first changes nothing, the second ends it. */
static void second_signal_ends_it(pid_t pid, int signo, int out)
{
    assert_int_equal(kill(pid, signo), 0);
    assert_true(still_running(pid));
    signal_ends_it(pid, signo, out);
}

/* rounds times: argv (a cio-run whose CMD prints its pid on a line, then
 * may print more) in a process group of its own, and SIGINT to the whole
 * group once CMD has printed, as a terminal's Ctrl-C; it must exit want
 * each time. */
static void group_sigint_rounds(char *const argv[], int rounds, int want)
{
    for (int i = 0; i < rounds; i++) {
        int out;
        pid_t pid = start_piped(argv, true, &out);
        (void)read_pid(out); /* CMD runs (its handler, if any, is in place) */
        assert_int_equal(kill(-pid, SIGINT), 0);
        drain(out);
        int st = child_status_within(pid, scaled_ms(LIMIT_MS));
        close(out);
        if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != want)
            fail_msg("round %d: status %#x, not exit %d", i, st, want);
    }
}

/* With no timeout, every byte CMD printed reaches a slow reader, also the
 * bytes still in CMD's pipe when it exits (100 KB: a write of ours waits
 * for the reader, CMD's pipe holds the rest, CMD is gone); and SIGTERM
 * twice after CMD has exited (0), while cio-run waits for its reader, ends
 * cio-run (the first one is taken as CMD's copy). */
static void run_slow_reader_gets_every_byte_and_sigterm_twice_ends_it(void **state)
{
    (void)state;
    char script[256];
    snprintf(script, sizeof script, "%s -- head -c 100000 /dev/zero | (sleep %s; wc -c)", CIO_RUN,
             dur(1));
    struct result r = RUN(NULL, "sh", "-c", script);
    assert_status(&r, 0);
    assert_int_equal(atoi(r.out), 100000);
    result_free(&r);

    int out;
    char *argv[] = {CIO_RUN, "--", "sh", "-c", "echo $$; exec head -c 100000 /dev/zero", NULL};
    pid_t pid = start_piped(argv, false, &out);
    wait_reaped(read_pid(out)); /* CMD has printed all and gone */
    second_signal_ends_it(pid, SIGTERM, out);
}

/* Ctrl-C or a hangup sends the signal to cio-run and CMD at once; CMD may
 * die of it, and be reaped, before cio-run has taken its own copy.  That
 * copy is the signal CMD died of, not one for cio-run: CMD's 128+N, as
 * when cio-run passes it on in time.  Shown deterministically (CMD is
 * killed and reaped first, then cio-run gets the same signal), and in the
 * race itself, many times over. */
static void run_signal_that_killed_cmd_is_taken_as_passed_on(void **state)
{
    (void)state;
    int out;
    pid_t pid = stuck_after_cmd_killed(SIGINT, &out);
    first_signal_changes_nothing(pid, SIGINT, out, 128 + SIGINT);

    /* only the first: a second hangup, while it waits for its reader, is
     * for cio-run itself */
    pid = stuck_after_cmd_killed(SIGHUP, &out);
    second_signal_ends_it(pid, SIGHUP, out);

    /* the race: the whole process group, as a terminal's Ctrl-C */
    char *argv[] = {CIO_RUN, "--", "sh", "-c", "echo $$; exec sleep 30", NULL};
    group_sigint_rounds(argv, race_rounds(40), 128 + SIGINT);
}

/* The first signal that comes after CMD has gone is taken as CMD's copy
 * whatever CMD's status (here CMD died of SIGTERM, and SIGINT comes): it
 * changes nothing.  A second one is for cio-run, which dies of it: the way
 * out when it is stuck writing to a reader that takes nothing. */
static void run_second_signal_after_cmd_has_gone_ends_cio_run(void **state)
{
    (void)state;
    int out;
    pid_t pid = stuck_after_cmd_killed(SIGTERM, &out);
    second_signal_ends_it(pid, SIGINT, out);
}

/* A signal passed on to CMD while it runs is one of the two: CMD dies of
 * SIGTERM through cio-run, and the next SIGTERM, while cio-run is stuck
 * writing to a reader that takes nothing, ends cio-run (it was taken as
 * CMD's copy, and a third one was needed). */
static void run_signal_after_one_passed_on_ends_cio_run(void **state)
{
    (void)state;
    int out;
    char *argv[] = {CIO_RUN, "--", "sh", "-c", "echo $$; exec cat /dev/zero", NULL};
    pid_t pid = start_piped(argv, false, &out);
    pid_t cmd = read_pid(out);
    wait_pipe_full(out);
    assert_int_equal(kill(pid, SIGTERM), 0); /* passed on: CMD dies of it */
    wait_reaped(cmd);
    signal_ends_it(pid, SIGTERM, out);
}

/* This program, run again with CATCH_INT as its argument, as a CMD that
 * catches SIGINT (its handler exits 3), then prints its pid on a line and
 * output without end.  With CATCH_INT_TWICE and a file name: the first
 * SIGINT creates the file and changes nothing, the second exits 3. */
#define CATCH_INT "--print-catching-sigint"
#define CATCH_INT_TWICE "--print-catching-sigint-twice"
static char *self; /* argv[0] */
static const char *first_int_mark;
static volatile sig_atomic_t ints_caught;

static void exit_3(int signo)
{
    (void)signo;
    if (first_int_mark && ints_caught++ == 0) {
        int fd = open(first_int_mark, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (fd >= 0)
            close(fd);
        return;
    }
    _exit(3);
}

static int print_catching_sigint(void)
{
    struct sigaction sa = {.sa_handler = exit_3};
    sigemptyset(&sa.sa_mask);
    sigset_t only;
    sigemptyset(&only);
    sigaddset(&only, SIGINT);
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigprocmask(SIG_UNBLOCK, &only, NULL) != 0)
        return 1;
    char line[32];
    int n = snprintf(line, sizeof line, "%d\n", (int)getpid());
    if (write_all(STDOUT_FILENO, line, (size_t)n) != n)
        return 1;
    static char zeros[1 << 12];
    while (write(STDOUT_FILENO, zeros, sizeof zeros) > 0 || errno == EINTR)
        ;
    return 1;
}

/* Ctrl-C (or kill to the process group) reaches cio-run and CMD at once;
 * CMD may catch it and exit with its own status, and be reaped, before
 * cio-run has taken its copy.  That copy changes nothing: CMD's status (3
 * here), as when cio-run passes it on in time, never cio-run dying of it
 * by a race.  Shown deterministically (CMD catches SIGINT and is reaped
 * first, then cio-run gets SIGINT while it is stuck writing to a pipe
 * nobody reads; a second one ends it), and in the race itself. */
static void run_signal_that_cmd_caught_is_taken_as_passed_on(void **state)
{
    (void)state;
    char *argv[] = {CIO_RUN, "--", self, CATCH_INT, NULL};
    int out;
    pid_t pid = stuck_after_cmd_signalled(argv, SIGINT, &out);
    first_signal_changes_nothing(pid, SIGINT, out, 3);

    pid = stuck_after_cmd_signalled(argv, SIGINT, &out);
    second_signal_ends_it(pid, SIGINT, out);

    group_sigint_rounds(argv, race_rounds(30), 3);
}

/* A signal passed on that CMD survives does not make the next one
 * cio-run's: CMD catches the first SIGINT (passed on by cio-run) and goes
 * on, then dies of its own copy of a second (Ctrl-C to the group), and is
 * reaped before cio-run takes its copy of it.  That copy is CMD's: cio-run
 * finishes the output, every byte, and exits 3. */
static void run_copy_after_a_signal_cmd_survived_is_still_cmds(void **state)
{
    (void)state;
    char mark[] = "/tmp/cio_tools_int_XXXXXX";
    int mfd = mkstemp(mark);
    assert_true(mfd >= 0);
    close(mfd);
    unlink(mark);
    char *argv[] = {CIO_RUN, "--", self, CATCH_INT_TWICE, mark, NULL};
    int out;
    pid_t pid = start_piped(argv, false, &out);
    pid_t cmd = read_pid(out);
    wait_pipe_full(out);
    assert_int_equal(kill(pid, SIGINT), 0); /* passed on; CMD catches it */
    cio_time_t end = cio_after_ms(scaled_ms(LIMIT_MS));
    while (access(mark, F_OK) != 0) {
        assert_true(cio_now() < end);
        sleep_us(1000);
    }
    unlink(mark);
    /* its copy of the second: exit 3 (sent again until it is reaped: under
     * ThreadSanitizer, whose runtime defers a handler, two may merge) */
    while (kill(cmd, SIGINT) == 0) {
        assert_true(cio_now() < end);
        sleep_us(20 * 1000);
    }
    assert_int_equal(errno, ESRCH);
    first_signal_changes_nothing(pid, SIGINT, out, 3);
}

/* Wait (bounded) until pid has stopped, where /proc says so; elsewhere
 * give it a while. */
static void wait_stopped(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    cio_time_t end = cio_after_ms(scaled_ms(LIMIT_MS));
    for (;;) {
        FILE *f = fopen(path, "r");
        if (!f) {
            sleep_us((unsigned)(dur_ms(0.3) * 1000));
            return;
        }
        char buf[512];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        buf[n] = '\0';
        const char *p = strrchr(buf, ')'); /* after the name: " T" when stopped */
        if (p && p[1] == ' ' && p[2] == 'T')
            return;
        assert_true(cio_now() < end);
        sleep_us(2000);
    }
}

/* A signal passed on to CMD is followed by SIGCONT, as timeout(1) does: a
 * CMD that has stopped itself acts on it at once (here: its trap exits
 * 5), rather than cio-run waiting until someone continues it. */
static void run_passed_on_signal_continues_a_stopped_cmd(void **state)
{
    (void)state;
    int out;
    char *argv[] = {CIO_RUN, "--", "sh", "-c", "trap 'exit 5' TERM; echo $$; kill -STOP $$", NULL};
    pid_t pid = start_piped(argv, false, &out);
    pid_t cmd = read_pid(out);
    wait_stopped(cmd);
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = wait_exit(pid, dur_ms(3));
    if (status == -1) /* cio-run killed; CMD left stopped */
        kill(cmd, SIGKILL);
    close(out);
    assert_int_equal(status, 5);
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

/* SIGHUP ignored by whoever started cio-run (nohup): it stays ignored, for
 * cio-run and for CMD.  CMD is sent hangups and finishes with its own
 * status (timeout(1) would pass them on: 129); cio-run, stuck writing to a
 * reader that takes nothing after CMD has gone, is sent three: none ends
 * it (the second did), and once read it exits with CMD's 7. */
static void run_keeps_an_ignored_sighup_ignored(void **state)
{
    (void)state;
    int in = open("/dev/null", O_RDWR | O_CLOEXEC);
    assert_true(in >= 0);
    /* sh ignores it, then becomes cio-run (start_with sets it to default) */
    char *argv[] = {"/bin/sh", "-c",
                    "trap '' HUP; exec \"$0\" -- sh -c "
                    "'echo $$; kill -HUP $$; head -c 100000 /dev/zero; exit 7'",
                    CIO_RUN, NULL};
    int p[2];
    cloexec_pipe(p);
    pid_t pid = start_with(argv, in, p[1]);
    close(p[1]);
    close(in);
    pid_t cmd = read_pid(p[0]);
    wait_pipe_full(p[0]);
    wait_reaped(cmd);
    for (int i = 0; i < 3; i++)
        assert_int_equal(kill(pid, SIGHUP), 0);
    first_signal_changes_nothing(pid, SIGHUP, p[0], 7);
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
    int out;
    pid_t pid = start_piped((char *const[]){CIO_RUN, "-k", "0", "--", "sh", "-c", script, NULL},
                            false, &out);
    char c;
    assert_int_equal(read(out, &c, 1), 1); /* it runs; then we go */
    close(out);
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
    assert_status(&r, 0);
    assert_int_equal(atoi(r.out), 1000000);
    assert_non_null(strstr(r.err, "rc=0"));
    result_free(&r);
}

/* A signal N that kills CMD: 128+N. */
static void run_killed_by_a_signal_exits_128_plus_n(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--", "sh", "-c", "kill -KILL $$");
    assert_status(&r, 128 + SIGKILL);
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
    assert_status(&r, 124);
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
    assert_status(&r, 5);
    int seen = 0;
    for (size_t i = 0; i < r.out_len; i++)
        seen += r.out[i] == '\n';
    assert_int_equal(seen, lines);
    assert_true(r.ms >= dur_ms(3));
    result_free(&r);
}

/* Run argv (cio-run with a CMD that prints "up" first), send signo to
 * cio-run once "up" has come, and return the status cio-run exits with. */
static int exit_status_after(char *const argv[], int signo)
{
    cio_child *c = cio_spawn(argv, CIO_STDOUT);
    assert_non_null(c);
    char buf[8];
    assert_int_equal(cio_read_until(cio_child_file(c, CIO_STDOUT), buf, sizeof buf, "\n", 1), 3);
    assert_int_equal(cio_child_kill(c, signo), 0);
    int st;
    assert_int_equal(cio_child_wait(c, &st, cio_after_ms(scaled_ms(LIMIT_MS))), 0);
    assert_true(WIFEXITED(st));
    assert_int_equal(cio_child_free(c), 0);
    return WEXITSTATUS(st);
}

/* SIGTERM sent to cio-run is passed on to CMD, which ends with 128+15. */
static void run_passes_sigterm_on_to_cmd(void **state)
{
    (void)state;
    char *argv[] = {CIO_RUN, "--", "sh", "-c", "echo up; exec sleep 30", NULL};
    assert_int_equal(exit_status_after(argv, SIGTERM), 128 + SIGTERM);
}

/* --total stops a program that keeps printing. */
static void run_total_stops_a_busy_program_with_124(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--total", dur(2), "--", "sh", "-c",
                          "while :; do echo tick; sleep 0.05; done");
    assert_status(&r, 124);
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
    assert_status(&r, 124);
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
    assert_status(&r, 0);
    assert_string_equal(r.out, "server listening on 80\n");
    assert_true(r.ms >= 600);
    assert_true(r.ms < scaled_ms(LIMIT_MS) / 2);
    result_free(&r);
    r = RUN("", CIO_RUN, "--expect", "ready", "--", "sh", "-c", "echo ready >&2; exec sleep 30");
    assert_status(&r, 0);
    result_free(&r);
}

/* --expect and CMD ends without the text: 1; timeout first: 124. */
static void run_expect_missing_exits_1(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--expect", "ready", "--", "sh", "-c", "echo not yet");
    assert_status(&r, 1);
    assert_string_equal(r.out, "not yet\n");
    result_free(&r);
    r = RUN("", CIO_RUN, "--expect", "ready", "--total", "0.3", "--", "sleep", "30");
    assert_status(&r, 124);
    result_free(&r);
}

/* --expect, and a signal passed on kills CMD before the text came: CMD's
 * 128+N, as without --expect (an interrupted run, not a missing text).  A
 * CMD that catches it and exits, or dies otherwise (SIGKILL), ended
 * without the text: 1. */
static void run_expect_interrupted_exits_128_plus_n(void **state)
{
    (void)state;
    const int sigs[] = {SIGTERM, SIGHUP};
    for (int i = 0; i < 2; i++) {
        char *argv[] = {CIO_RUN, "--expect", "ready", "--", "sh", "-c", "echo up; exec sleep 30",
                        NULL};
        assert_int_equal(exit_status_after(argv, sigs[i]), 128 + sigs[i]);
    }
    /* A CMD that catches the signal passed on and exits ended without the
     * text: 1, whatever its own status (3 here). */
    char *argv[] = {CIO_RUN,
                    "--expect",
                    "ready",
                    "--",
                    "sh",
                    "-c",
                    "trap 'exit 3' HUP; echo up; sleep 30 & wait",
                    NULL};
    assert_int_equal(exit_status_after(argv, SIGHUP), 1);
    struct result r = RUN("", CIO_RUN, "--expect", "ready", "--", "sh", "-c", "kill -KILL $$");
    assert_status(&r, 1);
    result_free(&r);
}

/* CMD not found: 127; found but not runnable: 126; bad usage: 125. */
static void run_cannot_run_or_find_or_parse(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--", "cio-no-such-command-anywhere");
    assert_status(&r, 127);
    assert_non_null(strstr(r.err, "cio-run: cio-no-such-command-anywhere: "));
    result_free(&r);
    char *path = temp_file("not a program\n");
    assert_int_equal(chmod(path, 0644), 0);
    r = RUN("", CIO_RUN, path);
    unlink(path);
    assert_status(&r, 126);
    result_free(&r);
    r = RUN("", CIO_RUN, "/etc/passwd/x"); /* ENOTDIR: found wanting, as timeout(1) */
    assert_status(&r, 126);
    result_free(&r);
    r = RUN("", CIO_RUN);
    assert_status(&r, 125);
    result_free(&r);
    r = RUN("", CIO_RUN, "--idle", "soon", "true");
    assert_status(&r, 125);
    result_free(&r);
    r = RUN("", CIO_RUN, "--help");
    assert_status(&r, 0);
    assert_non_null(strstr(r.out, "Usage: cio-run"));
    result_free(&r);
}

/* cio-run out of descriptors (a low RLIMIT_NOFILE) cannot start CMD: its
 * own failure, 125 with a message, never 126 ("cannot be run") nor 127,
 * whatever CMD is.  Descriptors 3-9 are closed first, so the limit counts
 * from 3 whatever the test's runner left open. */
static void run_out_of_descriptors_exits_125(void **state)
{
    (void)state;
    const char *cmds[] = {"echo hi", "cio-no-such-command-anywhere"};
    for (int i = 0; i < 2; i++) {
        char script[512];
        snprintf(script, sizeof script,
                 "exec 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-; ulimit -n 5 && exec %s -- %s", CIO_RUN,
                 cmds[i]);
        struct result r = RUN(NULL, "sh", "-c", script);
        if (r.status != 125 || !strstr(r.err, "cio-run: ") || !strstr(r.err, strerror(EMFILE)))
            fail_msg("%s gave %d: %s", cmds[i], r.status, r.err);
        assert_int_equal(r.out_len, 0);
        result_free(&r);
    }
}

/* A timeout stops a CMD that has stopped itself: SIGTERM, then SIGCONT so
 * that it can act on it (here: its trap exits), as timeout(1) does; not
 * SIGKILL only after --kill-after. */
static void run_timeout_continues_a_stopped_cmd(void **state)
{
    (void)state;
    struct result r = RUN("", CIO_RUN, "--total", "0.5", "--kill-after", "60", "--", "sh", "-c",
                          "trap 'echo term; exit 7' TERM; kill -STOP $$");
    assert_status(&r, 124);
    assert_string_equal(r.out, "term\n");
    assert_true(r.ms >= 500);
    assert_true(r.ms < scaled_ms(LIMIT_MS) / 2);
    result_free(&r);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup, fixture_teardown)

static void *nothing(void *arg)
{
    return arg;
}

int main(int argc, char **argv)
{
    self = argv[0];
    if (argc == 2 && strcmp(argv[1], CATCH_INT) == 0)
        return print_catching_sigint();
    if (argc == 3 && strcmp(argv[1], CATCH_INT_TWICE) == 0) {
        first_int_mark = argv[2];
        return print_catching_sigint();
    }
    /* The tests send SIGHUP, SIGINT and SIGTERM to the tools they start
     * through cio_spawn, which keep them as they find them: run under
     * nohup or as a shell's background job (ctest resets them, a shell
     * loop does not), an ignored one would never arrive. */
    const int sent[] = {SIGHUP, SIGINT, SIGTERM};
    for (size_t i = 0; i < sizeof sent / sizeof sent[0]; i++)
        signal(sent[i], SIG_DFL);
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
        T(help_and_version_that_cannot_be_written_fail),
        T(run_relays_and_exits_with_the_status),
        T(run_sigusr1_from_cmd_at_once_changes_nothing),
        T(run_output_error_stops_cmd_and_exits_125),
        T(run_closed_output_is_named_and_exits_125),
        T(run_total_holds_while_our_reader_takes_nothing),
        T(run_slow_reader_gets_every_byte_and_sigterm_twice_ends_it),
        T(run_signal_that_killed_cmd_is_taken_as_passed_on),
        T(run_second_signal_after_cmd_has_gone_ends_cio_run),
        T(run_signal_after_one_passed_on_ends_cio_run),
        T(run_copy_after_a_signal_cmd_survived_is_still_cmds),
        T(run_descendant_faster_than_our_reader_does_not_hold_it),
        T(run_signal_that_cmd_caught_is_taken_as_passed_on),
        T(run_passed_on_signal_continues_a_stopped_cmd),
        T(run_reports_the_status_with_sigchld_ignored),
        T(run_keeps_an_ignored_sighup_ignored),
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
        T(run_expect_interrupted_exits_128_plus_n),
        T(run_cannot_run_or_find_or_parse),
        T(run_out_of_descriptors_exits_125),
        T(run_timeout_continues_a_stopped_cmd),
        T(cat_fails_when_its_deadline_cannot_be_set),
        T(run_relay_that_cannot_read_exits_125_not_0),
        T(run_that_cannot_make_its_threads_leaves_no_cmd_behind),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
