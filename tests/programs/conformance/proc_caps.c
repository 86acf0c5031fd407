/* Capabilities: root drops some from its effective, permitted and inheritable sets and the
 * bounding set, and raises one ambient: each set after restore. */
#include "cf.h"
#include <linux/capability.h>
#include <sys/prctl.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
    struct __user_cap_data_struct d[2];
    syscall(SYS_capget, &h, d);
    d[0].effective &= ~(1u << CAP_NET_RAW | 1u << CAP_SYS_TIME);
    d[0].permitted &= ~(1u << CAP_SYS_TIME);
    d[0].inheritable = 1u << CAP_NET_BIND_SERVICE | 1u << CAP_CHOWN;
    if (syscall(SYS_capset, &h, d)) return 3;
    prctl(PR_CAPBSET_DROP, CAP_MKNOD, 0, 0, 0);
    prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_CHOWN, 0, 0);
    const char *keys[5] = {"CapInh:", "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:"};
    char before[5][32];
    for (int i = 0; i < 5; i++) snprintf(before[i], sizeof before[i], "%s", cf_field("/proc/self/status", keys[i]));
    sc_ready();
    sc_wait_go();
    for (int i = 0; i < 5; i++) cf_same(before[i], cf_field("/proc/self/status", keys[i]), keys[i]);
    return sc_done();
}
