/* flock(2) LOCK_EX held at the checkpoint: after restore another process still cannot take it,
 * and can once we release it. */
#include "cf.h"
#include <sys/file.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int fd = open(cf_path("locked"), O_RDWR | O_CREAT, 0600);
    if (flock(fd, LOCK_EX)) return 3;
    sc_ready();
    sc_wait_go();
    int other = open(cf_path("locked"), O_RDWR);
    sc_check(flock(other, LOCK_EX | LOCK_NB) < 0 && errno == EWOULDBLOCK, "still held", "errno %d", errno);
    flock(fd, LOCK_UN);
    sc_check(flock(other, LOCK_EX | LOCK_NB) == 0, "released", "errno %d", errno);
    return sc_done();
}
