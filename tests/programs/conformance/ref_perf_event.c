/* Must be refused: a perf_event counter of our own task clock. */
#include "cf.h"
#include <linux/perf_event.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    struct perf_event_attr a;
    memset(&a, 0, sizeof a);
    a.type = PERF_TYPE_SOFTWARE;
    a.size = sizeof a;
    a.config = PERF_COUNT_SW_TASK_CLOCK;
    int fd = (int)syscall(SYS_perf_event_open, &a, 0, -1, -1, 0);
    if (fd < 0) return 3;
    sc_ready();
    sc_wait_go();
    uint64_t v;
    sc_check(read(fd, &v, 8) == 8, "counter still readable", "%s", "");
    return sc_done();
}
