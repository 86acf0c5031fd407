/* Must be refused: a regular file open and then unlinked (its data exists nowhere else). */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int fd = open(cf_path("gone"), O_RDWR | O_CREAT, 0600);
    if (write(fd, "precious", 8) != 8) return 3;
    unlink(cf_path("gone"));
    sc_ready();
    sc_wait_go();
    char buf[8];
    sc_check(pread(fd, buf, 8, 0) == 8 && memcmp(buf, "precious", 8) == 0, "data still readable", "%s", "");
    return sc_done();
}
