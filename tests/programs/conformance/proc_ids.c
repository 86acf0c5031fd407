/* Identity after restore: getpid, gettid, getppid, getpgrp, getsid, and /proc/self pointing at us. */
#include "cf.h"

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pid_t pid = getpid(), tid = cf_gettid(), pgrp = getpgrp(), sid = getsid(0);
    sc_ready();
    sc_wait_go();
    sc_check(getpid() == pid, "getpid", "%d, before %d", getpid(), pid);
    sc_check(cf_gettid() == tid && tid == pid, "gettid", "%d, before %d", cf_gettid(), tid);
    sc_check(getpgrp() == pgrp, "getpgrp", "%d, before %d", getpgrp(), pgrp);
    sc_check(getsid(0) == sid, "getsid", "%d, before %d", getsid(0), sid);
    sc_check(getppid() > 0 && kill(getppid(), 0) == 0, "a live parent", "%d", getppid());
    char link[64];
    ssize_t n = readlink("/proc/self", link, sizeof link - 1);
    link[n > 0 ? n : 0] = 0;
    sc_check(atoi(link) == pid, "/proc/self", "%s", link);
    sc_check(atoi(cf_field("/proc/self/status", "Tgid:")) == pid && atoi(cf_field("/proc/self/status", "Pid:")) == pid,
             "/proc/self/status Tgid and Pid", "%s", "");
    return sc_done();
}
