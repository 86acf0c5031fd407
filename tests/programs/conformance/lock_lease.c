/* A read lease (F_SETLEASE) on a file: F_GETLEASE after restore. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    close(open(cf_path("leased"), O_CREAT | O_WRONLY, 0600));
    int fd = open(cf_path("leased"), O_RDONLY);
    if (fcntl(fd, F_SETLEASE, F_RDLCK)) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(fd, F_GETLEASE) == F_RDLCK, "F_GETLEASE", "%d", fcntl(fd, F_GETLEASE));
    return sc_done();
}
