/* A pipe in packet mode (O_DIRECT) with three packets queued,
 * and a second pipe whose writer cleared O_DIRECT after writing two packets.  After restore: the
 * packets come out whole, one per read, in order; each write end's F_GETFL is as it was, and a
 * write after the restore is a packet of its own (and, where O_DIRECT is off, plain bytes after the
 * packets, which no read merges with them). */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int pkt[2], mixed[2];
    if (pipe2(pkt, O_DIRECT) || pipe2(mixed, O_DIRECT)) return 3;
    if (write(pkt[1], "one", 3) != 3 || write(pkt[1], "second", 6) != 6 || write(pkt[1], "3", 1) != 1) return 3;
    if (write(mixed[1], "ab", 2) != 2 || write(mixed[1], "cde", 3) != 3) return 3;
    if (fcntl(mixed[1], F_SETFL, fcntl(mixed[1], F_GETFL) & ~O_DIRECT)) return 3;
    int fl_pkt = fcntl(pkt[1], F_GETFL), fl_mixed = fcntl(mixed[1], F_GETFL);
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(pkt[1], F_GETFL) == fl_pkt && fcntl(mixed[1], F_GETFL) == fl_mixed, "F_GETFL of the write ends",
             "%#x %#x, were %#x %#x", fcntl(pkt[1], F_GETFL), fcntl(mixed[1], F_GETFL), fl_pkt, fl_mixed);
    fcntl(pkt[0], F_SETFL, O_NONBLOCK);
    fcntl(mixed[0], F_SETFL, O_NONBLOCK);
    if (write(pkt[1], "four", 4) != 4) sc_check(0, "a write after the restore", "%s", strerror(errno));
    char buf[32] = {0};
    ssize_t a = read(pkt[0], buf, sizeof buf);
    ssize_t b = read(pkt[0], buf + 4, sizeof buf - 4);
    ssize_t c = read(pkt[0], buf + 11, 4);
    ssize_t d = read(pkt[0], buf + 16, sizeof buf - 16);
    sc_check(a == 3 && b == 6 && c == 1 && d == 4 && memcmp(buf, "one", 3) == 0 && memcmp(buf + 4, "second", 6) == 0 &&
             buf[11] == '3' && memcmp(buf + 16, "four", 4) == 0, "four packets, whole, in order",
             "reads %zd %zd %zd %zd", a, b, c, d);
    if (write(mixed[1], "f", 1) != 1) sc_check(0, "a write after the restore", "%s", strerror(errno));
    memset(buf, 0, sizeof buf);
    a = read(mixed[0], buf, sizeof buf);
    b = read(mixed[0], buf + 8, sizeof buf - 8);
    c = read(mixed[0], buf + 16, sizeof buf - 16);
    sc_check(a == 2 && b == 3 && c == 1 && memcmp(buf, "ab", 2) == 0 && memcmp(buf + 8, "cde", 3) == 0 &&
             buf[16] == 'f', "packets written while O_DIRECT was on stay packets", "reads %zd %zd %zd", a, b, c);
    return sc_done();
}
