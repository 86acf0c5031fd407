/* inotify watch descriptors are handed out cyclically, a removed one not given again: with watches
 * 1 (on "/") and 3 kept and 2 removed, the watches come back at their numbers and masks, and the
 * next watch added after restore is 4, not the freed 2.
 *
 * Not checked: a watch removed ABOVE the highest live one (1 and 2 kept, 3 removed: the kernel's
 * next is 4).  The kernel's cursor is shown nowhere and cannot be read without moving the job's,
 * so a checkpoint cannot know a higher descriptor was ever given; restored, the next is one past
 * the highest live (3).  engine/inotify.py says why that is safe and not refused. */
#include "cf.h"
#include <sys/inotify.h>

static void watches(int in, char *out, size_t size)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", in);
    cf_slurp(path, out, size);
    char *w = strstr(out, "inotify wd:");
    memmove(out, w ? w : "", strlen(w ? w : "") + 1);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    mkdir(cf_path("a"), 0700);
    mkdir(cf_path("b"), 0700);
    int in = inotify_init1(IN_NONBLOCK);
    int root = inotify_add_watch(in, "/", IN_DELETE_SELF | IN_MOVE_SELF);   /* quiet: "/" is never moved */
    int gap = inotify_add_watch(in, cf_path("a"), IN_CREATE);
    int last = inotify_add_watch(in, cf_path("b"), IN_CREATE | IN_DELETE);
    if (root != 1 || gap != 2 || last != 3) return 4;
    inotify_rm_watch(in, gap);
    char drain[256] __attribute__((aligned(8)));
    while (read(in, drain, sizeof drain) > 0) {}          /* (the removal's IN_IGNORED) */
    static char before[4096], after[4096];
    watches(in, before, sizeof before);
    sc_ready();
    sc_wait_go();
    watches(in, after, sizeof after);
    cf_same(before, after, "watches (fdinfo)");
    int next = inotify_add_watch(in, cf_work, IN_CREATE);
    sc_check(next == last + 1, "the next watch descriptor", "%d, want %d", next, last + 1);
    return sc_done();
}
