/* A process whose descriptor or sharing state a restore could not give back
 * faithfully, so that the checkpoint must refuse it:   fdrefuse KIND READY
 *   owner-outside   a pipe owned (F_SETOWN) by our parent, outside the job
 *   async-dup       O_ASYNC + F_SETSIG on a pipe held as two numbers (si_fd?)
 *   stdio-async     O_ASYNC on stdin, a pipe from the launcher
 *   thread-files    a thread with a descriptor table of its own (unshare)
 *   clone-vm        a child sharing our memory (clone(CLONE_VM))
 *   sibling-files   two children sharing a table we no longer share
 * Writes "PID TID-or-child\n" to READY, then waits until killed. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static volatile int other;

static void *unshared(void *arg)
{
    (void)arg;
    if (unshare(CLONE_FILES) != 0) exit(3);
    other = (int)syscall(SYS_gettid);
    for (;;) pause();
    return NULL;
}

static int idle(void *arg)
{
    (void)arg;
    for (;;) pause();
    return 0;
}

static pid_t spawn(int flags)
{
    char *stack = malloc(65536);
    pid_t pid = clone(idle, stack + 65536, flags | SIGCHLD, NULL);
    if (pid < 0) exit(3);
    return pid;
}

static void async(int fd, int sig)
{
    fcntl(fd, F_SETSIG, sig);
    if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_ASYNC) != 0) exit(3);
}

int main(int argc, char **argv)
{
    if (argc != 3) { fprintf(stderr, "usage: fdrefuse KIND READY\n"); return 2; }
    const char *kind = argv[1];
    int p[2];
    if (pipe(p)) return 3;
    if (!strcmp(kind, "owner-outside")) {
        fcntl(p[0], F_SETOWN, getppid());
        other = p[0];
    } else if (!strcmp(kind, "async-dup")) {
        fcntl(p[0], F_SETOWN, getpid());
        async(p[0], SIGUSR1);
        other = dup(p[0]);
    } else if (!strcmp(kind, "stdio-async")) {
        fcntl(0, F_SETOWN, getpid());
        async(0, 0);
        other = 0;
    } else if (!strcmp(kind, "thread-files")) {
        pthread_t t;
        pthread_create(&t, NULL, unshared, NULL);
        while (!other) usleep(1000);
    } else if (!strcmp(kind, "clone-vm")) {
        other = spawn(CLONE_VM);
    } else if (!strcmp(kind, "sibling-files")) {
        other = spawn(CLONE_FILES);
        spawn(CLONE_FILES);
        if (unshare(CLONE_FILES) != 0) return 3;
    } else {
        return 2;
    }
    FILE *f = fopen(argv[2], "w");
    fprintf(f, "%d %d\n", getpid(), other);
    fclose(f);
    for (;;) pause();
}
