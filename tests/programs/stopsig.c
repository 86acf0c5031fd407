/* A process stopped by SIGTSTP (the terminal's ^Z) must come back stopped by
 * SIGTSTP: its parent's waitpid(WUNTRACED) says so, and SIGCONT resumes it.
 * The test sends the SIGTSTP before the checkpoint.
 *
 *   stopsig OUT READY GO child        me --fork--> C, in a process group of its own
 *                                     (so that SIGTSTP stops it); the test stops C;
 *                                     after restore me checks C's stop, continues it
 *   stopsig OUT READY GO root         a launcher L --fork--> J, in a group of its own; J
 *                                     is the job (READY holds its PID); the test stops J
 *                                     and, after restore (it is then J's parent), checks
 *                                     the stop and continues J, which checks its SIGCONT
 *   stopsig OUT READY GO root-shared  as root, but J stays in L's process group, which
 *                                     is not orphaned thanks to a helper X in L's group
 *                                     whose parent M has a group of its own */
#include "selfcheck.h"
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>

static volatile sig_atomic_t continued;

static void on_cont(int sig) { (void)sig; continued = 1; }

static void catch_cont(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_cont;
    if (sigaction(SIGCONT, &sa, NULL)) _exit(10);
}

static void *sleeper(void *arg)
{
    (void)arg;
    for (;;) {
        struct timespec ts = { 0, 1000000 };
        nanosleep(&ts, NULL);
    }
    return NULL;
}

/* "T (stopped)" in /proc/PID/task/TID/status for every thread; else the first other state. */
static int all_stopped(pid_t pid, char *state, size_t len)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", (int)pid);
    DIR *d = opendir(path);
    if (!d) {
        snprintf(state, len, "%s", strerror(errno));
        return 0;
    }
    int ok = 1, threads = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') continue;
        char file[512], line[256];
        snprintf(file, sizeof file, "%s/%s/status", path, e->d_name);
        FILE *f = fopen(file, "r");
        if (!f) continue;
        while (fgets(line, sizeof line, f))
            if (strncmp(line, "State:", 6) == 0) {
                threads++;
                if (!strstr(line, "T (stopped)")) {
                    ok = 0;
                    snprintf(state, len, "thread %.16s: %.200s", e->d_name, line + 7);
                }
            }
        fclose(f);
    }
    closedir(d);
    if (ok) snprintf(state, len, "%d threads stopped", threads);
    return ok && threads > 0;
}

static int child_mode(void)
{
    int ready[2], ask[2], answer[2];
    if (pipe(ready) || pipe(ask) || pipe(answer)) return 20;
    pid_t c = fork();
    if (c == 0) {
        setpgid(0, 0);
        catch_cont();
        pthread_t t;
        if (pthread_create(&t, NULL, sleeper, NULL)) _exit(21);
        if (write(ready[1], "r", 1) != 1) _exit(22);
        char b;
        if (read(ask[0], &b, 1) != 1) _exit(23);
        char got = continued ? 'y' : 'n';
        if (write(answer[1], &got, 1) != 1) _exit(24);
        _exit(0);
    }
    setpgid(c, c);
    close(ready[1]), close(ask[0]), close(answer[1]);   /* a dead child reads as end of file */
    char b;
    if (read(ready[0], &b, 1) != 1) return 25;
    sc_ready();
    sc_wait_go();

    int st = 0;
    pid_t got = waitpid(c, &st, WUNTRACED | WNOHANG);
    sc_check(got == c && WIFSTOPPED(st), "the parent sees the child stopped", "waitpid gives %d, status %#x", got,
             st);
    sc_check(got == c && WIFSTOPPED(st) && WSTOPSIG(st) == SIGTSTP, "stopped by SIGTSTP",
             "stopped by signal %d", WIFSTOPPED(st) ? WSTOPSIG(st) : 0);
    char state[256];
    int stopped = all_stopped(c, state, sizeof state);
    sc_check(stopped, "every thread of the child stopped", "%s", state);
    kill(c, SIGCONT);
    got = waitpid(c, &st, WCONTINUED);
    sc_check(got == c && WIFCONTINUED(st), "the parent sees it continued", "waitpid gives %d, status %#x", got, st);
    if (write(ask[1], "?", 1) != 1) return 26;
    char answered = 0;
    if (read(answer[0], &answered, 1) != 1) answered = 0;
    sc_check(answered == 'y', "the child's SIGCONT handler ran", "it says '%c'", answered ? answered : '0');
    got = waitpid(c, &st, 0);
    sc_check(got == c && WIFEXITED(st) && WEXITSTATUS(st) == 0, "the child exits", "status %#x", st);
    return sc_done();
}

static int job(void)
{
    catch_cont();
    sc_ready();
    sc_wait_go();
    sc_check(continued, "SIGCONT handler ran", "no SIGCONT arrived");
    return sc_done();
}

/* M (a group of its own) --fork--> X, which joins L's group: a member of it whose
 * parent is in another group of the session, so L's group is not orphaned. */
static void keep_group_linked(void)
{
    pid_t group = getpgrp();
    int ready[2];
    if (pipe(ready)) _exit(30);
    if (fork() == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);        /* ends with L */
        setpgid(0, 0);
        if (fork() == 0) {
            prctl(PR_SET_PDEATHSIG, SIGKILL);    /* ends with M */
            if (setpgid(0, group)) _exit(31);
            if (write(ready[1], "x", 1) != 1) _exit(32);
            for (;;)
                pause();
        }
        for (;;)
            pause();
    }
    char b;
    if (read(ready[0], &b, 1) != 1) _exit(33);
}

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    const char *mode = argc > 4 ? argv[4] : "child";
    if (strcmp(mode, "child") == 0)
        return child_mode();
    if (strcmp(mode, "root-shared") == 0)
        keep_group_linked();
    pid_t j = fork();
    if (j == 0) {
        if (strcmp(mode, "root") == 0)
            setpgid(0, 0);
        return job();
    }
    if (strcmp(mode, "root") == 0)
        setpgid(j, j);
    int st;
    while (waitpid(j, &st, 0) < 0 && errno == EINTR)   /* not WUNTRACED: J's stop is for its next parent */
        ;
    return 0;
}
