/* The vDSO after restore: where the auxiliary vector says, and its functions (clock_gettime of
 * several clocks, gettimeofday, time, getcpu) work and the clocks did not go backwards. */
#include "cf.h"
#include <sched.h>
#include <sys/auxv.h>
#include <sys/time.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    unsigned long vdso = getauxval(AT_SYSINFO_EHDR);
    int64_t mono = cf_now_ns(CLOCK_MONOTONIC), real = cf_now_ns(CLOCK_REALTIME), boot = cf_now_ns(CLOCK_BOOTTIME);
    int64_t raw = cf_now_ns(CLOCK_MONOTONIC_RAW);
    sc_ready();
    sc_wait_go();
    static char maps[1 << 16];
    cf_maps(maps, sizeof maps);
    char want[64];
    snprintf(want, sizeof want, "%lx-", vdso);
    char *line = strstr(maps, want);
    sc_check(line && strstr(line, "[vdso]") && strchr(line, '\n') > strstr(line, "[vdso]"),
             "[vdso] where AT_SYSINFO_EHDR says", "%#lx", vdso);
    sc_check(cf_now_ns(CLOCK_MONOTONIC) >= mono, "CLOCK_MONOTONIC", "%s", "");
    sc_check(cf_now_ns(CLOCK_MONOTONIC_RAW) >= raw, "CLOCK_MONOTONIC_RAW", "%s", "");
    sc_check(cf_now_ns(CLOCK_BOOTTIME) >= boot, "CLOCK_BOOTTIME", "%s", "");
    sc_check(cf_now_ns(CLOCK_REALTIME) >= real - 1000000000LL, "CLOCK_REALTIME", "%s", "");
    struct timeval tv;
    sc_check(gettimeofday(&tv, NULL) == 0 && tv.tv_sec >= real / 1000000000LL - 1, "gettimeofday", "%s", "");
    sc_check(time(NULL) >= real / 1000000000LL - 1, "time", "%s", "");
    unsigned cpu = 99, node = 99;
    cpu_set_t set;
    sched_getaffinity(0, sizeof set, &set);
    sc_check(getcpu(&cpu, &node) == 0 && CPU_ISSET(cpu, &set) && node == 0, "getcpu", "cpu %u node %u", cpu, node);
    sc_check(sched_getcpu() == (int)cpu || CPU_ISSET(sched_getcpu(), &set), "sched_getcpu", "%d", sched_getcpu());
    return sc_done();
}
