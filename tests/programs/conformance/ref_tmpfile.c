/* Must be refused: an O_TMPFILE file (never had a name) holding data. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int fd = open(cf_work, O_TMPFILE | O_RDWR, 0600);
    if (fd < 0 || write(fd, "anon", 4) != 4) return 3;
    sc_ready();
    sc_wait_go();
    char buf[4];
    sc_check(pread(fd, buf, 4, 0) == 4, "data still readable", "%s", "");
    return sc_done();
}
