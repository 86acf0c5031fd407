/* personality(2) with ADDR_NO_RANDOMIZE and UNAME26: the flags, and uname(2) still reporting a
 * 2.6 release. */
#include "cf.h"
#include <sys/personality.h>
#include <sys/utsname.h>

int main(int argc, char **argv)
{
    cf_init(argc, argv);
    personality(PER_LINUX | ADDR_NO_RANDOMIZE | UNAME26);
    int before = personality(0xffffffff);
    struct utsname u;
    uname(&u);
    char release[65];
    snprintf(release, sizeof release, "%s", u.release);
    sc_ready();
    sc_wait_go();
    sc_check(personality(0xffffffff) == before, "personality", "%#x, before %#x", personality(0xffffffff), before);
    uname(&u);
    sc_check(strncmp(u.release, "2.6.", 4) == 0 && strcmp(u.release, release) == 0, "uname release (UNAME26)",
             "%s, before %s", u.release, release);
    return sc_done();
}
