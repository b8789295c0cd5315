/*
 * cio-cat: cat(1) that gives up when its input goes quiet (--idle) or
 * takes too long in all (--total), exiting 124 as timeout(1) does, after
 * writing out every byte it read.  The deadlines bound the waits for
 * input; a write of bytes already read is never cut (DESIGN.md, the
 * tools), so they all reach standard output, however slow its reader.
 */
#include "tool.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BUF_SIZE ((size_t)64 * 1024)

struct cat {
    cio_time_t idle;  /* 0 = none */
    cio_time_t until; /* the --total deadline, 0 = none */
    cio_file *out;
    char buf[BUF_SIZE];
};

static const char usage[] =
    "Usage: cio-cat [--idle DUR] [--total DUR] [FILE...]\n"
    "Copy each FILE (or standard input; - is standard input) to standard\n"
    "output, giving up when no byte has arrived for --idle DUR or when\n"
    "--total DUR has passed.  DUR is a number with an optional fraction and\n"
    "an optional suffix s (seconds, the default), m, h or d; 0 means none.\n"
    "\n"
    "  -i, --idle DUR    give up after DUR without a byte of input\n"
    "  -t, --total DUR   give up after DUR in all\n"
    "  -h, --help        show this help and exit\n"
    "  -V, --version     show the version and exit\n"
    "\n"
    "Exit status: 0 every input reached its end; 1 an I/O error; 124 a\n"
    "deadline passed (every byte read was written first); 125 bad usage.\n";

/* The deadline for the next wait for input. */
static cio_time_t next_deadline(const struct cat *c)
{
    cio_time_t idle = c->idle ? cio_now() + c->idle : CIO_NO_DEADLINE;
    return tool_earlier(idle, c->until);
}

static int put_out(struct cat *c, size_t n)
{
    if (tool_write_all(c->out, c->buf, n) == 0)
        return 0;
    tool_warn("standard output", errno);
    return 1;
}

/* Copy in to the output: 0 at its end, 1 on a read error, 124. */
static int copy(struct cat *c, cio_file *in, const char *name)
{
    for (;;) {
        if (cio_set_read_deadline(in, next_deadline(c)) < 0) {
            tool_warn(name, errno); /* no timer for it: the read would not give up */
            return 1;
        }
        ssize_t n = cio_read(in, c->buf, sizeof c->buf);
        if (n == 0)
            return 0;
        if (n < 0 && errno == ETIMEDOUT)
            return EXIT_TIMEDOUT;
        if (n < 0) {
            tool_warn(name, errno);
            return 1;
        }
        int r = put_out(c, (size_t)n);
        if (r)
            return r == 1 ? -1 : r; /* -1: stop everything */
    }
}

static int cat_file(struct cat *c, const char *path)
{
    int is_stdin = strcmp(path, "-") == 0;
    const char *name = is_stdin ? "standard input" : path;
    cio_file *in =
        is_stdin ? cio_fdopen(STDIN_FILENO) : cio_open(path, O_RDONLY, 0, next_deadline(c));
    if (!in && errno == ETIMEDOUT)
        return EXIT_TIMEDOUT;
    if (!in) {
        tool_warn(name, errno);
        return 1;
    }
    int r = copy(c, in, name);
    if (is_stdin)
        cio_detach(in);
    else
        cio_close(in);
    return r;
}

static void parse(int argc, char **argv, struct cat *c)
{
    static const struct option opts[] = {{"idle", required_argument, NULL, 'i'},
                                         {"total", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {"version", no_argument, NULL, 'V'},
                                         {NULL, 0, NULL, 0}};
    cio_time_t total = 0;
    int o;
    while ((o = getopt_long(argc, argv, "i:t:hV", opts, NULL)) != -1) {
        switch (o) {
        case 'i':
            if (tool_duration(optarg, &c->idle) < 0)
                tool_usage_error("invalid duration", optarg);
            break;
        case 't':
            if (tool_duration(optarg, &total) < 0)
                tool_usage_error("invalid duration", optarg);
            break;
        case 'h':
            tool_print_exit(usage, 1);
        case 'V':
            tool_version(1);
        default:
            tool_usage_error("bad usage", NULL);
        }
    }
    c->until = total ? cio_now() + total : CIO_NO_DEADLINE;
}

int main(int argc, char **argv)
{
    static struct cat c;
    tool_name = "cio-cat";
    tool_hold_std_fds();
    parse(argc, argv, &c);
    tool_start_library();
    c.out = cio_fdopen(STDOUT_FILENO);
    if (!c.out) {
        tool_warn("standard output", errno);
        return 1;
    }
    char *dash[] = {"-", NULL};
    char **files = optind < argc ? argv + optind : dash;
    int status = 0;
    for (; *files; files++) {
        int r = cat_file(&c, *files);
        if (r == EXIT_TIMEDOUT || r < 0) {
            status = r < 0 ? 1 : r;
            break;
        }
        status |= r;
    }
    cio_detach(c.out);
    return tool_exit(status);
}
