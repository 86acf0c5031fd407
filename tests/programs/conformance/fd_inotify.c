/* inotify: watches on two directories with different masks, one after a removed watch (a gap in
 * the watch descriptors): fdinfo, flags, and events on both watches after restore. */
#include "cf.h"
#include <sys/inotify.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    mkdir(cf_path("a"), 0700);
    mkdir(cf_path("b"), 0700);
    int in = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    int wa = inotify_add_watch(in, cf_path("a"), IN_CREATE | IN_DELETE);
    int gap = inotify_add_watch(in, cf_work, IN_OPEN);
    inotify_rm_watch(in, gap);
    int wb = inotify_add_watch(in, cf_path("b"), IN_ATTRIB | IN_ONLYDIR);
    char drain[4096] __attribute__((aligned(8)));
    while (read(in, drain, sizeof drain) > 0) {}          /* (the removal's IN_IGNORED) */
    int fl = fcntl(in, F_GETFL), fdf = fcntl(in, F_GETFD);
    char path[64], before[4096];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", in);
    cf_slurp(path, before, sizeof before);
    char *wbefore = strstr(before, "inotify wd:");
    static char wb_copy[4096];
    snprintf(wb_copy, sizeof wb_copy, "%s", wbefore ? wbefore : "");
    sc_ready();
    sc_wait_go();
    char after[4096];
    cf_slurp(path, after, sizeof after);
    char *wafter = strstr(after, "inotify wd:");
    cf_same(wb_copy, wafter ? wafter : "", "watches (fdinfo)");
    sc_check(fcntl(in, F_GETFL) == fl && fcntl(in, F_GETFD) == fdf, "flags", "%#x", fcntl(in, F_GETFL));
    char buf[4096] __attribute__((aligned(8)));
    ssize_t r = read(in, buf, sizeof buf);
    sc_check(r < 0 && errno == EAGAIN, "nothing queued", "read %zd", r);
    chmod(cf_path("b"), 0750);
    close(open(cf_path("a/after"), O_CREAT | O_WRONLY, 0600));
    r = read(in, buf, sizeof buf);
    int saw_attr = 0, saw_create = 0;
    for (char *p = buf; r > 0 && p < buf + r; p += sizeof(struct inotify_event) + ((struct inotify_event *)p)->len) {
        struct inotify_event *x = (struct inotify_event *)p;
        saw_attr += x->wd == wb && (x->mask & IN_ATTRIB);
        saw_create += x->wd == wa && (x->mask & IN_CREATE) && strcmp(x->name, "after") == 0;
    }
    sc_check(saw_attr == 1 && saw_create == 1, "new events on both watches", "attr %d create %d", saw_attr,
             saw_create);
    return sc_done();
}
