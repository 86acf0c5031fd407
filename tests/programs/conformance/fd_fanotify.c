/* A fanotify group (needs CAP_SYS_ADMIN: root here), non-blocking: an inode mark on WORK for
 * FAN_OPEN | FAN_CLOSE_WRITE with events on its children, and an ignored mask that survives
 * modification on a file in it.  After
 * restore: the same marks in fdinfo (masks, ignored mask, flags), F_GETFL as before, and the
 * group works: opening a file in WORK brings a FAN_OPEN event whose descriptor names that file. */
#include "cf.h"
#include <sys/fanotify.h>

static void marks(int fd, char *out, size_t size)
{
    char path[64], line[512];
    snprintf(path, sizeof path, "/proc/self/fdinfo/%d", fd);
    FILE *f = fopen(path, "r");
    out[0] = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, "fanotify ", 9) != 0) continue;
        /* from the mark flags on: the inode and device are the same, the file handle's bytes too */
        char *mask = strstr(line, "mflags:");
        char *handle = strstr(line, " fhandle-bytes:");
        if (handle) *handle = 0;
        strncat(out, mask ? mask : line, size - strlen(out) - 1);
        strncat(out, "|", size - strlen(out) - 1);
    }
    if (f) fclose(f);
}

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    char quiet[4200], probe[4200];
    snprintf(quiet, sizeof quiet, "%s/quiet", cf_work);
    snprintf(probe, sizeof probe, "%s/probe", cf_work);
    int q = open(quiet, O_CREAT | O_WRONLY, 0644), p = open(probe, O_CREAT | O_WRONLY, 0644);
    if (q < 0 || p < 0) return 3;
    close(q);
    close(p);
    int fd = fanotify_init(FAN_CLASS_NOTIF | FAN_NONBLOCK, O_RDONLY | O_LARGEFILE);
    if (fd < 0 || fanotify_mark(fd, FAN_MARK_ADD, FAN_OPEN | FAN_CLOSE_WRITE | FAN_EVENT_ON_CHILD, AT_FDCWD, cf_work) ||
        fanotify_mark(fd, FAN_MARK_ADD | FAN_MARK_IGNORED_MASK | FAN_MARK_IGNORED_SURV_MODIFY, FAN_OPEN, AT_FDCWD,
                      quiet))
        return 3;
    static char before[4096], after[4096];
    marks(fd, before, sizeof before);
    int fl = fcntl(fd, F_GETFL);
    sc_ready();
    sc_wait_go();
    char buf[8192];
    while (read(fd, buf, sizeof buf) > 0) {}           /* what the restore itself did, if anything */
    marks(fd, after, sizeof after);
    sc_check(strcmp(before, after) == 0, "the same marks", "%s against %s", after, before);
    sc_check(fcntl(fd, F_GETFL) == fl, "F_GETFL", "%#x, was %#x", fcntl(fd, F_GETFL), fl);
    int o = open(probe, O_RDONLY);
    ssize_t n = read(fd, buf, sizeof buf);
    int found = 0;
    for (struct fanotify_event_metadata *m = (void *)buf; n > 0 && FAN_EVENT_OK(m, n); m = FAN_EVENT_NEXT(m, n)) {
        char link[64], target[4200] = {0};
        snprintf(link, sizeof link, "/proc/self/fd/%d", m->fd);
        if (m->fd >= 0 && readlink(link, target, sizeof target - 1) > 0 && strcmp(target, probe) == 0 &&
            (m->mask & FAN_OPEN))
            found = 1;
        if (m->fd >= 0) close(m->fd);
    }
    sc_check(o >= 0 && found, "an open in WORK is reported", "%zd bytes of events", n);
    return sc_done();
}
