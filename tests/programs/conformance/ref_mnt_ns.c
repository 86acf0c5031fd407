/* Must be refused: the process unshared a mount namespace (root) and mounted a tmpfs in it. */
#include "cf.h"
#include <sched.h>
#include <sys/mount.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    mkdir(cf_path("mnt"), 0700);
    if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
        mount("tmpfs", cf_path("mnt"), "tmpfs", 0, "size=1m")) return 3;
    close(open(cf_path("mnt/inside"), O_CREAT | O_WRONLY, 0600));
    sc_ready();
    sc_wait_go();
    sc_check(access(cf_path("mnt/inside"), F_OK) == 0, "mount still there", "%s", "");
    return sc_done();
}
