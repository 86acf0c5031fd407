/* An open file description lock (F_OFD_SETLK, read lock on bytes 0-99) held at the checkpoint:
 * after restore a write lock on another description of the file is refused. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int fd = open(cf_path("locked"), O_RDWR | O_CREAT, 0600);
    struct flock l = {.l_type = F_RDLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
    if (fcntl(fd, F_OFD_SETLK, &l)) return 3;
    sc_ready();
    sc_wait_go();
    int other = open(cf_path("locked"), O_RDWR);
    struct flock w = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 50, .l_len = 1};
    sc_check(fcntl(other, F_OFD_SETLK, &w) < 0 && (errno == EAGAIN || errno == EACCES), "still held", "errno %d", errno);
    return sc_done();
}
