/* seccomp filters: with no_new_privs, two filters in a chain, installed with TSYNC while a second
 * thread runs: the first makes getppid fail with EPERM (and logs, SECCOMP_FILTER_FLAG_LOG), the
 * second makes getpgid fail with EACCES.  After restore, in both threads: both filters act, the
 * status shows mode 2 and two filters, no_new_privs is on, and everything else still works. */
#include "cf.h"
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/prctl.h>

static int install(int nr, int err, unsigned flags)
{
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nr, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = 4, .filter = f};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
}

static int filtered(void)
{
    errno = 0;
    int a = syscall(SYS_getppid) == -1 && errno == EPERM;
    errno = 0;
    int b = syscall(SYS_getpgid, 0) == -1 && errno == EACCES;
    return a && b && getpid() > 0;
}

static volatile int go_thread, thread_ok = -1;

static void *second(void *arg)
{
    (void)arg;
    while (!go_thread) usleep(1000);
    thread_ok = filtered();
    return NULL;
}

static long status_field(const char *name)
{
    char line[256];
    long v = -1;
    FILE *f = fopen("/proc/self/status", "r");
    size_t n = strlen(name);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, name, n) == 0 && line[n] == ':') v = strtol(line + n + 1, NULL, 10);
    if (f) fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    pthread_t t;
    if (pthread_create(&t, NULL, second, NULL)) return 3;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) return 3;
    if (install(SYS_getppid, EPERM, SECCOMP_FILTER_FLAG_TSYNC | SECCOMP_FILTER_FLAG_LOG) ||
        install(SYS_getpgid, EACCES, SECCOMP_FILTER_FLAG_TSYNC))
        return 3;
    if (!filtered()) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(filtered(), "both filters act", "%s", "");
    sc_check(status_field("Seccomp") == 2 && status_field("Seccomp_filters") == 2, "mode 2, two filters",
             "Seccomp %ld, filters %ld", status_field("Seccomp"), status_field("Seccomp_filters"));
    sc_check(status_field("NoNewPrivs") == 1, "no_new_privs", "%ld", status_field("NoNewPrivs"));
    go_thread = 1;
    pthread_join(t, NULL);
    sc_check(thread_ok == 1, "both filters act in the other thread", "%d", thread_ok);
    void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    sc_check(m != MAP_FAILED && munmap(m, 1 << 20) == 0, "other calls still pass", "%s", strerror(errno));
    return sc_done();
}
