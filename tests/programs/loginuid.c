/* The audit login uid and session id: with an argument, the job first writes that login uid (which
 * also gives it a new audit session, as pam_loginuid does at a login).  After restore it checks both
 * (and its other credentials) against what it had.   loginuid OUT READY GO [UID] */
#include "selfcheck.h"
#include "credstate.h"
#include <fcntl.h>

int main(int argc, char **argv)
{
    struct credstate before, after;
    sc_init(argc, argv);
    if (argc > 4) {
        int fd = open("/proc/self/loginuid", O_WRONLY);
        if (fd < 0 || write(fd, argv[4], strlen(argv[4])) < 0)
            return 10;
        close(fd);
    }
    credstate_read(&before);
    sc_ready();
    sc_wait_go();
    credstate_read(&after);
    credstate_compare("job", &before, &after);
    sc_check(argc <= 4 || before.loginuid == atol(argv[4]), "set up", "loginuid %ld", before.loginuid);
    return sc_done();
}
