/* Must be refused (packet boundaries are not kept in the image): a pipe in packet mode (O_DIRECT)
 * with three packets queued.  After the refusal the packets are still three, whole: the
 * checkpoint read them and put them back as they were. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int pkt[2];
    if (pipe2(pkt, O_DIRECT)) return 3;
    if (write(pkt[1], "one", 3) != 3 || write(pkt[1], "second", 6) != 6 || write(pkt[1], "3", 1) != 1) return 3;
    sc_ready();
    sc_wait_go();
    fcntl(pkt[0], F_SETFL, O_NONBLOCK);
    char buf[16] = {0};
    ssize_t a = read(pkt[0], buf, sizeof buf);
    ssize_t b = read(pkt[0], buf + 4, sizeof buf - 4);
    ssize_t c = read(pkt[0], buf + 11, 4);
    sc_check(a == 3 && b == 6 && c == 1 && memcmp(buf, "one", 3) == 0 && memcmp(buf + 4, "second", 6) == 0,
             "three packets, whole", "reads %zd %zd %zd", a, b, c);
    sc_check(read(pkt[0], buf, 1) < 0 && errno == EAGAIN, "and nothing else", "%s", "");
    return sc_done();
}
