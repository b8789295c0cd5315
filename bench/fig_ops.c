/*
 * Figures 1 and 6: what an op costs when it does not block.
 *
 * Figure 1 times batches of 1-byte and 64 KiB reads (on a pipe filled
 * beforehand) and writes (on a pipe emptied beforehand), three ways on the
 * same pipe: raw read/write, cio_read/cio_write with no deadline, and with a
 * deadline armed.  The three batches of one repetition run back to back, in
 * an order that rotates, so slow phases of a noisy machine hit all three
 * alike; each figure is the median of the per-op costs over repetitions.
 *
 * Figure 6 streams bytes through a pipe from a writer thread to a reader,
 * 64 KiB an op, moving the deadline before every op (the idle-timeout
 * idiom), against raw read/write; raw and cancelio runs alternate.  Where
 * the two threads run decides the speed (a wake-up across CPUs costs tens
 * of microseconds on a VM), so they are pinned, to one CPU and then to two;
 * the library's workers inherit the affinity of the thread that made them.
 */
#include "bench.h"

#include <cancelio.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define BIG ((size_t)64 * 1024)
#define PIPE_CAP (1024 * 1024)
#define FAR_MS 600000 /* a deadline armed but never reached */

enum method { RAW, CIO, CIO_DEADLINE, N_METHODS };

typedef struct pipe_pair {
    cio_file *r, *w;
    int rfd, wfd;
    size_t cap;
} pipe_pair;

static void open_pair(pipe_pair *p, int cap)
{
    int fds[2];
    if (pipe(fds) < 0)
        die("pipe");
    if (cap)
        fcntl(fds[1], F_SETPIPE_SZ, cap); /* may fail: the default is kept */
    int got = fcntl(fds[0], F_GETPIPE_SZ);
    p->cap = got > 0 ? (size_t)got : 65536;
    p->rfd = fds[0];
    p->wfd = fds[1];
    p->r = cio_fdopen(fds[0]);
    p->w = cio_fdopen(fds[1]);
    if (!p->r || !p->w)
        die("cio_fdopen");
}

static void close_pair(pipe_pair *p)
{
    cio_close(p->r);
    cio_close(p->w);
}

/* Move n bytes with plain blocking calls (untimed set-up). */
static void raw_move(int fd, char *buf, size_t n, int writing)
{
    while (n > 0) {
        size_t c = n < BIG ? n : BIG;
        ssize_t r = writing ? write(fd, buf, c) : read(fd, buf, c);
        if (r <= 0)
            die(writing ? "write" : "read");
        n -= (size_t)r;
    }
}

static void arm(cio_file *f, int writing, enum method m)
{
    if (m == RAW)
        return;
    cio_time_t t = m == CIO_DEADLINE ? cio_after_ms(FAR_MS) : CIO_NO_DEADLINE;
    if ((writing ? cio_set_write_deadline(f, t) : cio_set_read_deadline(f, t)) < 0)
        die("cio_set_deadline");
}

static ssize_t one_op(pipe_pair *p, int writing, enum method m, char *buf, size_t size)
{
    if (writing)
        return m == RAW ? write(p->wfd, buf, size) : cio_write(p->w, buf, size);
    return m == RAW ? read(p->rfd, buf, size) : cio_read(p->r, buf, size);
}

/* k ops of size bytes by method m; the ns per op. */
static double batch(pipe_pair *p, int writing, enum method m, char *buf, size_t size, size_t k)
{
    if (!writing)
        raw_move(p->wfd, buf, size * k, 1);
    arm(writing ? p->w : p->r, writing, m);
    ns_t t = now_ns();
    for (size_t i = 0; i < k; i++) {
        if (one_op(p, writing, m, buf, size) != (ssize_t)size)
            die(writing ? "figure 1: a write on a pipe with space" : "figure 1: a ready read");
    }
    t = now_ns() - t;
    if (writing)
        raw_move(p->rfd, buf, size * k, 0);
    return (double)t / (double)k;
}

static void report_op(const char *op, const char *size, double cio, double raw, int deadline)
{
    char name[48], baseline[48];
    snprintf(name, sizeof name, "op_%s_%s%s", op, size, deadline ? "_deadline" : "");
    snprintf(baseline, sizeof baseline, "raw_%s_%s", op, size);
    bench_report_one(1, name, "ns", cio, baseline, raw, deadline ? TARGET_RATIO_MAX : TARGET_NONE,
                     deadline ? 1.5 : 0, "median per op");
}

static void measure(pipe_pair *p, int writing, size_t size, char *buf, int reps)
{
    size_t k = size == 1 ? 1000 : p->cap / size;
    double *v[N_METHODS];
    for (int m = 0; m < N_METHODS; m++)
        v[m] = calloc((size_t)reps, sizeof *v[m]);
    for (int warm = 0; warm < 2; warm++)
        for (int m = 0; m < N_METHODS; m++)
            batch(p, writing, (enum method)m, buf, size, k);
    for (int i = 0; i < reps; i++) {
        for (int j = 0; j < N_METHODS; j++) {
            int m = (i + j) % N_METHODS;
            v[m][i] = batch(p, writing, (enum method)m, buf, size, k);
        }
    }
    double med[N_METHODS];
    for (int m = 0; m < N_METHODS; m++) {
        med[m] = median_d(v[m], (size_t)reps);
        free(v[m]);
    }
    const char *op = writing ? "write" : "read";
    const char *sz = size == 1 ? "1B" : "64K";
    report_op(op, sz, med[CIO], med[RAW], 0);
    report_op(op, sz, med[CIO_DEADLINE], med[RAW], 1);
}

void fig_ops(void)
{
    bench_lib_start(0, 0);
    int reps = bench_cfg.quick ? 21 : 201;
    char *buf = calloc(1, BIG);
    pipe_pair p;
    open_pair(&p, PIPE_CAP);
    for (int writing = 0; writing < 2; writing++) {
        measure(&p, writing, 1, buf, reps);
        measure(&p, writing, BIG, buf, reps);
    }
    close_pair(&p);
    free(buf);
    bench_lib_stop();
}

/* ---- figure 6 ---- */

typedef struct stream {
    pipe_pair *p;
    int cio;
    int cpu; /* the writer's CPU */
    size_t total;
    char *buf;
} stream;

static void *writer_main(void *arg)
{
    stream *s = arg;
    pin_self(s->cpu);
    for (size_t left = s->total; left > 0;) {
        size_t c = left < BIG ? left : BIG;
        ssize_t r;
        if (s->cio) {
            cio_set_write_deadline(s->p->w, cio_after_ms(1000));
            r = cio_write(s->p->w, s->buf, c);
        } else {
            r = write(s->p->wfd, s->buf, c);
        }
        if (r <= 0)
            die("figure 6: write");
        left -= (size_t)r;
    }
    return NULL;
}

static long sleeps_now(void)
{
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_nvcsw;
}

/* Stream total bytes; the GiB per second.  *slept += the process's sleeps. */
static double stream_once(int cio, int cpu, size_t total, char *rbuf, char *wbuf, long *slept)
{
    long s0 = sleeps_now();
    pipe_pair p;
    open_pair(&p, 0); /* the default capacity, as most programs have */
    stream s = {&p, cio, cpu, total, wbuf};
    pthread_t t;
    ns_t t0 = now_ns();
    if (pthread_create(&t, NULL, writer_main, &s) != 0)
        die("pthread_create");
    for (size_t got = 0; got < total;) {
        ssize_t r;
        if (cio) {
            cio_set_read_deadline(p.r, cio_after_ms(1000));
            r = cio_read(p.r, rbuf, BIG);
        } else {
            r = read(p.rfd, rbuf, BIG);
        }
        if (r <= 0)
            die("figure 6: read");
        got += (size_t)r;
    }
    ns_t dt = now_ns() - t0;
    pthread_join(t, NULL);
    close_pair(&p);
    *slept += sleeps_now() - s0;
    return (double)total / (1024.0 * 1024 * 1024) / ((double)dt / NS_PER_S);
}

/* Raw and cancelio runs, alternating, with the writer on CPU cpu. */
static void stream_placement(int cpu, size_t total, int reps, char *rbuf, char *wbuf)
{
    double raw[8], cio[8], ratio[8];
    long slept[2] = {0, 0};
    bench_lib_start(0, 0); /* fresh workers: made by the pinned threads */
    stream_once(1, cpu, total / 16, rbuf, wbuf, &slept[1]); /* warm-up: the workers exist */
    slept[1] = 0;
    for (int i = 0; i < reps; i++) {
        raw[i] = stream_once(0, cpu, total, rbuf, wbuf, &slept[0]);
        cio[i] = stream_once(1, cpu, total, rbuf, wbuf, &slept[1]);
        ratio[i] = cio[i] / raw[i];
    }
    double ops = (double)reps * (double)(total / BIG);
    bench_lib_stop();
    bench_result r = {.figure = 6, .unit = "GiB/s", .baseline_value = median_d(raw, (size_t)reps)};
    r.value = median_d(cio, (size_t)reps);
    median_d(ratio, (size_t)reps); /* sorts them */
    const char *where = cpu == 0 ? "same" : "cross";
    snprintf(r.name, sizeof r.name, "stream_%zuMiB_%s_cpu", total >> 20, where);
    snprintf(r.baseline, sizeof r.baseline, "raw_stream_%s_cpu", where);
    snprintf(r.note, sizeof r.note,
             "64K ops, 64K pipe, deadline moved every op; ratio < 1 is slower; %d runs, ratios "
             "%.2f-%.2f; threads slept %.2f times a 64K (floor %.2f)",
             reps, ratio[0], ratio[reps - 1], (double)slept[1] / ops, (double)slept[0] / ops);
    bench_report(&r);
}

void fig_throughput(void)
{
    size_t total = (bench_cfg.quick ? (size_t)64 : 1024) * 1024 * 1024;
    int reps = bench_cfg.quick ? 3 : 5;
    char *rbuf = calloc(1, BIG), *wbuf = calloc(1, BIG);
    pin_self(0); /* the reader */
    for (int cpu = 0; cpu < (allowed_cpus() > 1 ? 2 : 1); cpu++)
        stream_placement(cpu, total, reps, rbuf, wbuf);
    pin_self(-1);
    free(rbuf);
    free(wbuf);
}
