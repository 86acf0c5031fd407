/* Capabilities per thread: a root process whose main thread dropped some effective and permitted
 * capabilities, raised inheritable ones (one of them then dropped from the bounding set), raised an
 * ambient one, dropped two from the bounding set and set securebits (KEEP_CAPS, NO_CAP_AMBIENT_RAISE,
 * NOROOT_LOCKED); a second thread with other sets and securebits (KEEP_CAPS by PR_SET_KEEPCAPS,
 * NO_SETUID_FIXUP).  After restore each thread checks its sets (capget and /proc/thread-self/status),
 * securebits, keepcaps and ids against what it had.   caps OUT READY GO */
#include "selfcheck.h"
#include "credstate.h"
#include <linux/securebits.h>
#include <pthread.h>

static struct credstate main_before, main_after, thr_before, thr_after;
static volatile int thread_set, go;

static int set_caps(uint64_t eff, uint64_t prm, uint64_t inh)
{
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2] = {
        {(uint32_t)eff, (uint32_t)prm, (uint32_t)inh},
        {(uint32_t)(eff >> 32), (uint32_t)(prm >> 32), (uint32_t)(inh >> 32)},
    };
    return (int)syscall(SYS_capset, &h, d);
}

#define BIT(c) (1ull << (c))

static void *thread_main(void *arg)
{
    struct credstate s;
    (void)arg;
    credstate_read(&s);
    if (set_caps(s.eff & ~(BIT(CAP_KILL) | BIT(CAP_SYS_TIME)), s.prm & ~BIT(CAP_SYS_TIME), BIT(CAP_SYS_NICE)) ||
        prctl(PR_CAPBSET_DROP, CAP_SYS_TIME, 0, 0, 0) || prctl(PR_CAPBSET_DROP, CAP_NET_ADMIN, 0, 0, 0) ||
        prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) || prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NO_SETUID_FIXUP, 0, 0, 0))
        exit(10);
    credstate_read(&thr_before);
    thread_set = 1;
    while (!go)
        usleep(1000);
    credstate_read(&thr_after);
    return NULL;
}

int main(int argc, char **argv)
{
    pthread_t t;
    struct credstate s;
    sc_init(argc, argv);
    if (pthread_create(&t, NULL, thread_main, NULL))
        return 3;
    while (!thread_set)
        usleep(1000);
    credstate_read(&s);
    uint64_t inh = BIT(CAP_NET_BIND_SERVICE) | BIT(CAP_NET_RAW) | BIT(CAP_SYS_BOOT);
    if (set_caps(s.eff & ~(BIT(CAP_CHOWN) | BIT(CAP_DAC_OVERRIDE)), s.prm & ~BIT(CAP_DAC_OVERRIDE), inh))
        return 11;
    if (prctl(PR_CAPBSET_DROP, CAP_SYS_BOOT, 0, 0, 0) || prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0))
        return 12;
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_BIND_SERVICE, 0, 0))
        return 13;
    if (prctl(PR_SET_SECUREBITS, SECBIT_KEEP_CAPS | SECBIT_NO_CAP_AMBIENT_RAISE | SECBIT_NOROOT_LOCKED, 0, 0, 0))
        return 14;
    credstate_read(&main_before);
    sc_ready();
    sc_wait_go();
    credstate_read(&main_after);
    go = 1;
    pthread_join(t, NULL);
    credstate_compare("main thread", &main_before, &main_after);
    credstate_compare("second thread", &thr_before, &thr_after);
    sc_check(main_after.inh & BIT(CAP_SYS_BOOT) && prctl(PR_CAPBSET_READ, CAP_SYS_BOOT, 0, 0, 0) == 0,
             "inheritable beyond the bounding set", "inheritable %#llx, cap_sys_boot in bounding set: %d",
             (unsigned long long)main_after.inh, prctl(PR_CAPBSET_READ, CAP_SYS_BOOT, 0, 0, 0));
    sc_check(prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_IS_SET, CAP_NET_BIND_SERVICE, 0, 0) == 1, "ambient",
             "cap_net_bind_service is not ambient");
    sc_check(main_before.securebits != 0 && thr_before.securebits != 0 && main_before.amb != 0,
             "set up", "securebits %#x / %#x, ambient %#llx", main_before.securebits, thr_before.securebits,
             (unsigned long long)main_before.amb);
    return sc_done();
}
