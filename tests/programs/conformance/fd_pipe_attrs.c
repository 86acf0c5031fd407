/* Pipes: one resized to 1 MiB (F_SETPIPE_SZ) holding 200 KiB, one in packet mode (O_DIRECT), empty,
 * one with O_NONBLOCK on its write end only: capacity, flags of both ends, the bytes, and packets
 * written after restore keep their boundaries. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int big[2], pkt[2], nb[2];
    if (pipe(big) || pipe2(pkt, O_DIRECT) || pipe(nb)) return 3;
    if (fcntl(big[1], F_SETPIPE_SZ, 1 << 20) < 0) return 3;
    static char data[200 << 10];
    for (size_t i = 0; i < sizeof data; i++) data[i] = (char)(i * 7 + i / 4096);
    if (write(big[1], data, sizeof data) != (ssize_t)sizeof data) return 3;
    fcntl(nb[1], F_SETFL, O_NONBLOCK);
    int cap = fcntl(big[0], F_GETPIPE_SZ);
    int fl[6] = {fcntl(big[0], F_GETFL), fcntl(big[1], F_GETFL), fcntl(pkt[0], F_GETFL), fcntl(pkt[1], F_GETFL),
                 fcntl(nb[0], F_GETFL), fcntl(nb[1], F_GETFL)};
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(big[0], F_GETPIPE_SZ) == cap, "pipe capacity", "%d, before %d", fcntl(big[0], F_GETPIPE_SZ), cap);
    int now[6] = {fcntl(big[0], F_GETFL), fcntl(big[1], F_GETFL), fcntl(pkt[0], F_GETFL), fcntl(pkt[1], F_GETFL),
                  fcntl(nb[0], F_GETFL), fcntl(nb[1], F_GETFL)};
    for (int i = 0; i < 6; i++) {
        char what[48];
        snprintf(what, sizeof what, "status flags of end %d", i);
        sc_check(now[i] == fl[i], what, "%#o, before %#o", now[i], fl[i]);
    }
    if (write(pkt[1], "one", 3) != 3 || write(pkt[1], "second", 6) != 6 || write(pkt[1], "3", 1) != 1) return 3;
    char buf[16] = {0};
    ssize_t a = read(pkt[0], buf, sizeof buf);
    ssize_t b = read(pkt[0], buf + 4, sizeof buf - 4);
    ssize_t c = read(pkt[0], buf + 11, 4);
    sc_check(a == 3 && b == 6 && c == 1 && memcmp(buf, "one", 3) == 0 && memcmp(buf + 4, "second", 6) == 0,
             "packet boundaries kept", "reads %zd %zd %zd", a, b, c);
    static char back[200 << 10];
    size_t got = 0;
    while (got < sizeof back) {
        ssize_t n = read(big[0], back + got, sizeof back - got);
        if (n <= 0) break;
        got += (size_t)n;
    }
    sc_check(got == sizeof back && memcmp(back, data, sizeof data) == 0, "200 KiB queued in the big pipe", "got %zu",
             got);
    static char fill[1 << 17];
    ssize_t w, total = 0;
    while ((w = write(nb[1], fill, sizeof fill)) > 0) total += w;
    sc_check(w < 0 && errno == EAGAIN && total == 65536, "non-blocking end: EAGAIN at the default 64 KiB", "total %zd",
             total);
    return sc_done();
}
