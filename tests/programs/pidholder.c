/* Holds PIDs for a test, as unrelated processes would:  pidholder READY PID...
 * One child per PID, created with that PID (clone3 set_tid; needs root), each waiting
 * forever and dying with this process; READY gets our PID once all exist. */
#define _GNU_SOURCE
#include <linux/sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    for (int i = 2; i < argc; i++) {
        pid_t want = atoi(argv[i]);
        struct clone_args ca;
        memset(&ca, 0, sizeof ca);
        ca.exit_signal = SIGCHLD;
        ca.set_tid = (uint64_t)(uintptr_t)&want;
        ca.set_tid_size = 1;
        long c = syscall(SYS_clone3, &ca, sizeof ca);
        if (c < 0) {
            perror("clone3");
            return 1;
        }
        if (c == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);
            for (;;)
                pause();
        }
    }
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", argv[1]);
    FILE *f = fopen(tmp, "w");
    if (!f)
        return 4;
    fprintf(f, "%d\n", getpid());
    fclose(f);
    rename(tmp, argv[1]);
    for (;;)
        pause();
}
