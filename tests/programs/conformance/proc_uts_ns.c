/* A UTS namespace of the job's own: the process unshares one (root) and sets its host and domain
 * names, then forks a child, which shares it.  After restore: both names as set, the child in the
 * same namespace as its parent (the same /proc/PID/ns/uts), neither in the one it was started in,
 * and sethostname still changes only theirs. */
#include "cf.h"
#include <sched.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>

static ino_t ns_of(const char *path)
{
    struct stat st;
    return stat(path, &st) ? 0 : st.st_ino;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    ino_t launcher = ns_of("/proc/self/ns/uts");
    if (!launcher || unshare(CLONE_NEWUTS) || sethostname("incr-cf-uts", 11) || setdomainname("cf.example", 10)) return 3;
    int go[2], back[2];
    if (pipe(go) || pipe(back)) return 3;
    pid_t child = fork();
    if (child == 0) {
        char c, h[65] = {0};
        if (read(go[0], &c, 1) != 1) _exit(2);
        gethostname(h, sizeof h - 1);
        ino_t mine = ns_of("/proc/self/ns/uts");
        if (write(back[1], &mine, sizeof mine) != sizeof mine) _exit(2);
        _exit(strcmp(h, "incr-cf-uts") == 0 ? 0 : 1);
    }
    sc_ready();
    sc_wait_go();
    struct utsname u;
    uname(&u);
    sc_check(strcmp(u.nodename, "incr-cf-uts") == 0, "host name still ours", "%s", u.nodename);
    sc_check(strcmp(u.domainname, "cf.example") == 0, "domain name still ours", "%s", u.domainname);
    ino_t ours = ns_of("/proc/self/ns/uts"), theirs = 0;
    sc_check(ours != 0 && ours != launcher, "a UTS namespace of its own", "%lu", (unsigned long)ours);
    int status = -1;
    sc_check(write(go[1], "x", 1) == 1 && read(back[0], &theirs, sizeof theirs) == sizeof theirs &&
             waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0 && theirs == ours,
             "the child shares it", "status %#x, %lu against %lu", status, (unsigned long)theirs, (unsigned long)ours);
    char h[65] = {0};
    sc_check(sethostname("incr-cf-uts2", 12) == 0 && gethostname(h, sizeof h - 1) == 0 &&
             strcmp(h, "incr-cf-uts2") == 0, "its host name is still its own to change", "%s", h);
    return sc_done();
}
