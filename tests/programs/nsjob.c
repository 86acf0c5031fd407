/* A job whose namespaces are not its launcher's, which incr must refuse to checkpoint (a restore
 * would put it in incr's): started by unshare(1) in namespaces of its own, or making its own:
 *   nsjob OUT READY GO [thread-uts | thread-net | pid-for-children | time-for-children]
 * thread-uts, thread-net: a second thread unshares its UTS (and sets a hostname) or network
 * namespace; pid-for-children, time-for-children: unshare(CLONE_NEWPID / CLONE_NEWTIME) with no
 * child yet (its children would run there).  If it were ever restored, it checks that every
 * namespace of every thread and its hostname are what they were. */
#include "selfcheck.h"
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const char *kinds[] = {"mnt", "net", "uts", "ipc", "cgroup", "time", "user", "pid", "pid_for_children",
                              "time_for_children"};
#define NK (int)(sizeof kinds / sizeof kinds[0])
struct nsstate {
    char links[NK][64];
    char host[64];
};
static struct nsstate main_before, main_after, thr_before, thr_after;
static const char *mode = "";
static volatile int thread_set, go;

static void read_ns(struct nsstate *s)
{
    char path[96];
    memset(s, 0, sizeof *s);
    for (int i = 0; i < NK; i++) {
        snprintf(path, sizeof path, "/proc/thread-self/ns/%s", kinds[i]);
        if (readlink(path, s->links[i], sizeof s->links[i] - 1) < 0)
            strcpy(s->links[i], "?");
    }
    gethostname(s->host, sizeof s->host - 1);
}

static void *thread_main(void *arg)
{
    (void)arg;
    if (!strcmp(mode, "thread-uts")) {
        if (unshare(CLONE_NEWUTS) || sethostname("incr-nsjob", 10))
            exit(10);
    } else if (!strcmp(mode, "thread-net")) {
        if (unshare(CLONE_NEWNET))
            exit(11);
    }
    read_ns(&thr_before);
    thread_set = 1;
    while (!go)
        usleep(1000);
    read_ns(&thr_after);
    return NULL;
}

static void compare(const char *who, const struct nsstate *a, const struct nsstate *b)
{
    char what[96];
    for (int i = 0; i < NK; i++) {
        snprintf(what, sizeof what, "%s %s namespace", who, kinds[i]);
        sc_check(!strcmp(a->links[i], b->links[i]), what, "was %s, now %s", a->links[i], b->links[i]);
    }
    snprintf(what, sizeof what, "%s hostname", who);
    sc_check(!strcmp(a->host, b->host), what, "was %s, now %s", a->host, b->host);
}

int main(int argc, char **argv)
{
    pthread_t t;
    sc_init(argc, argv);
    if (argc > 4)
        mode = argv[4];
    if (pthread_create(&t, NULL, thread_main, NULL))
        return 3;
    while (!thread_set)
        usleep(1000);
    /* After the thread: clone(CLONE_THREAD) fails once they differ */
    if (!strcmp(mode, "pid-for-children") && unshare(CLONE_NEWPID))
        return 12;
    if (!strcmp(mode, "time-for-children") && unshare(CLONE_NEWTIME))
        return 13;
    read_ns(&main_before);
    sc_ready();
    sc_wait_go();
    read_ns(&main_after);
    go = 1;
    pthread_join(t, NULL);
    compare("main thread", &main_before, &main_after);
    compare("second thread", &thr_before, &thr_after);
    return sc_done();
}
