/* A POSIX record lock (F_SETLK, bytes 10-19 write-locked) held at the checkpoint: a child asking
 * F_GETLK after restore sees it, owned by our PID. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int fd = open(cf_path("locked"), O_RDWR | O_CREAT, 0600);
    struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 10, .l_len = 10};
    if (fcntl(fd, F_SETLK, &l)) return 3;
    sc_ready();
    sc_wait_go();
    pid_t me = getpid(), child = fork();
    if (child == 0) {
        cf_sub("child");
        int f = open(cf_path("locked"), O_RDWR);
        struct flock q = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 100};
        fcntl(f, F_GETLK, &q);
        sc_check(q.l_type == F_WRLCK && q.l_start == 10 && q.l_len == 10 && q.l_pid == me, "F_GETLK sees our lock",
                 "type %d start %lld len %lld pid %d", q.l_type, (long long)q.l_start, (long long)q.l_len, q.l_pid);
        exit(sc_done());
    }
    cf_collect("child", child);
    return sc_done();
}
