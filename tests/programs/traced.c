/* A child held under ptrace by its parent: traced READYFILE
 * Writes the child's PID to READYFILE and waits until killed. */
#include <signal.h>
#include <stdio.h>
#include <sys/ptrace.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    pid_t child = fork();
    if (child == 0) {
        for (;;) pause();
    }
    if (ptrace(PTRACE_SEIZE, child, 0, 0)) { perror("seize"); return 1; }
    FILE *f = fopen(argv[1], "w");
    fprintf(f, "%d\n", child);
    fclose(f);
    int st;
    waitpid(child, &st, __WALL);
    return 0;
}
