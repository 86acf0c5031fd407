/* Threads with credentials of their own, set by raw syscalls (glibc's set*id() would change every
 * thread): one with uid and gid 99, groups 5 and 6 and no_new_privs; one with only its effective
 * uid 1000 and fs uid 0 (effective capabilities cleared but the file-system ones, permitted kept);
 * one with uid 65534 that kept its permitted capabilities (PR_SET_KEEPCAPS) and has one effective;
 * the main thread stays root with gid 8 and groups 100, 200, 300.  After restore each thread checks
 * its own.   threadcreds OUT READY GO */
#include "selfcheck.h"
#include "credstate.h"
#include <pthread.h>

#define N 4
static struct credstate before[N], after[N];
static int failed[N];
static volatile int set_count, go;

static int set_caps(uint64_t eff, uint64_t prm, uint64_t inh)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
        {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)},
    };
    return (int)syscall(SYS_capset, &h, d);
}

static int setup(int i)
{
    static const gid_t g99[] = {5, 6}, groot[] = {100, 200, 300};
    struct credstate s;
    switch (i) {
    case 0:
        if (syscall(SYS_setgroups, 3, groot) || syscall(SYS_setresgid, 8, 8, 8))
            return 1;
        return 0;
    case 1:
        if (syscall(SYS_setgroups, 2, g99) || syscall(SYS_setresgid, 99, 99, 99) ||
            syscall(SYS_setresuid, 99, 99, 99) || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
            return 1;
        return 0;
    case 2:
        if (syscall(SYS_setresuid, 0, 1000, 0))
            return 1;
        syscall(SYS_setfsuid, 0);        /* allowed: its real uid; raises the file-system capabilities */
        return 0;
    case 3:
        if (prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || syscall(SYS_setresgid, 65534, 65534, 65534) ||
            syscall(SYS_setgroups, 0, NULL) || syscall(SYS_setresuid, 65534, 65534, 65534))
            return 1;
        credstate_read(&s);
        if (s.prm == 0 || set_caps(1ull << CAP_NET_BIND_SERVICE, s.prm, 0))
            return 2;
        return 0;
    }
    return 9;
}

static void *thread_main(void *arg)
{
    int i = (int)(intptr_t)arg;
    failed[i] = setup(i);
    credstate_read(&before[i]);
    __atomic_add_fetch(&set_count, 1, __ATOMIC_SEQ_CST);
    while (!go)
        usleep(1000);
    credstate_read(&after[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t t[N];
    static const char *names[N] = {"main thread", "thread uid 99", "thread euid 1000", "thread uid 65534"};
    sc_init(argc, argv);
    for (int i = 1; i < N; i++)
        if (pthread_create(&t[i], NULL, thread_main, (void *)(intptr_t)i))
            return 3;
    while (set_count < N - 1)
        usleep(1000);
    failed[0] = setup(0);
    credstate_read(&before[0]);
    sc_ready();
    sc_wait_go();
    credstate_read(&after[0]);
    go = 1;
    for (int i = 1; i < N; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < N; i++) {
        char what[64];
        snprintf(what, sizeof what, "%s set up", names[i]);
        sc_check(!failed[i], what, "step %d failed", failed[i]);
        credstate_compare(names[i], &before[i], &after[i]);
    }
    sc_check(before[1].uid[0] == 99 && before[2].uid[1] == 1000 && before[2].uid[3] == 0 &&
             before[3].prm != 0 && before[0].gid[0] == 8, "threads differ",
             "uids %u %u %u, fsuid %u, permitted %#llx", before[1].uid[0], before[2].uid[1], before[3].uid[0],
             before[2].uid[3], (unsigned long long)before[3].prm);
    return sc_done();
}
