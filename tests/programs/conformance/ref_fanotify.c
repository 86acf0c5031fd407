/* Must be refused: a fanotify group (needs CAP_SYS_ADMIN: root here) watching a directory. */
#include "cf.h"
#include <sys/fanotify.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY);
    if (fd < 0 || fanotify_mark(fd, FAN_MARK_ADD, FAN_OPEN, AT_FDCWD, cf_work)) return 3;
    sc_ready();
    sc_wait_go();
    sc_check(fcntl(fd, F_GETFD) >= 0, "still open", "%s", "");
    return sc_done();
}
