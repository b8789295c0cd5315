/*
 * Description: Plan 9 notes on POSIX threads (DESIGN.md rules 16-19).  A
 * note interrupts the cancelio op its thread is blocked in (read, write
 * with its partial count, accept, a serialised wait, cio_call) with EINTR,
 * or refuses the next op without touching the fd; the thread's handlers
 * run on the thread, oldest note first, in the order they were added, the
 * first nonzero wins; the queue holds CIO_NNOTE notes; a handler may do
 * cancelio I/O undisturbed, even on the file a read helper it interrupted
 * was reading, and a read helper is refused like any op; cio_alarm replaces, clears and says what
 * was left; an exited thread gives ESRCH; a note racing a deadline loses no byte and leaves no
 * stray EINTR behind.
 */
#include "support.h"

#include "cancelio/plan9.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define JOIN_MS 5000
#define AT_ONCE_MS 500
#define BIG (8u << 20)

/* ---- what the handlers saw (handlers run on the proc's thread) -------- */

#define MAXREC 64
static struct {
    pthread_mutex_t mu;
    char note[MAXREC][CIO_ERRMAX];
    char by[MAXREC]; /* which handler: 'a', 'b', 'c' */
    pthread_t thread[MAXREC];
    int n;
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void record(char by, const char *note)
{
    pthread_mutex_lock(&rec.mu);
    if (rec.n < MAXREC) {
        snprintf(rec.note[rec.n], CIO_ERRMAX, "%s", note);
        rec.by[rec.n] = by;
        rec.thread[rec.n] = pthread_self();
        rec.n++;
    }
    pthread_mutex_unlock(&rec.mu);
}

static int recorded(void)
{
    pthread_mutex_lock(&rec.mu);
    int n = rec.n;
    pthread_mutex_unlock(&rec.mu);
    return n;
}

static void rec_reset(void)
{
    pthread_mutex_lock(&rec.mu);
    rec.n = 0;
    pthread_mutex_unlock(&rec.mu);
}

static int take_a(void *arg, char *note)
{
    (void)arg;
    record('a', note);
    return 1;
}

static int pass_b(void *arg, char *note)
{
    (void)arg;
    record('b', note);
    return 0;
}

static int take_c(void *arg, char *note)
{
    (void)arg;
    record('c', note);
    return 1;
}

/* ---- a thread that plays a Plan 9 process ---------------------------- */

struct pt {
    void (*body)(struct pt *);
    pthread_t thread;
    _Atomic(cio_proc *) proc;
    atomic_int tid;
    atomic_int stage; /* set by the body as it goes */
    atomic_int go;    /* set by the test thread */
    cio_file *f;
    int fd[2];
    void *arg;
    ssize_t r[4];
    int err[4];
    cio_time_t t0, t1;
};

static void *pt_main(void *arg)
{
    struct pt *t = arg;
    block_cancel_signal_in_this_thread();
    atomic_store(&t->tid, (int)current_tid());
    atomic_store(&t->proc, cio_proc_self());
    t->body(t);
    return NULL;
}

static struct pt *pt_start(void (*body)(struct pt *), cio_file *f)
{
    struct pt *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->body = body;
    t->f = f;
    assert_int_equal(pthread_create(&t->thread, NULL, pt_main, t), 0);
    return t;
}

static bool stage_reached(void *arg)
{
    struct pt *t = ((void **)arg)[0];
    return atomic_load(&t->stage) >= *(int *)((void **)arg)[1];
}

static void wait_stage(struct pt *t, int stage)
{
    void *a[2] = {t, &stage};
    assert_true(wait_until(stage_reached, a, JOIN_MS));
}

static bool pt_done(void *arg)
{
    return atomic_load(&((struct pt *)arg)->stage) >= 100;
}

static void pt_join(struct pt *t)
{
    assert_true(wait_until(pt_done, t, JOIN_MS));
    assert_int_equal(pthread_join(t->thread, NULL), 0);
}

/* The thread waits (polling) until the test thread says go. */
static void await_go(struct pt *t, int stage)
{
    atomic_store(&t->stage, stage);
    while (atomic_load(&t->go) < stage)
        sleep_us(200);
}

static void save(struct pt *t, int i, ssize_t r)
{
    t->r[i] = r;
    t->err[i] = r < 0 ? errno : 0;
}

static void open_pipe(cio_file **f, int p[2])
{
    assert_int_equal(make_pipe(p), 0);
    *f = cio_fdopen(p[0]);
    assert_non_null(*f);
}

/* ---- a note to a blocked op ------------------------------------------- */

static void read_twice(struct pt *t)
{
    char buf[16];
    cio_atnotify(take_a, 1);
    atomic_store(&t->stage, 1);
    save(t, 0, cio_read(t->f, buf, sizeof buf));
    atomic_store(&t->stage, 2);
    save(t, 1, cio_read(t->f, buf, sizeof buf));
    t->r[2] = t->r[1] == 1 ? buf[0] : 0;
    cio_atnotify(take_a, 0);
    atomic_store(&t->stage, 100);
}

/* Rules 16, 17: a note to a thread blocked in cio_read interrupts it with
 * EINTR at once, the handler runs on that thread with the note, the read
 * consumed nothing, and the next read gets the data. */
static void note_interrupts_a_blocked_read_and_the_handler_runs_on_that_thread(void **state)
{
    (void)state;
    int p[2];
    cio_file *f;
    open_pipe(&f, p);
    rec_reset();
    uint64_t before = op_starts();
    struct pt *t = pt_start(read_twice, f);
    wait_stage(t, 1);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
    cio_time_t c = cio_now();
    assert_int_equal(cio_postnote(atomic_load(&t->proc), "interrupt"), 0);
    wait_stage(t, 2);
    assert_true(elapsed_ms(c, cio_now()) < (double)scaled_ms(AT_ONCE_MS));
    assert_int_equal(t->r[0], -1);
    assert_int_equal(t->err[0], EINTR);
    assert_int_equal(recorded(), 1);
    assert_string_equal(rec.note[0], "interrupt");
    assert_true(pthread_equal(rec.thread[0], t->thread));
    assert_int_equal(write(p[1], "x", 1), 1);
    pt_join(t);
    assert_int_equal(t->r[1], 1);
    assert_int_equal(t->r[2], 'x');
    assert_int_equal(recorded(), 1);
    free(t);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

static void write_big(struct pt *t)
{
    unsigned char *data = t->arg;
    cio_atnotify(take_a, 1);
    atomic_store(&t->stage, 1);
    save(t, 0, cio_write(t->f, data, BIG));
    save(t, 1, cio_write(t->f, "end", 3));
    cio_atnotify(take_a, 0);
    atomic_store(&t->stage, 100);
}

/* Rules 5, 16: a note cuts a blocked write short: it returns the positive
 * count that went out, exactly those bytes are in the pipe, and the next
 * write runs normally (the note was delivered, it refuses nothing more). */
static void note_cuts_a_blocked_write_which_returns_its_count(void **state)
{
    (void)state;
    int p[2];
    assert_int_equal(make_pipe(p), 0);
    cio_file *f = cio_fdopen(p[1]);
    assert_non_null(f);
    rec_reset();
    unsigned char *data = malloc(BIG);
    assert_non_null(data);
    fill_pattern(data, BIG, 0);
    struct pt *t = calloc(1, sizeof *t);
    assert_non_null(t);
    t->body = write_big;
    t->f = f;
    t->arg = data;
    assert_int_equal(pthread_create(&t->thread, NULL, pt_main, t), 0);
    wait_stage(t, 1);
    assert_true(wait_in_syscall_on(p[1], CIO_WRITE, 1, JOIN_MS));
    assert_int_equal(cio_postnote(atomic_load(&t->proc), "hangup"), 0);

    struct raw_reader *rr = start_raw_reader(p[0], BIG + 3);
    assert_non_null(rr);
    wait_stage(t, 100);
    assert_int_equal(pthread_join(t->thread, NULL), 0);
    assert_int_equal(cio_close(f), 0); /* EOF for the raw reader */
    assert_true(raw_reader_join(rr, JOIN_MS));
    if (!(t->r[0] > 0 && t->r[0] < (ssize_t)BIG))
        print_message("write: %zd errno %d\n", t->r[0], t->err[0]);
    assert_true(t->r[0] > 0 && t->r[0] < (ssize_t)BIG);
    assert_int_equal(t->r[1], 3);
    assert_int_equal(rr->got, (size_t)t->r[0] + 3);
    assert_int_equal(pattern_mismatch(rr->buf, (size_t)t->r[0], 0), (size_t)t->r[0]);
    assert_memory_equal(rr->buf + t->r[0], "end", 3);
    assert_int_equal(recorded(), 1);
    assert_string_equal(rec.note[0], "hangup");
    raw_reader_free(rr);
    free(data);
    free(t);
    assert_int_equal(close(p[0]), 0);
}

static void accept_twice(struct pt *t)
{
    atomic_store(&t->stage, 1);
    cio_file *c = cio_accept(t->f, NULL, NULL);
    save(t, 0, c ? 0 : -1);
    atomic_store(&t->stage, 2);
    c = cio_accept(t->f, NULL, NULL);
    save(t, 1, c ? 0 : -1);
    if (c)
        cio_close(c);
    atomic_store(&t->stage, 100);
}

/* Rule 16: a note interrupts a blocked cio_accept (NULL, EINTR); the
 * listener stays usable and the next accept takes the connection. */
static void note_interrupts_a_blocked_accept(void **state)
{
    (void)state;
    struct sockaddr_in a;
    int l = loopback_listener(&a);
    cio_file *lf = cio_fdopen(l);
    assert_non_null(lf);
    uint64_t before = op_starts();
    struct pt *t = pt_start(accept_twice, lf);
    wait_stage(t, 1);
    assert_true(wait_op_starts(before + 1, JOIN_MS));
    assert_true(wait_thread_sleeping(atomic_load(&t->tid), JOIN_MS));
    assert_int_equal(cio_postnote(atomic_load(&t->proc), "interrupt"), 0);
    wait_stage(t, 2);
    assert_int_equal(t->r[0], -1);
    assert_int_equal(t->err[0], EINTR);
    int c = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(c >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&a, sizeof a), 0);
    pt_join(t);
    assert_int_equal(t->r[1], 0);
    free(t);
    assert_int_equal(close(c), 0);
    assert_int_equal(cio_close(lf), 0);
}

static atomic_int fn_saw_interrupt;

static atomic_int fn_running;

static long wait_for_interrupt(void *arg)
{
    (void)arg;
    atomic_store(&fn_running, 1);
    cio_time_t limit = cio_now() + scaled_ms(JOIN_MS) * NS_PER_MS;
    while (!cio_interrupted() && cio_now() < limit)
        sleep_us(500);
    atomic_store(&fn_saw_interrupt, cio_interrupted());
    errno = EINTR;
    return -1;
}

static bool fn_is_running(void *arg)
{
    (void)arg;
    return atomic_load(&fn_running) != 0;
}

static void call_once(struct pt *t)
{
    atomic_store(&t->stage, 1);
    save(t, 0, cio_call(wait_for_interrupt, NULL, CIO_NO_DEADLINE));
    atomic_store(&t->stage, 100);
}

/* Rule 16: a note to a thread in cio_call makes cio_interrupted() true in
 * fn; fn's -1 comes back as EINTR. */
static void note_makes_cio_interrupted_true_inside_a_call(void **state)
{
    (void)state;
    atomic_store(&fn_saw_interrupt, 0);
    atomic_store(&fn_running, 0);
    struct pt *t = pt_start(call_once, NULL);
    assert_true(wait_until(fn_is_running, NULL, JOIN_MS));
    assert_int_equal(cio_postnote(atomic_load(&t->proc), "interrupt"), 0);
    pt_join(t);
    assert_int_equal(t->r[0], -1);
    assert_int_equal(t->err[0], EINTR);
    assert_true(atomic_load(&fn_saw_interrupt));
    free(t);
}

static void read_after_go(struct pt *t)
{
    char buf[16];
    cio_atnotify(take_a, 1);
    await_go(t, 1);
    save(t, 0, cio_read(t->f, buf, sizeof buf));
    await_go(t, 2);
    save(t, 1, cio_read(t->f, buf, sizeof buf));
    cio_atnotify(take_a, 0);
    atomic_store(&t->stage, 100);
}

/* Rule 16: a note to a thread in no op waits; its next op fails with EINTR
 * at once without touching the fd (the data stays), and the one after runs
 * normally. */
static void note_to_an_idle_thread_refuses_its_next_op_without_touching_the_fd(void **state)
{
    (void)state;
    int p[2];
    cio_file *f;
    open_pipe(&f, p);
    rec_reset();
    assert_int_equal(write(p[1], "data", 4), 4);
    struct pt *t = pt_start(read_after_go, f);
    wait_stage(t, 1);
    assert_int_equal(cio_postnote(atomic_load(&t->proc), "wake"), 0);
    assert_int_equal(recorded(), 0); /* not delivered until an op */
    atomic_store(&t->go, 1);
    wait_stage(t, 2);
    assert_int_equal(t->r[0], -1);
    assert_int_equal(t->err[0], EINTR);
    assert_true(fd_readable_now(p[0]));
    atomic_store(&t->go, 2);
    pt_join(t);
    assert_int_equal(t->r[1], 4);
    assert_int_equal(recorded(), 1);
    assert_string_equal(rec.note[0], "wake");
    free(t);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rules 16, 17: CIO_NNOTE notes may wait; one more gives EAGAIN and is not
 * queued; they are delivered oldest first, all before the refused op
 * returns, and then the queue has room again. */
static void a_full_queue_gives_EAGAIN_and_notes_come_oldest_first(void **state)
{
    (void)state;
    int p[2];
    cio_file *f;
    open_pipe(&f, p);
    rec_reset();
    assert_int_equal(write(p[1], "d", 1), 1);
    struct pt *t = pt_start(read_after_go, f);
    wait_stage(t, 1);
    cio_proc *pp = atomic_load(&t->proc);
    char note[16];
    for (int i = 0; i < CIO_NNOTE; i++) {
        snprintf(note, sizeof note, "n%d", i);
        assert_int_equal(cio_postnote(pp, note), 0);
    }
    errno = 0;
    assert_int_equal(cio_postnote(pp, "extra"), -1);
    assert_int_equal(errno, EAGAIN);
    atomic_store(&t->go, 2);
    pt_join(t);
    assert_int_equal(t->r[0], -1);
    assert_int_equal(t->err[0], EINTR);
    assert_int_equal(t->r[1], 1);
    assert_int_equal(recorded(), CIO_NNOTE);
    for (int i = 0; i < CIO_NNOTE; i++) {
        snprintf(note, sizeof note, "n%d", i);
        assert_string_equal(rec.note[i], note);
    }
    free(t);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 17: handlers are offered a note in the order they were added; the
 * first nonzero takes it (the ones after never see it); a removed handler
 * is offered nothing; a note nobody takes is dropped and the op still
 * fails with EINTR.  On the test thread itself: posting to oneself. */
static void handlers_run_in_order_and_the_first_nonzero_wins(void **state)
{
    (void)state;
    int p[2];
    char buf[4];
    cio_file *f;
    open_pipe(&f, p);
    rec_reset();
    cio_proc *me = cio_proc_self();
    assert_non_null(me);
    assert_ptr_equal(cio_proc_self(), me);
    assert_int_equal(cio_atnotify(pass_b, 1), 0);
    assert_int_equal(cio_atnotify(take_a, 1), 0);
    assert_int_equal(cio_atnotify(take_c, 1), 0);
    assert_int_equal(cio_postnote(me, "one"), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, EINTR);
    assert_int_equal(recorded(), 2);
    assert_int_equal(rec.by[0], 'b');
    assert_int_equal(rec.by[1], 'a');

    assert_int_equal(cio_atnotify(take_a, 0), 0);
    assert_int_equal(cio_postnote(me, "two"), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, EINTR);
    assert_int_equal(recorded(), 4);
    assert_int_equal(rec.by[2], 'b');
    assert_int_equal(rec.by[3], 'c');
    assert_string_equal(rec.note[3], "two");

    assert_int_equal(cio_atnotify(pass_b, 0), 0);
    assert_int_equal(cio_atnotify(take_c, 0), 0);
    assert_int_equal(cio_postnote(me, "nobody"), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, EINTR);
    assert_int_equal(recorded(), 4);

    /* duplicates: two entries, removal takes one */
    assert_int_equal(cio_atnotify(pass_b, 1), 0);
    assert_int_equal(cio_atnotify(pass_b, 1), 0);
    assert_int_equal(cio_postnote(me, "dup"), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(recorded(), 6);
    assert_int_equal(cio_atnotify(pass_b, 0), 0);
    assert_int_equal(cio_atnotify(pass_b, 0), 0);
    errno = 0;
    assert_int_equal(cio_atnotify(pass_b, 0), -1);
    assert_int_equal(errno, ENOENT);

    assert_int_equal(write(p[1], "z", 1), 1);
    assert_int_equal(cio_read(f, buf, sizeof buf), 1); /* nothing left over */
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 12 for the notes: bad input gets EINVAL (ENOENT for removing what
 * is not there) and queues or changes nothing. */
static void bad_input_gets_a_clear_errno_and_changes_nothing(void **state)
{
    (void)state;
    cio_proc *me = cio_proc_self();
    assert_non_null(me);
    char longest[CIO_ERRMAX], too_long[CIO_ERRMAX + 1];
    memset(longest, 'x', sizeof longest - 1);
    longest[CIO_ERRMAX - 1] = '\0';
    memset(too_long, 'y', sizeof too_long - 1);
    too_long[CIO_ERRMAX] = '\0';
    struct {
        cio_proc *p;
        const char *note;
    } bad[] = {{NULL, "x"}, {me, NULL}, {me, ""}, {me, too_long}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        assert_int_equal(cio_postnote(bad[i].p, bad[i].note), -1);
        assert_int_equal(errno, EINVAL);
    }
    errno = 0;
    assert_int_equal(cio_atnotify(NULL, 1), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_atnotify(take_a, 2), -1);
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_int_equal(cio_atnotify(take_c, 0), -1);
    assert_int_equal(errno, ENOENT);

    /* nothing was queued: an op runs normally; the longest note fits */
    int p[2];
    char buf[CIO_ERRMAX];
    cio_file *f;
    open_pipe(&f, p);
    assert_int_equal(write(p[1], "k", 1), 1);
    assert_int_equal(cio_read(f, buf, sizeof buf), 1);
    rec_reset();
    assert_int_equal(cio_atnotify(take_a, 1), 0);
    assert_int_equal(cio_postnote(me, longest), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, EINTR);
    assert_int_equal(recorded(), 1);
    assert_string_equal(rec.note[0], longest);
    assert_int_equal(cio_atnotify(take_a, 0), 0);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* ---- a handler that does cancelio I/O --------------------------------- */

static struct {
    cio_file *f;
    atomic_int in_handler;
    atomic_int calls;
    ssize_t r;
    int err;
    char byte;
} hio;

static int reading_handler(void *arg, char *note)
{
    (void)arg;
    record('h', note);
    if (atomic_fetch_add(&hio.calls, 1) > 0)
        return 1;
    atomic_store(&hio.in_handler, 1);
    char c = 0;
    hio.r = cio_read(hio.f, &c, 1); /* blocks until the test writes */
    hio.err = hio.r < 0 ? errno : 0;
    hio.byte = c;
    return 1;
}

static void read_with_reading_handler(struct pt *t)
{
    char buf[4];
    cio_atnotify(reading_handler, 1);
    atomic_store(&t->stage, 1);
    save(t, 0, cio_read(t->f, buf, sizeof buf));
    atomic_store(&t->stage, 2);
    save(t, 1, cio_read(t->f, buf, sizeof buf)); /* nothing left over: blocks */
    cio_atnotify(reading_handler, 0);
    atomic_store(&t->stage, 100);
}

static bool handler_entered(void *arg)
{
    (void)arg;
    return atomic_load(&hio.in_handler) != 0;
}

/* Rule 17: a handler may do cancelio I/O, and its own op is not stopped by
 * the notes: not by the one being delivered, nor by one another thread
 * posts meanwhile, which is delivered in the same round (the interrupted
 * read returns only after it), so no note is left to refuse the next op. */
static void a_handler_may_do_cancelio_io_undisturbed(void **state)
{
    (void)state;
    int p[2], q[2];
    cio_file *f;
    open_pipe(&f, p);
    open_pipe(&hio.f, q);
    atomic_store(&hio.in_handler, 0);
    atomic_store(&hio.calls, 0);
    rec_reset();
    struct pt *t = pt_start(read_with_reading_handler, f);
    wait_stage(t, 1);
    assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
    assert_int_equal(cio_postnote(atomic_load(&t->proc), "first"), 0);
    assert_true(wait_until(handler_entered, NULL, JOIN_MS));
    assert_true(wait_thread_sleeping(atomic_load(&t->tid), JOIN_MS));
    assert_int_equal(cio_postnote(atomic_load(&t->proc), "second"), 0);
    wait_for_time(cio_now() + scaled_ms(50) * NS_PER_MS);
    assert_int_equal(atomic_load(&t->stage), 1); /* the handler still reads */
    assert_int_equal(write(q[1], "h", 1), 1);
    wait_stage(t, 2);
    assert_int_equal(hio.r, 1);
    assert_int_equal(hio.byte, 'h');
    assert_int_equal(t->r[0], -1);
    assert_int_equal(t->err[0], EINTR);
    assert_int_equal(atomic_load(&hio.calls), 2);
    assert_int_equal(recorded(), 2);
    assert_string_equal(rec.note[1], "second");
    assert_int_equal(write(p[1], "n", 1), 1);
    pt_join(t);
    assert_int_equal(t->r[1], 1); /* not refused */
    free(t);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(cio_close(hio.f), 0);
    assert_int_equal(close(p[1]), 0);
    assert_int_equal(close(q[1]), 0);
}

/* ---- a handler that reads the file a read helper was reading --------- */

static struct {
    cio_file *f;
    int full; /* the helper: cio_read_full, else cio_read_until */
    ssize_t r;
    int err;
    char got[8];
} hsame;

static int same_file_handler(void *arg, char *note)
{
    (void)arg;
    record('s', note);
    hsame.r = cio_read(hsame.f, hsame.got, sizeof hsame.got);
    hsame.err = hsame.r < 0 ? errno : 0;
    return 1;
}

static void helper_with_same_file_handler(struct pt *t)
{
    char buf[64];
    cio_atnotify(same_file_handler, 1);
    atomic_store(&t->stage, 1);
    if (hsame.full)
        save(t, 0, cio_read_full(t->f, buf, sizeof buf));
    else
        save(t, 0, cio_read_until(t->f, buf, sizeof buf, "\n", 1));
    t->r[1] = (ssize_t)cio_unread(t->f);
    cio_atnotify(same_file_handler, 0);
    atomic_store(&t->stage, 100);
}

/* Rules 17, 20: a read helper is one op to the notes.  One that interrupts
 * it is delivered once it has let the read direction go, so a handler may
 * read the same file: it gets the bytes the helper gave back, at once. */
static void a_handler_may_read_the_file_its_read_helper_was_reading(void **state)
{
    (void)state;
    for (int full = 0; full < 2; full++) {
        int p[2];
        open_pipe(&hsame.f, p);
        hsame.r = 0;
        hsame.full = full;
        memset(hsame.got, 0, sizeof hsame.got);
        rec_reset();
        assert_int_equal(write(p[1], "ab", 2), 2); /* no delimiter, too short */
        struct pt *t = pt_start(helper_with_same_file_handler, hsame.f);
        wait_stage(t, 1);
        assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
        assert_int_equal(cio_postnote(atomic_load(&t->proc), "peek"), 0);
        pt_join(t);
        assert_int_equal(t->r[0], -1);
        assert_int_equal(t->err[0], EINTR);
        assert_int_equal(recorded(), 1);
        assert_int_equal(hsame.r, 2); /* what the helper gave back */
        assert_memory_equal(hsame.got, "ab", 2);
        assert_int_equal(t->r[1], 0); /* the handler took it */
        free(t);
        assert_int_equal(cio_close(hsame.f), 0);
        assert_int_equal(close(p[1]), 0);
    }
}

static void helper_after_go(struct pt *t)
{
    char buf[8];
    cio_atnotify(take_a, 1);
    save(t, 0, cio_read_until(t->f, buf, sizeof buf, "\n", 1)); /* "x\n" */
    await_go(t, 1);
    save(t, 1, cio_read_full(t->f, buf, 1)); /* "y" is held: no fd read */
    t->r[2] = (ssize_t)cio_unread(t->f);
    save(t, 3, cio_read_full(t->f, buf, 1));
    cio_atnotify(take_a, 0);
    atomic_store(&t->stage, 100);
}

/* Rule 16: a note that waits refuses the next read helper at once with
 * EINTR, even one whose answer is already held in the file; the held
 * bytes stay for the op after it. */
static void a_pending_note_refuses_a_read_helper_with_its_answer_held(void **state)
{
    (void)state;
    int p[2];
    cio_file *f;
    open_pipe(&f, p);
    rec_reset();
    assert_int_equal(write(p[1], "x\ny", 3), 3);
    struct pt *t = pt_start(helper_after_go, f);
    wait_stage(t, 1);
    assert_int_equal(t->r[0], 2);
    assert_int_equal(cio_postnote(atomic_load(&t->proc), "stop"), 0);
    atomic_store(&t->go, 1);
    pt_join(t);
    assert_int_equal(t->r[1], -1);
    assert_int_equal(t->err[1], EINTR);
    assert_int_equal(t->r[2], 1); /* "y" still held */
    assert_int_equal(t->r[3], 1);
    assert_int_equal(recorded(), 1);
    assert_string_equal(rec.note[0], "stop");
    free(t);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* ---- a serialised wait ------------------------------------------------ */

enum { PLAIN_READ, READ_UNTIL, READ_FULL };

/* One read of the kind t->arg says, with take_a as handler. */
static void one_read(struct pt *t)
{
    char buf[4];
    cio_atnotify(take_a, 1);
    atomic_store(&t->stage, 1);
    switch ((int)(intptr_t)t->arg) {
    case PLAIN_READ:
        save(t, 0, cio_read(t->f, buf, sizeof buf));
        break;
    case READ_UNTIL:
        save(t, 0, cio_read_until(t->f, buf, sizeof buf, "\n", 1));
        break;
    default:
        save(t, 0, cio_read_full(t->f, buf, sizeof buf));
    }
    cio_atnotify(take_a, 0);
    atomic_store(&t->stage, 100);
}

/* Rule 16 with rules 8 and 20: a thread waiting for its turn behind
 * another thread's blocked read is in an op too, and so is a read helper
 * waiting there: a note fails it with EINTR at once, its handler runs,
 * and the other read goes on with every byte. */
static void note_interrupts_a_read_waiting_for_its_turn(void **state)
{
    (void)state;
    for (int kind = PLAIN_READ; kind <= READ_FULL; kind++) {
        int p[2];
        cio_file *f;
        open_pipe(&f, p);
        rec_reset();
        uint64_t before = op_starts();
        struct op_thread *first = start_reader(f, 4);
        assert_non_null(first);
        assert_true(wait_op_starts(before + 1, JOIN_MS));
        assert_true(wait_in_syscall_on(p[0], CIO_READ, 1, JOIN_MS));
        struct pt *t = calloc(1, sizeof *t);
        assert_non_null(t);
        t->body = one_read;
        t->f = f;
        t->arg = (void *)(intptr_t)kind;
        assert_int_equal(pthread_create(&t->thread, NULL, pt_main, t), 0);
        wait_stage(t, 1);
        assert_true(wait_thread_sleeping(atomic_load(&t->tid), JOIN_MS));
        assert_int_equal(cio_postnote(atomic_load(&t->proc), "interrupt"), 0);
        pt_join(t);
        assert_int_equal(t->r[0], -1);
        assert_int_equal(t->err[0], EINTR);
        assert_int_equal(recorded(), 1);
        assert_string_equal(rec.note[0], "interrupt");
        assert_false(op_is_done(first));
        assert_int_equal(write(p[1], "ab\n", 3), 3);
        assert_true(op_join(first, JOIN_MS));
        assert_int_equal(first->result, 3);
        op_free(first);
        free(t);
        assert_int_equal(cio_close(f), 0);
        assert_int_equal(close(p[1]), 0);
    }
}

/* ---- alarm ------------------------------------------------------------ */

/* Rule 18: the classic idiom, cio_alarm(ms); cio_read; cio_alarm(0): the
 * read is interrupted by "alarm" not before ms, and the handler took it. */
static void alarm_interrupts_a_blocked_read_not_before_its_time(void **state)
{
    (void)state;
    int p[2];
    char buf[8];
    cio_file *f;
    open_pipe(&f, p);
    rec_reset();
    assert_int_equal(cio_atnotify(take_a, 1), 0);
    cio_time_t t0 = cio_now();
    assert_int_equal(cio_alarm(100), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, EINTR);
    cio_time_t t1 = cio_now();
    assert_int_equal(cio_alarm(0), 0); /* it fired: nothing left */
    assert_true(elapsed_ms(t0, t1) >= 100.0);
    assert_true(elapsed_ms(t0, t1) < 100.0 + (double)scaled_ms(AT_ONCE_MS));
    assert_int_equal(recorded(), 1);
    assert_string_equal(rec.note[0], "alarm");
    assert_int_equal(cio_atnotify(take_a, 0), 0);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 18: a new alarm replaces the old and returns what was left of it,
 * in ms rounded up; 0 clears it, and a cleared alarm never fires (the
 * read then meets its deadline, not a note). */
static void alarm_replaces_clears_and_returns_what_was_left(void **state)
{
    (void)state;
    assert_int_equal(cio_alarm(0), 0);
    assert_int_equal(cio_alarm(10000), 0);
    long left = cio_alarm(5000);
    assert_true(left > 9000 && left <= 10000);
    left = cio_alarm(0);
    assert_true(left > 4000 && left <= 5000);
    assert_int_equal(cio_alarm(0), 0);

    int p[2];
    char buf[4];
    cio_file *f;
    open_pipe(&f, p);
    assert_int_equal(cio_alarm(30), 0);
    assert_true(cio_alarm(0) > 0);
    assert_int_equal(cio_set_read_deadline(f, cio_after_ms(150)), 0);
    assert_int_equal(cio_read(f, buf, sizeof buf), -1);
    assert_int_equal(errno, ETIMEDOUT);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* Rule 18: an alarm that is due when cio_alarm clears or replaces it has
 * gone off, whether or not the timer thread has got to it: either what was
 * left comes back (>= 1 ms: it had not gone off), or "alarm" is posted and
 * refuses the next op.  Cleared a few microseconds past its time, before
 * the timer thread's wake-up, it must not vanish. */
static void alarm_cleared_as_it_falls_due_is_posted_or_reported(void **state)
{
    (void)state;
    struct rng g;
    rng_init(&g, test_seed("alarm_due"));
    int p[2];
    char buf[4];
    cio_file *f;
    open_pipe(&f, p);
    assert_int_equal(cio_atnotify(take_a, 1), 0);
    int posted = 0, reported = 0, lost = 0;
    for (int i = 0; i < 300; i++) {
        rec_reset();
        cio_time_t t0 = cio_now();
        assert_int_equal(cio_alarm(1), 0);
        wait_for_time(t0 + 1000 * 1000 + (cio_time_t)rng_below(&g, 60) * 1000);
        long left = i % 2 ? cio_alarm(0) : cio_alarm(60000);
        assert_true(left >= 0 && left <= 1);
        int was_left = left == 1;
        /* the next op: refused at once if the alarm was posted */
        assert_int_equal(cio_set_read_deadline(f, cio_after_ms(20)), 0);
        ssize_t n = cio_read(f, buf, sizeof buf);
        int e = errno;
        left = cio_alarm(0); /* the replacement, if any, is still pending */
        assert_true(i % 2 ? left == 0 : left > 59000 && left <= 60000);
        if (n == -1 && e == EINTR) {
            assert_int_equal(recorded(), 1);
            assert_string_equal(rec.note[0], "alarm");
            posted++;
        } else {
            assert_int_equal(n, -1);
            assert_int_equal(e, ETIMEDOUT);
            assert_int_equal(recorded(), 0);
            reported += was_left;
            lost += !was_left;
        }
    }
    print_message("posted %d, reported as left %d, lost %d\n", posted, reported, lost);
    assert_int_equal(lost, 0);
    assert_int_equal(cio_atnotify(take_a, 0), 0);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* ---- exited threads --------------------------------------------------- */

static void just_exit(struct pt *t)
{
    atomic_store(&t->stage, 100);
}

/* Rule 16: a note to a thread that has exited fails with ESRCH; its
 * cio_proc stays a valid pointer. */
static void note_to_an_exited_thread_gives_ESRCH(void **state)
{
    (void)state;
    struct pt *t = pt_start(just_exit, NULL);
    pt_join(t);
    cio_proc *gone = atomic_load(&t->proc);
    assert_non_null(gone);
    assert_ptr_not_equal(gone, cio_proc_self());
    for (int i = 0; i < 3; i++) {
        errno = 0;
        assert_int_equal(cio_postnote(gone, "hangup"), -1);
        assert_int_equal(errno, ESRCH);
    }
    free(t);
}

/* ---- a note racing a deadline ----------------------------------------- */

static atomic_int race_delivered;

static int count_note(void *arg, char *note)
{
    (void)arg;
    (void)note;
    atomic_fetch_add(&race_delivered, 1);
    return 1;
}

struct race {
    cio_file *f;
    cio_time_t deadline;
    atomic_int posted;
    ssize_t first;
    int first_err;
    int eintr_after, got, byte;
    int handled_elsewhere; /* ops whose handlers ran but that did not fail with EINTR */
};

/* One read, noting whether handlers ran in it without its failing with
 * EINTR (rule 17: delivery is in the op a note ended, or refused). */
static ssize_t race_read(struct race *r, char *c)
{
    int before = atomic_load(&race_delivered);
    ssize_t n = cio_read(r->f, c, 1);
    int e = errno;
    if (atomic_load(&race_delivered) != before && !(n < 0 && e == EINTR))
        r->handled_elsewhere++;
    errno = e;
    return n;
}

static void race_body(struct pt *t)
{
    struct race *r = t->arg;
    char c;
    cio_atnotify(count_note, 1);
    cio_set_read_deadline(r->f, r->deadline);
    atomic_store(&t->stage, 1);
    r->first = race_read(r, &c);
    r->first_err = r->first < 0 ? errno : 0;
    if (r->first == 1) { /* the byte beat both: the op completed first */
        r->got = 1;
        r->byte = (unsigned char)c;
    }
    while (!atomic_load(&r->posted))
        sleep_us(100);
    cio_set_read_deadline(r->f, CIO_NO_DEADLINE);
    /* until the byte is read and the note delivered: a note that did not
     * end the first read refuses one of these */
    for (int i = 0; i < 4 && (!r->got || !atomic_load(&race_delivered)); i++) {
        ssize_t n = race_read(r, &c);
        if (n == 1) {
            r->got = 1;
            r->byte = (unsigned char)c;
        } else if (n < 0 && errno == EINTR) {
            r->eintr_after++;
        }
    }
    cio_atnotify(count_note, 0);
    atomic_store(&t->stage, 100);
}

/* Rule 19: a note and a deadline at about the same moment (and a byte just
 * after): the read fails with whichever came first (EINTR or ETIMEDOUT),
 * or returns the byte if that beat both.  The note is delivered exactly
 * once, in the one op that fails with EINTR for it: the first read if the
 * note came first, else the next, which it refuses (rules 16-17: handlers
 * never run in an op that succeeded or failed for another reason); and the
 * byte written afterwards is read whole. */
static void a_note_racing_a_deadline_loses_no_byte_and_leaves_no_stray_EINTR(void **state)
{
    (void)state;
    struct rng g;
    rng_init(&g, test_seed("note_vs_deadline"));
    int p[2];
    cio_file *f;
    open_pipe(&f, p);
    int eintr = 0, timedout = 0, data = 0;
    for (int i = 0; i < 200; i++) {
        atomic_store(&race_delivered, 0);
        struct race r = {.f = f, .deadline = cio_after_ms(2)};
        struct pt *t = calloc(1, sizeof *t);
        assert_non_null(t);
        t->body = race_body;
        t->arg = &r;
        assert_int_equal(pthread_create(&t->thread, NULL, pt_main, t), 0);
        wait_stage(t, 1);
        wait_for_time(r.deadline - 500 * 1000);
        random_delay_us(&g, 1000);
        assert_int_equal(cio_postnote(atomic_load(&t->proc), "race"), 0);
        atomic_store(&r.posted, 1);
        assert_int_equal(write(p[1], "q", 1), 1);
        if (!wait_until(pt_done, t, JOIN_MS))
            print_message("iteration %d: stage %d first %zd/%d after %d got %d delivered %d\n", i,
                          atomic_load(&t->stage), r.first, r.first_err, r.eintr_after, r.got,
                          atomic_load(&race_delivered));
        pt_join(t);
        assert_true(r.first == 1 ||
                    (r.first == -1 && (r.first_err == EINTR || r.first_err == ETIMEDOUT)));
        eintr += r.first_err == EINTR;
        timedout += r.first_err == ETIMEDOUT;
        data += r.first == 1;
        assert_int_equal(r.got, 1);
        assert_int_equal(r.byte, 'q');
        assert_int_equal(atomic_load(&race_delivered), 1);
        assert_int_equal(r.eintr_after + (r.first_err == EINTR), 1);
        assert_int_equal(r.handled_elsewhere, 0);
        assert_false(fd_readable_now(p[0]));
        free(t);
    }
    print_message("note first %d, deadline first %d, data first %d\n", eintr, timedout, data);
    assert_int_equal(cio_close(f), 0);
    assert_int_equal(close(p[1]), 0);
}

/* ---- notes racing quick calls ------------------------------------------ */

struct poster {
    cio_proc *to;
    atomic_int stop;
    int posted;
};

static void *post_often(void *arg)
{
    struct poster *ps = arg;
    while (!atomic_load(&ps->stop)) {
        if (cio_postnote(ps->to, "x") == 0)
            ps->posted++;
        sleep_us(50);
    }
    return NULL;
}

static long quick_ok(void *arg)
{
    (void)arg;
    return 0;
}

static long quick_enoent(void *arg)
{
    (void)arg;
    errno = ENOENT;
    return -1;
}

/* Rules 16-17 with cio_call: notes posted while calls whose fn never looks
 * at cio_interrupted() start and finish one after another.  A call's
 * handlers run if and only if it fails with EINTR (a note that came as the
 * call was on its way out refuses the next one instead), a fn's own
 * answer (0, or ENOENT) is never replaced by EINTR after it returned, and
 * every note is delivered once. */
static void notes_racing_quick_calls_run_handlers_only_in_calls_that_fail_with_EINTR(void **state)
{
    (void)state;
    atomic_store(&race_delivered, 0);
    assert_int_equal(cio_atnotify(count_note, 1), 0);
    struct poster ps = {.to = cio_proc_self()};
    atomic_init(&ps.stop, 0);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, post_often, &ps), 0);
    int bad = 0, eintr = 0, calls = 0;
    cio_time_t end = cio_now() + 1500 * 1000 * 1000;
    while (cio_now() < end) {
        int fails = calls++ % 2;
        int before = atomic_load(&race_delivered);
        long r = cio_call(fails ? quick_enoent : quick_ok, NULL, CIO_NO_DEADLINE);
        int e = errno;
        int ran = atomic_load(&race_delivered) != before;
        int failed_eintr = r == -1 && e == EINTR;
        eintr += failed_eintr;
        bad += ran != failed_eintr;
        bad += !failed_eintr && r != (fails ? -1 : 0);
        bad += !failed_eintr && fails && e != ENOENT;
    }
    atomic_store(&ps.stop, 1);
    assert_int_equal(pthread_join(t, NULL), 0);
    /* the last note, if it came too late for its call, refuses this one */
    if (atomic_load(&race_delivered) < ps.posted) {
        assert_int_equal(cio_call(quick_ok, NULL, CIO_NO_DEADLINE), -1);
        assert_int_equal(errno, EINTR);
    }
    print_message("%d calls, %d failed with EINTR, %d notes; bad %d\n", calls, eintr, ps.posted,
                  bad);
    assert_int_equal(bad, 0);
    assert_int_equal(atomic_load(&race_delivered), ps.posted);
    assert_int_equal(cio_atnotify(count_note, 0), 0);
}

#define T(name) cmocka_unit_test_setup_teardown(name, fixture_setup_watched, fixture_teardown)

int main(void)
{
    block_cancel_signal_in_this_thread();
    const struct CMUnitTest tests[] = {
        T(note_interrupts_a_blocked_read_and_the_handler_runs_on_that_thread),
        T(note_cuts_a_blocked_write_which_returns_its_count),
        T(note_interrupts_a_blocked_accept),
        T(note_makes_cio_interrupted_true_inside_a_call),
        T(note_to_an_idle_thread_refuses_its_next_op_without_touching_the_fd),
        T(a_full_queue_gives_EAGAIN_and_notes_come_oldest_first),
        T(handlers_run_in_order_and_the_first_nonzero_wins),
        T(bad_input_gets_a_clear_errno_and_changes_nothing),
        T(a_handler_may_do_cancelio_io_undisturbed),
        T(a_handler_may_read_the_file_its_read_helper_was_reading),
        T(a_pending_note_refuses_a_read_helper_with_its_answer_held),
        T(note_interrupts_a_read_waiting_for_its_turn),
        T(alarm_interrupts_a_blocked_read_not_before_its_time),
        T(alarm_replaces_clears_and_returns_what_was_left),
        T(alarm_cleared_as_it_falls_due_is_posted_or_reported),
        T(note_to_an_exited_thread_gives_ESRCH),
        T(a_note_racing_a_deadline_loses_no_byte_and_leaves_no_stray_EINTR),
        T(notes_racing_quick_calls_run_handlers_only_in_calls_that_fail_with_EINTR),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
