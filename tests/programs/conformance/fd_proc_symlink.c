/* Descriptors of /proc (our own status, read part way; a child's stat; our fd directory) and an
 * O_PATH descriptor of a symbolic link itself.  After restore: each names the same thing as
 * before (the link /proc shows), with its flags and offset; the /proc files read the processes
 * as they are now (our PID, the child's); the O_PATH one is still the link (fstat: S_ISLNK,
 * readlinkat: its target). */
#include "cf.h"
#include <dirent.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    if (symlink("/etc/hostname", cf_path("lnk"))) return 3;
    int lnk = open(cf_path("lnk"), O_PATH | O_NOFOLLOW);
    int status = open("/proc/self/status", O_RDONLY);
    char buf[4096];
    if (lnk < 0 || status < 0 || read(status, buf, 10) != 10) return 3;
    int gate[2];
    cf_gate_open(gate);
    pid_t child = fork();
    if (child == 0) {
        cf_gate_pass(gate);
        sc_wait_go();
        _exit(0);
    }
    cf_gate_wait(gate, 1);
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/stat", child);
    int cstat = open(path, O_RDONLY);
    int fddir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY);
    if (cstat < 0 || fddir < 0) return 3;
    int fds[] = {lnk, status, cstat, fddir}, flags[4];
    char names[4][4096];
    for (int i = 0; i < 4; i++) {
        flags[i] = fcntl(fds[i], F_GETFL);
        snprintf(names[i], sizeof names[i], "%s", cf_fd_link(fds[i]));
    }
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < 4; i++) {
        sc_check(fcntl(fds[i], F_GETFL) == flags[i], "flags", "fd %d: %#o, was %#o", fds[i], fcntl(fds[i], F_GETFL),
                 flags[i]);
        cf_same(names[i], cf_fd_link(fds[i]), "what /proc says it is");
    }
    sc_check(lseek(status, 0, SEEK_CUR) == 10, "the status file's offset", "%lld", (long long)lseek(status, 0, SEEK_CUR));
    ssize_t n = pread(status, buf, sizeof buf - 1, 0);
    buf[n < 0 ? 0 : n] = 0;
    char want[64];
    snprintf(want, sizeof want, "\nPid:\t%d\n", getpid());
    sc_check(strstr(buf, want) != NULL, "it reads us as we are", "%.80s", buf);
    n = pread(cstat, buf, sizeof buf - 1, 0);
    buf[n < 0 ? 0 : n] = 0;
    sc_check(atoi(buf) == child, "the child's stat reads the child", "%.40s", buf);
    struct stat st;
    sc_check(fstatat(lnk, "", &st, AT_EMPTY_PATH) == 0 && S_ISLNK(st.st_mode), "the O_PATH descriptor is the link",
             "mode %o", st.st_mode);
    n = readlinkat(lnk, "", buf, sizeof buf - 1);
    buf[n < 0 ? 0 : n] = 0;
    sc_check(strcmp(buf, "/etc/hostname") == 0, "its target", "%s", buf);
    int s;
    sc_check(waitpid(child, &s, 0) == child && WIFEXITED(s), "the child", "%#x", s);
    return sc_done();
}
