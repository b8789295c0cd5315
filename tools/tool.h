/*
 * What cio-cat and cio-run share: durations read as timeout(1) reads them,
 * messages, and writing a whole buffer.  The tools use the installed
 * header only.
 */
#ifndef CIO_TOOL_H
#define CIO_TOOL_H

#include <cancelio.h>

#include <stddef.h>

#define EXIT_TIMEDOUT 124 /* as timeout(1) */
#define EXIT_USAGE 125
#define EXIT_CANNOT_RUN 126
#define EXIT_NOT_FOUND 127

extern const char *tool_name; /* set by main, for messages */

/* DUR as timeout(1) reads it: a number (as strtod reads it: fractions,
 * exponents, "inf") with an optional suffix s (the default), m, h or d.  0
 * when s is one (*ns = 0 meaning "no limit"), -1 when it is not. */
int tool_duration(const char *s, cio_time_t *ns);

/* The earlier of two deadlines, 0 meaning none. */
cio_time_t tool_earlier(cio_time_t a, cio_time_t b);

/* "tool: what: reason" on stderr. */
void tool_warn(const char *what, int err);

/* A bad usage: "tool: msg 'arg'" (arg may be NULL), a hint to --help, and
 * exit 125. */
_Noreturn void tool_usage_error(const char *msg, const char *arg);

/* Print text (--help) on standard output and exit 0; when it cannot be
 * written (a full disk, a closed descriptor), say so on standard error and
 * exit fail, the tool's own failure status, as GNU tools do. */
_Noreturn void tool_print_exit(const char *text, int fail);

/* "tool (cancelio) VERSION" by tool_print_exit. */
_Noreturn void tool_version(int fail);

/* cio_write all n bytes to f; 0, or -1 with errno (after a short count,
 * the next call says why: a cut, or an error such as EFBIG or ENOSPC). */
int tool_write_all(cio_file *f, const void *buf, size_t n);

/* First thing in main: keep each of fds 0-2 that is closed closed to the
 * tool (it gives EBADF) while no file the library opens can take its
 * number. */
void tool_hold_std_fds(void);

/* After the options: start the library now, before any child runs or any
 * signal may come (its cancel signal, SIGUSR1, is then taken by its
 * handler, not the default action that would end the tool).  Exits with
 * 125 on failure. */
void tool_start_library(void);

/* The tool's last step: status, after joining the library's threads when
 * none is busy.  A worker left in the kernel (a read that outlived its
 * caller, DESIGN rule 15) would make cio_shutdown wait for it, so then the
 * process exits without; an idle worker that retired and was never joined
 * is what a thread checker reports as a leak. */
int tool_exit(int status);

#endif
