/* Per-process or per-thread prctl state no other program covers: PR_SET_TSC (SIGSEGV on rdtsc),
 * PR_MCE_KILL (early), the speculative store bypass control, PR_SET_KEEPCAPS, PR_SET_NO_NEW_PRIVS,
 * PR_SET_THP_DISABLE: each after restore. */
#include "cf.h"
#include <sys/prctl.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int tsc_ok = prctl(PR_SET_TSC, PR_TSC_SIGSEGV) == 0;
    prctl(PR_MCE_KILL, PR_MCE_KILL_SET, PR_MCE_KILL_EARLY, 0, 0);
    int spec_before = prctl(PR_GET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, 0, 0, 0);
    if (spec_before & PR_SPEC_PRCTL) {
        prctl(PR_SET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, PR_SPEC_DISABLE, 0, 0);
        spec_before = prctl(PR_GET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, 0, 0, 0);
    }
    prctl(PR_SET_KEEPCAPS, 1);
    prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0);
    int tsc_before = 0;
    prctl(PR_GET_TSC, &tsc_before);
    int mce_before = prctl(PR_MCE_KILL_GET, 0, 0, 0, 0);
    sc_ready();
    sc_wait_go();
    int tsc = 0;
    prctl(PR_GET_TSC, &tsc);
    sc_check(!tsc_ok || tsc == tsc_before, "PR_GET_TSC", "%d, before %d", tsc, tsc_before);
    sc_check(prctl(PR_MCE_KILL_GET, 0, 0, 0, 0) == mce_before, "PR_MCE_KILL_GET", "%d, before %d",
             prctl(PR_MCE_KILL_GET, 0, 0, 0, 0), mce_before);
    int spec = prctl(PR_GET_SPECULATION_CTRL, PR_SPEC_STORE_BYPASS, 0, 0, 0);
    sc_check(spec == spec_before, "speculative store bypass control", "%#x, before %#x", spec, spec_before);
    sc_check(prctl(PR_GET_KEEPCAPS) == 1, "PR_GET_KEEPCAPS", "%d", prctl(PR_GET_KEEPCAPS));
    sc_check(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0) == 1, "PR_GET_NO_NEW_PRIVS", "%s", "");
    sc_check(prctl(PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1, "PR_GET_THP_DISABLE", "%s", "");
    return sc_done();
}
