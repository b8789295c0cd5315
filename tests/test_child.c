/*
 * Description: child processes (DESIGN "Helpers", rule 20).  cio_spawn
 * starts a program with pipes, and cio_child_wait reports its exit status
 * or the signal that killed it; under a deadline a running child gives
 * ETIMEDOUT not before the deadline and goes on running; a reaped child
 * keeps its status for every later wait and is never signalled again
 * (ESRCH), nor is one the system reaped (ECHILD), whoever has its pid
 * now; cio_child_free kills and reaps a running child; no pipe end of
 * ours reaches the child (its /proc/self/fd shows only its own 0-2 as
 * pipes), even with a second child's pipes open; bad input and a program
 * that does not exist fail with their errno.
 */
#include "support.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define JOIN_MS 5000

#define EXPECT_NULL(call, want)                                                                    \
    do {                                                                                           \
        errno = 0;                                                                                 \
        const void *p_ = (call);                                                                   \
        int e_ = errno;                                                                            \
        if (p_ != NULL || e_ != (want))                                                            \
            fail_msg("%s gave %p errno %d (%s), want NULL errno %d", #call, p_, e_, strerror(e_),  \
                     (want));                                                                      \
    } while (0)

static cio_child *sh(const char *script, int flags)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    cio_child *c = cio_spawn(argv, flags);
    assert_non_null(c);
    return c;
}

static int wait_status(cio_child *c)
{
    int st = -1;
    assert_int_equal(cio_child_wait(c, &st, cio_after_ms(scaled_ms(JOIN_MS))), 0);
    return st;
}

/* The exit status comes back as waitpid gives it; the stdout pipe carries
 * the child's output to end of file. */
static void child_exit_status_and_output(void **state)
{
    (void)state;
    cio_child *c = sh("echo hello; exit 3", CIO_STDOUT);
    assert_true(cio_child_pid(c) > 0);
    char buf[32];
    assert_int_equal(cio_read_until(cio_child_file(c, CIO_STDOUT), buf, sizeof buf, "\n", 1), 6);
    assert_memory_equal(buf, "hello\n", 6);
    int st = wait_status(c);
    assert_true(WIFEXITED(st));
    assert_int_equal(WEXITSTATUS(st), 3);
    assert_int_equal(cio_child_free(c), 0);
}

/* stdin is a pipe we write; cio_child_close sends end of file. */
static void child_stdin_pipe_and_close(void **state)
{
    (void)state;
    char *argv[] = {"cat", NULL};
    cio_child *c = cio_spawn(argv, CIO_STDIN | CIO_STDOUT);
    assert_non_null(c);
    assert_int_equal(cio_write(cio_child_file(c, CIO_STDIN), "ping", 4), 4);
    assert_int_equal(cio_child_close(c, CIO_STDIN), 0);
    EXPECT_NULL(cio_child_file(c, CIO_STDIN), EINVAL);
    char buf[16];
    assert_int_equal(cio_read_full(cio_child_file(c, CIO_STDOUT), buf, sizeof buf), 4);
    assert_memory_equal(buf, "ping", 4);
    assert_true(WIFEXITED(wait_status(c)));
    assert_int_equal(cio_child_free(c), 0);
}

/* A child killed by a signal: WIFSIGNALED with that signal. */
static void child_killed_by_a_signal(void **state)
{
    (void)state;
    cio_child *c = sh("kill -TERM $$; sleep 5", 0);
    int st = wait_status(c);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGTERM);
    assert_int_equal(cio_child_free(c), 0);
}

/* A deadline while the child runs: ETIMEDOUT, not before it; the child
 * still runs; cio_child_kill stops it; every later wait gives the same
 * status at once; kill after reaping is ESRCH, or EINVAL for a bad
 * signal number. */
static void deadline_while_running_then_kill(void **state)
{
    (void)state;
    cio_child *c = sh("exec sleep 30", 0);
    cio_time_t t = cio_after_ms(100);
    EXPECT_FAIL(cio_child_wait(c, NULL, t), ETIMEDOUT);
    assert_true(cio_now() >= t);
    EXPECT_FAIL(cio_child_wait(c, NULL, cio_now()), ETIMEDOUT); /* past: polls */
    assert_int_equal(cio_child_kill(c, 0), 0);
    assert_int_equal(cio_child_kill(c, SIGKILL), 0);
    int st = wait_status(c);
    assert_true(WIFSIGNALED(st));
    assert_int_equal(WTERMSIG(st), SIGKILL);
    int again = -1;
    assert_int_equal(cio_child_wait(c, &again, cio_now()), 0);
    assert_int_equal(again, st);
    EXPECT_FAIL(cio_child_kill(c, SIGTERM), ESRCH);
    /* a bad signal number is bad input whatever the child's state, as
     * kill(2) checks it first */
    EXPECT_FAIL(cio_child_kill(c, 99999), EINVAL);
    EXPECT_FAIL(cio_child_kill(c, -1), EINVAL);
    assert_int_equal(cio_child_free(c), 0);
}

/* cio_child_free on a running child kills and reaps it: afterwards no
 * process with its pid is our child any more. */
static void free_kills_and_reaps_a_running_child(void **state)
{
    (void)state;
    cio_child *c = sh("exec sleep 30", CIO_STDIN | CIO_STDOUT | CIO_STDERR);
    pid_t pid = cio_child_pid(c);
    cio_time_t t0 = cio_now();
    assert_int_equal(cio_child_free(c), 0);
    assert_true(elapsed_ms(t0, cio_now()) < scaled_ms(JOIN_MS));
    errno = 0;
    assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

struct waiter {
    cio_child *c;
    int r, err, st;
    pthread_t thread;
};

static void *waiter_main(void *arg)
{
    struct waiter *w = arg;
    block_cancel_signal_in_this_thread();
    errno = 0;
    w->r = cio_child_wait(w->c, &w->st, CIO_NO_DEADLINE);
    w->err = errno;
    return NULL;
}

/* cio_child_free while another thread waits without a deadline: the
 * waiter returns with the SIGKILL status, then free returns. */
static void free_releases_a_waiting_thread(void **state)
{
    (void)state;
    cio_child *c = sh("exec sleep 30", 0);
    struct waiter w = {.c = c};
    uint64_t before = op_starts();
    assert_int_equal(pthread_create(&w.thread, NULL, waiter_main, &w), 0);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_int_equal(cio_child_free(c), 0);
    pthread_join(w.thread, NULL);
    assert_int_equal(w.r, 0);
    assert_true(WIFSIGNALED(w.st));
}

/* fd is open here without close-on-exec: the test's own environment gave
 * it to us, and every child inherits it (not one of the library's). */
static bool inherited_on_purpose(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags >= 0 && !(flags & FD_CLOEXEC);
}

/* The child's descriptors: 0-2 are its pipes, and no other pipe of ours
 * (its own, or a second child's) is open in it. */
static void no_pipe_end_leaks_into_the_child(void **state)
{
    (void)state;
    cio_child *other = sh("exec sleep 30", CIO_STDIN | CIO_STDOUT | CIO_STDERR);
    char *argv[] = {"ls", "-l", "/proc/self/fd", NULL};
    cio_child *c = cio_spawn(argv, CIO_STDIN | CIO_STDOUT | CIO_STDERR);
    assert_non_null(c);
    char line[512];
    int pipes = 0;
    ssize_t n;
    while ((n = cio_read_until(cio_child_file(c, CIO_STDOUT), line, sizeof line - 1, "\n", 1)) >
           0) {
        line[n] = '\0';
        int fd;
        char *arrow = strstr(line, " -> ");
        if (!arrow || !strstr(arrow, "pipe:"))
            continue;
        char *sp = arrow;
        while (sp > line && sp[-1] != ' ')
            sp--;
        assert_int_equal(sscanf(sp, "%d", &fd), 1);
        if (fd > 2 && !inherited_on_purpose(fd))
            fail_msg("a pipe leaked into the child: %s", line);
        pipes += fd <= 2;
    }
    assert_int_equal(n, 0);
    assert_int_equal(pipes, 3);
    assert_true(WIFEXITED(wait_status(c)));
    assert_int_equal(cio_child_free(c), 0);
    assert_int_equal(cio_child_free(other), 0);
}

/* valgrind cannot run glibc's posix_spawn as glibc does (a clone sharing
 * the memory), and a failed exec then shows as a child that exits 127
 * instead of an error from posix_spawnp. */
static void expect_not_found(char *const argv[])
{
    errno = 0;
    cio_child *c = cio_spawn(argv, CIO_STDOUT);
    if (c && under_valgrind()) {
        int st = wait_status(c);
        assert_true(WIFEXITED(st));
        assert_int_equal(WEXITSTATUS(st), 127);
        assert_int_equal(cio_child_free(c), 0);
        return;
    }
    if (c)
        cio_child_free(c);
    assert_null(c);
    assert_int_equal(errno, ENOENT);
}

/* Bad input and a program that is not there. */
static void spawn_errors(void **state)
{
    (void)state;
    char *empty[] = {NULL};
    char *argv[] = {"true", NULL};
    char *missing[] = {"/nonexistent/cio-no-such-program", NULL};
    char *missing_path[] = {"cio-no-such-program-anywhere", NULL};
    EXPECT_NULL(cio_spawn(NULL, 0), EINVAL);
    EXPECT_NULL(cio_spawn(empty, 0), EINVAL);
    EXPECT_NULL(cio_spawn(argv, 8), EINVAL);
    expect_not_found(missing);
    expect_not_found(missing_path);
    EXPECT_FAIL(cio_child_wait(NULL, NULL, 0), EINVAL);
    EXPECT_FAIL(cio_child_kill(NULL, 0), EINVAL);
    EXPECT_FAIL(cio_child_free(NULL), EINVAL);
    EXPECT_FAIL(cio_child_pid(NULL), EINVAL);
    cio_child *c = cio_spawn(argv, CIO_STDOUT);
    assert_non_null(c);
    EXPECT_NULL(cio_child_file(c, CIO_STDIN), EINVAL);
    EXPECT_NULL(cio_child_file(c, CIO_STDOUT | CIO_STDERR), EINVAL);
    EXPECT_FAIL(cio_child_close(c, CIO_STDERR), EINVAL);
    assert_true(WIFEXITED(wait_status(c)));
    assert_int_equal(cio_child_free(c), 0);
}

/* Waiting never reaps a process cio_spawn did not start. */
static void wait_never_reaps_another_child(void **state)
{
    (void)state;
    pid_t mine;
    char *argv[] = {"sh", "-c", "exit 7", NULL};
    extern char **environ;
    assert_int_equal(posix_spawnp(&mine, "sh", NULL, NULL, argv, environ), 0);
    cio_child *c = sh("sleep 0.2", 0);
    assert_true(WIFEXITED(wait_status(c)));
    assert_int_equal(cio_child_free(c), 0);
    int st;
    assert_int_equal(waitpid(mine, &st, 0), mine);
    assert_int_equal(WEXITSTATUS(st), 7);
}

/* The next pid the kernel gives is last + 1 (Linux, with the right to set
 * ns_last_pid); 0, or -1 where it cannot be set. */
static int set_last_pid(pid_t last)
{
    FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
    if (!f)
        return -1;
    int ok = fprintf(f, "%d", (int)last) > 0;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* SIGCHLD ignored (the old action in *old), then a child that exits at
 * once: the system reaps it itself. */
static cio_child *child_the_system_reaps(struct sigaction *old)
{
    struct sigaction ign = {.sa_handler = SIG_IGN};
    sigemptyset(&ign.sa_mask);
    assert_int_equal(sigaction(SIGCHLD, &ign, old), 0);
    return sh("exit 0", 0);
}

/* Start "sleep 30" as a child with pid `want` (where set_last_pid works;
 * another process may take the number first: a few tries).  Its pid, or
 * -1. */
static pid_t spawn_with_pid(pid_t want)
{
    char *argv[] = {"sleep", "30", NULL};
    extern char **environ;
    for (int i = 0; i < 20; i++) {
        if (set_last_pid(want - 1) < 0)
            return -1;
        pid_t pid;
        assert_int_equal(posix_spawnp(&pid, "sleep", NULL, NULL, argv, environ), 0);
        if (pid == want)
            return pid;
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return -1;
}

/* Rule 20 where the system reaps: with SIGCHLD ignored the child is gone
 * when it exits (ECHILD), and its pid may go to another process.  After
 * that, cio_child_kill and cio_child_free never signal, nor reap, the
 * process that now has the number. */
static void a_child_the_system_reaped_is_never_signalled_nor_reaped_again(void **state)
{
    (void)state;
    struct sigaction old;
    cio_child *c = child_the_system_reaps(&old);
    pid_t gone = cio_child_pid(c);
    int st;
    assert_int_equal(cio_child_wait(c, &st, cio_after_ms(scaled_ms(JOIN_MS))), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0);
    pid_t other = spawn_with_pid(gone);
    if (other < 0) {
        assert_int_equal(cio_child_free(c), 0);
        skip(); /* cannot choose a pid here: the rest needs it */
    }
    assert_int_equal(cio_child_kill(c, SIGTERM), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(cio_child_wait(c, &st, cio_now()), -1);
    assert_int_equal(errno, ECHILD);
    assert_int_equal(cio_child_free(c), 0);
    assert_int_equal(waitpid(other, &st, WNOHANG), 0); /* still running, ours */
    assert_int_equal(kill(other, SIGKILL), 0);
    assert_int_equal(waitpid(other, &st, 0), other);
    assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
}

/* A "sleep 30" that is not our child (its shell has gone), with pid
 * `want` (as spawn_with_pid); its pid, or -1. */
static pid_t stranger_with_pid(pid_t want)
{
    for (int i = 0; i < 20; i++) {
        if (set_last_pid(want - 2) < 0) /* the shell, then sleep */
            return -1;
        FILE *sh = popen("sleep 30 </dev/null >/dev/null 2>&1 & echo $!", "r");
        assert_non_null(sh);
        int pid = -1;
        int ok = fscanf(sh, "%d", &pid) == 1;
        pclose(sh);
        if (ok && pid == want)
            return pid;
        if (ok && pid > 0)
            kill(pid, SIGKILL);
    }
    return -1;
}

static bool pid_gone(void *arg)
{
    return kill(*(pid_t *)arg, 0) != 0 && errno == ESRCH;
}

/* The same when nobody waited: the system reaped the child (SIGCHLD
 * ignored) and a process that is not ours took its pid; cio_child_kill
 * and cio_child_free see that the child is gone and leave that process
 * alone. */
static void a_child_the_system_reaped_unwaited_is_never_signalled(void **state)
{
    (void)state;
    struct sigaction old;
    cio_child *c = child_the_system_reaps(&old);
    pid_t gone = cio_child_pid(c);
    assert_true(wait_until(pid_gone, &gone, scaled_ms(JOIN_MS)));
    assert_int_equal(sigaction(SIGCHLD, &old, NULL), 0);
    pid_t other = stranger_with_pid(gone);
    if (other < 0) {
        assert_int_equal(cio_child_free(c), 0);
        skip(); /* cannot choose a pid here: the rest needs it */
    }
    errno = 0;
    int killed = cio_child_kill(c, SIGTERM);
    int e = errno;
    assert_int_equal(cio_child_free(c), 0);
    bool alive = kill(other, 0) == 0;
    kill(other, SIGKILL);
    assert_int_equal(killed, -1);
    assert_int_equal(e, ESRCH);
    assert_true(alive);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup_watched, fixture_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(child_exit_status_and_output),
        T(child_stdin_pipe_and_close),
        T(child_killed_by_a_signal),
        T(deadline_while_running_then_kill),
        T(free_kills_and_reaps_a_running_child),
        T(free_releases_a_waiting_thread),
        T(no_pipe_end_leaks_into_the_child),
        T(spawn_errors),
        T(wait_never_reaps_another_child),
        T(a_child_the_system_reaped_is_never_signalled_nor_reaped_again),
        T(a_child_the_system_reaped_unwaited_is_never_signalled),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
