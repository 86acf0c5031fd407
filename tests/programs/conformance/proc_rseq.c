/* glibc's rseq registration: still registered with the same area (a second registration of it
 * answers EBUSY), and the kernel keeps its cpu_id field current. */
#include "cf.h"
#include <linux/rseq.h>
#include <sched.h>
#include <sys/rseq.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    if (__rseq_size == 0) {
        sc_ready();
        sc_wait_go();
        sc_check(1, "glibc did not register rseq (nothing to check)", "%s", "");
        return sc_done();
    }
    struct rseq *rs = (struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
    sc_ready();
    sc_wait_go();
    long r = syscall(SYS_rseq, rs, 32, 0, RSEQ_SIG);
    sc_check(r < 0 && errno == EBUSY, "same area registered", "r=%ld errno=%d", r, errno);
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(1, &set);
    int target = sched_setaffinity(0, sizeof set, &set) == 0 ? 1 : 0;
    if (!target) {
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        sched_setaffinity(0, sizeof set, &set);
    }
    sched_yield();
    sc_check((int)rs->cpu_id == target && (int)rs->cpu_id_start == target, "cpu_id follows the thread", "%u, want %d",
             rs->cpu_id, target);
    return sc_done();
}
