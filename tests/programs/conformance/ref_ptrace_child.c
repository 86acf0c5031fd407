/* Must be refused: a child the job itself traces (PTRACE_ATTACH'd and stopped). */
#include "cf.h"
#include <sys/ptrace.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pid_t child = fork();
    if (child == 0) {
        for (;;) pause();
    }
    if (ptrace(PTRACE_ATTACH, child, 0, 0)) return 3;
    int st;
    waitpid(child, &st, 0);
    cf_culprit(child);
    sc_ready();
    sc_wait_go();
    sc_check(strcmp(cf_field("/proc/self/status", "Pid:"), "") != 0, "still running", "%s", "");
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", child);
    sc_check(atoi(cf_field(path, "TracerPid:")) == getpid(), "still our tracee", "%s", cf_field(path, "TracerPid:"));
    kill(child, SIGKILL);
    waitpid(child, &st, 0);
    return sc_done();
}
