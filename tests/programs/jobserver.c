/* A recipe of `make -j` holding make's jobserver pipe (both ends, --jobserver-auth=R,W in
 * MAKEFLAGS), checkpointed with --external and restored with R and W given /dev/null:
 *   jobserver OUT READY GO
 * After GO: R and W are open with the access modes and status flags they had, R reads end of
 * file at once (no token will ever come), W takes a token (it goes nowhere). */
#include "selfcheck.h"
#include <fcntl.h>
#include <string.h>

int main(int argc, char **argv)
{
    sc_init(argc, argv);
    const char *flags = getenv("MAKEFLAGS"), *auth = flags ? strstr(flags, "--jobserver-auth=") : NULL;
    int r = -1, w = -1;
    if (!auth || sscanf(auth, "--jobserver-auth=%d,%d", &r, &w) != 2) return 3;
    int fr = fcntl(r, F_GETFL), fw = fcntl(w, F_GETFL);
    if (fr < 0 || fw < 0) return 3;
    sc_ready();
    sc_wait_go();
    int nr = fcntl(r, F_GETFL), nw = fcntl(w, F_GETFL);
    sc_check((nr & O_ACCMODE) == (fr & O_ACCMODE) && (nw & O_ACCMODE) == (fw & O_ACCMODE), "access modes",
             "%#o %#o, were %#o %#o", nr, nw, fr, fw);
    sc_check(((nr ^ fr) & (O_NONBLOCK | O_APPEND)) == 0 && ((nw ^ fw) & (O_NONBLOCK | O_APPEND)) == 0,
             "status flags", "%#o %#o, were %#o %#o", nr, nw, fr, fw);
    char token;
    sc_check(read(r, &token, 1) == 0, "the read end is at end of file", "%s", "");
    sc_check(write(w, "+", 1) == 1, "the write end takes a token", "%s", "");
    return sc_done();
}
