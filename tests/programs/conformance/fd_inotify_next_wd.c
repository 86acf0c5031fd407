/* inotify watch descriptors are never reused within an instance: with watches 1 and 2 kept and
 * 3 removed, the next watch added after restore is 4, as it would have been. */
#include "cf.h"
#include <sys/inotify.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    mkdir(cf_path("a"), 0700);
    mkdir(cf_path("b"), 0700);
    mkdir(cf_path("c"), 0700);
    int in = inotify_init1(IN_NONBLOCK);
    inotify_add_watch(in, cf_path("a"), IN_CREATE);
    inotify_add_watch(in, cf_path("b"), IN_CREATE);
    int last = inotify_add_watch(in, cf_path("c"), IN_CREATE);
    inotify_rm_watch(in, last);
    char drain[256] __attribute__((aligned(8)));
    while (read(in, drain, sizeof drain) > 0) {}
    sc_ready();
    sc_wait_go();
    int next = inotify_add_watch(in, cf_work, IN_CREATE);
    sc_check(next == last + 1, "the next watch descriptor", "%d, want %d", next, last + 1);
    return sc_done();
}
