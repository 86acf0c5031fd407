/* Must be refused (an event cannot be put back in a queue): an inotify instance with an event
 * queued and not read.  After the refusal the event is still there. */
#include "cf.h"
#include <sys/inotify.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    mkdir(cf_path("a"), 0700);
    int in = inotify_init1(IN_NONBLOCK);
    int wa = inotify_add_watch(in, cf_path("a"), IN_CREATE);
    close(open(cf_path("a/queued"), O_CREAT | O_WRONLY, 0600));
    sc_ready();
    sc_wait_go();
    char buf[4096] __attribute__((aligned(8)));
    ssize_t r = read(in, buf, sizeof buf);
    struct inotify_event *e = (struct inotify_event *)buf;
    sc_check(r > 0 && e->wd == wa && (e->mask & IN_CREATE) && strcmp(e->name, "queued") == 0, "event still queued",
             "read %zd errno %d", r, errno);
    return sc_done();
}
