/* Must be refused: a pseudo-terminal master and its slave (not stdio). */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int m = posix_openpt(O_RDWR | O_NOCTTY);
    if (m < 0 || grantpt(m) || unlockpt(m)) return 3;
    int s = open(ptsname(m), O_RDWR | O_NOCTTY);
    if (s < 0) return 3;
    sc_ready();
    sc_wait_go();
    char c;
    sc_check(write(m, "x\n", 2) == 2 && read(s, &c, 1) == 1 && c == 'x', "terminal still works", "%s", "");
    return sc_done();
}
