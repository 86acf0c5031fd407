/* Must be refused: a chroot'ed process (root directory not /): it chroots into the directory
 * holding READY and GO, so that it still finds them. */
#include "cf.h"
#include <libgen.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    sc_open_out();
    static char dir[4096], ready[4200], go[4200];
    snprintf(dir, sizeof dir, "%s", sc_ready_path);
    snprintf(ready, sizeof ready, "/%s", basename((char *)sc_ready_path));
    snprintf(go, sizeof go, "/%s", basename((char *)sc_go_path));
    if (chroot(dirname(dir)) || chdir("/")) return 3;
    sc_ready_path = ready;
    sc_go_path = go;
    sc_ready();
    sc_wait_go();
    sc_check(access(ready, F_OK) == 0, "still inside the chroot", "%s", "");
    return sc_done();
}
