/* edge: small deterministic checks on sockets/pty/fifo */
#include "common.h"
static int faults;
#define FAULT(...) do { faults++; printf("FAULT: " __VA_ARGS__); printf("\n"); } while (0)

int main(void) {
    signal(SIGPIPE, SIG_IGN);
    for (int kind = 0; kind < K_NKINDS; kind++) {
        int fds[2];
        make_pair(kind, fds);
        cio_file *R = cio_fdopen(fds[1]);
        char b[256];
        /* past deadline with data available: ETIMEDOUT, data untouched */
        if (write(fds[0], "abc\n", 4) != 4) DIE("w");
        sleep_us(20000);
        cio_set_read_deadline(R, cio_now() - 1);
        ssize_t r = cio_read(R, b, sizeof b);
        if (!(r == -1 && errno == ETIMEDOUT)) FAULT("%s: past deadline read with data: r=%zd errno=%d", kind_names[kind], r, errno);
        r = cio_read_full(R, b, 2);
        if (!(r == -1 && errno == ETIMEDOUT)) FAULT("%s: past deadline read_full: r=%zd errno=%d", kind_names[kind], r, errno);
        cio_set_read_deadline(R, 0);
        /* zero-length read */
        r = cio_read(R, b, 0);
        if (r != 0) FAULT("%s: zero read r=%zd", kind_names[kind], r);
        /* cancel with nothing pending does nothing */
        cio_cancel(R, CIO_READ | CIO_WRITE);
        r = cio_read(R, b, 2);
        if (r != 2 || memcmp(b, "ab", 2)) FAULT("%s: read after idle cancel r=%zd errno=%d", kind_names[kind], r, errno);
        r = cio_read(R, b, sizeof b);
        if (r != 2 || memcmp(b, "c\n", 2)) FAULT("%s: read rest r=%zd errno=%d", kind_names[kind], r, errno);
        if (kind != K_SEQ) {
            /* read_until leaves bytes held; then recv/readv/read serve them */
            if (write(fds[0], "line1\nline2\nline3", 17) != 17) DIE("w");
            sleep_us(20000);
            r = cio_read_until(R, b, sizeof b, "\n", 1);
            if (r != 6 || memcmp(b, "line1\n", 6)) FAULT("%s: read_until r=%zd", kind_names[kind], r);
            size_t held = cio_unread(R);
            if (is_sock(kind)) {
                r = cio_recv(R, b, 3, MSG_PEEK);
                if (r != 3 || memcmp(b, "lin", 3)) FAULT("%s: recv PEEK with held %zu: r=%zd '%.*s'", kind_names[kind], held, r, r > 0 ? (int)r : 0, b);
                size_t held2 = cio_unread(R);
                if (held2 != held) FAULT("%s: MSG_PEEK changed held bytes %zu -> %zu", kind_names[kind], held, held2);
            }
            struct iovec v[2] = {{b, 2}, {b + 2, 4}};
            r = cio_readv(R, v, 2);
            if (r != 6 || memcmp(b, "line2\n", 6)) FAULT("%s: readv after held r=%zd '%.*s'", kind_names[kind], r, r > 0 ? (int)r : 0, b);
            r = cio_read(R, b, sizeof b);
            if (r != 5 || memcmp(b, "line3", 5)) FAULT("%s: read last r=%zd '%.*s'", kind_names[kind], r, r > 0 ? (int)r : 0, b);
            /* read_until timeout keeps everything */
            if (write(fds[0], "partial", 7) != 7) DIE("w");
            cio_set_read_deadline(R, cio_after_ms(50));
            r = cio_read_until(R, b, sizeof b, "\n", 1);
            if (!(r == -1 && errno == ETIMEDOUT)) FAULT("%s: read_until no delim r=%zd errno=%d", kind_names[kind], r, errno);
            if (cio_unread(R) != 7) FAULT("%s: held after timeout %zu", kind_names[kind], cio_unread(R));
            cio_set_read_deadline(R, 0);
            if (write(fds[0], "X\n", 2) != 2) DIE("w");
            r = cio_read_until(R, b, sizeof b, "\n", 1);
            if (r != 9 || memcmp(b, "partialX\n", 9)) FAULT("%s: read_until after timeout r=%zd '%.*s'", kind_names[kind], r, r > 0 ? (int)r : 0, b);
            /* multi-byte delimiter split across two writes */
            if (write(fds[0], "ab\r", 3) != 3) DIE("w");
            cio_set_read_deadline(R, cio_after_ms(50));
            r = cio_read_until(R, b, sizeof b, "\r\n", 2);
            if (!(r == -1 && errno == ETIMEDOUT)) FAULT("%s: rn r=%zd", kind_names[kind], r);
            cio_set_read_deadline(R, 0);
            if (write(fds[0], "\nzz", 3) != 3) DIE("w");
            r = cio_read_until(R, b, sizeof b, "\r\n", 2);
            if (r != 4 || memcmp(b, "ab\r\n", 4)) FAULT("%s: split delim r=%zd '%.*s'", kind_names[kind], r, r > 0 ? (int)r : 0, b);
            /* ENOBUFS keeps bytes */
            r = cio_read_until(R, b, 1, "\n", 1);
            if (!(r == -1 && errno == ENOBUFS)) FAULT("%s: ENOBUFS r=%zd errno %d", kind_names[kind], r, errno);
            r = cio_read(R, b, sizeof b);
            if (r != 2 || memcmp(b, "zz", 2)) FAULT("%s: after ENOBUFS r=%zd", kind_names[kind], r);
            /* detach with held bytes: not seekable -> lost (documented); just check fd */
        }
        /* recv MSG_WAITALL interrupted by deadline after partial data */
        if (kind == K_UNIX || kind == K_TCP) {
            if (write(fds[0], "12345", 5) != 5) DIE("w");
            cio_set_read_deadline(R, cio_after_ms(100));
            r = cio_recv(R, b, 10, MSG_WAITALL);
            int e = errno;
            cio_set_read_deadline(R, 0);
            if (r == -1) {
                /* must have consumed nothing */
                if (write(fds[0], "67890", 5) != 5) DIE("w");
                ssize_t r2 = cio_recv(R, b, 10, MSG_WAITALL);
                printf("%s: recv WAITALL timed out (errno %d); next recv r=%zd '%.*s'\n", kind_names[kind], e, r2, r2 > 0 ? (int)r2 : 0, b);
                if (r2 != 10) FAULT("%s: WAITALL bytes lost", kind_names[kind]);
            } else {
                printf("%s: recv WAITALL partial r=%zd\n", kind_names[kind], r);
                if (r != 5) FAULT("WAITALL r=%zd", r);
            }
        }
        cio_close(R);
        close(fds[0]);
    }
    printf("faults=%d\n", faults);
    return faults != 0;
}
