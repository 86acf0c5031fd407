/* The dumpable flag (PR_SET_DUMPABLE), which decides who owns /proc/PID and who
 * may ptrace the process.
 *
 *   dumpable OUT READY GO 1    keep it dumpable (run it as a non-root user: its own
 *                              /proc/self must stay its own after a restore by root)
 *   dumpable OUT READY GO 0    make itself non-dumpable first */
#include "selfcheck.h"
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

static void check_owner(const char *path, uid_t want)
{
    struct stat st;
    if (stat(path, &st)) {
        sc_check(0, path, "stat: %s", strerror(errno));
        return;
    }
    sc_check(st.st_uid == want, path, "owned by %u, not %u", (unsigned)st.st_uid, (unsigned)want);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    int want = argc > 4 ? atoi(argv[4]) : 1;
    if (!want && prctl(PR_SET_DUMPABLE, 0)) return 20;
    uid_t uid = getuid(), euid = geteuid();
    sc_ready();
    sc_wait_go();

    sc_check(getuid() == uid && geteuid() == euid, "user ids", "uid %u euid %u", (unsigned)getuid(),
             (unsigned)geteuid());
    int now = prctl(PR_GET_DUMPABLE);
    sc_check(now == want, "dumpable", "PR_GET_DUMPABLE gives %d, not %d", now, want);
    uid_t owner = want ? euid : 0;   /* a non-dumpable process's /proc/PID belongs to root */
    check_owner("/proc/self/status", owner);
    check_owner("/proc/self/fd", owner);
    /* Another process of the same user (not the process itself, which may always
     * read its own /proc/self/fd) lists its descriptors. */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)getpid());
    pid_t reader = fork();
    if (reader == 0) {
        DIR *d = opendir(path);
        _exit(d ? 0 : errno);
    }
    int st = 0;
    waitpid(reader, &st, 0);
    int got = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
    int expect = want || euid == 0 ? 0 : EACCES;
    sc_check(got == expect, "its user lists its descriptors", "opendir %s by a process of uid %u: %s", path,
             (unsigned)euid, got ? strerror(got) : "works");
    return sc_done();
}
