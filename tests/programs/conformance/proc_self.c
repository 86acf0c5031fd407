/* What /proc/self shows, before and after: maps, VmFlags of every mapping, cmdline, environ,
 * auxv, exe, comm, personality, the memory-map fields of stat, and the status lines that
 * describe the process (not its counters). */
#include "cf.h"

static char b_maps[1 << 18], a_maps[1 << 18], b_flags[1 << 18], a_flags[1 << 18];
static char b_small[8][8192], a_small[8][8192];
static const char *smalls[] = {"/proc/self/cmdline", "/proc/self/environ", "/proc/self/auxv",
                               "/proc/self/comm", "/proc/self/personality", "/proc/self/limits",
                               "/proc/self/mountinfo", "/proc/self/cgroup"};
static const char *keys[] = {"Name:", "Umask:", "Tgid:", "Pid:", "PPid:", "TracerPid:", "Uid:", "Gid:", "Groups:",
                             "NStgid:", "NSpid:", "NSpgid:", "NSsid:", "SigBlk:", "SigIgn:", "SigCgt:", "CapInh:",
                             "CapPrm:", "CapEff:", "CapBnd:", "CapAmb:", "NoNewPrivs:", "Seccomp:",
                             "Seccomp_filters:", "Speculation_Store_Bypass:", "SpeculationIndirectBranch:",
                             "Cpus_allowed_list:", "Mems_allowed_list:", "THP_enabled:", "untag_mask:",
                             "x86_Thread_features:", "x86_Thread_features_locked:", "Kthread:", "CoreDumping:"};
#define NKEYS (sizeof keys / sizeof keys[0])
static char b_status[NKEYS][256];
static unsigned long b_stat[60], a_stat[60];

static void stat_fields(unsigned long *out)
{
    static char text[4096];
    cf_slurp("/proc/self/stat", text, sizeof text);
    char *p = strrchr(text, ')') + 2;
    for (int i = 3; i <= 52 && p; i++) {
        out[i] = strtoul(p, &p, 10);
        if (i == 3) { out[i] = 0; p = strchr(p, ' '); }
        while (p && *p == ' ') p++;
    }
}

static void snap(char *maps, char *flags, char small[8][8192])
{
    cf_maps(maps, 1 << 18);
    cf_all_vmflags(flags, 1 << 18);
    for (int i = 0; i < 8; i++) {
        long n = cf_slurp(smalls[i], small[i], 8192);
        for (long j = 0; j < n; j++) if (!small[i][j]) small[i][j] = '|';
    }
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sc_open_out();
    for (size_t k = 0; k < NKEYS; k++) snprintf(b_status[k], sizeof b_status[k], "%s", cf_field("/proc/self/status", keys[k]));
    stat_fields(b_stat);
    char b_exe[4096], a_exe[4096];
    ssize_t n = readlink("/proc/self/exe", b_exe, sizeof b_exe - 1);
    b_exe[n > 0 ? n : 0] = 0;
    snap(b_maps, b_flags, b_small);
    sc_ready();
    sc_wait_go();
    snap(a_maps, a_flags, a_small);
    stat_fields(a_stat);
    n = readlink("/proc/self/exe", a_exe, sizeof a_exe - 1);
    a_exe[n > 0 ? n : 0] = 0;
    cf_same(b_maps, a_maps, "/proc/self/maps");
    cf_same(b_flags, a_flags, "VmFlags of every mapping");
    for (int i = 0; i < 8; i++) cf_same(b_small[i], a_small[i], smalls[i]);
    cf_same(b_exe, a_exe, "/proc/self/exe");
    for (size_t k = 0; k < NKEYS; k++) {
        char what[64];
        snprintf(what, sizeof what, "status %s", keys[k]);
        cf_same(b_status[k], cf_field("/proc/self/status", keys[k]), what);
    }
    const int mm[] = {26, 27, 28, 45, 46, 47, 48, 49, 50, 51};
    const char *names[] = {"start_code", "end_code", "start_stack", "start_data", "end_data", "start_brk",
                           "arg_start", "arg_end", "env_start", "env_end"};
    for (int i = 0; i < 10; i++)
        sc_check(b_stat[mm[i]] == a_stat[mm[i]], names[i], "%#lx, before %#lx", a_stat[mm[i]], b_stat[mm[i]]);
    /* (Not field 9, the task's PF_ flags: a restored process was forked and never exec'd, and used
     * root's privileges while being rebuilt; PF_FORKNOEXEC and PF_SUPERPRIV cannot be cleared.) */
    const int other[] = {5, 6, 7, 18, 19, 20, 40, 41};
    const char *onames[] = {"pgrp", "session", "tty_nr", "priority", "nice", "num_threads", "rt_priority", "policy"};
    for (int i = 0; i < 8; i++)
        sc_check(b_stat[other[i]] == a_stat[other[i]], onames[i], "%lu, before %lu", a_stat[other[i]],
                 b_stat[other[i]]);
    return sc_done();
}
